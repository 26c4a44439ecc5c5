"""The command line as a user meets it: help texts, option names, values refused by name, colour.
Fast (nothing is trained or served), unlike test_cli.py."""

import pytest
from typer.testing import CliRunner

from maskwatch.cli import app

runner = CliRunner()


def _leaf_commands():
    """(`maskwatch ...` words, command) for every command, `users add` and the like included."""
    import click

    def walk(words, command):
        if hasattr(command, "list_commands"):
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                yield from walk([*words, name], command.get_command(ctx, name))
        else:
            yield " ".join(words), command

    import typer

    return list(walk([], typer.main.get_command(app)))


def test_every_command_and_option_says_what_it_is_for_and_out_has_its_short_form():
    """`--help` showed `--seed [default: 0]`, `--port`, `tokens list` with no word of what they do;
    `fit-detector -o F.json` was "No such option: -o" where eight other commands took it."""
    unhelped, no_short = [], []
    for words, command in _leaf_commands():
        if not (command.help or "").strip():
            unhelped.append(words)
        for param in command.params:
            if param.param_type_name == "option" and param.name != "help" and not (param.help or "").strip():
                unhelped.append(f"{words} {param.opts[0]}")
            if "--out" in getattr(param, "opts", ()) and "-o" not in param.opts:
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


def test_prepare_refuses_a_split_it_cannot_make_before_cropping(sample_dir, tmp_path):
    result = runner.invoke(app, ["prepare", str(sample_dir), "-o", str(tmp_path / "w"), "--split-by", "photos"])
    assert result.exit_code == 1 and "--split-by must be 'photo' or 'face'" in result.output, result.output
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
