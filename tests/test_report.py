"""The daily compliance report: counts summed per day (the site's), camera and zone, written as CSV."""

import csv
import io
import math
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from maskwatch.site.prevalence import FIELDS, compliance_estimate
from maskwatch.site.report import daily_rows, report_range, to_csv
from maskwatch.site.trend import compliance_series

DAY = 1_789_862_400  # 2026-09-20T00:00:00Z


def count(minute, camera="door", zone=None, with_mask=0, without_mask=0, incorrect=0, unassessable=0):
    return {"camera": camera, "zone": zone, "minute": minute, "people": with_mask + without_mask + incorrect,
            "with_mask": with_mask, "without_mask": without_mask, "mask_weared_incorrect": incorrect,
            "unassessable": unassessable}


def test_rows_sum_minutes_into_days_per_camera_and_zone():
    counts = [count(DAY + 60, with_mask=2, unassessable=3), count(DAY + 3600, with_mask=1, without_mask=1),
              count(DAY + 86400, with_mask=1), count(DAY + 120, zone="queue", incorrect=1),
              count(DAY - 60, with_mask=5)]  # the day before: outside the range
    rows = daily_rows(counts, date(2026, 9, 20), date(2026, 9, 21), timezone.utc)
    assert [(r["date"], r["zone"], r["people"], r["observed_share"]) for r in rows] == [
        ("2026-09-20", "", 4, "0.7500"), ("2026-09-20", "queue", 1, "0.0000"), ("2026-09-21", "", 1, "1.0000")]
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert list(parsed[0]) == ["date", "camera", "zone", "people", "with_mask", "without_mask",
                               "mask_weared_incorrect", "unassessable", "compliance", "compliance_low",
                               "compliance_high", "observed_share", "infrared", "day_hours"]
    assert parsed[0]["with_mask"] == "3" and parsed[0]["without_mask"] == "1"
    assert parsed[0]["unassessable"] == "3" and parsed[0]["people"] == "4"  # apart, in no share
    # Each row's corrected share and 95 % interval are those of its day's counts, to 4 decimals
    # (the interval rounded outwards).
    estimate = compliance_estimate({"with_mask": 3, "without_mask": 1, "mask_weared_incorrect": 0})
    assert [parsed[0][f] for f in ("compliance", "compliance_low", "compliance_high")] == [
        f"{estimate.share:.4f}", f"{math.floor(estimate.low * 1e4) / 1e4:.4f}",
        f"{math.ceil(estimate.high * 1e4) / 1e4:.4f}"]
    for row in parsed:
        assert float(row["compliance_low"]) <= float(row["compliance"]) <= float(row["compliance_high"])
    # One person is next to no evidence: the interval of the lone unmasked person reaches far up.
    assert float(parsed[1]["compliance_high"]) > 0.5


def test_a_days_figures_are_its_chart_bars_to_the_digit():
    """41 masked and 18 not: the day's top end is 0.7997, a red bar in the chart (under 80 %); the
    report, to 3 decimals, said 0.800."""
    rows = [count(DAY + 60, with_mask=41, without_mask=18)]
    (bar,) = compliance_series(rows, "day", timezone.utc)
    (row,) = csv.DictReader(io.StringIO(to_csv(daily_rows(rows, date(2026, 9, 20), date(2026, 9, 20), timezone.utc))))
    assert bar["compliance_high"] < 0.8
    assert [float(row[f]) for f in FIELDS] == [bar[f] for f in FIELDS]


def test_days_are_the_sites_days():
    """A person at 23:30 UTC on the 20th is at 01:30 on the 21st in Berlin: the report put them on
    the 20th while the chart (by day, in the site's timezone) put them on the 21st."""
    late = count(DAY + 86400 - 1800, with_mask=1)
    (berlin,) = daily_rows([late], date(2026, 9, 20), date(2026, 9, 21), ZoneInfo("Europe/Berlin"))
    (utc,) = daily_rows([late], date(2026, 9, 20), date(2026, 9, 21), timezone.utc)
    assert (berlin["date"], utc["date"]) == ("2026-09-21", "2026-09-20")


def test_a_day_the_clocks_change_says_its_hours():
    """report.csv's rows of 2026-10-25 in Berlin held 25 hours of people (2026-11-01 in New York too,
    2026-03-29 in Berlin 23) beside days of 24, and nothing said so: an auditor comparing Sundays read
    4 % more people. day_hours, the last column, says each day's length on the site's clock."""
    cases = [(ZoneInfo("Europe/Berlin"), date(2026, 10, 25), "25"), (ZoneInfo("Europe/Berlin"), date(2026, 3, 29), "23"),
             (ZoneInfo("America/New_York"), date(2026, 11, 1), "25"), (ZoneInfo("America/New_York"), date(2026, 3, 8), "23"),
             (ZoneInfo("Australia/Lord_Howe"), date(2026, 4, 5), "24.5"), (ZoneInfo("Europe/Berlin"), date(2026, 10, 26), "24")]
    for tz, day, hours in cases:
        noon = datetime(day.year, day.month, day.day, 12, tzinfo=tz).timestamp()
        (row,) = csv.DictReader(io.StringIO(to_csv(daily_rows([count(noon, with_mask=1)], day, day, tz))))
        assert (row["date"], row["day_hours"]) == (day.isoformat(), hours), tz


def test_a_day_of_only_undecided_people_has_empty_compliance_cells():
    rows = daily_rows([dict(count(DAY + 60), people=2)], date(2026, 9, 20), date(2026, 9, 20), timezone.utc)
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert parsed[0]["people"] == "2"
    assert [parsed[0][f] for f in ("compliance", "compliance_low", "compliance_high", "observed_share")] == [""] * 4


def test_the_default_range_is_the_last_seven_days():
    assert report_range(None, None, timezone.utc, today=date(2026, 9, 20)) == (date(2026, 9, 14), date(2026, 9, 20))
    assert report_range("2026-09-01", "2026-09-02", timezone.utc) == (date(2026, 9, 1), date(2026, 9, 2))
    assert report_range(None, "0001-01-03", timezone.utc) == (date(1, 1, 1), date(1, 1, 3))  # the calendar's first days


@pytest.mark.parametrize("start, end, message", [
    ("2026-13-01", None, "from must be a date written YYYY-MM-DD; got '2026-13-01'"),
    (None, "yesterday", "to must be a date written YYYY-MM-DD"),
    ("2026-09-03", "2026-09-02", "from (2026-09-03) is after to (2026-09-02)"),
])
def test_bad_ranges_are_named(start, end, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        report_range(start, end, timezone.utc)
