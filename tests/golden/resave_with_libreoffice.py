"""Re-save workbooks with LibreOffice Calc, as a county PC running LibreOffice would, into fixtures.

    .venv/bin/python tests/golden/resave_with_libreoffice.py   # needs `soffice` (libreoffice-calc-nogui)

Writes, under tests/golden/libreoffice/ (committed, so `make test` needs no LibreOffice):
* ``golden/<case id>/{xlsx,xls}/<file name>``: every golden workbook that opens (cases.yaml, written by
  write_golden.py) opened and saved again by LibreOffice as xlsx and as xls (Excel 97-2003);
* ``generated/<sample>/{original,xlsx,xls}/<file name>``: a sample of our generator's workbooks
  (xlsxwriter; seed 0, bad share 0.3, Ningxia 2016-2017): an accepted v2014 and v2017 return, one
  quarantined by a content rule, one flagged by a soft rule; the original kept beside them.
LibreOffice stores numbers as floats, strings inline or shared as it likes, its own styles, and
drops the empty trailing cells our writers leave. tests/golden/test_golden_resaved.py checks that each
re-saved file parses to the same rows and outcome as its original.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "libreoffice"
FILTERS = {"xlsx": "xlsx:Calc MS Excel 2007 XML", "xls": "xls:MS Excel 97"}
GENERATED_PROVINCE = "64"
GENERATED_YEARS = [2016, 2017]

sys.path.insert(0, str(HERE))
import write_golden  # noqa: E402


def resavable_cases() -> list[dict]:
    """Golden workbooks LibreOffice can open: not the unreadable (S01) or misnamed (S02) ones."""
    return [case for case in write_golden.load_cases()
            if case.get("format", "xlsx") == "xlsx" and not {"S01", "S02"} & set(case["expect"]["hard"])]


def convert(sources: dict[str, Path], folder: Path) -> None:
    """Re-save each source as xlsx and xls into ``folder/<key>/<format>/<source name>``."""
    with tempfile.TemporaryDirectory(prefix="hrss-lo-") as tmp:
        staging, converted = Path(tmp) / "in", Path(tmp) / "out"
        staging.mkdir()
        # one soffice call per format for all files: unique stems so outputs do not collide
        for key, source in sources.items():
            shutil.copy(source, staging / f"{key}__{source.stem}{source.suffix}")
        profile = f"-env:UserInstallation=file://{tmp}/profile"
        for fmt, filter_name in FILTERS.items():
            target = converted / fmt
            subprocess.run(["soffice", profile, "--headless", "--convert-to", filter_name, "--outdir",
                            str(target), *sorted(str(p) for p in staging.iterdir())],
                           check=True, capture_output=True, timeout=1800)
            for key, source in sources.items():
                made = target / f"{key}__{source.stem}.{fmt}"
                if not made.exists():
                    raise SystemExit(f"LibreOffice wrote no {made.name}")
                dest = folder / key / fmt / f"{source.stem}.{fmt}"
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(made, dest)


def generated_sample(tmp: Path) -> dict[str, Path]:
    sys.path.insert(0, str(HERE.parents[1] / "plugins"))
    from hrss_tools import generate

    out = tmp / "generated"
    generate.generate(out, [GENERATED_PROVINCE], GENERATED_YEARS, bad_share=0.3, seed=0, progress=False)
    manifest = json.loads(Path(f"{out}.manifest.json").read_text(encoding="utf-8"))
    return _pick(out, manifest)


def _pick(out: Path, manifest: dict) -> dict[str, Path]:
    """An accepted v2014 and v2017 workbook, one quarantined by a content rule, one flagged soft."""
    workbooks = [e for e in manifest["files"] if e["format"] == "xlsx"]

    def first(test) -> Path:
        return out / next(e["file"] for e in workbooks if test(e))

    return {
        "v2014_accepted": first(lambda e: e["version"] == "v2014" and e["outcome"] == "accepted"
                                and not e["soft_rules"]),
        "v2017_accepted": first(lambda e: e["version"] == "v2017" and e["outcome"] == "accepted"
                                and not e["soft_rules"]),
        "quarantined": first(lambda e: e["hard_rules"] and e["hard_rules"][0].startswith("C")),
        "soft_flagged": first(lambda e: e["outcome"] == "accepted" and e["soft_rules"]),
    }


def main() -> None:
    if shutil.which("soffice") is None:
        raise SystemExit("soffice not found: install libreoffice-calc-nogui")
    shutil.rmtree(OUT, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="hrss-golden-") as tmp:
        returns = write_golden.load_returns()
        golden = {case["id"]: write_golden.write_case(case, returns, Path(tmp) / "golden")
                  for case in resavable_cases()}
        convert(golden, OUT / "golden")
        generated = generated_sample(Path(tmp))
        convert(generated, OUT / "generated")
        for key, source in generated.items():
            original = OUT / "generated" / key / "original" / source.name
            original.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, original)
    for path in sorted(OUT.rglob("*.*")):
        print(path.relative_to(HERE))


if __name__ == "__main__":
    main()
