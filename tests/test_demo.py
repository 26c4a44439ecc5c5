"""The demo a newcomer opens: clips made from the bundled sample and a site config that runs as it is."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.demo import CLIPS, main, make_clip
from maskwatch.site.config import SiteConfigError, load_site_config

ROOT = Path(__file__).resolve().parents[1]


def test_a_demo_clip_pans_across_sample_photos(sample_dir, tmp_path):
    photos = [sample_dir / "images" / f"{stem}.png" for stem in CLIPS["entrance"][:2]]
    clip = make_clip(photos, tmp_path / "clip.mp4", size=(320, 240), fps=10, seconds_per_photo=1.0)
    video = cv2.VideoCapture(str(clip))
    frames = []
    while True:
        ok, frame = video.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == 20 and frames[0].shape == (240, 320, 3)
    assert cv2.absdiff(frames[0], frames[5]).mean() > 1  # the view moves


def test_the_demo_site_config_needs_no_variables_and_points_at_the_demo_clips(tmp_path):
    site = tmp_path / "examples"
    site.mkdir()
    shutil.copy(ROOT / "examples" / "demo-site.yaml", site)
    clips = tmp_path / "demo-output" / "clips"
    clips.mkdir(parents=True)
    for name in CLIPS:
        (clips / f"{name}.mp4").touch()  # the config checks that the files exist, not what they hold
    config = load_site_config(site / "demo-site.yaml", environ={})
    assert set(config.cameras) == set(CLIPS)
    assert all(Path(c.source).resolve().parent == clips.resolve() for c in config.cameras.values())
    assert config.server.host == "127.0.0.1"


def test_the_clip_maker_names_a_missing_sample(tmp_path, capsys):
    assert main([str(tmp_path), str(tmp_path / "out")]) == 1
    assert "sample photos missing" in capsys.readouterr().err
    assert main([]) == 2


def test_the_clip_maker_names_a_file_where_its_folder_goes(sample_dir, tmp_path, capsys):
    (tmp_path / "clips").touch()
    assert main([str(sample_dir), str(tmp_path / "clips")]) == 1  # was a FileExistsError traceback
    assert "File exists" in capsys.readouterr().err


def test_the_demo_site_before_make_demo_says_what_makes_its_clips(tmp_path):
    site = tmp_path / "examples"
    site.mkdir()
    shutil.copy(ROOT / "examples" / "demo-site.yaml", site)
    result = CliRunner().invoke(app, ["run", "--config", str(site / "demo-site.yaml"), "--check"])
    assert result.exit_code == 1
    assert "no such video file" in result.output and "made by `make demo`" in result.output


def test_a_report_on_the_demo_site_before_make_demo_reads_its_config(tmp_path):
    """`report` reads only the file and the store, yet refused the demo site for its clips not made
    ('no such video file'); `run --check` above still needs them."""
    site = tmp_path / "examples"
    site.mkdir()
    shutil.copy(ROOT / "examples" / "demo-site.yaml", site)
    result = CliRunner().invoke(app, ["report", "--config", str(site / "demo-site.yaml"), "--csv"])
    assert result.exit_code == 1 and "no such video file" not in result.output
    assert "no such database" in result.output  # the store is what a report needs
    assert len(load_site_config(site / "demo-site.yaml", environ={}, files=False).cameras) == 2


def test_the_config_check_carries_the_missing_video_files_as_paths(tmp_path):
    """run's `make demo` hint read the missing path back out of the error's text (a pattern over
    its wording); the error carries the paths, those only."""
    site = tmp_path / "examples"
    site.mkdir()
    text = (ROOT / "examples" / "demo-site.yaml").read_text()
    (site / "demo-site.yaml").write_text(text.replace("counter.mp4", "counter.mp4\n    detect_source: sub stream.mp4"))
    with pytest.raises(SiteConfigError) as raised:
        load_site_config(site / "demo-site.yaml", environ={})
    clips = site / ".." / "demo-output" / "clips"
    assert set(raised.value.missing_files) == {clips / "entrance.mp4", clips / "counter.mp4", site / "sub stream.mp4"}
    clips.mkdir(parents=True)
    for name in CLIPS:
        (clips / f"{name}.mp4").touch()
    (site / "demo-site.yaml").write_text(text.replace("cameras:", "cameras:\n  bad id!: {source: webcam:0}"))
    with pytest.raises(SiteConfigError) as raised:  # no file missing: none carried
        load_site_config(site / "demo-site.yaml", environ={})
    assert "bad id!" in str(raised.value) and raised.value.missing_files == ()


def test_a_mistyped_clip_where_the_demo_clips_are_made_is_not_sent_to_make_demo(tmp_path):
    """The hint came for any missing file under demo-output/clips/, a typo beside made clips too."""
    site = tmp_path / "examples"
    site.mkdir()
    text = (ROOT / "examples" / "demo-site.yaml").read_text()
    (site / "demo-site.yaml").write_text(text.replace("clips/entrance.mp4", "clips/entrnce.mp4"))
    clips = tmp_path / "demo-output" / "clips"
    clips.mkdir(parents=True)
    for name in CLIPS:
        (clips / f"{name}.mp4").touch()
    result = CliRunner().invoke(app, ["run", "--config", str(site / "demo-site.yaml"), "--check"])
    assert result.exit_code == 1
    assert "entrnce.mp4" in result.output and "make demo" not in result.output
    (clips / "counter.mp4").unlink()  # one of the demo's own clips missing: the hint again
    result = CliRunner().invoke(app, ["run", "--config", str(site / "demo-site.yaml"), "--check"])
    assert result.exit_code == 1 and "made by `make demo`" in result.output
