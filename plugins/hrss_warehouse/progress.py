"""Progress of the long commands: a tqdm bar on a terminal, else (Airflow task logs, CI, pipes) one log
line per step, so that a log shows where a run is without a bar's control characters."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("hrss_warehouse.progress")


def on_terminal() -> bool:
    return sys.stderr.isatty()


def track(items: Iterable[T], total: int, desc: str, unit: str, describe=None) -> Iterator[T]:
    """Yield ``items``, showing progress; ``describe(item)`` adds a few words to each step's log line."""
    if on_terminal():
        from tqdm import tqdm

        with tqdm(total=total, desc=desc, unit=unit, file=sys.stderr) as bar:
            for item in items:
                yield item
                bar.update(1)
        return
    for done, item in enumerate(items, start=1):
        detail = f": {describe(item)}" if describe else ""
        log.info("%s %d/%d %s%s", desc, done, total, unit, detail)
        yield item
