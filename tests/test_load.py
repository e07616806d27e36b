"""Load: the advisory lock, and loading a checked batch twice changes nothing."""

from __future__ import annotations

import shutil
import threading
import time

import pytest
from ingest_helpers import fixture_file

from hrss_warehouse import check, db, files
from hrss_warehouse.config import LOADER
from hrss_warehouse.db import WarehouseError, connect
from hrss_warehouse.stages import land, load, register


def test_a_held_lock_refuses_with_a_clear_message_or_waits(settings):
    with db.warehouse_lock(settings, "load"):
        with (pytest.raises(WarehouseError, match=r"'load' lock is held by PostgreSQL backend \d+"),
              db.warehouse_lock(settings, "load", wait=False)):
            pass
        with db.warehouse_lock(settings, "publish", wait=False):
            pass  # another name is another lock
    released = threading.Event()

    def hold() -> None:
        with db.warehouse_lock(settings, "load"):
            released.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.5)
    started = time.monotonic()
    threading.Timer(1.0, released.set).start()
    with db.warehouse_lock(settings, "load", timeout_s=30):
        assert time.monotonic() - started >= 0.9  # waited for the holder
    holder.join()


def test_loading_a_batch_twice_changes_nothing(settings, tmp_path):
    landed = tmp_path / "150206_2017_JCPT-3_r40.csv"
    shutil.copyfile(fixture_file("pass", "csv_gb18030"), landed)
    sha = files.sha256_of(landed)
    batches = register.register_files(settings, land.scan(settings, tmp_path, min_age_s=0))
    results = [check.parse_and_check_batch(settings, b) for b in batches]

    def snapshot():
        with connect(settings, role=LOADER) as conn:
            return conn.execute("SELECT r.* FROM raw.jcpt_village_rows r JOIN raw.submission s USING "
                                "(submission_id) WHERE s.sha256 = %s ORDER BY source_row", (sha,)).fetchall()

    counts = [load.load_batch(settings, r) for r in results]
    first = snapshot()
    assert len(first) == 4 and sum(c["rows"] for c in counts) >= 4
    for r in results:
        load.load_batch(settings, r)
    assert snapshot() == first
