"""Write tests/data/site-<commit>.sql with an older maskwatch's own API: its events store (and its
users store where it has one) filled with a few people, users, a token and a session, dumped as
SQL. Run with that commit's code on PYTHONPATH (test_upgrades.py opens the dump with today's):

    git archive fb7f4a3 | tar -x -C /tmp/old   # a copy of that commit, the checkout left alone
    PYTHONPATH=/tmp/old/src python tests/data/make_old_site.py tests/data/site-fb7f4a3.sql

From 3ff55e8 (two-step login, 2026-12-06) vic also has two-step login on with SECRET and the
recovery codes CODES (the first used), and ana owns a token. From 63d1097 (events schema 7, the
compliance alerts stored, 2026-12-07) the store holds ALERT too. site-dba03c1.sql is the last release
that passed CI (events schema 6), the one sites upgrade from.
"""

import inspect
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
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # vic's two-step secret (base32), where the commit has it
CODES = [f"{i}abc-def{i}" for i in range(2, 10)] + ["xyzw-2345", "xyzw-6789"]  # vic's recovery codes
# a compliance alert as events schema 7 (63d1097) stored it, where the commit stores them
ALERT = {"rule": 0, "camera": "door", "zone": "inside", "compliance": 0.4, "compliance_low": 0.2,
         "compliance_high": 0.6, "observed": 0.5, "below": 80.0, "people": 4, "with_mask": 2, "unassessable": 0,
         "minutes": 15, "at": NOW + 2000, "min_people": 3}


def main(out: str) -> None:
    folder = Path(tempfile.mkdtemp())
    database = str(folder / "site.db")
    store = EventStore(database, folder / "snapshots", retention_days=100_000)
    for i, (camera, zone, probabilities) in enumerate(PEOPLE):
        seen = NOW + i * 400  # 6.7 minutes apart: several minutes and quarter hours
        track = Track(i + 1, (10, 10, 40, 40), first_seen=seen, last_seen=seen + 5, hits=4)
        track.probability_sum += np.array(probabilities)
        if hasattr(track, "evidence_sum"):  # later trackers decide on frames of a face large enough
            track.evidence, track.evidence_sum = track.hits, track.probability_sum.copy()
        store.record(camera, zone, track, np.full((20, 20, 3), 40 * i, np.uint8) if i % 2 == 0 else None)
    if hasattr(store, "record_alert"):  # compliance alerts stored: events schema 7 (2026-12-07)
        store.record_alert(ALERT)
    store.engine.dispose()
    notes = []
    try:
        from maskwatch.security.store import AuthStore
    except ImportError:  # 1b08615: users came with fb7f4a3
        AuthStore = None
    if AuthStore is not None:
        auth = AuthStore(database)
        ana = auth.add_user("ana", "correct horse battery", "admin")
        vic = auth.add_user("vic", "correct horse battery", "viewer", ["door"])
        notes.append(f"-- token prom: {auth.add_token('prom', 'read')}")
        if "owner" in inspect.signature(auth.add_token).parameters:  # tokens' owners: 2026-12-03
            notes.append(f"-- token script: {auth.add_token('script', 'full', owner='ana')}")
        if "password_hash" in inspect.signature(auth.start_session).parameters:  # a session names its password
            session = auth.start_session(ana["id"], auth.check_login("ana", "correct horse battery")["password_hash"],
                                         now=NOW)
        else:
            session = auth.start_session(ana["id"], now=NOW)
        notes.append(f"-- session ana: {session}")
        try:
            from maskwatch.security.two_step import recovery_hash, recovery_hashes
        except ImportError:  # two-step login came with dd8f1c7, its recovery codes with a5d9689
            recovery_hash = None
        if recovery_hash is not None:
            assert auth.turn_on("vic", SECRET, step=int(NOW // 30), recovery=recovery_hashes(SECRET, CODES)) == ""
            assert auth.use_recovery(vic["id"], recovery_hash(SECRET, CODES[0]))
        auth.log("login", "ana", "127.0.0.1", now=NOW)
        auth.close()
    with sqlite3.connect(database) as connection:
        dump = "\n".join(connection.iterdump())
    Path(out).write_text("\n".join([*notes, dump, ""]))


if __name__ == "__main__":
    main(sys.argv[1])
