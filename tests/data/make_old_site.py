"""Write tests/data/site-<commit>.sql with an older maskwatch's own API: its events store (and its
users store where it has one) filled with a few people, users, a token and a session, dumped as
SQL. Run with that commit's code on PYTHONPATH (test_upgrades.py opens the dump with today's):

    git worktree add /tmp/old fb7f4a3
    PYTHONPATH=/tmp/old/src python tests/data/make_old_site.py tests/data/site-fb7f4a3.sql
"""

import sqlite3
import sys
import tempfile
from pathlib import Path

import numpy as np

from maskwatch.site.events import EventStore
from maskwatch.video.tracker import Track

NOW = 1_789_999_980.0  # tests/test_events.py's NOW: 2026-09-21 14:13 UTC
PEOPLE = [("door", "inside", (0.9, 0.05, 0.05)), ("door", None, (0.1, 0.8, 0.1)),
          ("hall", "desk", (0.2, 0.2, 0.6)), ("door", "inside", (0.7, 0.2, 0.1)),
          ("hall", None, (0.1, 0.85, 0.05)), ("door", "inside", (0.05, 0.9, 0.05))]


def main(out: str) -> None:
    folder = Path(tempfile.mkdtemp())
    database = str(folder / "site.db")
    store = EventStore(database, folder / "snapshots", retention_days=100_000)
    for i, (camera, zone, probabilities) in enumerate(PEOPLE):
        seen = NOW + i * 400  # 6.7 minutes apart: several minutes and quarter hours
        track = Track(i + 1, (10, 10, 40, 40), first_seen=seen, last_seen=seen + 5, hits=4)
        track.probability_sum += np.array(probabilities)
        store.record(camera, zone, track, np.full((20, 20, 3), 40 * i, np.uint8) if i % 2 == 0 else None)
    store.engine.dispose()
    notes = []
    try:
        from maskwatch.security.store import AuthStore
    except ImportError:  # 1b08615: users came with fb7f4a3
        AuthStore = None
    if AuthStore is not None:
        auth = AuthStore(database)
        ana = auth.add_user("ana", "correct horse battery", "admin")
        auth.add_user("vic", "correct horse battery", "viewer", ["door"])
        notes.append(f"-- token prom: {auth.add_token('prom', 'read')}")
        notes.append(f"-- session ana: {auth.start_session(ana['id'], now=NOW)}")
        auth.log("login", "ana", "127.0.0.1", now=NOW)
        auth.close()
    with sqlite3.connect(database) as connection:
        dump = "\n".join(connection.iterdump())
    Path(out).write_text("\n".join([*notes, dump, ""]))


if __name__ == "__main__":
    main(sys.argv[1])
