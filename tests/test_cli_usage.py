"""The command line as a user meets it: help texts, option names, values refused by name, colour,
signals. Nothing is trained or served, so these run in the fast tier (unlike test_cli.py), but for
the two that start a command process (system)."""

import importlib.util

import click
import pytest
import typer
from typer.testing import CliRunner

from maskwatch.cli import app
from tests.conftest import usage_error
from tests.test_site_config import local_tz  # noqa: F401  (fixture)

runner = CliRunner()


def _leaf_commands():
    """(`maskwatch ...` words, command) for every command, `users add` and the like included."""

    def walk(words, command):
        if hasattr(command, "list_commands"):
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                yield from walk([*words, name], command.get_command(ctx, name))
        else:
            yield " ".join(words), command

    return list(walk([], typer.main.get_command(app)))


def test_every_command_and_option_says_what_it_is_for_and_out_has_its_short_form():
    """`--help` showed `--seed [default: 0]`, `--port`, `tokens list`, `users remove NAME` with no
    word of what they are; `fit-detector -o F.json` was "No such option: -o" where eight other
    commands took it, and `annotations -o DIR` too (its folder was --to alone)."""
    unhelped, no_short = [], []
    for words, command in _leaf_commands():
        if not (command.help or "").strip():
            unhelped.append(words)
        for param in command.params:
            if param.name != "help" and not (getattr(param, "help", None) or "").strip():
                unhelped.append(f"{words} {param.opts[0]}")
            if ({"--out", "--to"} & set(getattr(param, "opts", ())) and "-o" not in param.opts  # annotations --to
                    and (words, param.name) != ("report", "end")):  # report --csv --to: a day, as the API's `to`
                no_short.append(words)
    assert not unhelped and not no_short, (unhelped, no_short)


def test_a_seed_out_of_range_is_refused_by_the_option_name(tmp_path):
    """`--seed -1` ended in numpy's "expected non-negative integer", or after prepare had cropped every face."""
    data, out = str(tmp_path / "data"), str(tmp_path / "out")
    for args in (["prepare", data, "-o", out], ["split", data], ["render", data], ["train", data, "-o", out],
                 ["cv", data, "-o", out], ["study", data, "-o", out], ["evaluate-detection", data],
                 ["train-detector", data, "-o", out], ["fit-detector", data, "-o", out]):
        result = runner.invoke(app, [*args, "--seed", "-1"])
        assert result.exit_code == 2 and "--seed" in result.output, (args, result.output)
    assert not (tmp_path / "out").exists()


# A blurred video's frames are each read by the detector: a frame between detections showed a face sharp.
BLUR_EVERY = ("3 with --blur: every frame of a blurred video is read by the detector (a frame between detections "
              "showed a face come into view since sharp); leave it out")


@pytest.mark.parametrize("args, option, message", [
    (["render", "WORK", "--per-face", "1"], "--per-face", "must be at least 2 (one worn right, one wrongly), got 1"),
    (["cv", "DATA", "-o", "OUT", "--folds", "1"], "--folds", "must be at least 2 (each fold is held out once), got 1"),
    (["evaluate-detection", "DATA", "--bootstrap", "-1"], "--bootstrap", "must be 0 or more, got -1"),
    (["evaluate-detection", "DATA", "--limit", "0"], "--limit", "must be 1 or more, got 0"),
    (["train-detector", "DATA", "-o", "OUT", "--steps", "0"], "--steps", "must be at least 1, got 0"),
    (["train-detector", "DATA", "-o", "OUT", "--batch-size", "0"], "--batch-size", "must be at least 1, got 0"),
    (["export-detector", "WORK", "--fit-photos", "0"], "--fit-photos", "must be 1 or more, got 0"),
    (["fit-detector", "DATA", "-o", "OUT", "--upscale", "5"], "--upscale", "must be more than 0 and at most 4, got 5.0"),
    (["run", "--config", "OUT", "--cameras-per-actor", "0"], "--cameras-per-actor", "must be at least 1, got 0"),
    (["detect", "DATA", "--blur", "--detect-every", "3"], "--detect-every", BLUR_EVERY),
    (["batch", "DATA", "-o", "OUT", "--blur", "--detect-every", "2"], "--detect-every", BLUR_EVERY.replace("3", "2", 1)),
], ids=lambda v: v[0] if isinstance(v, list) else None)
def test_a_value_out_of_its_range_is_a_usage_error_naming_the_option(tmp_path, args, option, message):
    """As click's own (--seed -1): exit 2 and the option as typed; these were exit 1, which
    docs/cli.md gives to bad input, and `--min-score 3` was named min_score."""
    if args[0] in ("run", "tokens"):
        pytest.importorskip("sqlalchemy")
    paths = {"WORK": tmp_path / "work", "DATA": tmp_path / "data", "OUT": tmp_path / "out"}
    result = runner.invoke(app, [str(paths.get(a, a)) for a in args])
    assert result.exit_code == 2, result.output
    assert usage_error(result.output) == f"Invalid value for '{option}': {message}"
    assert not list(tmp_path.iterdir())


def test_prepare_refuses_a_split_it_cannot_make_before_cropping(sample_dir, tmp_path):
    result = runner.invoke(app, ["prepare", str(sample_dir), "-o", str(tmp_path / "w"), "--split-by", "photos"])
    assert result.exit_code == 2, result.output
    assert usage_error(result.output) == "Invalid value for '--split-by': must be 'photo' or 'face', got 'photos'"
    assert not (tmp_path / "w").exists()


def test_classify_takes_classifier_as_every_other_command_does(tmp_path):
    result = runner.invoke(app, ["classify", str(tmp_path / "a.png"), "--classifier", str(tmp_path / "none.onnx")])
    assert result.exit_code == 1 and "none.onnx" in result.output, result.output


def test_export_detector_names_a_run_folder_that_is_not_there(tmp_path):
    pytest.importorskip("torch")
    result = runner.invoke(app, ["export-detector", str(tmp_path / "typo")])
    assert result.exit_code == 1 and "no such run folder" in result.output, result.output


@pytest.mark.parametrize("no_color", ["1", ""])
def test_no_color_takes_the_colour_out_of_error_lines(no_color, tmp_path):
    """Click ignores NO_COLOR: `error:` lines stayed red on a terminal (color=True stands for one)."""
    result = runner.invoke(app, ["classify", str(tmp_path / "a.png")], color=True, env={"NO_COLOR": no_color})
    assert result.exit_code == 1 and "error:" in result.output
    assert ("\x1b[" in result.output) == (not no_color), repr(result.output)


@pytest.mark.system
def test_sigterm_stops_any_command_as_ctrl_c_does(tmp_path, sample_dir):
    """SIGTERM (timeout, docker stop) killed prepare outright, its hidden .partial folder of crops
    left beside --out; only detect, batch and the trainings turned it into Ctrl-C."""
    import os
    import re
    import signal
    import subprocess
    import sys
    import time

    data = tmp_path / "data"  # the sample 25 times over: seconds of cropping
    (data / "annotations").mkdir(parents=True)
    (data / "images").mkdir()
    for annotation in sample_dir.glob("annotations/*.xml"):
        text = annotation.read_text()
        photo = re.search(r"<filename>(.*?)</filename>", text).group(1)
        for k in range(25):
            (data / "images" / f"{k}-{photo}").symlink_to(sample_dir / "images" / photo)
            (data / "annotations" / f"{k}-{annotation.name}").write_text(text.replace(photo, f"{k}-{photo}"))
    command = [sys.executable, "-c", "from maskwatch.cli import main; main()",
               "prepare", str(data), "--out", str(tmp_path / "work"), "--size", "256", "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".work*partial*")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
    time.sleep(0.5)  # some crops in
    os.kill(process.pid, signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, (process.returncode, output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_a_folder_given_for_a_model_file_is_called_a_folder(tmp_path):
    """`--detector RUN/export` (export-detector names the folder) said "no such detector file"."""
    (tmp_path / "detector.json").write_text("{}")
    photo = str(tmp_path / "a.png")
    result = runner.invoke(app, ["detect", photo, "--detector", str(tmp_path), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1 and "a folder, not a detector file (give its detector.json)" in result.output
    result = runner.invoke(app, ["classify", photo, "--model", str(tmp_path)])
    assert result.exit_code == 1 and "a folder, not a classifier model" in result.output, result.output


def test_dash_h_is_help_everywhere():
    for args in ([], ["detect"], ["users", "add"]):
        assert runner.invoke(app, [*args, "-h"]).output == runner.invoke(app, [*args, "--help"]).output
        assert runner.invoke(app, [*args, "-h"]).exit_code == 0


def test_the_lists_of_commands_run_each_description_on_without_the_docstrings_line_breaks():
    """`maskwatch -h` broke each row where its docstring's source line ended ("... on Ray, each file" /
    "exactly as ..."): on a screen wide enough, a description is one line."""
    wide = CliRunner(env={"COLUMNS": "400"})
    listed = wide.invoke(app, ["-h"]).output
    assert "each file exactly as `maskwatch detect FILE` would; a re-run skips" in listed
    assert "against the class folder it was sorted into" in listed
    assert "(with how many recovery codes are left" in wide.invoke(app, ["users", "-h"]).output


def test_no_help_page_cuts_a_word_short_on_an_80_column_terminal():
    """`run -h` showed "(sudo tee it to /etc/systemd/system/maskwa…": a path longer than the column."""
    narrow = CliRunner(env={"COLUMNS": "80"})
    cut = {words: line.strip() for words, _ in [("", None), *_leaf_commands()]
           for line in narrow.invoke(app, [*words.split(), "-h"]).output.splitlines() if "…" in line}
    assert cut == {}


def test_a_token_refused_makes_no_database(tmp_path):
    """`tokens add x --scope admin --database typo.db` made an empty typo.db, then refused the scope."""
    pytest.importorskip("sqlalchemy")
    result = runner.invoke(app, ["tokens", "add", "no spaces", "--scope", "read", "--database", str(tmp_path / "typo.db")])
    assert result.exit_code == 1 and "error:" in result.output, result.output
    result = runner.invoke(app, ["tokens", "add", "x", "--scope", "admin", "--database", str(tmp_path / "typo.db")])
    assert result.exit_code == 2, result.output  # a usage error, as click's own choices
    assert usage_error(result.output) == "Invalid value for '--scope': must be one of read, full, got 'admin'"
    assert not list(tmp_path.iterdir())


@pytest.mark.system
def test_python_dash_m_maskwatch_is_the_command():
    import subprocess
    import sys

    from maskwatch import __version__

    done = subprocess.run([sys.executable, "-m", "maskwatch", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == f"maskwatch {__version__}\n", done
    done = subprocess.run([sys.executable, "-m", "maskwatch", "detect", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "python -m maskwatch detect" in done.stdout, done


def test_users_add_says_which_database_it_wrote_and_check_that_0_0_0_0_needs_one(tmp_path, monkeypatch):
    """`users add ana --role admin` without --config said "added admin ana (all cameras) to sqlite
    database", having made ./maskwatch.db: `run` beyond loopback then found no user in the site's
    own database, and nothing had said where ana went. `run --check` of such a site said nothing
    of the user it needs, and passed."""
    pytest.importorskip("sqlalchemy")
    monkeypatch.chdir(tmp_path)
    site = tmp_path / "store" / "site.yaml"
    site.parent.mkdir()
    site.write_text("cameras: {door: {source: 'rtsp://127.0.0.1:1/x'}}\n")
    alone = runner.invoke(app, ["users", "add", "ana", "--role", "admin"], input="a long enough password\n")
    assert alone.exit_code == 0 and alone.output == (
        f"added admin ana (all cameras) to {tmp_path / 'maskwatch.db'} (no --config: a site's users are in its "
        "storage.database, added with --config site.yaml)\n")
    beside = runner.invoke(app, ["users", "add", "ana", "--role", "admin", "-c", str(site)], input="a long enough password\n")
    assert beside.exit_code == 0 and beside.output == f"added admin ana (all cameras) to {site.parent / 'maskwatch.db'}\n"
    site.write_text(site.read_text() + "server: {host: 0.0.0.0}\n")
    checked = runner.invoke(app, ["run", "-c", str(site), "--check"])
    assert checked.exit_code == 0 and checked.output.endswith(
        "  server on 0.0.0.0, beyond loopback: it starts only once its database has a user (maskwatch users add "
        f"NAME --role admin --config {site}); --probe checks\n")


def test_users_refuse_a_database_beside_the_sites_config(tmp_path):
    """`users add ana --config site.yaml --database other.db` added ana to the site's database,
    silently, not to the one named; `backup` copied the site's."""
    pytest.importorskip("sqlalchemy")
    site = tmp_path / "site.yaml"
    site.write_text(f"cameras: {{door: {{source: 'rtsp://127.0.0.1:1/x'}}}}\nstorage: {{database: {tmp_path / 'site.db'}}}\n")
    for args in (["users", "add", "ana"], ["users", "list"], ["tokens", "add", "prometheus"],
                 ["backup", str(tmp_path / "b")],  # backup copied the site's database, not other.db
                 ["copy-database", str(tmp_path / "c.db")]):
        # maskwatch.db, the default written out, was taken as not given
        for named in (str(tmp_path / "other.db"), "maskwatch.db"):
            result = runner.invoke(app, [*args, "--config", str(site), "--database", named],
                                   input="a long enough password\n")
            assert result.exit_code == 1 and "give --config or --database, not both" in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site.yaml"]


def test_users_add_naming_a_removed_camera_says_why_the_sites_database_cannot_be_read(tmp_path):
    """`users add --camera old` reads the site's database for old's history: a URL whose driver is
    not installed (PostgreSQL without maskwatch[postgres]) ended in a traceback there, where
    `--camera door` said in one line what was missing."""
    pytest.importorskip("sqlalchemy")
    if importlib.util.find_spec("pg8000") is not None:
        pytest.skip("pg8000 is installed: the URL below needs a driver that is not")
    site = tmp_path / "site.yaml"
    site.write_text("cameras: {door: {source: 'rtsp://127.0.0.1:1/x'}}\n"
                    "storage: {database: 'postgresql+pg8000://u:secret@127.0.0.1:1/x'}\n")
    for camera in ("door", "old"):
        result = runner.invoke(app, ["users", "add", "vic", "--camera", camera, "--config", str(site)],
                               input="a long enough password\n")
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (camera, result.exception)
        assert result.output == ("error: postgresql+pg8000://u:***@127.0.0.1:1/x: not a database URL this install "
                                 "can open: No module named 'pg8000'\n"), (camera, result.output)


def test_the_service_log_writes_to_stderr_as_it_is_at_each_line(monkeypatch):
    """The handler took sys.stderr as it was at the set-up: one replaced and closed since (a test
    runner's, a notebook's) made every later line a 'Logging error' traceback."""
    import io
    import logging
    import sys

    from maskwatch.cli import _service_log

    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    _service_log()
    first.close()
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("maskwatch.tests").warning("said after the first stderr closed")
    assert second.getvalue().endswith("WARNING maskwatch.tests: said after the first stderr closed\n")


@pytest.mark.parametrize("zone, said", [
    ("Europe/Berlin", ["2026-10-25 02:30:05,250+02:00", "2026-10-25 02:30:05,250+01:00"]),
    ("America/New_York", ["2026-11-01 01:30:05,250-04:00", "2026-11-01 01:30:05,250-05:00"]),
])
def test_a_log_line_in_the_hour_the_clocks_go_back_says_which_passing(local_tz, zone, said):  # noqa: F811
    """The log's times were the machine's wall clock alone: a camera's "retrying" at 02:30:05 in
    Berlin's night the clocks go back read the same at both passings, an hour apart, and on a
    machine whose TZ is not the site's `timezone` read as the site's clock. Each now has its offset."""
    import logging
    import logging.config
    from datetime import datetime, timezone

    from maskwatch.cli import LOG_CONFIG

    local_tz(zone)
    formatter = logging.config.DictConfigurator(LOG_CONFIG).configure_formatter(dict(LOG_CONFIG["formatters"]["timed"]))
    back = datetime(2026, 10, 25, 1, tzinfo=timezone.utc) if zone == "Europe/Berlin" else \
        datetime(2026, 11, 1, 6, tzinfo=timezone.utc)  # when the clocks go back
    lines = []
    for created in (back.timestamp() - 3600 + 1800 + 5.25, back.timestamp() + 1800 + 5.25):
        record = logging.LogRecord("maskwatch.video.cameras", logging.WARNING, __file__, 1, "door: retrying", None, None)
        record.created, record.msecs = created, 250.0
        lines.append(formatter.format(record))
    assert lines == [f"{time} WARNING maskwatch.video.cameras: door: retrying" for time in said]


def test_the_log_pattern_the_deployment_page_gives_reads_each_line_and_its_time(local_tz):  # noqa: F811
    """docs/deployment.md told a log reader that matched `,\\d{3} ` after the seconds that it "allows the
    offset", which it does not (`,297+01:00 `): a Loki or Logstash pattern written from it read no
    line. The page's pattern, and its time format, read lines as the service writes them."""
    import logging
    import logging.config
    import re
    from datetime import datetime
    from pathlib import Path

    from maskwatch.cli import LOG_CONFIG

    page = (Path(__file__).resolve().parents[1] / "docs" / "deployment.md").read_text()
    (pattern,) = re.findall(r"`(\^\(\?P<time>[^`]+)`", page)
    (time_format,) = re.findall(r"Python's\s+`(%Y[^`]+)`", page)
    for zone, created in (("Europe/Berlin", 1795573805.297), ("America/New_York", 1780000000.5), ("UTC", 1.0e9)):
        local_tz(zone)
        formatter = logging.config.DictConfigurator(LOG_CONFIG).configure_formatter(dict(LOG_CONFIG["formatters"]["timed"]))
        record = logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, "door: cannot reach 10.0.0.5:554", None, None)
        record.created, record.msecs = created, created % 1 * 1000
        read = re.fullmatch(pattern, formatter.format(record))
        assert read and read["level"] == "ERROR" and read["logger"] == "uvicorn.error", (zone, formatter.format(record))
        assert read["message"] == "door: cannot reach 10.0.0.5:554"
        assert abs(datetime.strptime(read["time"], time_format).timestamp() - created) < 0.001, zone


def test_a_site_file_given_without_config_is_named_with_the_command_that_takes_it(tmp_path, monkeypatch):
    """`maskwatch run site.yaml` got click's bare "Missing option '--config'", `users add ana site.yaml`
    "Got unexpected extra argument", and `backup site.yml` took it for the folder to copy into."""
    monkeypatch.chdir(tmp_path)
    for args, fixed in ((["run", "site.yaml"], "run --config site.yaml"),
                        (["report", "site.yaml", "--send", "0"], "report --config site.yaml --send 0"),
                        (["backup", "site.yml"], "backup --config site.yml"),
                        (["users", "add", "ana", "site.yaml", "--role", "admin"],
                         "users add ana --config site.yaml --role admin"),
                        (["tokens", "list", "site.yaml"], "tokens list --config site.yaml"),
                        (["alerts", "test", "site.yaml"], "alerts test --config site.yaml")):
        result = runner.invoke(app, args)
        stray = next(arg for arg in args if arg.startswith("site."))
        assert result.exit_code == 2 and result.output == (
            f"error: {stray}: the site file is given with --config/-c: maskwatch {fixed}\n"), (args, result.output)
    assert not list(tmp_path.iterdir())  # no backup folder, no users' database


def test_several_files_given_to_detect_are_told_their_folder_or_batch(tmp_path, monkeypatch):
    """`detect photos/*.jpg` (the shell's glob) got click's bare "Got unexpected extra argument(s)"."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos").mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (tmp_path / "photos" / name).write_bytes(b"")
    result = runner.invoke(app, ["detect", "-o", "out", "photos/a.jpg", "photos/b.jpg", "photos/c.jpg", "--quiet"])
    assert result.exit_code == 2 and result.output == (
        "error: detect reads one source, and got 3 (photos/a.jpg, photos/b.jpg, ...): name their folder (photos), "
        "or score them all with `maskwatch batch FILE... --out DIR`\n"), result.output
    assert not (tmp_path / "out").exists()
    two = runner.invoke(app, ["detect", "photos/a.jpg", "photos/b.jpg"])  # "..." only where some are left out
    assert two.exit_code == 2 and two.output.startswith(
        "error: detect reads one source, and got 2 (photos/a.jpg, photos/b.jpg): name their folder"), two.output



def test_an_option_detect_lacks_is_named_not_its_value_taken_for_a_second_source(tmp_path, monkeypatch):
    """`detect photos --model store.onnx` (classify's name for --classifier) was "detect reads one
    source, and got 2 (photos, store.onnx)": the unknown option's value counted as a source; then
    click's "No such option: --model (Possible options: --help)"."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos").mkdir()
    (tmp_path / "store.onnx").write_bytes(b"")
    result = runner.invoke(app, ["detect", "photos", "--model", "store.onnx", "--quiet"])
    assert result.exit_code == 2 and result.output == (
        "error: detect takes a classifier of your own with --classifier (--model is classify's name for it)\n"), \
        result.output
    for command in (["evaluate-photos", "photos"], ["run", "-c", "site.yaml"], ["batch", "photos", "-o", "out"]):
        said = runner.invoke(app, [*command, "--model=store.onnx"])
        assert said.exit_code == 2 and "takes a classifier of your own with --classifier" in said.output, said.output
    assert runner.invoke(app, ["classify", "photos", "--model", "store.onnx"]).exit_code != 2  # its own name
    assert runner.invoke(app, ["train", "photos", "-o", "run", "--model", "nonesuch"]).output.count(
        "--classifier") == 0  # train's --model is the architecture
    typo = runner.invoke(app, ["detect", "photos", "--max-frame", "store.onnx", "--quiet"])  # any option it lacks
    assert typo.exit_code == 2 and "No such option: --max-frame" in typo.output, typo.output
    known = runner.invoke(app, ["detect", "photos", "--classifier", "store.onnx", "photos", "--quiet"])
    assert known.exit_code == 2 and "detect reads one source, and got 2 (photos, photos)" in known.output, known.output

@pytest.mark.system
def test_ctrl_c_at_a_password_prompt_stops_as_ctrl_c_does(tmp_path):
    """`users add` in a terminal, stopped at its password prompt: click's "Aborted." and exit code 1,
    where Ctrl-C is 130 everywhere else, and no word of whether the user was made."""
    import os
    import pty
    import sys
    import time

    database = tmp_path / "users.db"
    pid, terminal = pty.fork()
    if pid == 0:  # the child: `maskwatch users add` with a terminal as stdin, as a person runs it
        os.execv(sys.executable, [sys.executable, "-c", "from maskwatch.cli import main; main()",
                                  "users", "add", "ana", "--database", str(database)])
    said, deadline = b"", time.monotonic() + 60
    while b"Password" not in said and time.monotonic() < deadline:
        said += os.read(terminal, 1024)
    os.write(terminal, b"\x03")  # Ctrl-C, as the terminal sends it
    while True:
        try:
            chunk = os.read(terminal, 1024)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        said += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 130, said
    assert b"stopped by Ctrl-C at the prompt; no user or setting was changed" in said, said


@pytest.mark.parametrize("cameras, exposed", [
    (False, "could have photos analysed here (POST /v1/detect, the upload page) and read /metrics"),
    (True, "would see the cameras live, their events and snapshots"),
], ids=["serve", "run"])
def test_serving_beyond_loopback_with_no_users_says_what_would_be_open(tmp_path, capsys, cameras, exposed):
    """Plain `serve` has no camera, yet its refusal said anyone 'would see the cameras'. Called as
    run and serve --source (the commands that serve cameras, and make the database) call it."""
    pytest.importorskip("sqlalchemy")
    from maskwatch.security.commands import auth_for

    with pytest.raises(typer.Exit) as stopped:
        auth_for("0.0.0.0", str(tmp_path / "u.db"), (), where="--config site.yaml", create=cameras,
                 cameras=cameras)
    assert stopped.value.exit_code == 1
    assert capsys.readouterr().err.strip() == (
        f"error: refusing to serve on 0.0.0.0 with no users: anyone who reaches the port {exposed}; "
        "add an admin first: maskwatch users add NAME --role admin --config site.yaml")


@pytest.mark.parametrize("command", [["users", "list"], ["tokens", "list"], ["serve", "--port", "1"]])
@pytest.mark.parametrize("url, said", [("postgresql+psycopg://site:Pa@Secret9@127.0.0.1:1/x", "holds an @: write it %40"),
                                       ("postgresql+psycopg://site:Secret9@127.0.0.1:no/x", "not a database URL")])
def test_a_database_url_on_the_command_line_is_checked_as_a_site_file_s(command, url, said):
    """A password holding an @ had the driver's error show its rest as the host ("failed to resolve
    host 'Secret9@127.0.0.1'"), a port that is no number a traceback: as storage.database refuses them."""
    result = runner.invoke(app, [*command, "--database", url])
    assert result.exit_code == 1 and said in result.output and "Secret9" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_backup_of_a_site_not_run_yet_names_no_snapshots_folder_it_did_not_make(tmp_path):
    """A site with its first user and no run yet has no snapshots folder; `backup` said
    `0 snapshots in DEST/snapshots`, a folder it had not made, for the restore to look for."""
    pytest.importorskip("sqlalchemy")
    site = tmp_path / "site.yaml"
    site.write_text("cameras: {door: {source: 'rtsp://127.0.0.1:1/x'}}\n")
    added = runner.invoke(app, ["users", "add", "ana", "--role", "admin", "--config", str(site)],
                          input="a long enough password\n")
    assert added.exit_code == 0, added.output
    dest = tmp_path / "backup"
    result = runner.invoke(app, ["backup", "--config", str(site), str(dest)])
    assert result.exit_code == 0 and sorted(p.name for p in dest.iterdir()) == ["maskwatch.db"]
    assert result.output == f"{dest / 'maskwatch.db'}: 0 events; no snapshots (no folder {tmp_path / 'snapshots'})\n"
