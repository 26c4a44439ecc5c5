"""What a long-running site's reads of its counts cost as history grows: today's totals per
camera (every dashboard poll, Prometheus scrape and MQTT event) and the compliance chart by day
(every minute per open tab), on a database of 8 cameras x 3 zones x N days of minute rows.

    python benchmarks/site_reads.py --days 30

Side by side in one run, on one database (SQLite, the default store):
  today per camera: rows read into Python and summed there (as before 2026-12-05), against
      EventStore.totals (summed by the database), each without and with the read index of
      schema version 3 (counts_by_camera_minute);
  chart by day, 24 days: every minute row bucketed in Python, against 15-minute spans per camera
      and zone summed by the database from the minute rows (as from 2026-12-05), against
      EventStore.quarter_sums: the quarter sums record() keeps (schema version 4) summed over the
      cameras by the database, the same buckets checked equal.
Medians of repeated calls, milliseconds; the machine's load moves them, the ratios less.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from zoneinfo import ZoneInfo  # noqa: E402

from maskwatch.site import events  # noqa: E402
from maskwatch.site.events import EventStore, fill_quarters  # noqa: E402
from maskwatch.site.trend import compliance_series  # noqa: E402

NOW = 1_789_862_400  # 2026-09-20T00:00:00Z


def median_ms(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        database = str(Path(folder) / "site.db")
        store = EventStore(database, privacy=True)
        rows = [(f"cam{c}", zone, NOW - minute * 60, 2, 1, 1, 0, 0) for c in range(8) for zone in ("", "a", "b")
                for minute in range(args.days * 1440)]
        with sqlite3.connect(database) as raw:
            raw.executemany("INSERT INTO counts (camera, zone, minute, people, with_mask, without_mask, "
                            "mask_weared_incorrect, unassessable) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        with store.engine.begin() as connection:  # what record() keeps beside the minutes
            fill_quarters(connection)
        since = NOW - 86400 // 2  # half a day of today

        def in_python():
            total = {"people": 0, "with_mask": 0}
            for row in store.counts(camera="cam3", since=since):
                for key in total:
                    total[key] += row[key]

        def in_database():
            store.totals("cam3", since=since)

        tz = ZoneInfo("Europe/Berlin")
        chart_since = NOW - 24 * 86400
        quarters = events.quarters

        def spans_from_minutes():  # counts() sums spans from the table named quarters: the minutes here
            events.quarters = events.counts
            try:
                return compliance_series(store.counts(since=chart_since, every=900), "day", tz)
            finally:
                events.quarters = quarters

        def from_quarters():
            return compliance_series(store.quarter_sums(chart_since), "day", tz)

        minutes = compliance_series(store.counts(since=chart_since), "day", tz)
        spans = spans_from_minutes()
        assert minutes == spans == from_quarters(), "the chart's buckets differ"
        indexed = (median_ms(in_python, args.repeats), median_ms(in_database, args.repeats))
        chart = (median_ms(lambda: compliance_series(store.counts(since=chart_since), "day", tz), 3),
                 median_ms(spans_from_minutes, 3), median_ms(from_quarters, args.repeats))
        with sqlite3.connect(database) as raw:
            raw.execute("DROP INDEX counts_by_camera_minute")
        plain = (median_ms(in_python, args.repeats), median_ms(in_database, args.repeats))
        store.close()
    print(f"{len(rows):,} minute rows ({args.days} days, 8 cameras x 3 zones)")
    print(f"today, one camera: rows summed in Python {plain[0]:.1f} ms (index: {indexed[0]:.1f}); "
          f"summed by the database {plain[1]:.1f} ms (index: {indexed[1]:.1f})")
    print(f"chart by day, 24 days: minute rows {chart[0]:.0f} ms; 15-minute spans summed from the minutes "
          f"{chart[1]:.0f} ms; quarter sums over the cameras {chart[2]:.0f} ms ({chart[1] / chart[2]:.1f}x); "
          f"same {len(spans)} buckets")


if __name__ == "__main__":
    main()
