"""Edit checks: every rule fires on its failing fixture and not on the passing ones; every GX
expectation is live; the checked-in suites are what the spec generates. No warehouse needed."""

from __future__ import annotations

import pytest
from ingest_helpers import fixture_file, gx_rule_ids, make_fixtures, refs
from spec_edit import spec_with_severity

from hrss_warehouse import check
from hrss_warehouse.spec import load_spec

# failing fixture case -> the rule it must fire (every rule id of rules.yaml but H01/H02 has one)
FAILING = {rule: rule for rule in make_fixtures.FAILING} | {
    case: rule for case, (rule, _) in {**make_fixtures.EXTRA_FAILING, **make_fixtures.V2014_FAILING}.items()
    if rule} | {"S04_csv": "S04", "S07": "S07", "S09_csv": "S09"}
PASSING = [*make_fixtures.PASSING, "good_v2014", "csv_utf8", "csv_utf8_bom", "csv_gb18030", "csv_v2014"]


@pytest.fixture(scope="module")
def evaluation():
    """All fixtures checked together, as one batch: one GX run per suite."""
    subs, case_of = [], {}
    for kind, cases in (("fail", FAILING), ("pass", PASSING)):
        for case in cases:
            for ref in refs(fixture_file(kind, case), len(subs) + 1):
                subs.append(ref)
                case_of[ref.submission_id] = (kind, case)
    return check.evaluate(subs), case_of


def _fired(evaluation, kind: str, case: str) -> set[str]:
    result, case_of = evaluation
    return {f.rule_id for sid, c in case_of.items() if c == (kind, case) for f in result.findings[sid]}


def test_every_rule_outside_history_has_a_failing_fixture():
    spec = load_spec()
    covered = set(FAILING.values()) | {"S01", "S02", "S06"}  # those three: tests/fixtures/bad, test_parse
    assert covered == {r.id for r in spec.rules.values() if r.stage != "history"}


@pytest.mark.parametrize("case", sorted(FAILING))
def test_failing_fixture_fires_its_rule(evaluation, case):
    rule = load_spec().rules[FAILING[case]]
    fired = _fired(evaluation, "fail", case)
    assert rule.id in fired
    result, case_of = evaluation
    outcomes = {result.outcome(sid) for sid, c in case_of.items() if c == ("fail", case)}
    # hard: the whole file (all three forms of a workbook) is quarantined; soft: it is accepted
    assert outcomes == ({"quarantined"} if rule.is_hard else {"accepted"})


@pytest.mark.parametrize("case", PASSING)
def test_passing_fixture_fires_nothing(evaluation, case):
    assert _fired(evaluation, "pass", case) == set()


def test_the_boundary_case_passes():
    # 50,000 persons served per staff member is the limit itself: C12 does not fire
    result = check.evaluate(refs(fixture_file("fail", "C12_boundary_passes"), 1))
    assert {f.rule_id for found in result.findings.values() for f in found} == set()


def test_soft_row_rules_flag_rows_and_r02_flags_the_submission(evaluation):
    result, case_of = evaluation
    ids = {c: [sid for sid, cc in case_of.items() if cc == ("fail", c)] for c in ("C11", "C12", "R02")}
    assert any("C11" in flags for sid in ids["C11"] for flags in result.row_flags.get(sid, {}).values())
    assert any("C12" in flags for sid in ids["C12"] for flags in result.row_flags.get(sid, {}).values())
    assert any(result.soft[sid] == ["R02"] for sid in ids["R02"])


def test_findings_locate_the_cell(evaluation):
    result, case_of = evaluation
    c03 = [f for sid, c in case_of.items() if c == ("fail", "C03") for f in result.findings[sid]
           if f.rule_id == "C03"]
    assert [(f.sheet, f.row, f.column, f.value) for f in c03] == [("JCPT-2", 9, "6", "四个")]
    c05 = [f for sid, c in case_of.items() if c == ("fail", "C05") for f in result.findings[sid]
           if f.rule_id == "C05"]
    assert c05[0].params["total"] == "21" and c05[0].params["parts"] == "20"


def test_checked_in_suites_are_current():
    spec = load_spec()
    for form, versions in spec.forms.items():
        for version, fv in versions.items():
            path = check.suite_path(form, version)
            assert path.read_text(encoding="utf-8") == check.suite_json(fv), (
                f"{path} is stale: run `hrss ingest suites`")


def test_every_expectation_carries_a_rule_id_of_rules_yaml():
    assert gx_rule_ids() == {"C01", "C02", "C03", "C05", "C06", "C07", "C08", "C10", "C11", "C12"}


GX_RULES = ["C01", "C02", "C03", "C05", "C06", "C07", "C08", "C10", "C11", "C12"]


def test_gx_rules_come_from_their_expectations_alone():
    """Deleting the expectations from the suites makes every failing fixture pass its GX rule."""
    cases = [case for case, rule in FAILING.items() if rule in GX_RULES]

    def emptied(form: str, version: str) -> dict:
        return check.load_suite_dict(form, version) | {"expectations": []}

    subs = []
    for case in cases:
        subs += refs(fixture_file("fail", case), len(subs) + 1)
    fired = {f.rule_id for found in check.evaluate(subs, suite_for=emptied).findings.values() for f in found}
    assert fired.isdisjoint(GX_RULES)


@pytest.mark.parametrize("rule_id", GX_RULES)
def test_each_gx_expectation_is_live(evaluation, rule_id):
    """Each failing fixture of a GX rule is caught by named expectations of that rule; as GX evaluates
    expectations independently, deleting those makes the fixture pass, so each of them is live."""
    result, case_of = evaluation
    for case in [c for c, rule in FAILING.items() if rule == rule_id]:
        hits = {f.expectation for sid, c in case_of.items() if c == ("fail", case)
                for f in result.findings[sid] if f.rule_id == rule_id}
        assert hits and None not in hits, case
        for name in hits:
            form_version = name.split("#")[0]
            suite = next(check.load_suite_dict(f, v) for f, vs in load_spec().forms.items() for v in vs
                         if check.suite_name(f, v) == form_version)
            assert [e["meta"]["rule_id"] for e in suite["expectations"]
                    if e["meta"]["expectation"] == name] == [rule_id]


def test_a_rule_made_soft_in_the_spec_in_force_flags_rows_instead(tmp_path, monkeypatch):
    # HRSS_SPEC_DIR: the office's edited contract. C06 turned soft: the file is accepted, rows flagged.
    edited = spec_with_severity(tmp_path / "spec", "C06", "soft")
    monkeypatch.setenv("HRSS_SPEC_DIR", str(edited))
    load_spec.cache_clear()
    try:
        assert not load_spec().rules["C06"].is_hard
        subs = refs(fixture_file("fail", "C06"), 1)
        result = check.evaluate(subs)
        assert {result.outcome(s.submission_id) for s in subs} == {"accepted"}
        flagged = [rules for s in subs for rules in result.row_flags.get(s.submission_id, {}).values()]
        assert ["C06"] in flagged
    finally:
        monkeypatch.delenv("HRSS_SPEC_DIR")
        load_spec.cache_clear()
