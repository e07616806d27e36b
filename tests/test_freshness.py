"""Are the returns coming in? During the collection season `hrss status` and the run summary warn when the
newest receipt is older than dbt's threshold (a real `dbt source freshness` over raw.receipt); outside
it they stay silent. The receipt's age is real: a return whose file was last modified 30 days ago,
registered from a folder's first scan, where the modification time stands alone (README "Register")."""

from __future__ import annotations

import dataclasses
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from test_summary import _marts

from hrss_warehouse.config import PROJECT_ROOT, TIMEZONE, ConfigError, Settings
from hrss_warehouse.operations import status
from hrss_warehouse.stages import freshness
from hrss_warehouse.stages.summary import console_summary, html_summary

FIXTURE = PROJECT_ROOT / "tests" / "fixtures" / "pass" / "good" / "150206_2017.xlsx"
AGE = timedelta(days=30)  # past the warn (7 days) and error (14 days) thresholds of the sources yml


def _season_around(now: datetime, *, includes_today: bool) -> str:
    """A collection season holding today (on the survey's clock), or one ending well before it."""
    today = now.astimezone(ZoneInfo(TIMEZONE)).date()
    if includes_today:
        return f"{today - timedelta(days=1):%m-%d}..{today + timedelta(days=1):%m-%d}"
    return f"{today + timedelta(days=60):%m-%d}..{today + timedelta(days=90):%m-%d}"


@pytest.fixture(scope="module")
def stale_receipts(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One return received 30 days ago, through the real register stage."""
    from hrss_warehouse import pipeline
    from hrss_warehouse.stages import reference

    reference.load_divisions(settings)
    landing = tmp_path_factory.mktemp("first-scan")
    received = landing / FIXTURE.name
    received.write_bytes(FIXTURE.read_bytes())
    then = time.time() - AGE.total_seconds()
    os.utime(received, (then, then))
    pipeline.ingest_folder(settings, landing, min_age_s=0)
    return settings


def _receipts_line(settings: Settings) -> str:
    up, lines = status.collect(settings)
    assert up
    return next(line.text for line in lines if line.label == "receipts")


def test_an_old_last_receipt_warns_during_the_collection_season(stale_receipts: Settings) -> None:
    now = datetime.now(UTC)
    in_season = dataclasses.replace(stale_receipts,
                                    collection_season=_season_around(now, includes_today=True))
    line = _receipts_line(in_season)
    # 30 days is past error_after (14 days): dbt's status is error, and the line says so
    assert line.startswith("ERROR: last receipt "), line
    assert "nothing received for more than 14 days during the collection season" in line, line
    assert "30.0 days ago" in line, line

    receipts = freshness.check(in_season)
    assert receipts.warns and receipts.status == "error"
    assert receipts.last_received_at is not None and abs(receipts.last_received_at - (now - AGE)) < \
        timedelta(minutes=5)
    assert f"Receipts: {line}" in console_summary(_marts({"420000"}), receipts)
    assert "nothing received for more than 14 days" in html_summary(_marts({"420000"}), receipts)


def test_the_same_warehouse_is_silent_off_season(stale_receipts: Settings) -> None:
    now = datetime.now(UTC)
    off_season = dataclasses.replace(stale_receipts,
                                     collection_season=_season_around(now, includes_today=False))
    line = _receipts_line(off_season)
    assert line.startswith("off-season, not checked (collection season "), line
    receipts = freshness.check(off_season)
    assert not receipts.warns and receipts.status is None
    text = console_summary(_marts({"420000"}), receipts)
    assert "ERROR" not in text and "WARN" not in text and "nothing received" not in text


def test_a_recent_receipt_is_fresh_during_the_season(stale_receipts: Settings, tmp_path: Path) -> None:
    from hrss_warehouse import pipeline

    landing = tmp_path / "today"
    landing.mkdir()
    (landing / FIXTURE.name).write_bytes(FIXTURE.read_bytes())  # a re-send, modified now: a receipt too
    pipeline.ingest_folder(stale_receipts, landing, min_age_s=0)
    in_season = dataclasses.replace(stale_receipts,
                                    collection_season=_season_around(datetime.now(UTC), includes_today=True))
    line = _receipts_line(in_season)
    assert line.startswith("fresh: last receipt ") and "(warn after 7 days," in line, line


@pytest.mark.parametrize("season, inside, outside", [
    ("01-01..03-31", datetime(2027, 3, 31, 23, 30, tzinfo=ZoneInfo(TIMEZONE)),
     datetime(2027, 4, 1, 0, 30, tzinfo=ZoneInfo(TIMEZONE))),
    # a season across the new year; 1 April 00:30 in Shanghai is still 31 March in UTC
    ("12-01..03-31", datetime(2027, 1, 15, tzinfo=UTC), datetime(2027, 3, 31, 16, 30, tzinfo=UTC)),
])
def test_the_season_is_read_on_the_survey_clock(season: str, inside: datetime, outside: datetime) -> None:
    assert freshness.in_season(season, inside) and not freshness.in_season(season, outside)


@pytest.mark.parametrize("value", ["01-01-03-31", "13-01..03-31", "02-30..03-31", "1-1..3-31"])
def test_a_malformed_season_is_named(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HRSS_COLLECTION_SEASON", value)
    with pytest.raises(ConfigError, match=r"HRSS_COLLECTION_SEASON must be days of the year as MM-DD"):
        Settings.from_env()
