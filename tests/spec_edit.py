"""An edited copy of the reporting contract: what a statistics office points HRSS_SPEC_DIR at."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from hrss_warehouse.config import SPEC_DIR


def spec_with_severity(folder: Path, rule_id: str, severity: str) -> Path:
    """Copy the shipped forms.yaml and rules.yaml into ``folder``, ``rule_id`` given ``severity``.

    Only that rule's ``severity:`` line changes, so the copy is the shipped contract plus one decision.
    """
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(SPEC_DIR / "forms.yaml", folder / "forms.yaml")
    text = (SPEC_DIR / "rules.yaml").read_text(encoding="utf-8")
    # The rule's block runs from its `- id:` line to the next one; its keys are indented four spaces.
    block = re.compile(rf"^(  - id: {re.escape(rule_id)}\n(?:    .*\n)*?    severity: )\w+$", re.MULTILINE)
    edited, found = block.subn(rf"\g<1>{severity}", text, count=1)
    if not found:
        raise ValueError(f"{SPEC_DIR / 'rules.yaml'} has no rule {rule_id!r} with a severity line")
    (folder / "rules.yaml").write_text(edited, encoding="utf-8")
    return folder
