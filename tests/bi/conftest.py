"""One Superset for the whole test session: installed (`make bi-install`, once), set up on the test
warehouse and started on $HRSS_TEST_BI_PORT (default 8089); stopped at the end of the session."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from hrss_warehouse.config import PROJECT_ROOT, Settings


@dataclass
class Superset:
    url: str
    settings: Settings
    install_s: float
    start_s: float

    def password(self, login: str) -> str:
        from hrss_warehouse.local import bi

        return bi.password(self.settings, login)

    def token(self, login: str) -> str:
        body = {"username": login, "password": self.password(login), "provider": "db", "refresh": False}
        return self.call("POST", "/api/v1/security/login", body)["access_token"]

    def call(self, method: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
        request = urllib.request.Request(self.url + path, method=method,
                                         data=json.dumps(body).encode() if body is not None else None)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: HTTP {exc.code}: {exc.read()[:500]!r}") from exc


@pytest.fixture(scope="session")
def superset(settings: Settings) -> Iterator[Superset]:
    from hrss_warehouse.local import bi

    started = time.perf_counter()
    install = subprocess.run(["make", "--no-print-directory", "bi-install"], cwd=PROJECT_ROOT,
                             capture_output=True, text=True, check=False)
    if install.returncode != 0:
        pytest.fail(f"make bi-install failed:\n{install.stdout[-2000:]}{install.stderr[-2000:]}")
    installed = time.perf_counter()
    previous = os.environ.get("HRSS_BI_PORT")
    os.environ["HRSS_BI_PORT"] = os.environ.get("HRSS_TEST_BI_PORT", "8089")
    settings = dataclasses.replace(settings, bi_port=int(os.environ["HRSS_BI_PORT"]))
    try:
        bi.start(settings)
        ready = time.perf_counter()
        print(f"\nSuperset: make bi-install {installed - started:.0f} s, set-up and start "
              f"{ready - installed:.0f} s")
        yield Superset(bi.url(settings), settings, installed - started, ready - installed)
    finally:
        bi.stop(settings)
        if previous is None:
            os.environ.pop("HRSS_BI_PORT", None)
        else:
            os.environ["HRSS_BI_PORT"] = previous
