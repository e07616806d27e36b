"""`hrss status` with the warehouse down: one line saying so, no traceback. (The run metrics and the
one-screen status over a published build are tested in test_publish.py, which builds the marts once.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hrss_warehouse.config import Settings


def test_hrss_status_says_the_warehouse_is_down(settings: Settings, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HRSS_"))}
    env.update(HRSS_HOME=str(tmp_path / "home"), HRSS_PG_PORT=str(settings.port + 7))
    result = subprocess.run([str(Path(sys.executable).with_name("hrss")), "status"], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout.startswith("warehouse") and "  down: " in result.stdout.splitlines()[0]
    assert "Traceback" not in result.stderr
