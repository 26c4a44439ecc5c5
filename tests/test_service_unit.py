"""The package's systemd unit (src/maskwatch/examples/maskwatch.service, which `run --unit` prints)
as systemd reads it. How the site stops under it (SIGTERM to the main process, a clean stop counted
as success) is tested in test_site.py."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_base_install import EVERY_EXTRA, maskwatch_without

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "src" / "maskwatch" / "examples" / "maskwatch.service"


def unit_setting(name: str) -> str:
    return re.search(rf"^{name}=(.*)$", UNIT.read_text(), re.MULTILINE).group(1).strip()


def print_unit(config, *options: str, cwd=None) -> subprocess.CompletedProcess:
    """`maskwatch run --config CONFIG --unit [OPTIONS]` on the base install (no extra), as a wheel's user types it."""
    return maskwatch_without(EVERY_EXTRA, "run", "--config", str(config), "--unit", *options, cwd=cwd or ROOT)


@pytest.mark.system
def test_the_printed_unit_is_one_systemd_reads_without_a_warning(tmp_path):
    """A key written wrong (KillMod=) or a bad value is only a warning to systemd, which then runs
    the unit without it: verify must say nothing about the unit at all."""
    assert shutil.which("systemd-analyze"), "make test installs systemd (systemd-analyze)"
    unit = tmp_path / "maskwatch.service"
    printed = print_unit("/etc/maskwatch/site.yaml")  # not tmp_path: the unit hides /tmp (PrivateTmp=yes)
    assert printed.returncode == 0, printed.stderr
    unit.write_text(printed.stdout)
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=120)
    said = [line for line in (done.stdout + done.stderr).splitlines() if "maskwatch" in line]
    assert done.returncode == 0 and said == [], done


def test_the_unit_stops_maskwatch_alone_and_gives_it_the_time_the_docs_ask():
    """KillMode=mixed: systemd's default signals every process of the unit at once, and a site's
    --workers or Ray processes would end before maskwatch stored the people in view."""
    assert unit_setting("KillMode") == "mixed"
    assert int(unit_setting("TimeoutStopSec")) >= 45  # docs/deployment.md: give the stop 45 s
    assert unit_setting("ExecStart").split()[1:] == ["run", "--config", "/etc/maskwatch/site.yaml"]


def test_the_state_folder_has_the_mode_the_install_steps_give_it():
    """docs/deployment.md makes /var/lib/maskwatch 750 (the database and snapshots for the service's
    user alone), the unit left systemd's 755: at each start the journal said "StateDirectory
    'maskwatch' already exists but the mode is different", and a folder systemd made was 755."""
    steps = (ROOT / "docs" / "deployment.md").read_text()
    installed = re.search(r"install -d -m (\d+) -o maskwatch -g maskwatch /var/lib/maskwatch", steps).group(1)
    assert re.search(r"^StateDirectoryMode=(\d+)$", UNIT.read_text(), re.MULTILINE), "StateDirectoryMode is not set"
    assert int(unit_setting("StateDirectoryMode"), 8) == int(installed, 8) == 0o750


def test_run_unit_prints_the_packages_unit_naming_this_install_and_the_site_file():
    """A user of the wheel had no unit: the docs copied examples/maskwatch.service from a checkout,
    which the wheel lacks. `run --unit` prints the package's own, with no extra installed, its
    ExecStart naming this venv's maskwatch (not always /opt/maskwatch's) and the file's absolute path
    (from / here: the unit hides /tmp, where tmp_path is)."""
    printed = print_unit("srv/site.yaml", cwd="/")
    assert printed.returncode == 0 and printed.stderr == "", printed.stderr
    maskwatch = Path(sys.executable).with_name("maskwatch")
    assert printed.stdout == UNIT.read_text().replace(
        "ExecStart=/opt/maskwatch/bin/maskwatch run --config /etc/maskwatch/site.yaml",
        f"ExecStart={maskwatch} run --config /srv/site.yaml")
    assert not Path("/srv/site.yaml").exists()  # printed, nothing written


def test_a_path_is_one_word_of_execstart_as_systemd_reads_it():
    from maskwatch.cli.site import _systemd_word

    assert _systemd_word("/etc/maskwatch/site.yaml") == "/etc/maskwatch/site.yaml"
    assert _systemd_word('/srv/my sites/50%$"a".yaml') == '"/srv/my sites/50%%$$\\"a\\".yaml"'
    # A lone ; separated two command lines, and an empty word vanished (--ray with no value at each start).
    assert (_systemd_word(";"), _systemd_word("")) == ("\\;", '""')


def test_run_unit_with_an_empty_ray_address_runs_ray_locally_as_run_does():
    """`--ray ''` is a local cluster to `run`; the unit's ExecStart ended "--ray " and each start
    failed, the option given no value."""
    printed = print_unit("srv/site.yaml", "--ray", "", cwd="/")
    assert printed.returncode == 0, printed.stderr
    assert re.search(r"^ExecStart=.* run --config /srv/site.yaml --ray local$", printed.stdout, re.MULTILINE)


@pytest.mark.parametrize("config", ["/home/ana/site.yaml", "/root/site.yaml"])
def test_run_unit_refuses_a_site_file_the_unit_cannot_see(config):
    """ProtectHome=yes: a unit naming a file under /home or /root failed at each start, "not found"."""
    printed = print_unit(config)
    assert printed.returncode == 1 and printed.stdout == ""
    assert printed.stderr.strip() == (f"error: {config}: under /{config.split('/')[1]}, which the unit hides from "
                                      "the service (ProtectHome=yes); put the venv in /opt/maskwatch and the site "
                                      "file in /etc/maskwatch")


@pytest.mark.parametrize("config", ["/tmp/site.yaml", "/var/tmp/maskwatch/site.yaml"])
def test_run_unit_refuses_a_site_file_in_a_temporary_folder(config):
    """PrivateTmp=yes gives the service an empty /tmp of its own: a unit naming /tmp/site.yaml (a
    file tried there first) was printed, and failed at each start, "not found"."""
    printed = print_unit(config)
    assert printed.returncode == 1 and printed.stdout == ""
    top = "/" + "/".join(config.split("/")[1:-1 if config.startswith("/tmp") else 3])
    assert printed.stderr.startswith(f"error: {config}: under {top}, which the unit hides from the service "
                                     "(PrivateTmp=yes)"), printed.stderr


def test_run_unit_passes_on_the_run_options_given_beside_it():
    """`run --config site.yaml --ray local --unit` printed a unit without Ray, and said nothing: the
    site started at boot on one process, its models the shipped ones where --classifier named another."""
    printed = print_unit("srv/site.yaml", "--ray", "local", "--cameras-per-actor", "2", "--classifier",
                         "opt/models/my classifier.onnx", "--no-gate", cwd="/")
    assert printed.returncode == 0, printed.stderr
    start = re.search(r"^ExecStart=(.*)$", printed.stdout, re.MULTILINE).group(1)
    assert start == (f"{Path(sys.executable).with_name('maskwatch')} run --config /srv/site.yaml --ray local "
                     '--cameras-per-actor 2 --classifier "/opt/models/my classifier.onnx" --no-gate')


@pytest.mark.parametrize("other", ["--init", "--check", "--probe"])
def test_run_unit_with_another_action_is_refused_not_one_of_them_dropped(tmp_path, other):
    """`--init --unit` wrote the example and printed no unit, `--check --unit` printed the unit and
    checked nothing: either way one of the two asked for was dropped without a word."""
    printed = print_unit("site.yaml", other, cwd=tmp_path)
    assert printed.returncode == 1 and printed.stdout == "" and not (tmp_path / "site.yaml").exists()
    assert printed.stderr.strip() == f"error: --unit cannot go with {other}: run {other} on its own, then --unit"


def test_run_unit_refuses_a_path_with_a_line_break_naming_it():
    """A site file in a folder named with a line break: the unit was printed with the break inside
    ExecStart's quotes, and systemd refused the whole unit ("Unbalanced quoting ... fatal error")."""
    printed = print_unit("/srv/site\nold/site.yaml")
    assert printed.returncode == 1 and printed.stdout == "", printed.stdout
    assert printed.stderr == ("error: '/srv/site\\nold/site.yaml': a line break or other control character in the "
                              "path, which a unit's ExecStart cannot hold (systemd refuses the unit: 'Unbalanced "
                              "quoting'); rename it\n")


def test_run_unit_refuses_a_ray_address_with_a_line_break_naming_it():
    """Only the paths were looked at: `--ray 'ray://head:10001<newline>…'` (a paste) printed the break
    into ExecStart's quotes, its second line a line of the unit of its own, which systemd refused."""
    printed = print_unit("/etc/maskwatch/site.yaml", "--ray", "ray://head:10001\nExecStartPre=/bin/true")
    assert printed.returncode == 1 and printed.stdout == "", printed.stdout
    assert printed.stderr == ("error: --ray 'ray://head:10001\\nExecStartPre=/bin/true': a line break or other "
                              "control character, which a unit's ExecStart cannot hold (systemd refuses the unit: "
                              "'Unbalanced quoting'); give it without\n")


def test_run_unit_refuses_a_path_that_is_not_utf8_naming_its_bytes():
    """A site file named in Latin-1 (an old tool's, a share mounted without iocharset): the unit was
    printed with the raw byte, and systemd ignored its ExecStart ("String is not UTF-8 clean"), the
    unit failing to load."""
    printed = print_unit("/etc/maskwatch/B\udcfcro.yaml")  # the bytes /etc/maskwatch/B\xfcro.yaml
    assert printed.returncode == 1 and printed.stdout == "", printed.stdout
    assert printed.stderr == ("error: /etc/maskwatch/B\\xfcro.yaml: a name that is not UTF-8, which a unit's "
                              "ExecStart cannot hold (systemd ignores it: 'String is not UTF-8 clean'); rename it\n")
