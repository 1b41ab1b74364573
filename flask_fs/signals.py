"""Signals (blinker, as Flask uses) sent by every storage, for metrics and audit logs.

The sender is the :class:`~flask_fs.Storage` declaration, so a receiver can listen to one storage
(``file_saved.connect(handler, sender=images)``) or to all. Every signal carries ``filename`` and
``duration`` (seconds, as a float); ``operation_failed`` adds ``operation`` and ``error``.

============================  =========================================================
``file_saved``                a file was stored (save, write, a writer closed, copy, move target)
``file_deleted``              a file was deleted
``file_served``               the ``fs`` view sent a file (``status``: 200, 206 or 304)
``operation_failed``          an operation raised (``operation`` is the method name)
============================  =========================================================

Receivers run synchronously in the caller's thread: keep them fast, or hand work to a queue.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from blinker import Namespace

__all__ = ["before_display", "file_deleted", "file_saved", "file_served", "file_uploaded", "operation_failed"]

_namespace = Namespace()

file_saved = _namespace.signal("file-saved")
file_deleted = _namespace.signal("file-deleted")
file_served = _namespace.signal("file-served")
operation_failed = _namespace.signal("operation-failed")

#: Flask-FS 0.6 names: ``file_uploaded`` is ``file_saved``; ``before_display`` is declared for
#: code that connects to it, and like in Flask-FS nothing sends it.
file_uploaded = file_saved
before_display = _namespace.signal("before-display")


@contextmanager
def observed(sender: Any, operation: str, filename: str, done: Any = None) -> Iterator[dict[str, Any]]:
    """Time an operation; send ``done`` when it succeeds, ``operation_failed`` when it raises.

    Yields the event's arguments, which the operation may complete (``event["filename"]`` when
    the stored name differs). Costs two attribute checks when nobody listens.
    """
    event: dict[str, Any] = {"filename": filename}
    if not (operation_failed.receivers or (done is not None and done.receivers)):
        yield event
        return
    start = time.perf_counter()
    try:
        yield event
    except Exception as error:
        operation_failed.send(sender, operation=operation, error=error, duration=time.perf_counter() - start, **event)
        raise
    if done is not None:
        done.send(sender, duration=time.perf_counter() - start, **event)
