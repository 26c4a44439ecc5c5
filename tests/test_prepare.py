import csv
import re
import json
import shutil

import cv2
import numpy as np
import pytest

from maskwatch.data.crops import CropSpec, crop_face
from maskwatch.data.prepare import FACE_COLUMNS, PrepareError, prepare, read_faces_csv
from maskwatch.data.voc import load_voc_annotation
from tests.conftest import voc_xml


def read_skipped(work):
    with open(work / "skipped.csv") as fh:
        return list(csv.DictReader(fh))


def test_sample_gives_one_row_and_one_crop_per_face(tmp_path, sample_dir):
    result = prepare(sample_dir, tmp_path / "w", CropSpec(size=40, margin=0.2), progress=False)
    expected = sum(len(load_voc_annotation(p).objects) for p in sample_dir.glob("annotations/*.xml"))
    rows = read_faces_csv(tmp_path / "w" / "faces.csv")
    assert result.faces == len(rows) == expected
    assert result.per_class == {"with_mask": 124, "without_mask": 76, "mask_weared_incorrect": 18}
    assert set(rows[0]) == set(FACE_COLUMNS)
    assert len({r["face_id"] for r in rows}) == len(rows)
    for row in rows[:20]:
        crop = cv2.imread(str(tmp_path / "w" / row["crop"]), cv2.IMREAD_UNCHANGED)
        assert crop.shape == (40, 40, 3)
        assert f"/{row['label']}/" in f"/{row['crop']}"
        assert 0 <= row["xmin"] < row["xmax"] <= row["width"]
        assert 0 <= row["ymin"] < row["ymax"] <= row["height"]
    meta = json.loads((tmp_path / "w" / "prepare.json").read_text())
    assert meta["crop"] == {"size": 40, "margin": 0.2, "grey": False}
    assert read_skipped(tmp_path / "w") == []


def test_face_ids_are_stable_across_runs(tmp_path, small_dataset):
    prepare(small_dataset, tmp_path / "a", CropSpec(size=16), progress=False)
    prepare(small_dataset, tmp_path / "b", CropSpec(size=16, grey=True), progress=False)
    ids_a = [r["face_id"] for r in read_faces_csv(tmp_path / "a" / "faces.csv")]
    ids_b = [r["face_id"] for r in read_faces_csv(tmp_path / "b" / "faces.csv")]
    assert ids_a == ids_b
    crop = cv2.imread(str(tmp_path / "b" / read_faces_csv(tmp_path / "b" / "faces.csv")[0]["crop"]),
                      cv2.IMREAD_UNCHANGED)
    assert crop.shape == (16, 16)


def break_dataset(data):
    """Seven bad inputs of the kinds users send, next to the good photos."""
    images, anns = data / "images", data / "annotations"
    good = cv2.imread(str(next(images.glob("*.png"))))
    (anns / "broken.xml").write_text("<annotation><filename>broken.png</filename><size>")
    (images / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    (anns / "corrupt.xml").write_text(voc_xml("corrupt.png", 50, 50, [("with_mask", (1, 1, 20, 20))]))
    (anns / "missing.xml").write_text(voc_xml("missing.png", 50, 50, [("with_mask", (1, 1, 20, 20))]))
    h, w = good.shape[:2]
    cv2.imwrite(str(images / "odd.png"), good)
    (anns / "odd.xml").write_text(voc_xml("odd.png", w, h, [
        ("with_mask", (1, 1, 20, 20)),            # fine
        ("with_mask", (w + 5, 1, w + 30, 20)),   # wholly outside
        ("helmet", (1, 1, 20, 20)),              # unknown label
        ("without_mask", (-4, h - 10, 15, h + 6)),  # reaches outside: clipped, kept
        ("with_mask", (w - 0.5, 1, w + 10, 20)),  # half a pixel inside: no face to crop
    ]))
    cv2.imwrite(str(data / "secret.png"), good)  # beside the images folder, not in it
    (anns / "escape.xml").write_text(voc_xml("../secret.png", w, h, [("with_mask", (1, 1, 20, 20))]))


def test_bad_inputs_are_skipped_and_reported(tmp_path, small_dataset):
    break_dataset(small_dataset)
    result = prepare(small_dataset, tmp_path / "w", CropSpec(size=16), progress=False)
    skipped = read_skipped(tmp_path / "w")
    problems = " | ".join(f"{s['where']}: {s['problem']}" for s in skipped)
    assert len(skipped) == 7, problems
    assert "broken.xml: malformed XML" in problems
    assert "corrupt.png: not a readable image" in problems
    assert "missing.png: image file not found" in problems
    assert "odd.xml object 1: box" in problems and "lies outside" in problems
    assert "odd.xml object 2: unknown label 'helmet'" in problems
    assert "odd.xml object 4: box" in problems and "has under a pixel inside" in problems
    assert "escape.xml: <filename> '../secret.png' leaves the images folder" in problems
    rows = {r["face_id"]: r for r in read_faces_csv(tmp_path / "w" / "faces.csv")}
    assert "odd-000" in rows and "odd-003" in rows
    assert rows["odd-003"]["clipped"] == 1 and rows["odd-003"]["xmin"] == 0
    assert result.faces == len(rows)


def test_an_upper_case_suffix_is_read_and_what_no_annotation_uses_is_listed(tmp_path, small_dataset):
    """a.XML, a stray file and a photo no annotation names were left out without a word."""
    anns, images = small_dataset / "annotations", small_dataset / "images"
    first = sorted(anns.glob("*.xml"))[0]
    first.rename(first.with_suffix(".XML"))
    (anns / "notes.txt").write_text("labelled by Ana")
    (images / "unlabelled.png").write_bytes((images / f"{first.stem}.png").read_bytes())
    result = prepare(small_dataset, tmp_path / "w", CropSpec(size=16), progress=False)
    assert result.photos == 3
    problems = {s["where"].rsplit("/", 1)[-1]: s["problem"] for s in read_skipped(tmp_path / "w")}
    assert problems == {"notes.txt": "not an .xml annotation file: not read",
                        "unlabelled.png": "no annotation names this image: not read"}


def test_strict_stops_at_first_problem_and_writes_nothing(tmp_path, small_dataset):
    break_dataset(small_dataset)
    with pytest.raises(PrepareError, match="broken.xml: malformed XML"):
        prepare(small_dataset, tmp_path / "w", CropSpec(size=16), strict=True, progress=False)
    assert not (tmp_path / "w").exists()
    assert list(tmp_path.glob(".w*")) == []


def test_failure_keeps_previous_output(tmp_path, small_dataset):
    prepare(small_dataset, tmp_path / "w", CropSpec(size=16), progress=False)
    before = (tmp_path / "w" / "faces.csv").read_text()
    break_dataset(small_dataset)
    with pytest.raises(PrepareError):
        prepare(small_dataset, tmp_path / "w", CropSpec(size=16), strict=True, progress=False)
    assert (tmp_path / "w" / "faces.csv").read_text() == before


@pytest.mark.parametrize("layout, message", [
    ("none", "dataset folder not found"),
    ("empty", "expected an annotations/ folder"),
    ("no-xml", "no .xml annotation files"),
])
def test_unusable_folders(tmp_path, layout, message):
    data = tmp_path / "data"
    if layout != "none":
        data.mkdir()
    if layout == "no-xml":
        (data / "annotations").mkdir()
    with pytest.raises(PrepareError, match=message):
        prepare(data, tmp_path / "w", CropSpec(), progress=False)


def test_no_usable_face_names_the_first_problem(tmp_path, small_dataset):
    """Annotations whose images are elsewhere: the error said only "(3 problems)", and the
    skipped.csv that lists them is not written when nothing is."""
    shutil.rmtree(small_dataset / "images")
    with pytest.raises(PrepareError, match=r"\(3 problems; the first: .*\.xml: .*\.png: image file not found\)"):
        prepare(small_dataset, tmp_path / "w", CropSpec(size=16), progress=False)


def test_crop_margin_keeps_face_centred_at_the_border():
    image = np.zeros((50, 50, 3), np.uint8)
    image[0:10, 0:10] = 255  # a white face in the corner
    crop = crop_face(image, (0, 0, 10, 10), CropSpec(size=20, margin=0.5))
    # Replicated border: the face fills the centre and the padding copies its edge.
    assert crop.shape == (20, 20, 3)
    assert crop[10, 10].tolist() == [255, 255, 255]
    with pytest.raises(ValueError, match="no area inside"):
        crop_face(image, (60, 60, 70, 70), CropSpec())
    # A one-pixel box at a half-pixel offset is one pixel, not none (halves round to even).
    assert crop_face(image, (11.5, 11.5, 12.5, 12.5), CropSpec(size=8, margin=0)).shape == (8, 8, 3)


CVAT_XML = """<?xml version="1.0" encoding="utf-8"?>
<annotation><folder></folder><filename>{name}</filename>
<source><database>Unknown</database><annotation>Unknown</annotation><image>Unknown</image></source>
<size><width>{w}</width><height>{h}</height><depth></depth></size><segmented>0</segmented>
<object><name>mask_weared_incorrect</name><truncated>0</truncated><occluded>1</occluded><difficult>1</difficult>
<bndbox><xmin>1.5</xmin><ymin>2.25</ymin><xmax>20.75</xmax><ymax>{over}</ymax></bndbox>
<attributes><attribute><name>occluded</name><value>true</value></attribute></attributes></object>
<object><name>Mask_weared_incorrect</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>
<object><name>with mask</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>
<object><name>unassessable</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>
</annotation>"""


def test_a_labelling_tools_file_reads_and_its_slips_are_named_with_the_fix(tmp_path, small_dataset):
    """A site's own corrections as CVAT and labelImg save them: decimals, <difficult>, <occluded>,
    <attributes>, a box past the edge read; a label typed otherwise or left unassessable, and a photo
    converted after its annotation named it, were said without what was meant."""
    from typer.testing import CliRunner

    from maskwatch.cli import app

    anns, images = small_dataset / "annotations", small_dataset / "images"
    first, second = sorted(anns.glob("*.xml"))[:2]
    h, w = cv2.imread(str(images / f"{first.stem}.png")).shape[:2]
    first.write_text(CVAT_XML.format(name=f"{first.stem}.png", w=w, h=h, over=h + 7))
    photo = images / f"{second.stem}.png"  # converted to JPEG after `annotations` named it .png
    cv2.imwrite(str(photo.with_suffix(".jpg")), cv2.imread(str(photo)))
    photo.unlink()
    # Split by face: three photos are too few for a per-photo split's five folds.
    result = CliRunner().invoke(app, ["prepare", str(small_dataset), "--out", str(tmp_path / "w"), "--size", "16",
                                      "--split-by", "face", "--quiet"])
    assert result.exit_code == 0, result.output
    rows = read_faces_csv(tmp_path / "w" / "faces.csv")
    cvat = next(r for r in rows if r["face_id"] == f"{first.stem}-000")
    assert (cvat["label"], cvat["xmin"], cvat["ymax"], cvat["clipped"]) == ("mask_weared_incorrect", 1.5, h, 1)
    problems = {s["where"].rsplit("/", 1)[-1]: s["problem"] for s in read_skipped(tmp_path / "w")}
    expected = "expected one of with_mask, without_mask, mask_weared_incorrect"
    assert problems[f"{first.name} object 1"] == (f"unknown label 'Mask_weared_incorrect', {expected}; "
                                                 "did you mean 'mask_weared_incorrect'?")
    assert problems[f"{first.name} object 2"] == f"unknown label 'with mask', {expected}; did you mean 'with_mask'?"
    assert problems[f"{first.name} object 3"] == (f"unknown label 'unassessable', {expected} (left for a person to "
                                                 "give a class: give it one)")
    assert problems[second.name] == (f"{photo}: image file not found (images/ holds {second.stem}.jpg: renamed? "
                                     "name it in its annotation)")
    # ... and each is on the screen, not only counted there
    assert f"5 inputs skipped:\n  {first} object 1: unknown label 'Mask_weared_incorrect'" in result.output
    assert f"  {second}: {photo}: image file not found (images/ holds" in result.output
    assert f"(all in {tmp_path / 'w'}/skipped.csv)" in result.output


def test_several_dataset_folders_are_prepared_as_one(tmp_path, small_dataset, sample_dir):
    """A site's own photos and the Kaggle set: `prepare` read one folder, and the docs' answer was to
    copy both into a third (`cp -n` keeping one of two files of one name in silence)."""
    from typer.testing import CliRunner

    from maskwatch.cli import app

    mine = tmp_path / "mine"
    (mine / "images").mkdir(parents=True)
    (mine / "annotations").mkdir()
    for xml in sorted(sample_dir.glob("annotations/*.xml"))[3:5]:  # two photos small_dataset has not
        shutil.copy(xml, mine / "annotations" / f"store-{xml.name}")
        shutil.copy(sample_dir / "images" / f"{xml.stem}.png", mine / "images")
    (mine / "images" / "unlabelled.png").write_bytes(b"")
    one = prepare(small_dataset, tmp_path / "one", CropSpec(size=16), progress=False)
    result = CliRunner().invoke(app, ["prepare", str(mine), str(small_dataset), "--out", str(tmp_path / "w"),
                                      "--size", "16", "--split-by", "face", "--quiet"])
    assert result.exit_code == 0, result.output
    rows = read_faces_csv(tmp_path / "w" / "faces.csv")
    assert {r["face_id"].rsplit("-", 1)[0] for r in rows} == (
        {f"store-{x.stem}" for x in sorted(sample_dir.glob("annotations/*.xml"))[3:5]}
        | {x.stem for x in small_dataset.glob("annotations/*.xml")})
    assert sum(r["face_id"].startswith("store-") for r in rows) == len(rows) - one.faces > 0
    assert all((tmp_path / "w" / r["crop"]).is_file() for r in rows)
    meta = json.loads((tmp_path / "w" / "prepare.json").read_text())
    assert meta["data"] == [str(mine.resolve()), str(small_dataset.resolve())]
    assert read_skipped(tmp_path / "w") == [{"where": str(mine / "images" / "unlabelled.png"),
                                             "problem": "no annotation names this image: not read"}]
    # One photo's name in both: its faces' ids, or the split's photo, would be taken for one; refused.
    clash = next(small_dataset.glob("annotations/*.xml"))
    shutil.copy(clash, mine / "annotations")
    with pytest.raises(PrepareError, match=re.escape(f"{mine} and {small_dataset} both hold annotations/{clash.name}: "
                                                     "rename one")):
        prepare([mine, small_dataset], tmp_path / "clash", CropSpec(size=16), progress=False)
    (mine / "annotations" / clash.name).unlink()
    photo = next(mine.glob("annotations/*.xml"))
    taken = load_voc_annotation(clash).filename  # an annotation of another name for a photo of that name
    photo.write_text(re.sub(r"<filename>[^<]+", f"<filename>{taken}", photo.read_text()))
    with pytest.raises(PrepareError, match=re.escape(f"both hold images/{taken}: rename one")):
        prepare([small_dataset, mine], tmp_path / "clash", CropSpec(size=16), progress=False)
    with pytest.raises(PrepareError, match="a dataset folder named twice"):
        prepare([small_dataset, small_dataset / "."], tmp_path / "twice", CropSpec(size=16), progress=False)
    assert not (tmp_path / "clash").exists() and not (tmp_path / "twice").exists()


def test_a_cvat_exports_folders_are_named_not_passed_over(tmp_path, small_dataset):
    """CVAT's "Pascal VOC 1.1" zip holds Annotations/ and JPEGImages/: unzipped into the folder
    `annotations` wrote, the corrections lay in Annotations/ and the old annotations/ was trained on."""
    anns = small_dataset / "annotations"
    corrected = small_dataset / "Annotations"
    corrected.mkdir()
    shutil.copy(next(anns.glob("*.xml")), corrected)
    with pytest.raises(PrepareError, match=re.escape(
            f"{small_dataset}: Annotations/ (a CVAT export's name) beside annotations/, which is the one read: put "
            "the XML files you mean in annotations/ and remove Annotations/")):
        prepare(small_dataset, tmp_path / "w", CropSpec(size=16), progress=False)
    shutil.rmtree(anns)
    with pytest.raises(PrepareError, match=re.escape(f"{small_dataset}: no annotations/ folder, and an Annotations/")):
        prepare(small_dataset, tmp_path / "w", CropSpec(size=16), progress=False)
    corrected.rename(anns)
    (small_dataset / "images").rename(small_dataset / "JPEGImages")
    with pytest.raises(PrepareError, match=re.escape(f"{small_dataset}: no images/ folder, and a JPEGImages/ (a CVAT "
                                                     "export's name): rename it images/")):
        prepare(small_dataset, tmp_path / "w", CropSpec(size=16), progress=False)
    assert not (tmp_path / "w").exists()


def test_two_folders_names_that_differ_only_in_case_are_refused(tmp_path, small_dataset, sample_dir):
    """`IMG_1.xml` in one folder and `img_1.xml` in the other: on macOS's or Windows's disk their
    faces' crops are one file (the second written over the first, both rows reading it), and
    `render` took the first folder's photo for both; only the same name in the same case was refused."""
    mine = tmp_path / "mine"
    (mine / "images").mkdir(parents=True)
    (mine / "annotations").mkdir()
    clash = next(small_dataset.glob("annotations/*.xml"))
    other = sorted(sample_dir.glob("annotations/*.xml"))[4]  # a photo small_dataset has not
    upper = f"{clash.stem.upper()}.xml"
    shutil.copy(other, mine / "annotations" / upper)
    shutil.copy(sample_dir / "images" / f"{other.stem}.png", mine / "images")
    with pytest.raises(PrepareError, match=re.escape(
            f"{small_dataset} and {mine} hold annotations/{clash.name} and annotations/{upper}, one name "
            "on a case-insensitive disk: rename one")):
        prepare([small_dataset, mine], tmp_path / "w", CropSpec(size=16), progress=False)
    (mine / "annotations" / upper).rename(mine / "annotations" / f"store-{other.name}")
    taken = load_voc_annotation(clash).filename
    (mine / "images" / f"{other.stem}.png").rename(mine / "images" / taken.upper())
    xml = mine / "annotations" / f"store-{other.name}"
    xml.write_text(re.sub(r"<filename>[^<]+", f"<filename>{taken.upper()}", xml.read_text()))
    with pytest.raises(PrepareError, match=re.escape(f"hold images/{taken} and images/{taken.upper()}, one name")):
        prepare([small_dataset, mine], tmp_path / "w", CropSpec(size=16), progress=False)
    assert not (tmp_path / "w").exists()


def test_an_annotations_folder_that_is_the_one_read_is_not_refused(tmp_path, small_dataset):
    """On macOS's or Windows's disk (case-insensitive) a CVAT export's Annotations/ is the folder
    annotations/ names: `prepare` called it one "beside annotations/" and said to remove it, which
    deleted the only annotations. Here the same view on Linux's disk: annotations/ a link to it."""
    (small_dataset / "annotations").rename(small_dataset / "Annotations")
    (small_dataset / "annotations").symlink_to("Annotations", target_is_directory=True)
    result = prepare(small_dataset, tmp_path / "w", CropSpec(size=16), progress=False)
    assert result.faces > 0 and not result.problems


def test_two_annotations_of_one_name_in_one_folder_are_refused(tmp_path, small_dataset):
    """a.xml and a corrected a.XML put beside it: both were read, the photo counted twice and its
    faces, uncorrected and corrected, trained on under the same ids."""
    xml = next(small_dataset.glob("annotations/*.xml"))
    shutil.copy(xml, xml.with_name(f"{xml.stem}.XML"))
    with pytest.raises(PrepareError, match=re.escape(f"{xml.with_name(xml.stem + '.XML')} and {xml.name}: two annotations of one name")):
        prepare(small_dataset, tmp_path / "w", CropSpec(size=16), progress=False)
    assert not (tmp_path / "w").exists()
