"""Extension presets and containers (flask_fs.files), as Flask-FS documents them."""

from __future__ import annotations

import pytest

import flask_fs as fs
from flask_fs.files import extension

#: The presets exactly as Flask-FS documents them.
REFERENCE = {
    "TEXT": ["txt"],
    "DOCUMENTS": ["rtf", "odf", "ods", "gnumeric", "abw", "doc", "docx", "xls", "xlsx"],
    "IMAGES": ["jpg", "jpe", "jpeg", "png", "gif", "svg", "bmp"],
    "AUDIO": ["wav", "mp3", "aac", "ogg", "oga", "flac"],
    "DATA": ["csv", "ini", "json", "plist", "xml", "yaml", "yml"],
    "SCRIPTS": ["js", "php", "pl", "py", "rb", "sh", "bat"],
    "ARCHIVES": ["gz", "bz2", "zip", "tar", "tgz", "txz", "7z"],
    "EXECUTABLES": ["so", "exe", "dll"],
}


@pytest.mark.parametrize("preset", sorted(REFERENCE))
def test_presets_are_lists_starting_with_the_reference_items(preset):
    value = getattr(fs, preset)
    assert isinstance(value, list)
    assert value[: len(REFERENCE[preset])] == REFERENCE[preset]
    extra = value[len(REFERENCE[preset]) :]
    assert extra in ([], ["webp"])  # the one addition: IMAGES accepts WebP


def test_defaults_is_text_documents_images_data():
    assert fs.DEFAULTS == fs.TEXT + fs.DOCUMENTS + fs.IMAGES + fs.DATA
    assert fs.NONE == []


def test_presets_combine_with_plus():
    assert "txt" in fs.TEXT + fs.IMAGES and "png" in fs.TEXT + fs.IMAGES


def test_all_contains_everything():
    assert isinstance(fs.ALL, fs.All)
    for item in ("png", "exe", "", "whatever"):
        assert item in fs.ALL


def test_all_except_excludes_case_insensitively():
    container = fs.AllExcept(fs.SCRIPTS + fs.EXECUTABLES)
    assert "png" in container and "txt" in container
    assert "php" not in container and "PHP" not in container and "Exe" not in container
    assert "iso" not in fs.AllExcept(("exe", "iso"))  # the reference's example
    assert "exe" not in fs.AllExcept(iter(["EXE"]))  # any iterable, once


@pytest.mark.parametrize(
    ("filename", "ext"),
    [
        ("a.png", "png"),
        ("a.PNG", "png"),
        ("a.php.png", "png"),
        ("a.png.php", "php"),
        ("archive.tar.gz", "gz"),
        ("dir.d/file", ""),
        ("dir/a.JpEg", "jpeg"),
        (".png", ""),  # a dotfile has no extension
        ("..png", ""),
        ("noext", ""),
        ("trailing.", ""),
    ],
)
def test_extension_is_the_real_final_one(filename, ext):
    assert extension(filename) == ext
