"""Progress bars only on a terminal; in a log or a pipe, a plain line every few seconds."""

import io

from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.progress import LogProgress, progress_bar


class Clock:
    """A clock the test moves: one second per item consumed."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_progress_is_plain_lines_at_most_every_few_seconds():
    log, clock = io.StringIO(), Clock()
    bar = LogProgress(range(100), desc="prepare", total=100, unit="photo", leave=True, stream=log, every=5.0,
                      clock=clock)
    for _ in bar:
        clock.now += 1.0
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert len(lines) == 19 + 1  # one every 5 s while running (at 5, 10 ... 95 s), and the last
    assert lines[0] == "prepare: 5/100 photo (5%) after 5.0 s, 1.0 photo/s, about 2 min left"
    assert lines[9] == "prepare: 50/100 photo (50%) after 50.0 s, 1.0 photo/s, about 50 s left"
    assert lines[-1].startswith("prepare: 100/100 photo (100%) done in 100.0 s")


def test_a_long_run_in_a_log_says_how_long_is_left_in_minutes_or_hours():
    log, clock = io.StringIO(), Clock()
    bar = LogProgress(range(90_000), desc="detect", total=90_000, unit="frame", leave=False, stream=log,
                      every=600.0, clock=clock)
    for _ in bar:  # an hour of 25 FPS video at 10 frames a second
        clock.now += 0.1
    lines = log.getvalue().splitlines()
    assert lines[0].endswith("10.0 frame/s, about 2 h 20 min left")
    assert lines[-1].endswith("10.0 frame/s, about 10 min left")


def test_a_fast_loop_in_a_log_writes_one_line():
    log = io.StringIO()
    assert list(progress_bar(range(10_000), desc="epoch 1/2", unit="batch", stream=log)) == list(range(10_000))
    assert log.getvalue().count("\n") == 1 and "\r" not in log.getvalue()
    assert log.getvalue().startswith("epoch 1/2: 10000/10000 batch (100%) done in")


def test_leave_false_and_disable_write_nothing_off_a_terminal():
    log = io.StringIO()
    list(progress_bar(range(50), desc="x", leave=False, stream=log))
    list(progress_bar(range(50), desc="x", disable=True, stream=log))
    assert log.getvalue() == ""


def test_close_after_a_break_writes_the_last_line_once():
    log = io.StringIO()
    bar = progress_bar(iter(range(100)), desc="detect", unit="frame", stream=log)
    for i in bar:
        if i == 2:
            break
    bar.close()
    bar.close()
    assert log.getvalue().splitlines() == [log.getvalue().splitlines()[0]]
    assert log.getvalue().startswith("detect: 3 frame stopped after")  # not through: said "done in"


def test_a_loop_stopped_before_its_total_says_stopped_after_not_done_in():
    """Ctrl-C's last line read "detect: 212/1500 frame (14%) done in ...", as if the run had finished."""
    log, clock = io.StringIO(), Clock()
    bar = LogProgress(range(1500), desc="detect", total=1500, unit="frame", leave=True, stream=log, every=60.0,
                      clock=clock)
    for i in bar:
        clock.now += 0.1
        if i == 211:
            break  # as run_frames leaves the loop on Ctrl-C
    bar.close()
    assert log.getvalue() == "detect: 212/1500 frame (14%) stopped after 21.2 s, 10.0 frame/s\n"
    log = io.StringIO()
    bar = LogProgress(range(3), desc="detect", total=3, unit="frame", leave=True, stream=log, every=60.0, clock=clock)
    for i in bar:
        if i == 2:
            break  # --max-frames reached: its total, done
    bar.close()
    assert " done in " in log.getvalue()


def test_on_a_terminal_it_is_a_tqdm_bar():
    term = Terminal()
    list(progress_bar(range(3), desc="prepare", stream=term))
    assert "\r" in term.getvalue() and "prepare" in term.getvalue()


def test_cli_output_to_a_pipe_has_no_carriage_returns(sample_dir, tmp_path):
    """CliRunner's streams are not terminals, like a log file or `| tee`."""
    result = CliRunner().invoke(app, ["prepare", str(sample_dir), "--out", str(tmp_path / "w"), "--size", "16"])
    assert result.exit_code == 0, result.output
    assert "\r" not in result.output
    assert "prepare: 40/40 photo (100%) done in" in result.output
