"""summary.html, the quick look after a run: only provinces with data, group labels that do not
overlap, and rates as percentages. Hand-made marts rows (no warehouse needed)."""

from __future__ import annotations

import re

from hrss_warehouse.stages.summary import Marts, console_summary, html_summary

# Every province of the registry, as the marts roll them up; only some have returns.
PROVINCES = {"110000": "北京市", "130000": "河北省", "420000": "湖北省", "450000": "广西壮族自治区",
             "540000": "西藏自治区", "640000": "宁夏回族自治区", "650000": "新疆维吾尔自治区"}
TEXT_SIZE_PX = 12


def _marts(reporting: set[str]) -> Marts:
    coverage = [{"survey_year": 2017, "province_code": code, "platform_level": level,
                 "units_reported": 10 if code in reporting else 0,
                 "units_with_platform": 10 if code in reporting else 0,
                 "coverage_rate": 1.0 if code in reporting else None,
                 "standardized_rate": 0.5 if code in reporting else None,
                 "counties_expected": 3, "counties_reported": 3 if code in reporting else 0}
                for code in PROVINCES for level in ("county", "township", "village")]
    staff = [{**row, "platforms": 10, "staff_total": 20, "staff_per_platform": 2.0, "persons_served": 5}
             for row in coverage if row["units_reported"]]
    funding = [{"survey_year": 2017, "province_code": code, "funding_source": "central", "amount_wan": 12.5}
               for code in reporting]
    reconciliation = [{"fact_id": "HB-02", "province_code": "420000", "metric": "coverage_rate",
                       "unit": "ratio", "published_value": 1, "warehouse_value": 0.9871,
                       "comparable": "yes", "status": "match", "note": None}]
    return Marts(PROVINCES, coverage, funding, staff, reconciliation, {"accepted": 3}, [])


def _group_labels(page: str) -> list[tuple[float, str, str]]:
    """(x, placement attributes, text) of each chart's group labels (12 px text under the axis)."""
    return [(float(x), attrs, text) for x, attrs, text in
            re.findall(r'<text x="([\d.]+)" y="[\d.]+" ([^>]*) font-size="12">([^<]+)</text>', page)
            if text in PROVINCES.values()]


def test_only_provinces_with_data_are_charted() -> None:
    page = html_summary(_marts({"130000", "420000"}))
    charted = {text for _, _, text in _group_labels(page)}
    assert charted == {"河北省", "湖北省"}
    text = console_summary(_marts({"130000", "420000"}))
    assert "北京市" not in text.split("Reconciliation")[0]


def test_labels_do_not_overlap() -> None:
    for reporting in ({"130000", "420000"}, set(PROVINCES)):
        labels = _group_labels(html_summary(_marts(reporting)))
        xs = sorted({x for x, _, _ in labels})
        slot = xs[1] - xs[0]
        for _, attrs, text in labels:
            # a flat label must fit its slot: a CJK character is as wide as the font size
            flat_width = sum(TEXT_SIZE_PX if ord(ch) > 0x2E80 else TEXT_SIZE_PX * 0.55 for ch in text)
            assert "rotate(-45" in attrs or flat_width <= slot, (text, attrs, slot)
        if reporting == set(PROVINCES):
            # long names side by side (新疆维吾尔自治区 is 96 px): turned, one under the other
            assert all("rotate(-45" in attrs for _, attrs, _ in labels)


def test_rates_read_as_percentages() -> None:
    marts = _marts({"420000"})
    page, text = html_summary(marts), console_summary(marts)
    for shown in (page, text):
        assert "100.0%" in shown and "98.7%" in shown  # the published ratio 1 and the warehouse 0.9871
    assert "<td>1</td>" not in page and "0.9871" not in page
