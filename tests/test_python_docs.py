"""maskwatch as a user's Python sees it: docs/python.md's and README's python blocks run as a user
runs them (in order, in one namespace, from a folder holding the files they name: store.jpg, a
detect run's detections.jsonl, door.mp4), so that the pages stay true to the code; and the
package's public names."""

from __future__ import annotations

import re

import cv2
import pytest

from maskwatch import Detector
from maskwatch.video.pipeline import run_detect
from tests.conftest import ROOT, SAMPLE
from tests.test_detection import make_video

PAGE = ROOT / "docs" / "python.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


def run_blocks(blocks: list[str], where: str) -> dict:
    """Each block exec'd in order in one namespace (a later block uses what an earlier one made);
    AssertionError naming the block that raised."""
    namespace: dict = {"__name__": "__main__"}
    for number, block in enumerate(blocks, 1):
        try:
            exec(compile(block, f"{where}, python block {number}", "exec"), namespace)
        except Exception as err:
            raise AssertionError(f"{where}: python block {number} raised {type(err).__name__}: {err}\n{block}") from err
    return namespace


@pytest.fixture(scope="module")
def user_files(tmp_path_factory):
    """store.jpg (a sample photo of three faces), detections/ (a detect run on it) and door.mp4 (a clip
    made as the frame loop's tests make one)."""
    folder = tmp_path_factory.mktemp("user")
    cv2.imwrite(str(folder / "store.jpg"), cv2.imread(str(SAMPLE / "images" / "maksssksksss129.png")))
    run_detect(str(folder / "store.jpg"), folder / "detections", Detector.load().for_photos(), progress=False,
               save_media=False)
    make_video(folder / "door.mp4", SAMPLE, frames=6)
    return folder


@pytest.fixture
def user_folder(user_files, monkeypatch):
    """The user's files as the working folder, where the blocks name them."""
    monkeypatch.chdir(user_files)
    return user_files


def test_every_python_block_of_the_python_page_runs(user_folder, capsys):
    blocks = BLOCK.findall(PAGE.read_text(encoding="utf-8"))
    assert len(blocks) >= 5, f"docs/python.md: {len(blocks)} python blocks found, 5 expected"
    namespace = run_blocks(blocks, "docs/python.md")
    printed = capsys.readouterr().out.splitlines()
    # what the page says they print: each face's box, label, probabilities and score; a crop's label;
    # predict_boxes' Faces; each frame of detections.jsonl; each tracked person's voted label
    labels = [face.label for face in namespace["detector"].detect(cv2.imread("store.jpg"))]
    assert len(labels) == 3 and all(line.startswith("(") for line in printed[:3]), printed
    assert [line.split(") ")[1].split()[0] for line in printed[:3]] == labels
    assert printed[3] in labels and printed[4].startswith("[Face(box=")
    assert f"store 400 295 {labels.count('without_mask')}" in printed
    people = [(person.track_id, person.decision) for person in namespace["people"]]
    assert people and all(f"{track_id} {decision} " in "\n".join(printed) for track_id, decision in people)
    # the video block is `maskwatch detect`'s loop: the same people as its summary.json
    detected = run_detect("door.mp4", user_folder / "run", Detector.load(), progress=False, save_media=False)
    assert sorted(people) == sorted((person["track_id"], person["label"]) for person in detected.summary["people"])
    assert namespace["annotated"].shape == (295, 400, 3)
    # a setting changed from the shipped ones, not from DetectorConfig()'s CenterFace defaults
    stricter, shipped = namespace["stricter"], namespace["detector"]
    assert (stricter.config.backend, stricter.config.model, stricter.config.min_score) == (
        shipped.config.backend, shipped.config.model, 0.5)


def test_the_readmes_python_block_runs(user_folder, capsys):
    blocks = BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8"))
    assert blocks, "README.md: no python block found"
    run_blocks(blocks, "README.md")
    assert capsys.readouterr().out.count("\n") == 3  # store.jpg's three faces


def test_a_block_that_raises_fails_the_page_naming_it():
    with pytest.raises(AssertionError, match=r"page.md: python block 2 raised NameError: name 'face_crop'"):
        run_blocks(["x = 1", "print(face_crop)"], "page.md")


def test_dir_of_the_package_lists_every_public_name():
    """dir(maskwatch), and so a shell's tab completion, lacked the lazily imported Classifier and
    Detector: __getattr__ hands them out without putting them in the module."""
    import maskwatch

    assert set(maskwatch.__all__) <= set(dir(maskwatch))
    assert all(getattr(maskwatch, name) is not None for name in maskwatch.__all__)


def test_the_pages_intro_names_every_public_name():
    """Its "The public API is small" list left out FrameRecord and CLASSES."""
    import maskwatch

    intro = PAGE.read_text(encoding="utf-8").split("\n\n")[1]
    assert intro.startswith("The public API is small")
    assert [name for name in maskwatch.__all__ if f"`{name}`" not in intro] == []


def test_dir_of_the_package_lists_nothing_but_its_api():
    """dir(maskwatch) showed os, TYPE_CHECKING and PackageNotFoundError: what the package imports for
    its own use. Left: __all__, MAX_PIXELS (maskwatch.data.images' limit) and the submodules."""
    import maskwatch

    public = [name for name in dir(maskwatch) if not name.startswith("_")]
    submodules = [name for name in public if getattr(getattr(maskwatch, name), "__name__", "") == f"maskwatch.{name}"]
    assert sorted(set(public) - {*maskwatch.__all__, "MAX_PIXELS", *submodules}) == []
    assert "__version__" in dir(maskwatch)
