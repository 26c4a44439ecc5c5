"""examples/maskwatch.service as systemd reads it. How the site stops under it (SIGTERM to the main
process, a clean stop counted as success) is tested in test_site.py."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[1] / "examples" / "maskwatch.service"


def unit_setting(name: str) -> str:
    return re.search(rf"^{name}=(.*)$", UNIT.read_text(), re.MULTILINE).group(1).strip()


@pytest.mark.system
def test_the_example_unit_is_one_systemd_reads_without_a_warning(tmp_path):
    """A key written wrong (KillMod=) or a bad value is only a warning to systemd, which then runs
    the unit without it: verify must say nothing about the unit at all."""
    assert shutil.which("systemd-analyze"), "make test installs systemd (systemd-analyze)"
    maskwatch = shutil.which("maskwatch") or str(Path(sys.executable).with_name("maskwatch"))
    unit = tmp_path / "maskwatch.service"
    unit.write_text(UNIT.read_text().replace("/opt/maskwatch/bin/maskwatch", maskwatch))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=120)
    said = [line for line in (done.stdout + done.stderr).splitlines() if "maskwatch" in line]
    assert done.returncode == 0 and said == [], done


def test_the_unit_stops_maskwatch_alone_and_gives_it_the_time_the_docs_ask():
    """KillMode=mixed: systemd's default signals every process of the unit at once, and a site's
    --workers or Ray processes would end before maskwatch stored the people in view."""
    assert unit_setting("KillMode") == "mixed"
    assert int(unit_setting("TimeoutStopSec")) >= 20  # docs/deployment.md: give the stop 20 s or more
    assert unit_setting("ExecStart").split()[1:] == ["run", "--config", "/etc/maskwatch/site.yaml"]


def test_the_state_folder_has_the_mode_the_install_steps_give_it():
    """docs/deployment.md makes /var/lib/maskwatch 750 (the database and snapshots for the service's
    user alone), the unit left systemd's 755: at each start the journal said "StateDirectory
    'maskwatch' already exists but the mode is different", and a folder systemd made was 755."""
    steps = (UNIT.parents[1] / "docs" / "deployment.md").read_text()
    installed = re.search(r"install -d -m (\d+) -o maskwatch -g maskwatch /var/lib/maskwatch", steps).group(1)
    assert re.search(r"^StateDirectoryMode=(\d+)$", UNIT.read_text(), re.MULTILINE), "StateDirectoryMode is not set"
    assert int(unit_setting("StateDirectoryMode"), 8) == int(installed, 8) == 0o750
