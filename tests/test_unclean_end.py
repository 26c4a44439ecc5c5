"""The marker a run leaves beside its SQLite database (site/unclean_end.py), read at the next start.
(A run killed and started again, end to end: tests/test_site.py.)"""

import logging
import subprocess
import sys

import pytest

from maskwatch.site.unclean_end import RunMarker, _boot, _start_ticks


@pytest.fixture()
def other_process():
    """A live process that is not this one: another `run`, or one that took a dead run's id."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


def said(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "maskwatch.site.unclean_end"]


def test_another_run_going_on_on_the_same_file_is_said_and_its_marker_kept(tmp_path, other_process, caplog):
    """A second `run` (another port, the same database file) left the first's marker alone and
    said nothing: two sites stored on one file unnoticed."""
    caplog.set_level(logging.WARNING)
    marker = tmp_path / "site.db.running"
    marker.write_text(f"{other_process.pid} 1796000000 {_boot()} {_start_ticks(other_process.pid)}\n")
    run = RunMarker(f"sqlite:///{tmp_path / 'site.db'}")
    run.start()
    assert said(caplog) == [f"another run stores on {tmp_path / 'site.db'} now (process {other_process.pid}, started "
                            "2026-11-30 00:53:20 UTC): two sites on one database file; this run leaves no marker of "
                            "its own, and an unclean end of it goes unsaid"]
    run.end()
    assert marker.read_text().split()[0] == str(other_process.pid)  # the other run's, kept


@pytest.mark.parametrize("taken_again", ["id", "boot"])
def test_a_dead_runs_marker_is_said_though_its_process_id_lives_again(tmp_path, other_process, caplog, taken_again):
    """A run killed, its process id since taken by another process (of this boot, or after a
    reboot): the id alive, the next start took the marker for a run going on and said nothing, for good."""
    caplog.set_level(logging.WARNING)
    ticks = _start_ticks(other_process.pid)
    boot, ticks = (_boot(), str(int(ticks) - 1)) if taken_again == "id" else ("another-boot", ticks)
    marker = tmp_path / "site.db.running"
    marker.write_text(f"{other_process.pid} 1796000000 {boot} {ticks}\n")
    run = RunMarker(f"sqlite:///{tmp_path / 'site.db'}")
    run.start()
    [line] = said(caplog)
    assert line.startswith(f"the run before on {tmp_path / 'site.db'} (process {other_process.pid}, ") and \
        "did not stop cleanly" in line
    assert run.owned and marker.read_text().split()[:1] != [str(other_process.pid)]  # ours now
    run.end()
    assert not marker.exists()
