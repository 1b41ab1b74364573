"""BaseBackend's one error hook: translate_error, applied around every public operation a backend
defines, and to the iterators and streams they return."""

from __future__ import annotations

import io

import pytest

import flask_fs as fs
from flask_fs.backends import BaseBackend, file_not_found


class ServerDown(Exception):
    """What a client library raises when its server is gone."""


class Flaky(BaseBackend):
    """Files in a dict behind a 'client' that fails once ``down`` is set (after ``after`` more calls)."""

    def __init__(self, name, config):
        super().__init__(name, config)
        self.files, self.down, self.after, self.seen = {}, False, 0, []

    def _client(self):
        if self.down:
            if self.after <= 0:
                raise ServerDown("connection refused")
            self.after -= 1

    def translate_error(self, exc, filename):
        self.seen.append((type(exc).__name__, filename))
        if isinstance(exc, KeyError):
            return file_not_found(filename)
        if isinstance(exc, ServerDown):
            return fs.BackendError(f"dict server down while working on {filename!r}")
        return None

    def exists(self, filename):
        self._client()
        return filename in self.files

    def open_read(self, filename):
        self._client()
        backend, data = self, self.files[filename]

        class Stream(io.BytesIO):
            def read(self, size=-1):
                backend._client()
                return super().read(size)

        return Stream(data)

    def save(self, file_or_wfs, filename, overwrite=False, *, headers=None):
        self._client()
        if filename in self.files and not overwrite:
            raise fs.FileExists(f"{filename!r} exists")
        self.files[filename] = file_or_wfs.read()

    def delete(self, filename):
        self._client()
        self.files.pop(filename, None)

    def list_files(self):
        for name in sorted(self.files):
            self._client()
            yield name

    def metadata(self, filename):
        self._client()
        return {"size": len(self.files[filename]), "checksum": None, "mime": None, "modified": None}

    def check(self):
        raise ValueError("not a client error")


def test_operations_iterators_and_streams_raise_the_backends_errors():
    backend = Flaky("files", {})
    backend.write("a.txt", b"hello")
    backend.write("b.txt", b"world")
    with pytest.raises(fs.FileNotFound, match="'missing.txt'") as error:
        backend.metadata("missing.txt")
    assert isinstance(error.value.__cause__, KeyError)
    stream, served = backend.open_read("a.txt"), backend.open_served("b.txt")
    names = backend.list_files()
    assert next(names) == "a.txt"
    backend.down = True
    for call, name in [
        (lambda: backend.exists("a.txt"), "a.txt"),
        (lambda: backend.save(io.BytesIO(b"x"), "c.txt"), "c.txt"),  # the name is the second argument
        (lambda: backend.copy(source="a.txt", target="d.txt"), "a.txt"),  # by keyword: the source
        (lambda: backend.read("b.txt"), "b.txt"),
        (lambda: list(backend.read_chunks("b.txt")), "b.txt"),
        (lambda: next(names), None),  # a listing that fails half way
        (lambda: stream.read(), "a.txt"),  # a stream opened before the failure
        (lambda: served.stream.read(2), "b.txt"),
    ]:
        with pytest.raises(fs.BackendError, match=f"down while working on {name!r}") as error:
            call()
        assert isinstance(error.value.__cause__, ServerDown)
    backend.down, backend.seen = False, []
    with pytest.raises(fs.FileExists):  # flask_fs errors pass untouched: the hook is not asked
        backend.write("a.txt", b"again")
    with pytest.raises(ValueError, match="not a client error"):  # what the hook does not know goes through
        backend.check()
    assert backend.seen == [("ValueError", None)]


def test_overrides_in_subclasses_are_translated_too():
    class Subclass(Flaky):
        def exists(self, filename):
            raise ServerDown("from the subclass")

    with pytest.raises(fs.BackendError, match="'x.txt'"):
        Subclass("files", {}).exists("x.txt")
