"""`maskwatch annotations`: a detect run's faces as VOC or COCO pre-annotations, read back by
maskwatch's own VOC reader and `prepare`; real `detect` runs on a few sample photos."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.video.annotations import CATEGORIES, REVIEW
from maskwatch.data.crops import CropSpec
from maskwatch.data.photos import photo_split
from maskwatch.data.prepare import prepare
from maskwatch.data.voc import load_voc_annotation

runner = CliRunner()
PHOTOS = ("maksssksksss129.png", "maksssksksss132.png", "maksssksksss134.png", "maksssksksss145.png")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def run(tmp_path_factory, sample_dir):
    """A detect run on four sample photos; one face's line then says `unassessable`, as detect
    writes a face the classifier declined to answer."""
    root = tmp_path_factory.mktemp("annotations")
    photos, out = root / "photos", root / "det"
    photos.mkdir()
    for name in PHOTOS:
        shutil.copy(sample_dir / "images" / name, photos / name)
    result = invoke("detect", photos, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
    assert len(lines) == len(PHOTOS) and all(line["faces"] for line in lines)
    lines[0]["faces"][0]["label"] = "unassessable"
    (out / "detections.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return photos, out, lines


def clipped(box, width, height):
    x0, y0, x1, y1 = box
    return (min(max(x0, 0), width), min(max(y0, 0), height), min(max(x1, 0), width), min(max(y1, 0), height))


def test_voc_is_read_back_by_maskwatchs_reader_with_the_same_boxes_and_labels(run, tmp_path):
    photos, out, lines = run
    target = tmp_path / "voc"
    result = invoke("annotations", out, "--photos", photos, "--to", target, "--format", "voc")
    assert result.exit_code == 0, result.output
    faces = sum(len(line["faces"]) for line in lines)
    assert f"4 photos, {faces} faces (1 unassessable" in result.output
    for line in lines:
        ann = load_voc_annotation(target / "annotations" / f"{line['name']}.xml")
        assert (target / "images" / ann.filename).read_bytes() == (photos / ann.filename).read_bytes()
        assert (ann.width, ann.height) == (line["width"], line["height"])
        expected = [(face["label"], tuple(round(v) for v in clipped(face["box"], ann.width, ann.height)))
                    for face in line["faces"]]
        assert [(o.label, o.box) for o in ann.objects] == expected
    # `prepare` takes every face with a class, and names the one left for the labeller
    work = prepare(target, tmp_path / "work", CropSpec(size=32), progress=False)
    assert work.photos == 4 and work.faces == faces - 1
    assert [why for _, why in work.problems] == [f"unknown label '{REVIEW}', expected one of "
                                                "with_mask, without_mask, mask_weared_incorrect (left for a "
                                                "person to give a class: give it one)"]
    with pytest.raises(ValueError, match=f"unknown label '{REVIEW}'"):  # nor taken as background by a detector
        photo_split(target)


def test_coco_holds_pixel_boxes_as_x_y_w_h_with_scores(run, tmp_path):
    photos, out, lines = run
    target = tmp_path / "coco"
    result = invoke("annotations", out, "--photos", photos, "--to", target, "--format", "coco")
    assert result.exit_code == 0, result.output
    doc = json.loads((target / "annotations.json").read_text())
    assert [c["name"] for c in doc["categories"]] == list(CATEGORIES)
    names = {c["id"]: c["name"] for c in doc["categories"]}
    assert [(i["file_name"], i["width"], i["height"]) for i in doc["images"]] == [
        (name, line["width"], line["height"]) for name, line in zip(PHOTOS, lines)]
    assert all((target / "images" / i["file_name"]).is_file() for i in doc["images"])
    written = [(a["image_id"], names[a["category_id"]], a["bbox"], a["score"]) for a in doc["annotations"]]
    expected = []
    for image_id, line in enumerate(lines, start=1):
        for face in line["faces"]:
            x0, y0, x1, y1 = clipped(face["box"], line["width"], line["height"])
            expected.append((image_id, face["label"], pytest.approx([x0, y0, x1 - x0, y1 - y0], abs=0.011),
                             face["score"]))
    assert written == expected
    assert len({a["id"] for a in doc["annotations"]}) == len(doc["annotations"])


def test_an_existing_folder_is_not_replaced(run, tmp_path):
    photos, out, _ = run
    target = tmp_path / "labelled"
    target.mkdir()
    (target / "corrected.xml").write_text("a person's work")
    result = invoke("annotations", out, "--photos", photos, "--to", target)
    assert result.exit_code == 1 and "already there" in result.output, result.output
    assert [p.name for p in target.iterdir()] == ["corrected.xml"]
    target.joinpath("corrected.xml").unlink()  # an empty folder is taken
    assert invoke("annotations", out, "--photos", photos, "--to", target).exit_code == 0


def test_a_photo_gone_or_changed_since_detect_stops_it_with_nothing_written(run, tmp_path):
    photos, out, _ = run
    moved = tmp_path / "photos"
    shutil.copytree(photos, moved)
    (moved / PHOTOS[1]).unlink()
    result = invoke("annotations", out, "--photos", moved, "--to", tmp_path / "a")
    assert result.exit_code == 1 and "photo 'maksssksksss132' is not in" in result.output, result.output
    shutil.copy(photos / PHOTOS[1], moved / PHOTOS[1])
    image = cv2.imread(str(moved / PHOTOS[2]))
    cv2.imwrite(str(moved / PHOTOS[2]), cv2.resize(image, None, fx=0.5, fy=0.5))
    result = invoke("annotations", out, "--photos", moved, "--to", tmp_path / "a")
    assert result.exit_code == 1 and "edited or replaced since?" in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]  # no folder, no .partial left
    shutil.copy(photos / PHOTOS[2], moved / PHOTOS[2])
    shutil.copy(photos / PHOTOS[2], moved / "added-since.png")
    result = invoke("annotations", out, "--photos", moved, "--to", tmp_path / "a", "--format", "coco")
    assert result.exit_code == 0 and "warning: 1 photo of" in result.output, result.output
    assert not (tmp_path / "a" / "images" / "added-since.png").exists()


def test_what_is_no_photo_runs_output_is_refused_in_one_line(run, tmp_path, sample_dir):
    photos, out, _ = run
    result = invoke("annotations", tmp_path, "--photos", photos, "--to", tmp_path / "a")
    assert result.exit_code == 1 and "no detections.jsonl here" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1

    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (640, 480))
    for name in PHOTOS[:2] * 2:
        writer.write(cv2.resize(cv2.imread(str(photos / name)), (640, 480)))
    writer.release()
    assert invoke("detect", clip, "--out", tmp_path / "v", "--no-media", "--quiet").exit_code == 0
    for source in (photos, clip):
        result = invoke("annotations", tmp_path / "v", "--photos", source, "--to", tmp_path / "a")
        assert result.exit_code == 1 and "photos only" in result.output, result.output
    result = invoke("annotations", out, "--photos", clip, "--to", tmp_path / "a")
    assert result.exit_code == 1 and "a video; annotations are written for photos only" in result.output
    assert not (tmp_path / "a").exists()
    assert invoke("annotations", out, "--photos", photos, "--to", tmp_path / "a", "--format", "yolo").exit_code == 2


def test_a_photo_turned_by_its_exif_orientation_is_written_turned(tmp_path, sample_dir):
    """detect reads a phone photo turned by its EXIF orientation, and the boxes are in that frame;
    the copy kept the tag and the unturned pixels, which labelImg shows as they are: every box
    elsewhere, and the <size> it saved the other way round (prepare then skipped the photo)."""
    Image = pytest.importorskip("PIL.Image")
    photos = tmp_path / "photos"
    photos.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise: its pixels are stored turned the other way
    upright = Image.open(sample_dir / "images" / PHOTOS[0]).convert("RGB")
    upright.transpose(Image.Transpose.ROTATE_90).save(photos / "phone.jpg", exif=exif.tobytes(), quality=95)
    assert invoke("detect", photos, "--out", tmp_path / "det", "--quiet", "--no-media").exit_code == 0
    (line,) = [json.loads(text) for text in (tmp_path / "det" / "detections.jsonl").read_text().splitlines()]
    assert (line["width"], line["height"]) == upright.size and line["faces"]  # read turned, upright
    result = invoke("annotations", tmp_path / "det", "--photos", photos, "--to", tmp_path / "voc")
    assert result.exit_code == 0, result.output
    written = cv2.imread(str(tmp_path / "voc" / "images" / "phone.jpg"), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    assert written.shape[:2] == (line["height"], line["width"])  # the pixels as a tool ignoring EXIF shows them
    turned = cv2.imread(str(photos / "phone.jpg"))
    assert np.abs(written.astype(int) - turned).mean() < 3  # the photo detect read, encoded again
    work = prepare(tmp_path / "voc", tmp_path / "work", CropSpec(size=32), progress=False)
    assert work.photos == 1 and not work.problems


def test_photos_of_one_stem_get_images_named_as_their_xml_files(tmp_path, sample_dir):
    """a.jpg beside a.png: detect names them by their whole names, the XML files were a.jpg.xml and
    a.png.xml beside images a.jpg and a.png, and labelImg and CVAT, which pair an image with the XML
    of its stem (a.xml), found no annotation for either."""
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(sample_dir / "images" / PHOTOS[0], photos / "a.png")
    cv2.imwrite(str(photos / "a.jpg"), cv2.imread(str(sample_dir / "images" / PHOTOS[1])))
    assert invoke("detect", photos, "--out", tmp_path / "det", "--quiet", "--no-media").exit_code == 0
    for fmt in ("voc", "coco"):
        result = invoke("annotations", tmp_path / "det", "--photos", photos, "--to", tmp_path / fmt, "--format", fmt)
        assert result.exit_code == 0, result.output
    images = sorted(p.name for p in (tmp_path / "voc" / "images").iterdir())
    assert images == ["a.jpg.jpg", "a.png.png"]
    for xml in (tmp_path / "voc" / "annotations").glob("*.xml"):
        ann = load_voc_annotation(xml)
        assert Path(ann.filename).stem == xml.stem and ann.filename in images
        assert (tmp_path / "voc" / "images" / ann.filename).read_bytes() == (photos / xml.stem).read_bytes()
    assert prepare(tmp_path / "voc", tmp_path / "work", CropSpec(size=32), progress=False).photos == 2
    doc = json.loads((tmp_path / "coco" / "annotations.json").read_text())
    assert sorted(i["file_name"] for i in doc["images"]) == images
    assert sorted(p.name for p in (tmp_path / "coco" / "images").iterdir()) == images
