"""Ctrl-C and `timeout` (SIGINT/SIGTERM, often to the whole process group) end a ganops command
cleanly: outside training the first signal raises KeyboardInterrupt at once; inside a
`deferred()` block (the training loop) it only asks the loop to stop after the current step, so
the loop can write a checkpoint first. A second signal always interrupts at once.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class StopRequest:
    """Set by the first SIGINT/SIGTERM while a deferred block runs."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_name = ""

    def set(self, signum: int) -> None:
        self.signal_name = signal.Signals(signum).name
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


_active: StopRequest | None = None


def _handle(signum: int, frame) -> None:
    global _active
    if _active is not None and not _active.is_set():
        _active.set(signum)
        print(
            f"\n{signal.Signals(signum).name}: stopping after this step "
            "(checkpoint first; send it again to abort at once)",
            flush=True,
        )
        return
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextmanager
def handled() -> Iterator[None]:
    """For the block, SIGINT and SIGTERM raise KeyboardInterrupt (the default SIGTERM would skip
    every cleanup: MLflow run status, temp files, child servers). Main thread only; the CLI
    wraps each command in it."""
    saved = {}
    if threading.current_thread() is threading.main_thread():
        saved = {sig: signal.signal(sig, _handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@contextmanager
def deferred(enabled: bool = True) -> Iterator[StopRequest]:
    """Within the block a first SIGINT/SIGTERM sets the yielded request instead of raising (our
    handlers are put in place for the block, over e.g. Prefect's SIGTERM bridge, and the
    previous ones restored after); the caller polls `is_set()` at safe points."""
    global _active
    request = StopRequest()
    if not enabled:
        yield request
        return
    previous, _active = _active, request
    saved = {}
    if threading.current_thread() is threading.main_thread():
        saved = {sig: signal.signal(sig, _handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        _active = previous
        for sig, handler in saved.items():
            signal.signal(sig, handler)
