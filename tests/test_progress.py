"""Progress: a bar on a terminal, one log line per step anywhere else (task logs, pipes)."""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import subprocess
import sys
import termios

import pytest

from hrss_warehouse import progress

SCRIPT = """
from hrss_warehouse import progress
for _ in progress.track(range(3), 3, "check", "batch", lambda n: f"batch {n}"):
    pass
"""


def test_not_on_a_terminal_each_step_is_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hrss_warehouse.progress")
    assert list(progress.track(iter("abc"), 3, "check", "batch", lambda b: f"batch {b}")) == ["a", "b", "c"]
    assert [r.getMessage() for r in caplog.records] == [
        "check 1/3 batch: batch a", "check 2/3 batch: batch b", "check 3/3 batch: batch c"]


def test_on_a_terminal_a_bar_is_drawn() -> None:
    leader, follower = os.openpty()  # a real pseudo-terminal as stderr, 100 columns wide
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    child = subprocess.Popen([sys.executable, "-c", SCRIPT], stderr=follower, stdout=subprocess.DEVNULL)
    os.close(follower)
    drawn = b""
    try:
        while chunk := _read(leader):
            drawn += chunk
    finally:
        os.close(leader)
    assert child.wait(timeout=60) == 0
    assert b"check: 100%" in drawn and b"3/3" in drawn, drawn


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO once the child has closed the terminal
        return b""
