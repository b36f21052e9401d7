"""Pausing Python's cyclic garbage collector for the length of bulk work (a request, an
export or import).

A request that decodes, stores and answers 100,000 annotations makes and drops about a
million small objects, none of them in a reference cycle. With the collector on, their
pile-up sets off collection after collection, each walking the whole heap: a third of
such a request's time. Paused, they are freed by reference counting alone as usual, and
what is cyclic waits for the collector's next run, after the request."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pauses = 0
_was_enabled = True


@contextmanager
def paused_collector() -> Iterator[None]:
    """Pauses nest, across threads too: the collector resumes when the last one ends, if
    it was running when the first began."""
    global _pauses, _was_enabled
    with _lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()


def pause_collector() -> Iterator[None]:
    """The same as a route dependency (``dependencies=[Depends(pause_collector)]``)."""
    with paused_collector():
        yield
