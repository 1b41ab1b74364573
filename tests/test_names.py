"""Storage-relative names (flask_fs.names): what is refused, what is kept, and upload-name cleaning."""

from __future__ import annotations

import os
import posixpath
import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from flask_fs import InvalidFileName, names

#: Names every operation must refuse, with the reason they are dangerous or meaningless.
HOSTILE = [
    "",  # empty
    ".",
    "..",
    "../x.txt",  # traversal
    "../../etc/passwd",
    "a/../../x.txt",
    "a/./b.txt",
    "a/..",
    "./x.txt",
    "...",  # dots only: some systems read it as '..' or strip it to nothing
    ".. ",  # '..' with a trailing space (Windows strips it)
    "a/.. /b",
    " ",
    "a/ /b",
    "/etc/passwd",  # absolute
    "//server/share/x",
    "/",
    "C:x.txt",  # drive
    "c:/windows/win.ini",
    "a\x00b.txt",  # NUL byte
    "a.txt\x00.png",
    "a\nb.txt",  # control characters
    "a\rb",
    "tab\there",
    "del\x7f",
    "c1\x85control",  # C1 control (NEL)
    "a\\..\\x.txt",  # backslash tricks
    "..\\x.txt",
    "\\etc\\passwd",
    "a\\b",
    'x";filename=evil.html',  # a double quote could end a quoted header value (Content-Disposition)
    "\uff02.txt",  # FULLWIDTH QUOTATION MARK: a double quote under NFKC
    "a//b",  # empty segment
    "a/",
    "a/b/",
    "\uff0e\uff0e",  # fullwidth dots: '..' under NFKC
    "\uff0e\uff0e/x",
    "\uff0e\uff0e\uff0fetc\uff0fpasswd",  # fullwidth dots and slashes: '../etc/passwd' under NFKC
    "a\uff0f\uff0e\uff0e\uff0fb",  # 'a/../b' under NFKC
    "\u2025/x",  # TWO DOT LEADER: '..' under NFKC
    "\ufe68x",  # SMALL REVERSE SOLIDUS: a backslash under NFKC
    "\ud800.txt",  # lone surrogate: not encodable
    "a" * 256,  # segment over 255 bytes
    "é" * 128,  # 256 bytes in UTF-8
    "/".join(["abcdefghi"] * 103),  # over 1024 bytes in all
]

#: Odd but harmless names: kept literally (on Linux and object stores they name ordinary files).
HARMLESS = [
    "%2e%2e%2f",  # URL-encoded '../' stays nine literal characters
    "%2e%2e/%2fx",
    "..a",
    "a..",
    ".hidden",
    "a/.hidden/b.txt",
    "con",  # Windows device names are plain names on Linux
    "nul.txt",
    "aux/com1.txt",
    "ab:c.txt",  # a colon past the second character is no drive
    "a b/c d.txt",
    "a\uff0fb.txt",  # fullwidth slash: NFKC gives 'a/b.txt', a harmless nested name
    "\u202etxt.exe",  # a right-to-left override is kept; uploads drop it (see secure_upload_name)
    "a" * 255,
    "/".join(["abcdefgh"] * 113),  # 1016 bytes
    "照片/2024/été.jpg",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused(name):
    with pytest.raises(InvalidFileName):
        names.clean(name)


@pytest.mark.parametrize("name", HARMLESS)
def test_harmless_names_are_kept(name):
    assert names.clean(name) == unicodedata.normalize("NFC", name)


@pytest.mark.parametrize("value", [None, b"x.txt", b"../x", 3, ["a"], os.path])
def test_non_strings_are_refused(value):
    with pytest.raises(InvalidFileName, match="must be str"):
        names.clean(value)


def test_invalid_file_name_is_a_value_error_and_fs_error():
    from flask_fs import FSError

    with pytest.raises(ValueError):
        names.clean("../x")
    with pytest.raises(FSError):
        names.clean("../x")


def test_names_are_returned_in_nfc_form():
    decomposed = "e\u0301te\u0301.txt"  # 'été' typed with combining accents
    assert names.clean(decomposed) == "\u00e9t\u00e9.txt"


def test_join_checks_prefix_and_name():
    assert names.join("a/b", "c.txt") == "a/b/c.txt"
    assert names.join("a/b/", "c.txt") == "a/b/c.txt"
    assert names.join(None, "c.txt") == "c.txt"
    assert names.join("", "c.txt") == "c.txt"
    for prefix, name in [("..", "x"), ("a", "../../x"), ("/abs", "x"), ("a//", "x"), ("a", "")]:
        with pytest.raises(InvalidFileName):
            names.join(prefix, name)


@pytest.mark.parametrize(
    ("upload", "expected"),
    [
        ("photo.jpg", "photo.jpg"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("C:\\Users\\me\\My Photo.JPG", "My_Photo.JPG"),
        ("été à la plage.jpg", "été_à_la_plage.jpg"),
        ("照片.jpg", "照片.jpg"),
        (".bashrc", "bashrc"),
        ("...", "file"),
        ("", "file"),
        (None, "file"),
        ("a\x00b.txt", "a_b.txt"),
        ("<script>alert(1)</script>.html", "script.html"),
        ("%2e%2e%2fsecret", "2e_2e_2fsecret"),
        ("\u202egpj.exe", "gpj.exe"),
        ("\uff0e\uff0e\uff0fx.txt", "x.txt"),
        ("a" * 300 + ".txt", "a" * 251 + ".txt"),
    ],
)
def test_secure_upload_name(upload, expected):
    assert names.secure_upload_name(upload) == expected


@given(st.text(max_size=300))
@example("\uff0e\uff0e\uff0f..")
@example("..\\..//../ \u2025")
@example("a/" * 600)
@settings(max_examples=400, deadline=None)
def test_clean_never_lets_a_name_out_of_the_root(text):
    root = "/srv/storage/files"
    try:
        name = names.clean(text)
    except InvalidFileName:
        return
    joined = os.path.normpath(os.path.join(root, name))
    assert joined.startswith(root + "/")
    assert names.clean(name) == name  # idempotent
    compatible = unicodedata.normalize("NFKC", name)
    assert posixpath.normpath(posixpath.join(root, compatible)).startswith(root + "/")
    assert "\\" not in compatible and "\x00" not in name and '"' not in compatible


@given(st.one_of(st.none(), st.text(max_size=400)))
@example("../" * 50 + "\uff0e\uff0e.png")
@settings(max_examples=400, deadline=None)
def test_secure_upload_name_always_gives_one_clean_segment(text):
    name = names.secure_upload_name(text)
    assert names.clean(name) == name
    assert "/" not in name and not name.startswith(".")
    assert len(name.encode("utf-8")) <= names.MAX_SEGMENT_BYTES
