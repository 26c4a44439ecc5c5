"""The dashboard in headless Chromium (Debian's), driven by Playwright: upload, see the result."""

import shutil

import pytest

from tests.test_serve import server  # noqa: F401  (the running service)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from playwright import sync_api
    if not shutil.which(CHROMIUM):
        pytest.fail("Chromium is missing: install Debian's chromium (the Makefile's browser target)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        # Playwright's wait_for_function evaluates strings, which the page's CSP (no 'unsafe-eval')
        # forbids; test_security.py loads the page under its real CSP and checks nothing is refused.
        yield browser.new_page(bypass_csp=True)
        browser.close()


def test_upload_shows_the_annotated_photo_and_counts(server, page, sample_dir):  # noqa: F811
    photo = sorted(sample_dir.glob("images/*.png"))[1]
    page.goto(server + "/")
    page.set_input_files("#photo", str(photo))
    page.click("button[type=submit]")
    page.wait_for_function("document.getElementById('result').naturalWidth > 0", timeout=30_000)
    counts = {el.get_attribute("data-class"): int(el.query_selector("b").inner_text())
              for el in page.query_selector_all("#photo-counts span")}
    assert set(counts) == {"with_mask", "without_mask", "mask_weared_incorrect", "unassessable"}
    assert sum(counts.values()) > 0
    size = page.evaluate("[document.getElementById('result').naturalWidth, "
                         "document.getElementById('result').naturalHeight]")
    assert size[0] > 100 and size[1] > 100
    assert page.inner_text("#error") == ""


def test_a_bad_file_shows_the_error_and_not_the_last_photos_result(server, page, tmp_path, sample_dir):  # noqa: F811
    """A failed upload left the last photo's counts and picture under the error, read as this one's."""
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    page.goto(server + "/")
    page.set_input_files("#photo", str(sorted(sample_dir.glob("images/*.png"))[1]))
    page.click("button[type=submit]")
    page.wait_for_function("document.getElementById('result').naturalWidth > 0", timeout=30_000)
    page.set_input_files("#photo", str(bad))
    page.click("button[type=submit]")
    page.wait_for_function("document.getElementById('error').textContent.length > 0", timeout=10_000)
    assert "not an image" in page.inner_text("#error")
    assert page.inner_text("#photo-counts") == "" and not page.is_visible("#result")


def test_the_source_appears_as_a_camera_with_its_frame(server, page):  # noqa: F811
    page.goto(server + "/")
    page.wait_for_selector('.camera[data-camera="live"]', timeout=20_000)
    page.wait_for_function("document.querySelector('.camera[data-camera=\"live\"] img').naturalWidth > 0",
                           timeout=20_000)
