"""`hrss run`: jcpt_nightly once over a landing folder, through Airflow's own ``dag.test()`` in this process,
then a summary a person can read (and the exit code a script can), from the record the run's last task
writes (``airflow/run_summary.py`` says why not from Airflow's tables)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hrss_warehouse.airflow import run_summary
from hrss_warehouse.airflow.orchestration import published_marts
from hrss_warehouse.config import DAGS_DIR, NIGHTLY_DAG_ID, Settings

FAILED_STATES = {"failed", "upstream_failed"}


class RunError(RuntimeError):
    """The run could not start (bad landing folder, DAG import error); the message says why."""


@dataclass
class RunSummary:
    """What one `hrss run` did, for the readable summary and the exit code."""

    run_id: str
    state: str
    seconds: float
    task_states: dict[str, str] = field(default_factory=dict)  # task_id[map_index] -> state
    results: dict[str, list[Any]] = field(default_factory=dict)  # task_id -> return values
    submissions: list[dict] = field(default_factory=list)  # this run's rows of marts.mart_submissions

    @property
    def ok(self) -> bool:
        return self.state == "success" and not FAILED_STATES & set(self.task_states.values())

    def render(self, settings: Settings) -> str:
        counts = Counter(self.task_states.values())
        lines = [f"{NIGHTLY_DAG_ID} run {self.run_id}: {self.state} in {self.seconds:.1f} s "
                 f"({', '.join(f'{n} {state}' for state, n in sorted(counts.items()))})"]
        failed = sorted(t for t, s in self.task_states.items() if s == "failed")
        if failed:
            lines.append(f"  failed tasks: {', '.join(failed)} (their logs are above)")
        scans = self.results.get("discover", [])
        found = sum(len(scan["files"]) for scan in scans)
        # a found file still in landing after the register stage changed while it was read
        left = [{"path": p, "reason": "changed while it was read"} for scan in scans for p in scan["files"]
                if Path(p).exists() and self.task_states.get("register") == "success"]
        skipped = [entry for scan in scans for entry in scan["skipped"]] + left
        lines.append(f"  files found: {found - len(left)}, left in landing: {len(skipped)}")
        for entry in skipped:
            lines.append(f"    left {entry['path']}: {entry['reason']}")
        outcomes = Counter(s["outcome"] for s in self.submissions)
        if self.submissions:
            lines.append(f"  submissions: {outcomes.get('accepted', 0)} accepted, "
                         f"{outcomes.get('quarantined', 0)} quarantined")
            for sub in self.submissions:
                if sub["outcome"] == "quarantined":
                    form = f" {sub['form']}" if sub["form"] else ""
                    lines.append(f"    quarantined {sub['file_name']}{form}: "
                                 f"{', '.join(sub['failed_rules'] or []) or 'structural error'}")
        rows = sum(v for r in self.results.get("load", []) if isinstance(r, dict)
                   for k, v in r.items() if k.startswith("rows") and isinstance(v, int))
        lines.append(f"  rows loaded: {rows:,}")
        published = "published" if self.task_states.get("publish") == "success" else "not published"
        lines.append(f"  marts {published}: {', '.join(f'marts.{m}' for m in published_marts())}")
        written = next(iter(self.results.get("reports", [])), None) or {}
        lines.append(f"  reports: {len(written.get('reports', []))} in {settings.reports_dir}")
        lines.append(f"  data docs: {written.get('data_docs') or settings.docs_dir}")
        from hrss_warehouse.airflow import docs_plugin

        base_url = f"http://127.0.0.1:{settings.airflow_port}"
        lines.append(f"  in the Airflow UI ({base_url}, `make airflow`):")
        lines += [f"    {name}: {url}" for name, url in docs_plugin.links(base_url).items()]
        return "\n".join(lines)


def _submissions(settings: Settings, batches: list[list[dict]]) -> list[dict]:
    from hrss_warehouse.db import connect

    ids = sorted({int(i) for found in batches for batch in found for i in batch["submission_ids"]})
    if not ids:
        return []
    with connect(settings) as conn:
        cur = conn.execute("SELECT submission_id, file_name, form, outcome, failed_rules"
                           " FROM marts.mart_submissions WHERE submission_id = ANY(%s)"
                           " ORDER BY file_name, form", (ids,))
        names = [c.name for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def run_nightly(settings: Settings, landing: Path) -> RunSummary:
    """Run jcpt_nightly once over ``landing`` through ``dag.test()``, in this process."""
    from hrss_warehouse.local import airflow_env, postgres
    from hrss_warehouse.stages import land, reference

    landing = landing.expanduser().resolve()
    if not landing.is_dir():
        raise RunError(f"--landing {landing}: no such folder")
    postgres.start(settings)
    try:
        reference.ensure_loaded(settings)
    except reference.RegistryError as exc:
        raise RunError(str(exc)) from None
    airflow_env.migrate(settings)
    airflow_env.apply(settings)

    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=DAGS_DIR / f"{NIGHTLY_DAG_ID}.py", safe_mode=False)
    if bag.import_errors:
        raise RunError("cannot import the nightly DAG:\n" + "\n".join(bag.import_errors.values()))
    dag = bag.get_dag(NIGHTLY_DAG_ID)
    # dag.test() has no triggerer to fire the publish deadline, and Airflow 3.3's dag.test() fails a run
    # that succeeds when its in-memory DAG carries a DeadlineAlert (it looks the alert up by id)
    dag.deadline = None
    started = time.monotonic()
    # a folder handed over by hand is finished: no minimum age unless HRSS_LANDING_MIN_AGE_S says so
    min_age_s = land.default_min_age_s(settings, scheduled=False)
    run = dag.test(run_conf={"landing": str(landing), "min_age_s": min_age_s})
    # What the tasks did comes from the run's own summary task (Task SDK, airflow/run_summary.py), not
    # from Airflow's metadata tables; the run's id and state are what the public dag.test() returns.
    record = run_summary.read(settings, run.run_id)
    if record is None:
        raise RunError(f"{NIGHTLY_DAG_ID} run {run.run_id} ended {run.state} and its task "
                       f"{run_summary.TASK_ID} wrote no summary to "
                       f"{run_summary.record_path(settings, run.run_id)}; its log is above")
    summary = RunSummary(run.run_id, str(run.state), time.monotonic() - started, record.task_states,
                         record.results)
    if summary.task_states.get("publish") == "success":
        summary.submissions = _submissions(settings, summary.results.get("register", []))
    return summary
