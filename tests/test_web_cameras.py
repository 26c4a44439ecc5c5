"""Cheap cameras over HTTP, for real on loopback: MJPEG streams as ESP32-CAMs and phone apps send
them, snapshot URLs (one JPEG per GET), a login page where a picture was expected."""

from __future__ import annotations

import pytest

from maskwatch.site.probe import probe_camera
from tests.web_camera import PASSWORD, USER, web_camera


@pytest.fixture(scope="module")
def camera():
    with web_camera() as (where, asked):
        yield where


@pytest.fixture(scope="module")
def locked_camera():
    with web_camera(login=True) as (where, asked):
        yield where


@pytest.mark.parametrize("path", ["/stream", "/stream?nolength", "/stream?nodash"])
def test_an_mjpeg_stream_opens_with_or_without_lengths_and_dashes(camera, path):
    probe = probe_camera("camera door", f"http://{camera}{path}", 3.0)
    assert probe.ok, probe.detail
    assert f"http://{camera}{path}: 160x120" in probe.detail


def test_an_mjpeg_stream_behind_basic_auth_opens_and_a_wrong_password_is_said(locked_camera):
    right = probe_camera("camera door", f"http://{USER}:{PASSWORD}@{locked_camera}/stream", 3.0)
    wrong = probe_camera("camera door", f"http://{USER}:wrong@{locked_camera}/stream", 3.0)
    assert right.ok, right.detail
    assert (wrong.ok, wrong.detail) == (False, f"http://{USER}:***@{locked_camera}/stream: the camera refused the "
                                               "user name or password (401)")


def test_a_login_page_where_a_stream_was_expected_is_said_as_a_web_page(camera):
    """It read `cannot open`: a camera that logs in by a form, or its home page's path, told nothing."""
    probe = probe_camera("camera door", f"http://{camera}/login.html", 3.0)
    assert (probe.ok, probe.detail) == (False, f"http://{camera}/login.html: the camera answers with a web page "
                                               "(text/html), not a video stream or a picture: its login page, or its "
                                               "web page's path instead of its MJPEG stream's or snapshot's (see its "
                                               "manual)")
