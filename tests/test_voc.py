from pathlib import Path

import pytest

from maskwatch.data.voc import AnnotationError, VocObject, load_voc_annotation
from tests.conftest import voc_xml


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "a.xml"
    path.write_text(text)
    return path


def test_reads_filename_size_and_objects(tmp_path):
    path = write(tmp_path, voc_xml("p.png", 100, 80, [("with_mask", (1, 2, 30, 40)),
                                                     ("without_mask", (50, 10, 70, 35))]))
    ann = load_voc_annotation(path)
    assert (ann.filename, ann.width, ann.height) == ("p.png", 100, 80)
    assert [o.label for o in ann.objects] == ["with_mask", "without_mask"]
    assert ann.objects[0].box == (1, 2, 30, 40)
    assert ann.objects[1].to_face().label == "without_mask"


@pytest.mark.parametrize(
    "text, message",
    [
        ("<annotation><filename>p.png</filename>", "malformed XML"),
        ("<notes/>", "root element must be <annotation>"),
        ("<annotation><size><width>5</width><height>5</height></size></annotation>", "missing <filename>"),
        ("<annotation><filename>p.png</filename><size><width>x</width><height>5</height></size></annotation>",
         "<size/width> must be a number, got 'x'"),
        (voc_xml("p.png", 10, 10, [("with_mask", (1, 1, "abc", 5))]), "<bndbox/xmax> must be a number"),
    ],
)
def test_bad_files_name_file_and_problem(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(AnnotationError) as err:
        load_voc_annotation(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_entity_expansion_is_refused(tmp_path):
    bomb = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
            '<annotation><filename>&lol2;</filename></annotation>')
    with pytest.raises(AnnotationError, match="unsafe XML refused"):
        load_voc_annotation(write(tmp_path, bomb))


def test_missing_file(tmp_path):
    with pytest.raises(AnnotationError, match="cannot read file"):
        load_voc_annotation(tmp_path / "nope.xml")


@pytest.mark.parametrize(
    "obj, problem",
    [
        (VocObject(0, "with_mask", (10, 10, 20, 20)), None),
        (VocObject(0, "with_mask", (-5, 90, 20, 120)), None),  # reaches outside: clipped later
        (VocObject(0, "hat", (10, 10, 20, 20)), "unknown label 'hat'"),
        (VocObject(0, "with_mask", (10, 10, 10, 20)), "zero area"),
        (VocObject(0, "with_mask", (120, 10, 130, 20)), "outside the 100x100 image"),
    ],
)
def test_object_problem(tmp_path, obj, problem):
    ann = load_voc_annotation(write(tmp_path, voc_xml("p.png", 100, 100, [])))
    found = ann.object_problem(obj)
    if problem is None:
        assert found is None
    else:
        assert problem in found
