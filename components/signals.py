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


def install() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt (the default SIGTERM would skip every cleanup:
    MLflow run status, temp files, child servers). Main thread only; called by the CLI."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _handle)
        signal.signal(signal.SIGTERM, _handle)


@contextmanager
def deferred(enabled: bool = True) -> Iterator[StopRequest]:
    """Within the block a first signal sets the yielded request instead of raising; the caller
    polls `is_set()` at safe points. Only effective where install() set the handlers."""
    global _active
    request = StopRequest()
    if not enabled:
        yield request
        return
    previous, _active = _active, request
    try:
        yield request
    finally:
        _active = previous
