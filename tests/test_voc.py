import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
        (voc_xml("p.png", "nan", 10, []), "<size/width> must be a finite number, got 'nan'"),
        ("<?xml version='1.0' encoding='bogus'?>" + voc_xml("p.png", 10, 10, []), "unknown encoding"),
    ],
)
def test_bad_files_name_file_and_problem(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(AnnotationError) as err:
        load_voc_annotation(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("coordinate, problem", [("abc", "<bndbox/xmax> must be a number"),
                                                 ("inf", "<bndbox/xmax> must be a finite number"),
                                                 ("nan", "<bndbox/xmax> must be a finite number"),
                                                 ("", "missing <bndbox/xmax>")])
def test_an_object_that_cannot_be_read_is_that_faces_problem_not_the_photos(tmp_path, coordinate, problem):
    ann = load_voc_annotation(write(tmp_path, voc_xml("p.png", 10, 10, [("with_mask", (1, 1, 5, 5)),
                                                                         ("with_mask", (1, 1, coordinate, 5))])))
    good, bad = ann.objects
    assert ann.object_problem(good) is None and problem in ann.object_problem(bad)


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


# --- Bad input at scale: mutated XML never raises anything but AnnotationError ---

SEED = voc_xml("p.png", 400, 226, [("with_mask", (42, 88, 68, 120)), ("without_mask", (1, 2, 30, 40))]).encode()
FIELDS = [b"p.png", b"400", b"226", b"with_mask", b"42", b"88", b"68", b"120", b"annotation", b"bndbox", b"size"]
NASTY = [b"nan", b"inf", b"-inf", b"1e999", b"-0", b"0x10", b"\xff\xfe", b"\x00", b"&lol;", b"<!--", b"]]>",
         b"<?xml version='1.0' encoding='bogus'?>", b"<!DOCTYPE a [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>",
         "٣".encode(), b"1_000", b" 7 ", b"\xef\xbb\xbf"]


@st.composite
def mutated_voc(draw) -> bytes:
    """The seed file with fields swapped for odd values, bytes flipped, cut, inserted or deleted."""
    data = SEED
    for _ in range(draw(st.integers(0, 3))):
        old = draw(st.sampled_from(FIELDS))
        new = draw(st.one_of(st.sampled_from(NASTY), st.binary(max_size=12),
                             st.text(max_size=12).map(lambda t: t.encode("utf-8", "surrogatepass"))))
        data = data.replace(old, new, 1)
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["prepend", "insert", "delete", "flip", "cut"]))
        if op == "prepend":  # a declaration, a BOM or a doctype only counts at the very start
            data = draw(st.sampled_from(NASTY)) + data
        elif op == "insert":
            data = data[:at] + draw(st.one_of(st.sampled_from(NASTY), st.binary(max_size=8))) + data[at:]
        elif op == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 16)):]
        elif op == "flip" and at < len(data):
            data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
        elif op == "cut":
            data = data[:at]
    return data


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=mutated_voc())
def test_mutated_annotations_raise_only_annotation_error(tmp_path, data):
    path = tmp_path / "fuzz.xml"
    path.write_bytes(data)
    try:
        ann = load_voc_annotation(path)
    except AnnotationError as err:
        assert str(path) in str(err)
        return
    assert ann.width > 0 and ann.height > 0 and ann.filename
    for obj in ann.objects:
        assert all(math.isfinite(v) for v in obj.box)
        ann.object_problem(obj)  # judging an object never raises either
