"""No credentials in the repository: passwords come from the environment, Airflow connections or
generated files under $HRSS_HOME/secrets, never from a tracked file."""

from __future__ import annotations

import re
import subprocess

import pytest

from hrss_warehouse.config import PROJECT_ROOT

# Hosts reserved for documentation (RFC 2606): the config tests parse DSNs pointing there.
EXAMPLE_HOST = re.compile(r"@[\w.-]*\bexample(\.(com|org|net))?\b")
URL_WITH_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/:@'\"]*:(?P<secret>[^\s@/'\"]+)@")
ASSIGNED_SECRET = re.compile(
    r"(?i)(?<![\w{.])[\w.]*(password|passwd|secret|token|api_?key)[\w.]*\s*[:=]\s*['\"]?(?P<secret>[^\s'\",}]+)")
KEY_MATERIAL = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----|\bAKIA[0-9A-Z]{16}\b|\bgh[pous]_[A-Za-z0-9]{30,}")
# Values that are references, not secrets: ${VAR}, {placeholders} (f-strings, dbt's {{ env_var() }}),
# and the change-me- values of .env.example that the user must replace.
REFERENCE = re.compile(r"^(\$|\{|env_var|change-me-|<)")
CONFIG_SUFFIXES = {".yml", ".yaml", ".toml", ".cfg", ".ini", ".env", ".json", ".example", ".conf", ""}


def tracked_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"not a git checkout: {exc}")
    return [name for name in out.stdout.decode().split("\0") if name]


def _text(name: str) -> str | None:
    data = (PROJECT_ROOT / name).read_bytes()
    if b"\0" in data[:8192]:
        return None  # binary (e.g. the gzipped registry)
    return data.decode("utf-8", errors="replace")


def findings(name: str, text: str) -> list[str]:
    found = []
    suffix = "".join((PROJECT_ROOT / name).suffixes[-1:])
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"{name}:{number}: {line.strip()[:120]}"
        if KEY_MATERIAL.search(line):
            found.append(where)
        for match in URL_WITH_PASSWORD.finditer(line):
            if not REFERENCE.match(match["secret"]) and not EXAMPLE_HOST.search(line):
                found.append(where)
        # literal assignments in configuration files (code reads secrets through Settings)
        if suffix in CONFIG_SUFFIXES or name.endswith(("Dockerfile", "Makefile")):
            for match in ASSIGNED_SECRET.finditer(line):
                if not REFERENCE.match(match["secret"]) and not line.lstrip().startswith("#"):
                    found.append(where)
    return found


def test_no_tracked_file_holds_a_credential() -> None:
    found = []
    for name in tracked_files():
        text = _text(name)
        if text is not None:
            found += findings(name, text)
    assert found == [], "credentials in tracked files:\n" + "\n".join(found)


# the caught examples are split so that this file does not hold what it looks for
@pytest.mark.parametrize(("line", "caught"), [
    ("HRSS_WAREHOUSE_DSN: postgresql://etl:" + "hunter22@db.internal:5432/hrss", True),
    ("password" + ": s3cretvalue", True),
    ("-----BEGIN RSA " + "PRIVATE KEY-----", True),
    ("DSN: postgresql://hrss_admin:${HRSS_PG_PASSWORD:?set it}@warehouse:5432/hrss", False),
    ("      password: \"{{ env_var('HRSS_DBT_PASSWORD', '') }}\"", False),
    ("HRSS_BI_PASSWORD=change-me-bi-reader", False),
])
def test_the_scan_catches_literal_secrets_and_passes_references(line: str, caught: bool) -> None:
    assert bool(findings("conf.yml", line)) is caught


def test_local_secret_files_are_ignored_by_git() -> None:
    paths = [".env", ".hrss/secrets/bi_reader_password", ".hrss/airflow/simple_auth_manager_passwords.json"]
    result = subprocess.run(["git", "check-ignore", *paths], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert sorted(result.stdout.split()) == sorted(paths)
