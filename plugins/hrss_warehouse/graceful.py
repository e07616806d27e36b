"""Graceful stop: SIGTERM (what Airflow sends when a task is cleared or times out, what `kill` sends)
ends an ingest or a reprocess between two batches instead of in the middle of one.

While ``sigterm_stops`` is active, SIGTERM only sets a flag: the batch being loaded commits and its
files finish moving, the batches not yet loaded stay pending (their files in archive/ or, not yet
registered, in landing), and the run raises ``Stopped``, which the CLI reports in one line. The next
run loads what is pending.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass

log = logging.getLogger(__name__)

STOPPED_EXIT_CODE = 75  # EX_TEMPFAIL: nothing is wrong, run again


class Stopped(RuntimeError):
    """The run stopped on SIGTERM between two batches; the message says what is done and what is left."""


@dataclass
class StopRequest:
    requested: bool = False


@contextlib.contextmanager
def sigterm_stops() -> Iterator[StopRequest]:
    """Within the block SIGTERM sets ``requested`` (the caller stops at its next batch boundary).

    Outside the main thread (a signal handler can only be set there) the flag never rises and SIGTERM
    keeps its usual meaning.
    """
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def request(signum: int, frame: object) -> None:
        if not stop.requested:
            log.warning("SIGTERM received: stopping after the current batch")
        stop.requested = True

    previous = signal.signal(signal.SIGTERM, request)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)


def ignore_sigterm() -> None:
    """For check worker processes: the main process decides when the run stops."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
