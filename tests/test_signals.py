"""Signals for metrics and audit logs: saved, deleted, served, failed, with timings."""

from __future__ import annotations

import io

import pytest

import flask_fs as fs
from flask_fs import signals


@pytest.fixture
def events():
    """Every signal received during the test, as (signal name, sender, arguments)."""
    received = []

    def receiver_for(name):
        def receive(sender, **kwargs):
            received.append((name, sender, kwargs))

        return receive

    receivers = {name: receiver_for(name) for name in ("saved", "deleted", "served", "failed")}
    pairs = [
        (signals.file_saved, receivers["saved"]),
        (signals.file_deleted, receivers["deleted"]),
        (signals.file_served, receivers["served"]),
        (signals.operation_failed, receivers["failed"]),
    ]
    for signal, receiver in pairs:
        signal.connect(receiver)
    yield received
    for signal, receiver in pairs:
        signal.disconnect(receiver)


def test_saves_deletes_and_their_timings(storage, events):
    storage.save(io.BytesIO(b"x"), "a.txt")
    storage.write("b.txt", "y")
    storage.copy("a.txt", "c.txt")
    storage.move("c.txt", "d.txt")
    storage.delete("a.txt")
    assert [(name, kwargs["filename"]) for name, _, kwargs in events] == [
        ("saved", "a.txt"),
        ("saved", "b.txt"),
        ("saved", "c.txt"),
        ("saved", "d.txt"),
        ("deleted", "a.txt"),
    ]
    assert all(sender is storage for _, sender, _ in events)
    assert all(isinstance(kwargs["duration"], float) and kwargs["duration"] >= 0 for _, _, kwargs in events)


def test_a_renamed_save_reports_the_stored_name(storage, events):
    storage.write("photo.txt", "first")
    storage.save(io.BytesIO(b"second"), "photo.txt", rename=True)
    assert events[-1][2]["filename"] == "photo_1.txt"


def test_failures_carry_the_operation_and_error(storage, events):
    storage.write("taken.txt", "x")
    with pytest.raises(fs.FileExists):
        storage.save(io.BytesIO(b"y"), "taken.txt")
    name, sender, kwargs = events[-1]
    assert (name, sender, kwargs["operation"], kwargs["filename"]) == ("failed", storage, "save", "taken.txt")
    assert isinstance(kwargs["error"], fs.FileExists)


def test_receivers_can_listen_to_one_storage(app, events):
    one, other = fs.Storage("one", fs.ALL), fs.Storage("other", fs.ALL)
    fs.init_app(app, one, other)
    only_one = []
    signals.file_saved.connect(lambda sender, **kw: only_one.append(kw["filename"]), sender=one, weak=False)
    try:
        with app.app_context():
            one.write("a.txt", "1")
            other.write("b.txt", "2")
    finally:
        signals.file_saved.receivers.clear()  # the lambda above is not reachable otherwise
    assert only_one == ["a.txt"]


def test_serving_is_reported_with_its_status(storage, client, events):
    storage.write("page.txt", "hello")
    assert client.get("/files/page.txt").status_code == 200
    etag = client.get("/files/page.txt").headers["ETag"]
    assert client.get("/files/page.txt", headers={"If-None-Match": etag}).status_code == 304
    served = [(kwargs["filename"], kwargs["status"]) for name, _, kwargs in events if name == "served"]
    assert served == [("page.txt", 200), ("page.txt", 200), ("page.txt", 304)]


def test_flask_fs_names_are_kept():
    assert signals.file_uploaded is signals.file_saved
    assert signals.before_display.name == "before-display"
