"""Are the returns coming in? dbt's source freshness of the receipts, during the collection season only.

The thresholds are dbt's (``freshness`` of source ``raw.receipt`` in
``dbt_project/models/staging/jcpt/_jcpt__sources.yml``, on ``received_at``). The season is data, the
setting ``HRSS_COLLECTION_SEASON`` (default ``01-01..03-31``: returns for survey year Y come in from the
end of Y to their due date, 31 March Y+1, ``survey_spec/README.md``), read on the survey's clock.
Outside the season weeks without a receipt are normal: dbt is not asked and nothing warns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hrss_warehouse.config import TIMEZONE, Settings
from hrss_warehouse.stages import transform

SOURCE = "source:raw.receipt"
WARNING_STATES = ("warn", "error")  # dbt's freshness statuses past a threshold


@dataclass(frozen=True)
class Freshness:
    """The receipts' freshness at one moment: off-season, or what `dbt source freshness` said."""

    season: str  # MM-DD..MM-DD
    in_season: bool
    status: str | None = None  # dbt's: pass, warn, error, runtime error; None off-season
    last_received_at: datetime | None = None
    age_s: float | None = None
    threshold: str = ""  # the threshold passed ("7 day"), or the next one
    detail: str = ""  # dbt's message when it could not tell

    @property
    def warns(self) -> bool:
        return self.in_season and self.status in WARNING_STATES

    def line(self) -> str:
        season = f"collection season {self.season} ({TIMEZONE})"
        if not self.in_season:
            return f"off-season, not checked ({season})"
        if self.status not in ("pass", *WARNING_STATES):
            return f"unknown: dbt source freshness: {self.status}: {self.detail}"
        last = f"last receipt {self.last_received_at:%Y-%m-%d %H:%M %Z}, {_days(self.age_s)} ago"
        if self.warns:
            return f"{self.status.upper()}: {last}: nothing received for more than {self.threshold} " \
                   f"during the {season}"
        return f"fresh: {last} (warn after {self.threshold}, {season})"


def _days(seconds: float | None) -> str:
    days = (seconds or 0) / 86400
    return f"{days:.1f} days" if days >= 1 else f"{(seconds or 0) / 3600:.1f} h"


def in_season(season: str, now: datetime) -> bool:
    """Whether ``now`` falls in ``MM-DD..MM-DD`` (both days included; a season may span the new year)."""
    start, end = season.split("..")
    today = now.astimezone(ZoneInfo(TIMEZONE)).strftime("%m-%d")
    return start <= today <= end if start <= end else today >= start or today <= end


def check(settings: Settings, now: datetime | None = None) -> Freshness:
    """`dbt source freshness` of the receipts when ``now`` is in the collection season, else nothing."""
    now = now or datetime.now(UTC)
    season = settings.collection_season
    if not in_season(season, now):
        return Freshness(season, in_season=False)
    target = transform.runtime_dir(settings) / "freshness"  # its own: a build's target is left alone
    output = target / "sources.json"
    output.unlink(missing_ok=True)
    result = transform.run_dbt(settings, "source", "freshness", "--select", SOURCE, target_path=target)
    if not output.exists():
        return Freshness(season, True, "runtime error", detail=f"no result; log: {result.log_path}")
    found = json.loads(output.read_text())["results"][0]
    status = str(found["status"])
    if status not in ("pass", *WARNING_STATES):
        return Freshness(season, True, status, detail=f"{found.get('error') or found.get('message')}; "
                                                      f"log: {result.log_path}")
    criteria = found["criteria"]
    passed = "error_after" if status == "error" else "warn_after"
    limit = criteria[passed]
    return Freshness(season, True, status,
                     last_received_at=datetime.fromisoformat(found["max_loaded_at"]),
                     age_s=float(found["max_loaded_at_time_ago_in_s"]),
                     threshold=f"{limit['count']} {limit['period']}s")
