"""The same events store on PostgreSQL (Debian's server, started on loopback for the test)."""

import numpy as np

from maskwatch.site.events import EventStore
from tests.postgres import postgres  # noqa: F401  (fixture)
from tests.test_events import NOW, person


def test_events_counts_migrations_and_retention_on_postgresql(postgres, tmp_path):  # noqa: F811
    store = EventStore(postgres.url, tmp_path / "snaps", retention_days=7)
    first = store.record("door", "queue", person(1, (0.9, 0.05, 0.05)), np.zeros((8, 8, 3), np.uint8))
    store.record("door", "queue", person(2, (0.1, 0.8, 0.1), last=NOW + 20), infrared=True)
    store.record("door", None, person(3, (0.9, 0.05, 0.05), first=NOW - 9 * 86400, last=NOW - 9 * 86400))
    store.close()
    again = EventStore(postgres.url, tmp_path / "snaps", retention_days=7)  # a restart: migrations are a no-op
    assert again.migrate() == 8
    assert [(e["track_id"], e["infrared"]) for e in again.events(camera="door")] == [(2, True), (1, False), (3, False)]
    assert again.events(zone="queue", label="with_mask")[0]["snapshot"] == first["snapshot"]
    queue = [c for c in again.counts() if c["zone"] == "queue"]
    assert [(c["people"], c["with_mask"], c["without_mask"], c["unassessable"], c["infrared"])
            for c in queue] == [(2, 1, 1, 0, 1)]
    assert again.totals("door", since=NOW) == {"people": 2, "with_mask": 1, "without_mask": 1,
                                                "mask_weared_incorrect": 0, "unassessable": 0, "infrared": 1}
    assert again.enforce_retention(now=NOW) == 1
    assert [e["track_id"] for e in again.events()] == [2, 1]
    assert [(c["zone"], c["people"], c["infrared"]) for c in again.counts(every=900)] == [("queue", 2, 1)]  # quarters too
    assert again.enforce_retention(now=NOW + 30 * 86400) == 2 and again.events() == []
    later = person(4, (0.9, 0.05, 0.05), first=NOW + 31 * 86400, last=NOW + 31 * 86400)
    assert again.record("door", None, later)["id"] > first["id"] + 2  # an id never given again, as on SQLite
    again.close()


def test_the_cameras_with_stored_history_on_postgresql(postgres, tmp_path):  # noqa: F811
    """stored_cameras' recursive walk and has_history, as the site reads cameras no longer running."""
    from sqlalchemy import text

    store = EventStore(postgres.url, retention_days=100_000)
    with store.engine.begin() as connection:  # the first test's rows, or none
        for table in ("events", "counts", "counts_by_quarter"):
            connection.execute(text(f"DELETE FROM {table}"))
    assert store.stored_cameras() == [] and not store.has_history("old")
    for n, camera in enumerate(["till", "door", "old", "door"]):
        store.record(camera, None, person(n, (0.9, 0.05, 0.05), last=NOW + n))
    assert store.stored_cameras() == ["door", "old", "till"]
    assert store.has_history("old") and not store.has_history("nope") and store.last_seen("door") == NOW + 3
    store.record("old", "lobby", person(7, (0.9, 0.05, 0.05), first=NOW - 86400, last=NOW - 86400))
    store.record("door", "queue", person(8, (0.9, 0.05, 0.05), last=NOW))
    assert store.zones_since(NOW - 2 * 86400) == ["lobby", "queue"]  # the chart's zone choices, by the same walk
    assert store.zones_since(NOW - 3600) == ["queue"] and store.zones_since(0, cameras=["old"]) == ["lobby"]
    store.close()


def test_processes_opening_a_new_postgresql_database_together_all_open_it(postgres):  # noqa: F811
    """5 of 5 pairs failed: "duplicate key value violates unique constraint "pg_type..."."""
    from tests.test_events import opened_together

    assert opened_together([postgres.new_database("opened_together")]) == [["ok"] * 4]


def test_pages_of_tied_events_on_postgresql_are_index_ranges_in_order(postgres, tmp_path):  # noqa: F811
    """The cursor's row comparison on PostgreSQL: every event once across pages whose edges fall in
    ties, and each page read from an index ending in id (PostgreSQL's indexes do not carry the id
    as SQLite's do: by (last_seen) alone, each page's ties were sorted)."""
    from sqlalchemy import event as sa_event
    from sqlalchemy import insert, text

    from maskwatch.site.events import events
    from tests.test_events_paging import crowd_rows

    store = EventStore(postgres.url, retention_days=100_000)
    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM events"))
        connection.execute(insert(events), crowd_rows(2500, NOW))
        connection.execute(text("ANALYZE events"))
    every = store.events(limit=10_000)
    kept = {"since": lambda e, v: e["last_seen"] >= v, "cameras": lambda e, v: e["camera"] in v}
    for where in ({}, {"camera": "door"}, {"label": "with_mask", "since": NOW + 30}, {"cameras": ["till", "door"]}):
        pages, before = [], None
        while True:
            page = store.events(limit=333, before=before, **where)
            pages += page
            if len(page) < 333:
                break
            before = (page[-1]["last_seen"], page[-1]["id"])
        assert [e["id"] for e in pages] == [e["id"] for e in every if all(
            kept.get(k, lambda e, v: e[k] == v)(e, v) for k, v in where.items())], where
    sent = []
    sa_event.listen(store.engine, "before_cursor_execute",
                    lambda _conn, _cursor, statement, parameters, _context, _many: sent.append((statement, parameters)))
    for where in ({}, {"camera": "door"}, {"label": "with_mask"}):
        store.events(limit=100, before=(NOW + 600, 10**6), **where)
        statement, parameters = sent[-1]
        with store.engine.connect() as connection:
            plan = "\n".join(connection.exec_driver_sql("EXPLAIN " + statement, parameters).scalars())
        assert "Index Scan Backward using events_by_" in plan and "_last_seen_id" in plan, plan
        assert "Sort" not in plan, plan
    store.close()


def test_a_postgresql_database_of_version_7_keeps_its_alerts_and_stores_new_ones(postgres):  # noqa: F811
    """Version 7 (63d1097) made `alerts` without `infrared` and `seen`; version 8 added the counts'
    column alone, and on that database the day's list and every new alert failed on "column
    alerts.infrared does not exist". Its people gain `infrared` too, false."""
    from sqlalchemy import text

    url = postgres.new_database("events_of_version_7")
    EventStore(url).close()
    alert = {"rule": 0, "camera": "door", "zone": None, "compliance": 0.4, "compliance_low": 0.2, "compliance_high": 0.6,
             "observed": 0.5, "below": 80.0, "people": 4, "with_mask": 2, "unassessable": 0, "minutes": 15,
             "min_people": 3}
    old = EventStore(url)
    with old.engine.begin() as connection:  # as version 7 left it, an alert stored by it
        connection.execute(text("DELETE FROM schema_version WHERE version = 8"))
        connection.execute(text("ALTER TABLE alerts DROP COLUMN infrared, DROP COLUMN seen"))
        for table in ("counts", "counts_by_quarter", "events"):
            connection.execute(text(f"ALTER TABLE {table} DROP COLUMN infrared"))
        connection.execute(text("INSERT INTO events (camera, zone, track_id, label, probability, first_seen, last_seen, "
                                f"frames) VALUES ('door', NULL, 1, 'with_mask', 0.9, {NOW}, {NOW}, 3)"))
        connection.execute(text(f"INSERT INTO alerts ({', '.join(alert)}, at) VALUES "
                                f"({', '.join(':' + name for name in alert)}, {NOW})"), alert)
    old.close()
    again = EventStore(url)
    again.record_alert(alert | {"at": NOW + 60, "infrared": 3, "seen": 4})
    assert [(a["at"], a["infrared"], a["seen"]) for a in again.alerts(since=NOW)[0]] == [(NOW + 60, 3, 4), (NOW, 0, 0)]
    again.record("door", None, person(2, (0.9, 0.05, 0.05), last=NOW + 60), infrared=True)
    assert [e["infrared"] for e in again.events()] == [True, False]
    with again.engine.begin() as connection:  # a process of version 7 still running stores its people on
        connection.execute(text("INSERT INTO events (camera, zone, track_id, label, probability, first_seen, "
                                f"last_seen, frames) VALUES ('door', NULL, 3, 'with_mask', 0.9, {NOW}, {NOW + 90}, 3)"))
    assert [e["infrared"] for e in again.events()] == [False, True, False]
    again.close()


def test_a_rollback_by_pg_restore_then_upgrading_again_lists_no_alert_of_the_abandoned_days(postgres, tmp_path):  # noqa: F811
    """deployment.md's way back: pg_dump before the upgrade, pg_restore --clean to go back. --clean drops
    the dump's tables alone, so version 7's `alerts` and `alerts_kept_since` outlived the rollback, and
    the next upgrade kept them: the day's list showed the abandoned run's alerts and called itself whole
    from the first upgrade, the old version's alerts between (never stored) missing."""
    import subprocess

    from sqlalchemy import text

    from tests.postgres import postgres_bin

    url = postgres.new_database("rolled_back")
    old = EventStore(url)
    old.record("door", None, person(1, (0.9, 0.05, 0.05)))
    with old.engine.begin() as connection:  # as events schema 6 (dba03c1) left it, with its person
        connection.execute(text("DELETE FROM schema_version WHERE version > 6"))
        connection.execute(text("DROP TABLE alerts, alerts_kept_since"))
        for table in ("counts", "counts_by_quarter"):
            connection.execute(text(f"ALTER TABLE {table} DROP COLUMN infrared"))
    old.close()
    libpq_url, dump = url.replace("+psycopg", ""), str(tmp_path / "site.dump")
    subprocess.run([str(postgres_bin() / "pg_dump"), "-Fc", "-f", dump, libpq_url], check=True, capture_output=True)
    upgraded = EventStore(url)  # the upgrade, then an alert of the days rolled back
    upgraded.record_alert({"rule": 0, "camera": "door", "zone": None, "compliance": 0.4, "compliance_low": 0.2,
                           "compliance_high": 0.6, "observed": 0.5, "below": 80.0, "people": 4, "with_mask": 2,
                           "unassessable": 0, "minutes": 15, "at": NOW + 60, "min_people": 3, "infrared": 0, "seen": 4})
    first_upgrade = upgraded.alerts(since=0)[1]
    upgraded.close()
    subprocess.run([str(postgres_bin() / "pg_restore"), "--clean", "--if-exists", "-d", libpq_url, dump],
                   check=True, capture_output=True)
    again = EventStore(url)  # upgraded again, later
    assert again.migrate() == 8 and [e["track_id"] for e in again.events()] == [1]
    listed, whole_since = again.alerts(since=0)
    assert listed == [] and whole_since > first_upgrade
    again.close()


def test_a_retention_reaching_before_1970_keeps_every_row_on_postgresql(postgres, tmp_path):  # noqa: F811
    """retention_days: 100000 (keep all, as a site may say it): the cut-off, before 1970 by more than
    PostgreSQL's INTEGER minute holds, failed each hour with "integer out of range" (a WARNING, the
    retention skipped); SQLite's integers took it."""
    url = postgres.new_database("kept_for_ever")
    store = EventStore(url, tmp_path / "snaps", retention_days=100_000)
    store.record("door", None, person(1, (0.9, 0.05, 0.05)))
    assert store.enforce_retention(now=NOW) == 0 and len(store.events()) == 1 and len(store.counts()) == 1
    store.close()
