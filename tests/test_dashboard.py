"""The dashboard in headless Chromium (Debian's), driven by Playwright: upload, see the result."""

import json
import re
import shutil
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from maskwatch.data.grey import NIGHT_WORDS
from tests.conftest import stop_the_clock, watched
from tests.test_serve import serving_a_camera

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def server(tmp_path_factory, sample_dir):
    """`maskwatch serve` as tests/test_serve.py starts it (a 1 MB upload limit, a one-camera site),
    watching a still 320x240 clip: the page's tests need the camera's card and picture, not its
    detections (test_serve's three 640x480 photos kept the detector busy beside the browser)."""
    from tests.test_site import still_clip  # here: test_site imports this module's page

    folder = tmp_path_factory.mktemp("live")
    clip = still_clip(folder / "live.mp4", sample_dir)
    with serving_a_camera(clip, folder, folder) as base:
        yield base


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
        yield watched(browser.new_page())  # under the page's CSP: see tests/conftest.py
        browser.close()


@pytest.fixture
def tab(page):
    """A page of its own (its routes and size go with it), at a size: tab(375, 667); state: cookies
    it starts with (a context's storage_state, as admin_state gives)."""
    opened = []

    def open_tab(width=1280, height=720, state=None):
        opened.append(watched(page.context.browser.new_page(viewport={"width": width, "height": height},
                                                            storage_state=state)))
        return opened[-1]
    yield open_tab
    for each in opened:
        each.close()


LINES = """(selector) => {  // the lines a text is laid out on
  const range = document.createRange();
  range.selectNodeContents(document.querySelector(selector));
  return new Set([...range.getClientRects()].map((rect) => Math.round(rect.top))).size;
}"""


NEXT_FRAMES = "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"
# Each text of the chart: its size on screen (its font size times the drawing's scale) and its box.
CHART_TEXT = """() => [...document.querySelectorAll('#trend-chart text')].map((text) => {
  const box = text.getBoundingClientRect();
  return {text: text.textContent, px: parseFloat(getComputedStyle(text).fontSize) * text.getScreenCTM().a,
          left: box.left, right: box.right, top: box.top, bottom: box.bottom};
})"""


def answer(body):
    """A route handler that answers JSON `body` (the server's figures replaced by known ones)."""
    return lambda route: route.fulfill(status=200, content_type="application/json", body=json.dumps(body))


def event(label, camera="live", seconds_ago=0, infrared=False):
    seen = (datetime.now(timezone.utc) - timedelta(seconds=seconds_ago)).isoformat()
    return {"id": 1, "camera": camera, "zone": None, "label": label, "probability": 0.9, "first_seen": seen,
            "last_seen": seen, "snapshot": None, "infrared": infrared}


def test_upload_shows_the_annotated_photo_and_counts(server, page, sample_dir):
    photo = sorted(sample_dir.glob("images/*.png"))[1]
    page.goto(server + "/")
    # The module's first page, on a server just started: its camera's card first (the page settled),
    # then the upload; the picture or the error: a refused upload is said by its words, not by a
    # timeout. Neither came within 30 s twice in full runs beside a busy worker (2026-12-07: the
    # server just up, its camera analysing, the other worker training), so 60 s.
    page.wait_for_selector('.camera[data-camera="live"]', timeout=30_000)
    page.set_input_files("#photo", str(photo))
    page.click("button[type=submit]")
    page.wait_for_function("() => document.getElementById('result').naturalWidth > 0 || "
                           "document.getElementById('error').textContent", timeout=60_000)
    assert page.inner_text("#error") == ""
    counts = {el.get_attribute("data-class"): int(el.query_selector("b").inner_text())
              for el in page.query_selector_all("#photo-counts span")}
    assert set(counts) == {"with_mask", "without_mask", "mask_weared_incorrect", "unassessable"}
    assert sum(counts.values()) > 0
    size = page.evaluate("[document.getElementById('result').naturalWidth, "
                         "document.getElementById('result').naturalHeight]")
    assert size[0] > 100 and size[1] > 100
    assert page.inner_text("#error") == ""


def test_a_bad_file_shows_the_error_and_not_the_last_photos_result(server, page, tmp_path, sample_dir):
    """A failed upload left the last photo's counts and picture under the error, read as this one's."""
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    page.goto(server + "/")
    page.set_input_files("#photo", str(sorted(sample_dir.glob("images/*.png"))[1]))
    page.click("button[type=submit]")
    page.wait_for_function("() => document.getElementById('result').naturalWidth > 0", timeout=30_000)
    page.set_input_files("#photo", str(bad))
    page.click("button[type=submit]")
    page.wait_for_function("() => document.getElementById('error').textContent.length > 0", timeout=10_000)
    assert "not an image" in page.inner_text("#error")
    assert page.inner_text("#photo-counts") == "" and not page.is_visible("#result")


def test_the_source_appears_as_a_camera_with_its_frame(server, page):
    page.goto(server + "/")
    page.wait_for_selector('.camera[data-camera="live"]', timeout=20_000)
    page.wait_for_function("() => document.querySelector('.camera[data-camera=\"live\"] img').naturalWidth > 0",
                           timeout=20_000)


CONTRAST = """(selector) => [...document.querySelectorAll(selector)].map((el) => {
  const channels = getComputedStyle(el).color.match(/[\\d.]+/g).slice(0, 3).map(Number)
    .map((c) => c / 255).map((c) => c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
  const luminance = 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2];
  return [el.className || el.dataset.class, 1.05 / (luminance + 0.05)];  // against white
})"""


def test_a_320_px_phone_has_no_sideways_scroll_and_the_label_colours_are_readable(server, tab):
    """A camera card 320 px at least pushed the page 16 px wider than a 320 px screen; the orange of
    "worn incorrectly" was 2.9:1 on white, the grey and green of the labels under WCAG's 4.5:1; the
    camera's counts did not say they are today's (read as the people in the shop now)."""
    phone = tab(320, 640)
    phone.goto(server + "/")
    phone.wait_for_selector('.camera[data-camera="live"] .counts .with_mask', timeout=20_000)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 320
    for name, ratio in phone.evaluate(CONTRAST, ".camera .counts span[data-class], .camera .state"):
        assert ratio >= 4.5, (name, ratio)
    assert phone.inner_text('.camera[data-camera="live"] .counts').startswith("today:")
    # each control has a name of its own for a screen reader (the chart's and the list's were both "Camera")
    names = re.findall(r'combobox "([^"]*)"', phone.locator("main").aria_snapshot())
    assert len(set(names)) == len(names) == 5, names
    # the people seen stack at this width (dashboard.css): a named region, but no keyboard stop that
    # scrolls nothing (test_dashboard_mobile checks the boxes at each width)
    phone.wait_for_function("document.querySelector('#events .scroll').dataset.name")
    scroller = phone.query_selector("#events .scroll")
    assert scroller.get_attribute("tabindex") is None and scroller.get_attribute("aria-label") == "people seen"


def test_a_camera_s_counts_name_the_labels_as_the_list_does(server, tab):
    """A card counted "incorrect: 3" where the list and its filter say "worn incorrectly": a reader
    took it for a count gone wrong. Each count is named as the list's label filter names it."""
    desk = tab()
    desk.goto(server + "/")
    desk.wait_for_selector('.camera[data-camera="live"] .counts .unassessable', timeout=20_000)
    named = desk.eval_on_selector_all('.camera[data-camera="live"] .counts span[data-class]',
                                      "spans => spans.map((s) => [s.dataset.class, s.firstChild.textContent])")
    filter_names = desk.eval_on_selector_all("#filter-label option[value]:not([value=''])",
                                             "options => options.map((o) => [o.value, o.textContent + ': '])")
    assert named == filter_names


# Each filter's name: whether its text's line is beside its list (their boxes overlap up and down).
NAME_BESIDE_LIST = """() => [...document.querySelectorAll('#trend-filters label, #event-filters label')].map((label) => {
  const name = [...label.childNodes].find((node) => node.nodeType === Node.TEXT_NODE && node.textContent.trim());
  const range = document.createRange();
  range.selectNodeContents(name);
  const text = range.getClientRects()[0], list = label.querySelector('select').getBoundingClientRect();
  return [name.textContent.trim(), text.top < list.bottom && list.top < text.bottom];
})"""


def test_a_filter_s_name_stays_beside_its_list_on_a_phone(server, tab):
    """On a phone the chart's "Per" ended one line and its list began the next, under the camera and
    zone lists: which list was "per" was left to guess. Each name now wraps with its list."""
    for width in (320, 390):
        phone = tab(width, 700)
        phone.goto(server + "/")
        phone.wait_for_selector('#trend-camera option[value="live"]', state="attached", timeout=20_000)
        beside = phone.evaluate(NAME_BESIDE_LIST)
        assert [name for name, _ in beside] == ["Camera", "Zone", "Per", "Camera", "Label"]
        assert all(ok for _, ok in beside), (width, beside)
        assert phone.evaluate("document.documentElement.scrollWidth") <= width


def test_the_chart_has_its_figures_as_a_table_and_marks_low_bars_by_more_than_colour(server, tab):
    """The bars' figures were in <title>s only (read by no screen reader inside role=img, shown to no
    finger or keyboard); a bar whose interval is under 80 % differed from the others by red alone;
    "the server's local time" did not say which. The share was in whole percents beside an interval
    in hundredths ("71%" by "63.49-77.96%"); "People" did not say it left out the unassessable; a
    bar's tooltip gave the raw ISO start ("2026-01-01T10:00:00+02:00: 90% ..."). The share came
    fourth: on a phone, where the table is the chart's readable form, it was past the screen's edge.
    The unassessable were "(not counted)" beside cards that count them today: they are not in the share;
    "As labelled" stood beside the share as a second, unexplained one: it is the share before correction."""
    since = "2026-01-01T08:00:00.000+00:00"
    bucket = {"people": 10, "with_mask": 9, "without_mask": 1, "mask_weared_incorrect": 0, "unassessable": 0}
    series = {"camera": None, "zone": None, "bucket": "hour", "timezone": None, "since": since, "buckets": [
        {**bucket, "start": "2026-01-01T10:00:00+02:00", "unassessable": 7, "compliance": 0.7123,
         "compliance_low": 0.6349, "compliance_high": 0.7796, "observed_share": 0.9},
        {**bucket, "start": "2026-01-01T11:00:00+02:00", "compliance": 0.2, "compliance_low": 0.05,
         "compliance_high": 0.5, "observed_share": 0.2},
        # a top end of 79.96 %: under 80 %, as the server's alerts and MaskwatchComplianceLow judge it;
        # in whole percents it read 80, not red, not "under 80%" (test_figures, on a real site)
        {**bucket, "start": "2026-01-01T12:00:00+02:00", "compliance": 0.7, "compliance_low": 0.58,
         "compliance_high": 0.7996, "observed_share": 0.7},
        {**bucket, "start": "2026-01-01T13:00:00+02:00", "people": 0, "unassessable": 3, "compliance": None,
         "compliance_low": None, "compliance_high": None, "observed_share": None},
        # a top end of 0.8 exactly is not under 80 % (no rule fires on it): not red; a share of 79.96 %
        # beside it keeps its decimals, not "80%" beside a bar that is not under 80
        {**bucket, "start": "2026-01-01T14:00:00+02:00", "compliance": 0.7996, "compliance_low": 0.7912,
         "compliance_high": 0.8, "observed_share": 0.8}]}
    desk = tab()
    desk.route("**/v1/compliance?*", answer(series))
    desk.goto(server + "/")
    desk.wait_for_function("() => document.querySelectorAll('#trend-table tbody tr').length === 5", timeout=20_000)
    assert [th.text_content() for th in desk.query_selector_all("#trend-table th")] == [
        "From", "Wearing a mask", "95\xa0% interval", "People judged", "Unassessable (not in the share)", "As labelled (before correction)",
        "Seen on grey (infrared) frames"]
    rows = [[td.text_content() for td in tr.query_selector_all("td")]  # closed <details>: not rendered
            for tr in desk.query_selector_all("#trend-table tbody tr")]
    assert rows[0] == ["2026-01-01 10:00", "71%", "63-78%, under 80%", "10", "7", "90%", "0"]
    assert rows[1] == ["2026-01-01 11:00", "20%", "5-50%, under 80%", "10", "0", "20%", "0"]
    assert rows[2] == ["2026-01-01 12:00", "70%", "58-79.96%, under 80%", "10", "0", "70%", "0"]
    assert rows[3][0] == "2026-01-01 13:00" and "only unassessable" in rows[3][1] and rows[3][3:5] == ["0", "3"]
    assert rows[4] == ["2026-01-01 14:00", "79.96%", "79-80%", "10", "0", "80%", "0"]
    fills = desk.eval_on_selector_all("#trend-chart rect.bar", "bars => bars.map(b => getComputedStyle(b).fill)")
    assert len(fills) == 4 and "url(" in fills[0] and "url(" in fills[1] and "url(" in fills[2]  # striped
    assert "url(" not in fills[3]
    # The tooltip names the hour as the table does (the site's clock), and the people it leaves out.
    titles = desk.eval_on_selector_all("#trend-chart rect.bar title", "ts => ts.map(t => t.textContent)")
    assert titles[0] == ("2026-01-01 10:00: 71% (95% interval 63-78%) of 10 judged (7 unassessable, not in the share); "
                         "90% as labelled, before correction")
    assert titles[1].startswith("2026-01-01 11:00: 20% (95% interval 5-50%) of 10 judged; ")
    assert desk.query_selector("#trend-chart line.threshold") is not None
    assert desk.inner_text("#trend-timezone") == "the server's local time, UTC+02:00"
    desk.set_viewport_size({"width": 320, "height": 640})  # a phone: the time, the share and its interval in view
    # and the chart's text 11 px or more on screen, each apart and inside it: a 720-wide drawing
    # shrunk to the phone's width showed its axis in 4.4 px text
    desk.evaluate(NEXT_FRAMES)  # drawn again at its new size
    texts = desk.evaluate(CHART_TEXT)
    assert [t["text"] for t in texts] == ["100%", "0%", "80%", "2026-01-01 10:00", "now"], texts
    chart = desk.query_selector("#trend-chart").bounding_box()
    for i, text in enumerate(texts):
        assert text["px"] >= 11, texts
        assert chart["x"] <= text["left"] and text["right"] <= chart["x"] + chart["width"], text
        assert chart["y"] <= text["top"] and text["bottom"] <= chart["y"] + chart["height"], text
        for other in texts[i + 1:]:
            assert (text["right"] <= other["left"] or other["right"] <= text["left"]
                    or text["bottom"] <= other["top"] or other["bottom"] <= text["top"]), (text, other)
    desk.click("#trend details summary")
    for header in desk.query_selector_all("#trend-table th")[:3]:
        box = header.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 320, (header.text_content(), box)
    desk.set_viewport_size({"width": 1280, "height": 720})
    desk.route("**/v1/compliance?*", answer({**series, "buckets": []}))
    desk.select_option("#trend-bucket", "day")
    desk.wait_for_function("() => document.querySelector('#trend-table tbody').textContent.includes('no people counted yet')",
                           timeout=20_000)


def test_a_night_camera_s_bars_say_they_were_seen_on_grey_frames(server, tab):
    """A night camera's hours read 95 % masked as a day camera's did, with nothing said: on grey
    (infrared) frames the classifier passes two bare faces in three as masked. Their bars are
    outlined dashed (not by colour alone) and say how many were seen so; the table has a column."""
    since = "2026-01-01T08:00:00.000+00:00"
    night = {"people": 20, "with_mask": 19, "without_mask": 1, "mask_weared_incorrect": 0, "unassessable": 2,
             "start": "2026-01-01T23:00:00+02:00", "compliance": 0.95, "compliance_low": 0.8,
             "compliance_high": 0.99, "observed_share": 0.95, "infrared": 22, "infrared_share": 1.0}
    day = {**night, "start": "2026-01-01T12:00:00+02:00", "infrared": 0, "infrared_share": 0.0}
    desk = tab()
    desk.route("**/v1/compliance?*", answer({"camera": None, "zone": None, "bucket": "hour", "timezone": None,
                                             "since": since, "buckets": [day, night]}))
    desk.goto(server + "/")
    desk.wait_for_function("() => document.querySelectorAll('#trend-chart rect.bar').length === 2", timeout=20_000)
    bars = desk.eval_on_selector_all("#trend-chart rect.bar", """bars => bars.map(b => [b.classList.contains('infrared'),
        getComputedStyle(b).strokeDasharray, b.querySelector('title').textContent])""")
    assert [(marked, dashed != "none") for marked, dashed, _ in bars] == [(False, False), (True, True)]
    assert bars[1][2].endswith("; 22 of 22 seen on grey (infrared) frames: judged by the night model, read the "
                               "share with care") and "infrared" not in bars[0][2]
    rows = [[td.text_content() for td in tr.query_selector_all("td")] for tr in desk.query_selector_all("#trend-table tbody tr")]
    assert [row[-1] for row in rows] == ["0", "22 of 22, read with care"]


def test_a_camera_card_says_how_many_of_today_s_people_were_seen_on_grey_frames(server, tab):
    """A night camera's card counted its "mask" people as a day camera's: on grey frames the night
    model judges them, less sure than in colour. The card says how many were seen so (none: nothing said)."""
    def night(route):
        cameras = route.fetch().json()
        for camera in cameras:
            camera["today"] = {**camera["today"], "infrared": 3}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(cameras))

    desk = tab()
    desk.goto(server + "/")
    desk.wait_for_selector('.camera[data-camera="live"] .counts .unassessable', timeout=20_000)
    assert desk.query_selector('.camera[data-camera="live"] .counts .infrared') is None
    desk.route("**/v1/cameras", night)
    card = desk.wait_for_selector('.camera[data-camera="live"] .counts .infrared', timeout=20_000)
    assert card.text_content() == "infrared: 3" and NIGHT_WORDS in " ".join(desk.inner_text("#cameras-infrared-note").split())


def test_a_camera_card_says_its_frames_are_infrared_now(server, tab):
    """Nothing but the log's turn lines said a camera's frames were grey (infrared) now: today's
    `infrared` count filled in only as people left. /v1/cameras says it (`grey_frames`, as the log's
    last turn) and the card says "infrared now", with the note under the cards saying what it means."""
    [camera] = httpx.get(server + "/v1/cameras", timeout=10).json()
    assert camera["grey_frames"] is False  # a colour clip
    schema = httpx.get(server + "/openapi.json", timeout=10).json()["components"]["schemas"]["CameraStatus"]
    assert schema["properties"]["grey_frames"]["type"] == "boolean" and "grey_frames" in schema["required"]

    def night(route):
        cameras = route.fetch().json()
        for each in cameras:
            each["grey_frames"] = True
        route.fulfill(status=200, content_type="application/json", body=json.dumps(cameras))

    desk = tab()
    desk.goto(server + "/")
    desk.wait_for_selector('.camera[data-camera="live"] .counts .unassessable', timeout=20_000)
    assert not desk.is_visible('.camera[data-camera="live"] .night') and not desk.is_visible("#cameras-infrared-note")
    desk.route("**/v1/cameras", night)
    now = desk.wait_for_selector('.camera[data-camera="live"] .night', state="visible", timeout=20_000)
    assert now.inner_text() == "infrared now"
    note = " ".join(desk.inner_text("#cameras-infrared-note").split())
    assert note.startswith("infrared now: the camera's frames are grey (infrared) now") and NIGHT_WORDS in note


def test_the_people_list_says_who_was_seen_on_grey_frames(server, tab):
    """The chart said how many of a night's people were seen on grey frames, but the list of people
    did not say which: an auditor could not tell the doubtful "mask" of 23:10 from a day's."""
    desk = tab()
    desk.route("**/v1/events?*", answer({"events": [event("with_mask", infrared=True),
                                                    event("without_mask", seconds_ago=5)]}))
    desk.goto(server + "/")
    desk.wait_for_selector("#event-list tr.event", timeout=20_000)
    labels = [cell.inner_text() for cell in desk.query_selector_all("#event-list tr.event td:nth-child(4)")]
    assert labels == ["mask (infrared)", "no mask"], labels
    assert "grey (infrared) frames" in desk.inner_text("#events-infrared-note")  # what the mark means


def test_the_chart_s_first_time_has_its_year_and_stays_clear_of_the_last(server, tab):
    """The first bar's time read "12-07 02:00" under a table of "2026-12-07 02:00" rows: where days come
    first, 12 July. With its year it is as wide again: under a bar of this hour, on a 320 px phone, it
    stays inside the chart and clear of "end of this hour"."""
    hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    bucket = {"start": hour.isoformat(), "people": 10, "with_mask": 9, "without_mask": 1, "mask_weared_incorrect": 0,
              "unassessable": 0, "compliance": 0.9, "compliance_low": 0.6, "compliance_high": 0.98, "observed_share": 0.9}
    phone = tab(320, 640)
    phone.route("**/v1/compliance?*", answer({"camera": None, "zone": None, "bucket": "hour", "timezone": "UTC",
                                              "since": (hour - timedelta(hours=23)).isoformat(), "buckets": [bucket]}))
    phone.goto(server + "/")
    phone.wait_for_selector("#trend-chart rect.bar", timeout=20_000)
    phone.evaluate(NEXT_FRAMES)
    texts = phone.evaluate(CHART_TEXT)
    assert [t["text"] for t in texts][-2:] == [hour.strftime("%Y-%m-%d %H:00"), "end of this hour"], texts
    chart = phone.query_selector("#trend-chart").bounding_box()
    first, last = texts[-2:]
    assert chart["x"] <= first["left"] and first["right"] + 4 <= last["left"], texts


def test_the_events_say_when_nobody_is_there_to_list(server, tab):
    """An empty list was an empty table, and no camera an empty heading, read as a page still loading."""
    desk = tab()
    desk.route("**/v1/events?*", answer({"events": []}))
    desk.route("**/v1/cameras", answer([]))  # a viewer whose cameras are all gone from the config
    desk.goto(server + "/")
    desk.wait_for_function("() => document.getElementById('camera-grid').innerText === 'No camera to show to this account.'",
                           timeout=20_000)
    desk.wait_for_function("() => document.querySelector('#event-list tr.empty')?.innerText === 'Nobody seen yet.'",
                           timeout=20_000)
    desk.select_option("#filter-label", "without_mask")
    desk.wait_for_function("() => document.querySelector('#event-list tr.empty')?.innerText === "
                           "'Nobody seen matches these filters.'", timeout=20_000)
    # The list's "all of them (CSV)" takes its filters, without its limit of 50.
    # (relative to the page, to work under a proxy's prefix too: test_root_path.py)
    assert desk.eval_on_selector("#events-csv-link", "a => a.href") == server + "/v1/events.csv?label=without_mask"


def test_a_late_answer_to_the_filter_before_does_not_replace_the_chosen_ones(server, tab):
    """On a slow network a poll sent before a filter changed answered after it: the list showed every
    label under "no mask" for 5 s, the chart all cameras' hours under "per day" for a minute."""
    held = []
    desk = tab()

    def events(route):
        if "label=without_mask" in route.request.url:
            answer({"events": [event("without_mask")]})(route)
        else:
            held.append(route)  # answered below, after the filter's

    def trend(route):
        if "bucket=day" in route.request.url:
            answer({"camera": None, "zone": None, "bucket": "day", "timezone": "UTC",
                    "since": "2026-01-01T00:00:00.000+00:00", "buckets": []})(route)
        else:
            held.append(route)
    desk.route("**/v1/events?*", events)
    desk.route("**/v1/compliance?*", trend)
    desk.goto(server + "/")
    desk.wait_for_selector("#events:not([hidden])", timeout=20_000)
    for _ in range(100):
        if len(held) == 2:
            break
        desk.wait_for_timeout(100)
    assert len(held) == 2
    desk.select_option("#filter-label", "without_mask")
    desk.select_option("#trend-bucket", "day")
    desk.wait_for_selector('#event-list tr.event[data-label="without_mask"]', timeout=10_000)
    desk.wait_for_function("() => document.getElementById('trend-chart').dataset.buckets === '0'", timeout=10_000)
    for route in held:  # the older answers come in last
        if "/v1/events" in route.request.url:
            answer({"events": [event("with_mask"), event("with_mask", seconds_ago=5)]})(route)
        else:
            answer({"camera": None, "zone": None, "bucket": "hour", "timezone": "UTC",
                    "since": "2026-01-01T00:00:00.000+00:00",
                    "buckets": [{"start": "2026-01-01T10:00:00+00:00", "people": 1, "with_mask": 1,
                                 "without_mask": 0, "mask_weared_incorrect": 0, "unassessable": 0,
                                 "compliance": 0.9, "compliance_low": 0.2, "compliance_high": 0.99,
                                 "observed_share": 1.0}]})(route)
    desk.wait_for_timeout(1000)
    assert [r.get_attribute("data-label") for r in desk.query_selector_all("#event-list tr.event")] == ["without_mask"]
    assert desk.evaluate("document.getElementById('trend-chart').dataset.buckets") == "0"


def test_the_server_away_is_said_in_view_of_a_phone_scrolled_down(server, tab):
    """The notice sat above the cameras: a manager scrolled down the people seen read stale rows
    with nothing in view to say so."""
    phone = tab(375, 667)
    phone.clock.install()  # the polls' seconds moved on below, not waited for
    phone.route("**/v1/events?*", answer({"events": [event("with_mask", seconds_ago=i) for i in range(50)]}))
    phone.goto(server + "/")
    phone.wait_for_function("() => document.querySelectorAll('#event-list tr.event').length === 50", timeout=20_000)
    phone.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    phone.route("**/v1/cameras", lambda route: route.abort())
    phone.clock.fast_forward(1_000)  # the next poll, refused
    phone.wait_for_selector("#stale:not([hidden])", timeout=20_000)
    box = phone.query_selector("#stale").bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= 667, box
    # a live region that is always there says it (one shown from hidden often is not read out)
    assert phone.evaluate("document.getElementById('stale').closest('[role=status]').hidden") is False
    phone.unroute("**/v1/cameras")
    phone.clock.fast_forward(2_000)  # the try after its back-off, answered
    phone.wait_for_selector("#stale", state="hidden", timeout=30_000)


def log_in_unanswered(login, base: str, on_post, timeout: int, after_ms: int = 0) -> None:
    """The login page sends a login whose POST `on_post(route)` keeps from the server (aborts or
    holds it), and says in `timeout` ms that the server did not answer; after_ms: the page's clock
    is moved on so far once the login is sent (its own timeout, without waiting for it)."""
    login.route("**/login", lambda route: on_post(route) if route.request.method == "POST" else route.continue_())
    if after_ms:
        login.clock.install()
    login.goto(base + "/login")
    login.fill("#username", "manager")
    login.fill("#password", "a password")
    if after_ms:
        stop_the_clock(login)  # its timeout counted from the login by fast_forward alone
    login.click("button[type=submit]")
    if after_ms:
        login.wait_for_function("() => document.querySelector('button[type=submit]').getAttribute('aria-disabled')",
                                timeout=timeout)  # the login is out
        login.clock.fast_forward(after_ms - 1000)
        assert "did not answer" not in login.inner_text("#error")  # not before its time
        login.clock.fast_forward(1000)
    login.wait_for_function("() => document.getElementById('error').textContent.includes('did not answer')",
                            timeout=timeout)


def test_the_login_page_says_when_the_server_does_not_answer(server, tab):
    """A login sent while the server is away, or the network down, did nothing at all."""
    login = tab(320, 568)  # the form was 352 px wide: its right edge and the button's cut off
    log_in_unanswered(login, server, lambda route: route.abort(), timeout=10_000)
    assert login.is_enabled("button[type=submit]") and login.get_attribute("button[type=submit]", "aria-disabled") is None
    assert login.evaluate("document.activeElement.type") == "submit"  # the keyboard's place is kept
    assert login.evaluate("document.documentElement.scrollWidth") <= 320


def test_a_lapsed_session_is_said_on_the_login_page_and_a_failed_logout_on_the_dashboard(server, tab):
    """The dashboard went to the login page on a 401 without a word (the page just changed under the
    manager); a logout the server never got left the page as it was, read as logged out."""
    desk = tab()
    desk.route("**/v1/me", answer({"via": "session", "user": "manager", "role": "viewer"}))
    desk.route("**/logout", lambda route: route.abort())
    desk.goto(server + "/?chart_bucket=day")  # the chart's choices, kept in the address
    desk.wait_for_selector("#account:not([hidden])", timeout=20_000)
    # the heading names the page (it was "maskwatch manager (viewer) Log out"); the figures are in <main>
    assert desk.inner_text("h1") == "maskwatch" and desk.query_selector("main #cameras") is not None
    desk.click("#logout")
    desk.wait_for_function("() => document.getElementById('logout-error').textContent.includes('Not logged out')",
                           timeout=10_000)
    assert desk.url == server + "/?chart_bucket=day"
    refused = lambda route: route.fulfill(status=401, content_type="application/json",  # noqa: E731
                                          body='{"error": "log in first"}')
    desk.route("**/v1/cameras", refused)
    desk.route("**/v1/events*", refused)
    logins = []
    desk.on("request", lambda r: logins.append(r.url) if r.is_navigation_request() and "/login" in r.url else None)
    # requests refused together (the page's polls, as a lapsed session finds them) go to the login page once:
    # each started it again, aborting the one before (net::ERR_ABORTED in a test waiting for it)
    desk.evaluate("() => { for (const url of ['/v1/cameras', '/v1/events', '/v1/cameras']) api(url).catch(() => 0); }")
    desk.wait_for_url("**/login?*", timeout=20_000)
    assert desk.inner_text("#error") == "Your session has ended: log in again."
    assert "next=%2F%3Fchart_bucket%3Dday#" in desk.url  # back to the same chart once logged in again
    assert len(logins) == 1, logins


def test_the_server_back_is_tried_at_once_when_asked(server, tab):
    """The polls back off to once a minute while the server is away: once it was back, the notice and
    the old figures stayed until the back-off ran out, with nothing to do about it."""
    refused = []
    desk = tab()
    desk.clock.install()  # the back-off's seconds moved on below, not waited for
    desk.goto(server + "/")
    desk.wait_for_selector('.camera[data-camera="live"]', timeout=20_000)
    # Its turns come by fast_forward alone: on the installed clock, running with real time, the
    # back-off's own try 8 s later hid the button within the wait below (a button that did nothing passed)
    stop_the_clock(desk)
    desk.route("**/v1/cameras", lambda route: (refused.append(1), route.abort()))
    for _ in range(100):  # 1 + 2 + 4 s: the next try is 8 s away
        if len(refused) >= 3:
            break
        desk.clock.fast_forward(1_000)
        desk.wait_for_timeout(100)
    assert len(refused) == 3 and desk.is_visible("#stale")
    desk.unroute("**/v1/cameras")
    desk.click("#retry")  # a button in the notice, reached by the keyboard as any other
    desk.wait_for_selector("#stale", state="hidden", timeout=20_000)  # no back-off can end meanwhile


def test_a_phone_gets_controls_a_finger_can_hit(server, tab):
    """The selects were 19 px high and the buttons 21, in 13 px type (WCAG 2.2 asks 24 at least)."""
    phone = tab(375, 667)
    phone.goto(server + "/")
    phone.wait_for_selector("#events:not([hidden])", timeout=20_000)
    sizes = phone.evaluate("""[...document.querySelectorAll('select, button')].filter((el) => el.offsetParent)
        .map((el) => [el.id || el.textContent, el.getBoundingClientRect().height])""")
    assert len(sizes) >= 5 and all(height >= 24 for _, height in sizes), sizes


def test_an_unchanged_list_of_people_is_not_rebuilt(server, tab):
    """The table was rebuilt every 5 s: a screen reader reading it lost its place each time."""
    desk = tab()
    desk.clock.install()  # the poll's 5 s moved on below, not waited for
    desk.route("**/v1/events?*", answer({"events": [event("with_mask", seconds_ago=60)]}))
    desk.goto(server + "/")
    desk.wait_for_selector("#event-list tr.event", timeout=20_000)
    desk.evaluate("document.querySelector('#event-list tr.event').dataset.first = 'yes'")
    with desk.expect_request("**/v1/events?*", timeout=10_000):
        desk.clock.fast_forward(5_000)  # the next poll
    desk.wait_for_timeout(500)
    assert desk.evaluate("document.querySelector('#event-list tr.event').dataset.first") == "yes"


def test_the_keyboard_keeps_its_place_while_a_photo_is_checked(server, tab, sample_dir):
    """Detect disabled itself while the photo was checked: the focus, on it, went to the top of the
    page, and a keyboard user had to tab back through everything."""
    desk = tab()
    desk.goto(server + "/")
    desk.set_input_files("#photo", str(sorted(sample_dir.glob("images/*.png"))[1]))
    desk.focus("#upload button")
    desk.keyboard.press("Enter")
    desk.wait_for_function("() => document.getElementById('result').naturalWidth > 0", timeout=30_000)
    assert desk.evaluate("document.activeElement.textContent") == "Detect"
    assert desk.get_attribute("#upload button", "aria-disabled") is None


def test_camera_names_and_errors_are_shown_as_text_and_wrap_on_a_phone(server, tab):
    """Names, zones and errors come from the config and the cameras: shown as text, never markup,
    and a long one without spaces (a path, a URL) wraps in its card instead of widening the page."""
    long = "/var/lib/maskwatch/recordings/entrance-north-door-" + "x" * 60 + ".mp4"
    camera = {"id": "live", "name": '<img src=x onerror="window.injected = 1">' + "North_entrance_" * 6,
              "source": "***", "zones": [], "fps_target": 5.0, "connected": False, "last_frame_at": None,
              "fps": 0.0, "frames": 0, "reconnects": 3, "last_error": long + ": cannot open", "analysed": 0,
              "detected": 0, "analysis_error": None,
              "today": {"people": 0, "with_mask": 0, "without_mask": 0, "mask_weared_incorrect": 0,
                        "unassessable": 0}}
    # A short name beside a long state: the name was squeezed to a letter's width ("Til" over "l").
    till = {**camera, "id": "till", "name": "Till", "connected": True, "fps": 5.02, "frames": 10, "last_error": None}
    phone = tab(320, 640)
    phone.route("**/v1/cameras", answer([camera, till]))
    phone.route("**/v1/events?*", answer({"events": [{**event("with_mask"), "zone": "<b>till</b>" + "_queue" * 12}]}))
    phone.goto(server + "/")
    phone.wait_for_selector("#event-list tr.event", timeout=20_000)
    assert phone.inner_text('.camera[data-camera="live"] .name').startswith("<img src=x")
    assert "<b>till</b>" in phone.inner_text("#event-list tr.event")
    assert phone.evaluate("window.injected") is None and phone.query_selector("#event-list b") is None
    assert phone.inner_text('.camera[data-camera="live"] .state') == "offline"
    assert phone.evaluate("document.documentElement.scrollWidth") <= 320
    for width in (320, 1280):  # one card of a phone's width, and the desk's grid of narrow cards
        phone.set_viewport_size({"width": width, "height": 640})
        assert phone.evaluate(LINES, '.camera[data-camera="till"] .name') == 1, width
        assert "frames a second" in phone.inner_text('.camera[data-camera="till"] .state')


def test_an_offline_camera_s_counts_say_it_is_not_counting(server, tab):
    """A camera never connected showed "today: mask: 0 no mask: 0 ...", which a store's manager read
    as nobody coming in at that door; one down since the morning showed the morning's counts as the
    day's. An offline camera's counts say that it counts nobody meanwhile; an online one's do not."""
    down = {"id": "side", "name": "Side entrance", "source": "***", "zones": [], "fps_target": 1.0,
            "connected": False, "last_frame_at": None, "fps": 0.0, "frames": 0, "reconnects": 40,
            "last_error": "cannot reach 10.0.0.7:554 (Connection refused); retrying in 30 s", "analysed": 0,
            "detected": 0, "analysis_error": None,
            "today": {"people": 0, "with_mask": 0, "without_mask": 0, "mask_weared_incorrect": 0, "unassessable": 0}}
    working = {**down, "id": "live", "name": "Front door", "connected": True, "fps": 10.0, "last_error": None}
    desk = tab()
    desk.route("**/v1/cameras", answer([working, down]))
    desk.goto(server + "/")
    desk.wait_for_selector('.camera[data-camera="side"] .counts .unassessable', timeout=20_000)
    assert desk.inner_text('.camera[data-camera="side"] .counts').endswith("(not counting while offline)")
    assert "offline" not in desk.inner_text('.camera[data-camera="live"] .counts')


def test_the_chart_says_the_period_it_shows(server, tab):
    """The chart's caption said "last 24 hours, days or weeks" whichever was chosen: it names the one."""
    desk = tab()
    desk.goto(server + "/?chart_bucket=day")
    desk.wait_for_selector("#trend-chart[data-buckets]", state="attached", timeout=20_000)
    assert "), the last 24 days (" in desk.inner_text("#trend p small")
    desk.select_option("#trend-bucket", "week")
    desk.wait_for_function("() => document.querySelector('#trend p small').textContent.includes('the last 24 weeks (')",
                           timeout=20_000)


def test_a_request_that_hangs_is_said_as_the_server_away(server, tab):
    """On a flaky network a request can hang for minutes rather than fail: the page waited on it
    with the old figures shown and no notice. A card's picture that hung showed nothing for good,
    and each poll (a second) asked for another; so did a person's snapshot in the list."""
    desk = tab()
    desk.clock.install()  # the page's 15 s moved on below, not waited for
    snapshots = []
    desk.route("**/v1/events?*", answer({"events": [{**event("with_mask"), "snapshot": "/v1/snapshots/live-1.jpg"}]}))
    desk.route("**/v1/snapshots/*", lambda route: snapshots.append(route))  # never answered
    desk.goto(server + "/")
    desk.wait_for_selector('.camera[data-camera="live"]', timeout=20_000)
    card = '.camera[data-camera="live"]'
    desk.wait_for_function(f"() => document.querySelector('{card} img').naturalWidth > 0", timeout=20_000)
    for _ in range(100):
        if snapshots:
            break
        desk.wait_for_timeout(100)
    assert len(snapshots) == 1, desk.evaluate("document.getElementById('event-list').innerHTML")
    frames = []
    desk.route("**/v1/cameras/live/frame.jpg*", lambda route: frames.append(route))  # never answered
    for _ in range(6):  # six polls: one picture asked, the card's one request in flight
        desk.clock.fast_forward(1_000)
        desk.wait_for_timeout(200)
    assert len(frames) == 1
    desk.clock.fast_forward(15_000)
    desk.wait_for_selector(f"{card} .nofeed", state="visible", timeout=20_000)
    assert desk.inner_text(f"{card} .nofeed") == "no picture: the server did not answer in 15 s"
    desk.wait_for_selector("#event-list .nosnap", timeout=20_000)  # the snapshot's place says so, not a broken picture
    assert desk.text_content("#event-list tr.event td:last-child") == "no picture (the server did not answer in 15 s)"
    assert desk.is_hidden(f"{card} img") and desk.is_hidden("#stale")  # the picture only: the server answers
    desk.unroute("**/v1/cameras/live/frame.jpg*")
    desk.clock.fast_forward(15_000)  # the request asked again at the next poll, held too, ends
    desk.wait_for_selector(f"{card} img", state="visible", timeout=10_000)
    assert desk.is_hidden(f"{card} .nofeed")
    hung = []
    desk.route("**/v1/cameras", lambda route: hung.append(route))  # never answered
    for _ in range(30):  # the next poll goes out and hangs, then its 15 s
        desk.clock.fast_forward(5_000)
        # Both: under load a poll already on its way when the route was set timed out first (#stale
        # shown, none hung yet; once in a full run); the loop goes on polling, at a longer back-off.
        if hung and desk.is_visible("#stale"):
            break
        desk.wait_for_timeout(200)
    assert hung and desk.is_visible("#stale")
    desk.unroute("**/v1/cameras")
    desk.click("#retry")
    desk.wait_for_selector("#stale", state="hidden", timeout=10_000)


def test_a_failed_first_who_am_i_is_asked_again(server, tab):
    """/v1/me was asked once at load: a dropped request left a logged-in manager without the Log
    out button for as long as the page was open."""
    asked = []

    def me(route):
        asked.append(1)
        if len(asked) == 1:
            route.abort()
        else:
            answer({"via": "session", "user": "manager", "role": "viewer"})(route)
    desk = tab()
    desk.route("**/v1/me", me)
    desk.goto(server + "/")
    desk.wait_for_selector("#stale:not([hidden])", timeout=20_000)
    desk.click("#retry")
    desk.wait_for_selector("#account:not([hidden])", timeout=10_000)
    desk.wait_for_selector("#stale", state="hidden", timeout=10_000)  # answered: its notice goes too


def test_a_login_the_server_never_answers_ends_in_15_s(server, tab):
    """The button is busy while a login is out, and refuses another: a request a hung server (or a
    dropped Wi-Fi) held for minutes left the page with no word and no way to try again."""
    login = tab(1280, 720)
    held = []
    log_in_unanswered(login, server, held.append, timeout=20_000, after_ms=15_100)
    assert login.get_attribute("button[type=submit]", "aria-disabled") is None  # another try may go


# The page hidden (%s: "true", "hidden") or shown again ("false", "visible"), as another tab or a
# minimised window makes it: headless Chromium's page is never hidden.
VISIBILITY = ("Object.defineProperty(document, 'hidden', {value: %s, configurable: true});"
              "Object.defineProperty(document, 'visibilityState', {value: '%s', configurable: true});"
              "document.dispatchEvent(new Event('visibilitychange'))")

def test_a_hidden_page_asks_nothing_and_catches_up_when_shown(server, tab):
    """A tab left open behind others polled every camera's picture and the lists all day: 17
    requests a second for a site of 16 cameras, for nobody."""
    asked = []
    camera = {"id": "live", "name": "Door", "source": "***", "zones": [], "fps_target": 5.0, "connected": True,
              "last_frame_at": None, "fps": 5.0, "frames": 10, "reconnects": 0, "last_error": None, "analysed": 10,
              "detected": 5, "analysis_error": None,
              "today": {"people": 0, "with_mask": 0, "without_mask": 0, "mask_weared_incorrect": 0, "unassessable": 0}}
    desk = tab()
    desk.clock.install()  # the hidden page's polls moved on below, not waited for
    desk.route("**/v1/cameras", lambda route: (asked.append(route.request.url), answer([camera])(route)))
    desk.route("**/v1/events?*", answer({"events": []}))
    desk.goto(server + "/")
    desk.wait_for_selector('.camera[data-camera="live"]', timeout=20_000)
    desk.evaluate(VISIBILITY % ("true", "hidden"))
    stop_the_clock(desk)  # no turn comes but by fast_forward: what is asked once shown is asked at once
    desk.wait_for_timeout(1500)  # a poll already under way may end
    before = len(asked)
    desk.clock.fast_forward(10_000)  # every loop's next turn is due: each finds the page hidden
    desk.wait_for_timeout(300)  # a request it sent would be routed by now
    assert len(asked) == before, "the hidden page went on asking"
    desk.evaluate(VISIBILITY % ("false", "visible"))
    for _ in range(200):  # at once, not after a back-off: the clock stands still meanwhile
        if len(asked) > before:
            break
        desk.wait_for_timeout(100)
    assert len(asked) > before


def passed_on(change_headers=lambda headers: headers, change_body=None):
    """A route handler passing the server's own answer on, its headers or its JSON changed (as an
    upgraded server, or one restarted with another site.yaml, would answer)."""
    def handler(route):
        response = route.fetch()
        body = None if change_body is None else json.dumps(change_body(response.json()))
        route.fulfill(response=response, headers=change_headers(dict(response.headers)), body=body)
    return handler


def test_a_page_left_open_reloads_itself_once_the_site_s_clock_changes(server, tab):
    """A server restarted with another `timezone`: the page read the site's clock once, so the people's
    and the cards' times stayed in the old one, beside a chart in the new, for as long as it was open."""
    screen = tab()
    screen.clock.install()  # the hour moved on below, not waited for
    screen.goto(server + "/")
    screen.wait_for_selector('.camera[data-camera="live"]', timeout=20_000)
    assert "Pacific/Chatham" not in screen.inner_text("#clock")
    screen.route("**/v1/me", passed_on(change_body=lambda me: {**me, "timezone": "Pacific/Chatham"}))
    with screen.expect_event("load", timeout=10_000):
        screen.clock.fast_forward(3_600_000)
    screen.wait_for_function("() => document.getElementById('clock').textContent.includes('Pacific/Chatham')",
                             timeout=20_000)


def test_a_changed_site_clock_found_under_an_open_dialog_reloads_once_it_is_closed(server, tab):
    """The hourly check that found another timezone under an open dialog (or a page in use) was
    not asked again for an hour: the page showed the old clock that much longer."""
    screen = tab()
    screen.clock.install()
    screen.goto(server + "/")
    screen.wait_for_selector('.camera[data-camera="live"]', timeout=20_000)
    screen.route("**/v1/me", passed_on(change_body=lambda me: {**me, "timezone": "Pacific/Chatham"}))
    screen.evaluate("() => document.getElementById('password-dialog').showModal()")
    with screen.expect_response("**/v1/me", timeout=10_000):  # the hour's check, held by the dialog
        screen.clock.fast_forward(3_600_000)
    with screen.expect_event("load", timeout=10_000):  # closed: the next answer, a second on
        screen.evaluate("() => document.getElementById('password-dialog').close()")
    screen.wait_for_function("() => document.getElementById('clock').textContent.includes('Pacific/Chatham')",
                             timeout=20_000)


# The page's object URLs, counted as they are made and revoked (before its own scripts run).
COUNT_OBJECT_URLS = """(() => {
  window.objectUrls = new Set();
  const make = URL.createObjectURL.bind(URL), revoke = URL.revokeObjectURL.bind(URL);
  URL.createObjectURL = (blob) => { const url = make(blob); window.objectUrls.add(url); return url; };
  URL.revokeObjectURL = (url) => { window.objectUrls.delete(url); revoke(url); };
})()"""
# One refresh of every loop, at once: the cards (and their pictures), the people, the chart.
REFRESH = """async (times) => { for (let i = 0; i < times; i++) {
  await pollCameras(); await loadEvents(); await loadTrend();
  await new Promise((done) => setTimeout(done, 20));  // the cards' and snapshots' pictures read meanwhile
} }"""


def test_a_page_left_open_does_not_grow_with_its_refreshes(server, tab):
    """A wall screen refreshes for weeks: each refresh must leave no element, listener or picture's
    object URL behind (a list of 20 people whose snapshots all change each time, a 24-bar chart)."""
    import cv2
    import numpy as np

    jpeg = cv2.imencode(".jpg", np.full((24, 32, 3), 128, np.uint8))[1].tobytes()
    hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    bars = [{"start": (hour - timedelta(hours=h)).isoformat(), "people": 10, "unassessable": 1, "compliance": 0.7,
             "compliance_low": 0.5, "compliance_high": 0.85, "observed_share": 0.6} for h in range(23, -1, -1)]
    asked = []

    def people(route):
        asked.append(1)
        listed = [{**event("with_mask", seconds_ago=n), "id": n, "snapshot": f"/v1/snapshots/{len(asked)}-{n}.jpg"}
                  for n in range(20)]
        route.fulfill(status=200, content_type="application/json", body=json.dumps({"events": listed}))
    screen = tab()
    screen.add_init_script(COUNT_OBJECT_URLS)
    screen.route("**/v1/events?*", people)
    screen.route("**/v1/snapshots/**", lambda route: route.fulfill(status=200, content_type="image/jpeg", body=jpeg))
    screen.route("**/v1/compliance?*", answer({"bucket": "hour", "since": (hour - timedelta(hours=24)).isoformat(),
                                               "timezone": "UTC", "camera": None, "zone": None, "zones": [],
                                               "buckets": bars}))
    screen.goto(server + "/")
    screen.wait_for_selector('.camera[data-camera="live"] img:not([hidden])', timeout=20_000)
    browser = screen.context.new_cdp_session(screen)
    browser.send("Performance.enable")

    def held():
        screen.wait_for_function("() => snapshotReads === 0 && document.querySelectorAll('#event-list img').length === 20",
                                 timeout=10_000)  # the last list's pictures read
        browser.send("HeapProfiler.collectGarbage")
        metrics = {m["name"]: m["value"] for m in browser.send("Performance.getMetrics")["metrics"]}
        return {"listeners": metrics["JSEventListeners"],  # its Nodes count those not collected yet too
                "elements": screen.evaluate("() => document.querySelectorAll('*').length"),
                "bars": screen.evaluate("() => document.querySelectorAll('#trend-chart .bar').length"),
                "object URLs": screen.evaluate("() => window.objectUrls.size")}
    screen.evaluate(REFRESH, 5)
    after_5 = held()
    screen.evaluate(REFRESH, 30)
    assert held() == after_5
    assert after_5["bars"] == 24 and after_5["object URLs"] == 21  # the card's picture and 20 snapshots


def test_a_page_left_open_reloads_itself_once_the_server_serves_another(server, tab):
    """A wall screen by the entrance ran the scripts it was loaded with for weeks: after an upgrade,
    the old scripts against the new API, until someone reloaded it by hand. Not while a dialog is
    open (what is typed in it would be lost), nor while the page itself is not served."""
    screen = tab()
    loads = []
    screen.on("load", lambda _: loads.append(screen.url))
    screen.goto(server + "/?chart_bucket=day")
    screen.wait_for_selector('.camera[data-camera="live"]', timeout=20_000)
    loaded_as = screen.evaluate("() => document.querySelector('meta[name=maskwatch-page]')?.content")
    assert loaded_as and loaded_as == httpx.get(server + "/v1/classes").headers["x-maskwatch-page"]
    assert "x-maskwatch-page" not in httpx.get(server + "/healthz").headers  # anyone's: not told the release
    screen.evaluate("() => document.getElementById('password-dialog').showModal()")  # a password being typed
    screen.route("**/v1/cameras", passed_on(lambda headers: {**headers, "x-maskwatch-page": "an upgrade"}))
    for _ in range(2):  # answers of the upgraded server, a second apart
        with screen.expect_response("**/v1/cameras", timeout=10_000):
            pass
    assert len(loads) == 1, "reloaded under an open dialog"
    # the page itself not served (the server gone again): no reload into the browser's error page
    page_asked = []
    is_page = lambda url: url.partition("?")[0] == server + "/"  # noqa: E731
    screen.route(is_page, lambda route: (page_asked.append(1), route.abort()))
    screen.evaluate("() => document.getElementById('password-dialog').close()")
    for _ in range(2):
        with screen.expect_response("**/v1/cameras", timeout=10_000):
            pass
    assert page_asked and len(loads) == 1, "reloaded into a server that did not serve the page"
    with screen.expect_event("load", timeout=10_000):
        screen.unroute(is_page)
    screen.unroute("**/v1/cameras")
    screen.wait_for_selector('.camera[data-camera="live"]', timeout=20_000)
    assert loads == [server + "/?chart_bucket=day"] * 2  # the chart's choices kept


def test_a_page_between_two_versions_reloads_less_and_less_often(server, tab):
    """Two servers of two versions behind a load balancer (an upgrade left half done, or Ray Serve
    replicas of two releases): a page whose answers came from both reloaded itself every minute
    for as long as both answered; each reload of its own in a row now waits twice as long."""
    screen = tab()
    screen.clock.install()  # the minutes moved on below, not waited for
    loads = []
    screen.on("load", lambda _: loads.append(screen.url))
    screen.goto(server + "/")
    screen.wait_for_selector('.camera[data-camera="live"]', timeout=20_000)
    with screen.expect_event("load", timeout=10_000):  # the other version's answer: the first reload at once
        screen.route("**/v1/cameras", passed_on(lambda headers: {**headers, "x-maskwatch-page": "the other"}))
    screen.wait_for_selector('.camera[data-camera="live"]', timeout=20_000)
    with screen.expect_event("load", timeout=10_000):  # a minute on: once more, as before
        screen.clock.fast_forward(61_000)
    screen.wait_for_selector('.camera[data-camera="live"]', timeout=20_000)
    screen.clock.fast_forward(61_000)  # a minute on again, the other version answering still
    for _ in range(2):
        with screen.expect_response("**/v1/cameras", timeout=10_000):
            pass
    assert len(loads) == 3, "reloaded each minute while two versions answered"
    with screen.expect_event("load", timeout=10_000):  # two minutes after its last: once more
        screen.clock.fast_forward(60_000)
    screen.unroute("**/v1/cameras")


def test_a_page_in_use_is_not_reloaded_under_its_user(server, tab, sample_dir):
    """An upgrade's first answer to a person at the page was the one to the photo they had just
    checked: the page reloaded at once and took the result away (a filter being chosen, a list
    being read, alike). A page touched in the last 5 minutes waits; one nobody touches (a wall
    screen) reloads at once, as before."""
    import cv2
    import numpy as np

    jpeg = cv2.imencode(".jpg", np.full((240, 320, 3), 128, np.uint8))[1].tobytes()
    counts = {"with_mask": 1, "without_mask": 0, "mask_weared_incorrect": 0, "unassessable": 0}
    screen = tab()
    screen.clock.install()
    loads = []
    screen.on("load", lambda _: loads.append(screen.url))
    screen.goto(server + "/")
    screen.wait_for_selector('.camera[data-camera="live"]', timeout=20_000)
    # the upgraded server's answer to the photo (route.fetch would not pass a file's upload on)
    screen.route("**/v1/detect?*", lambda route: route.fulfill(status=200, content_type="image/jpeg", body=jpeg, headers={
        "X-Maskwatch-Counts": json.dumps(counts), "X-Maskwatch-Page": "an upgrade"}))
    screen.set_input_files("#photo", str(sorted(sample_dir.glob("images/*.png"))[1]))
    screen.click("button[type=submit]")
    screen.wait_for_function("() => document.getElementById('result').naturalWidth > 0", timeout=10_000)
    screen.route("**/v1/cameras", passed_on(lambda headers: {**headers, "x-maskwatch-page": "an upgrade"}))
    for _ in range(2):  # its answers go on, each second
        with screen.expect_response("**/v1/cameras", timeout=10_000):
            pass
    assert len(loads) == 1 and screen.is_visible("#result"), "reloaded under its user"
    with screen.expect_event("load", timeout=10_000):  # untouched for 5 minutes: reloaded
        screen.clock.fast_forward(5 * 60_000)
    screen.unroute("**/v1/cameras")


def test_a_page_left_open_reloads_itself_once_its_cameras_change(server, tab):
    """A server restarted with another site.yaml: the page kept a removed camera's card at its last
    state for good, and a new camera had a card but no place in the chart's and the list's choices."""
    screen = tab()
    screen.goto(server + "/")
    screen.wait_for_selector('.camera[data-camera="live"]', timeout=20_000)
    hall = lambda cameras: [*cameras, {**cameras[0], "id": "hall", "name": "Hall"}]  # noqa: E731
    with screen.expect_event("load", timeout=10_000):
        screen.route("**/v1/cameras", passed_on(change_body=hall))
    screen.wait_for_selector('.camera[data-camera="hall"]', timeout=20_000)
    assert screen.evaluate("() => [...document.querySelectorAll('#filter-camera option, #trend-camera option')]"
                           ".filter((option) => option.value === 'hall').length") == 2


DOOR_ZONES = {"queue": [[0.1, 0.1], [0.4, 0.1], [0.4, 0.5]], "exit": [[0.5, 0.5], [0.9, 0.5], [0.9, 0.9], [0.5, 0.9]]}
DOOR_MASK = [[0.8, 0], [1, 0], [1, 0.15], [0.8, 0.15]]


@pytest.fixture(scope="module")
def zoned_site(tmp_path_factory, sample_dir):
    """`maskwatch run` with zones and a motion mask on door (a 640x480 clip), till's zones hidden
    from the viewer (of door only). The zone tests need a picture, not detections: the cameras
    analyse half a frame a second (at the tests' 3, the site took 0.43 of a core beside the
    browser for the whole of them; at 0.5, 0.13)."""
    from tests.test_detection import make_video
    from tests.test_site import SiteProcess  # here: test_site imports this module's page

    folder = tmp_path_factory.mktemp("zoned")
    make_video(folder / "door.mp4", sample_dir, frames=3)
    make_video(folder / "till.mp4", sample_dir, frames=3)
    running = SiteProcess(folder, f"  door: {{fps: 0.5, source: door.mp4, zones: {json.dumps(DOOR_ZONES)}, "
                                  f"motion: {{threshold: 30, masks: [{json.dumps(DOOR_MASK)}]}}}}\n"
                                  "  till: {fps: 0.5, source: till.mp4, zones: {secret: [[0, 0], [1, 0], [1, 1]]}}\n",
                          viewer_cameras=["door"])
    yield running
    running.stop()


@pytest.fixture(scope="module")
def admin_state(zoned_site, page):
    """The admin's session on zoned_site, logged in once through the login page, for the zone tests
    whose point is not the login (each logged in through the page, the server's Argon2 at its
    shipped cost, 1-2 s a test on a loaded machine). Each opens its tab with it (a context of its
    own: sessionStorage and routes stay the test's); the phone's test logs in itself, and out."""
    from tests.conftest import log_in

    context = page.context.browser.new_context()
    try:
        log_in(watched(context.new_page()), zoned_site.base)
        return context.storage_state()
    finally:
        context.close()


def test_a_wall_screen_s_proxy_sends_a_read_token_and_no_login_ends(zoned_site, page):
    """docs/site.md's wall screen: a proxy on the screen's own machine adds a read-only token to each
    request (extra_http_headers here, as the proxy would): the page needs no login and has no
    session to end, so nobody logs it in again every session_max_hours."""
    token = {"Authorization": f"Bearer {zoned_site.credentials.read_token}"}
    context = page.context.browser.new_context(extra_http_headers=token)
    try:
        screen = watched(context.new_page())
        screen.goto(zoned_site.base + "/?chart_bucket=day")
        screen.wait_for_selector('.camera[data-camera="till"] figcaption .state', timeout=20_000)  # every camera
        assert screen.url == zoned_site.base + "/?chart_bucket=day"  # not sent to the login page
        assert screen.is_hidden("#account") and screen.text_content("#session-end") == ""
        me = screen.evaluate("async () => (await (await api('/v1/me')).json())")
        assert (me["via"], me["scope"], me["session"]) == ("token", "read", None)
    finally:
        context.close()


def test_a_wall_screens_token_made_in_the_users_dialog_for_one_camera_shows_that_camera_alone(
        zoned_site, admin_state, tab, page):  # noqa: F811
    """A token had no camera list: the lobby screen's read token showed every camera, the
    pharmacy's till too. The Users dialog's "Create a token" ticks a read token's cameras as a
    viewer's are ticked (none for a full one); the table says them; the page opened with it shows
    those cameras alone."""
    from maskwatch.security.store import AuthStore
    from tests.conftest import ADMIN

    desk = tab(1280, 800, state=admin_state)
    desk.goto(zoned_site.base + "/")
    desk.click("#users-open")
    desk.wait_for_selector("#tokens-add-cameras input[value=till]", state="attached")
    assert desk.is_visible("#tokens-add-cameras")
    desk.select_option("#tokens-add-scope", "full")
    assert desk.is_hidden("#tokens-add-cameras")  # a full token acts as an admin: every camera
    desk.select_option("#tokens-add-scope", "read")
    desk.fill("#users-me-password", ADMIN[1])
    desk.fill("#tokens-add-name", "lobby")
    desk.check("#tokens-add-cameras input[value=door]")
    desk.click("#tokens-add button[type=submit]")
    desk.wait_for_selector("#tokens-secret", state="visible")
    assert desk.inner_text("#users-status").startswith("Token lobby created (read; door only; expires ")
    token = desk.input_value("#tokens-secret-value")
    desk.wait_for_selector("#tokens-table tr[data-token=lobby]")
    assert desk.locator("#tokens-table tr[data-token=lobby] td").all_inner_texts()[:3] == ["lobby", "read", "door"]
    assert desk.is_checked("#tokens-add-cameras input[value=door]") is False  # the form as new
    context = page.context.browser.new_context(extra_http_headers={"Authorization": f"Bearer {token}"})
    try:
        screen = watched(context.new_page())
        screen.goto(zoned_site.base + "/")
        screen.wait_for_selector('.camera[data-camera="door"] figcaption .state', timeout=20_000)
        assert screen.locator(".camera").count() == 1  # till's card is not there
        refused = screen.evaluate("async () => (await api('/v1/cameras/till/frame.jpg')).status")
        assert refused == 403
    finally:
        context.close()
        store = AuthStore(str(zoned_site.folder / "site.db"))
        store.revoke_token("lobby")
        store.close()


def test_the_users_dialog_marks_a_camera_the_sites_file_no_longer_has(zoned_site, admin_state, tab):  # noqa: F811
    """A camera renamed in the site's file (`lobby`, an id it had before): a viewer's or read token's
    list keeps the old id, and the renamed camera had vanished from their screens while the Users
    dialog showed the list as any other. Now it says which of the list the file no longer has."""
    from maskwatch.security.store import AuthStore

    store = AuthStore(str(zoned_site.folder / "site.db"))
    store.add_user("porter", "the porter's own password", "viewer", ["door", "lobby"])
    store.add_token("old-lobby", "read", cameras=["lobby"])
    try:
        desk = tab(1280, 800, state=admin_state)
        desk.goto(zoned_site.base + "/")
        desk.click("#users-open")
        desk.wait_for_selector("#tokens-table tr[data-token=old-lobby]")
        assert desk.locator("#users-table tr[data-user=porter] td").all_inner_texts()[2] == (
            "door, lobby (not in the site's file)")
        assert desk.locator("#users-table tr[data-user=viewer] td").all_inner_texts()[2] == "door"
        assert desk.locator("#tokens-table tr[data-token=old-lobby] td").all_inner_texts()[2] == (
            "lobby (not in the site's file)")
    finally:
        store.remove_user("porter")
        store.revoke_token("old-lobby")
        store.close()


def test_the_users_edit_form_marks_a_camera_gone_from_the_sites_file_and_says_to_untick_it(
        zoned_site, admin_state, tab):  # noqa: F811
    """The table marked `lobby (not in the site's file)`, but Edit showed its box as any camera's;
    saved ticked (no history of lobby is stored), the server's refusal named no box to untick. The
    box now says the table's words, and saving says to untick it, at that box, before any confirm.
    With lobby's history stored, it is saved ticked and kept."""
    from maskwatch.security.store import AuthStore
    from maskwatch.site.events import EventStore
    from tests.conftest import ADMIN
    from tests.test_events import person

    store, events = AuthStore(str(zoned_site.folder / "site.db")), None
    store.add_user("porter", "the porter's own password", "viewer", ["door", "lobby"])
    try:
        desk = tab(1280, 800, state=admin_state)
        desk.goto(zoned_site.base + "/")
        desk.click("#users-open")
        desk.click("button[aria-label='Edit the role and cameras of porter']")
        boxes = desk.locator("#users-edit-cameras label")
        assert [text.strip() for text in boxes.all_inner_texts()] == ["door", "till", "lobby (not in the site's file)"]
        assert desk.locator("#users-edit-cameras input").evaluate_all(
            "(boxes) => boxes.map((b) => [b.value, b.checked])") == [["door", True], ["till", False], ["lobby", True]]
        desk.fill("#users-me-password", ADMIN[1])
        desk.check("#users-edit-cameras input[value=till]")
        desk.click("#users-edit button[type=submit]")
        assert desk.inner_text("#users-error") == (
            "Not changed: lobby is not in the site's file, and its database holds no history of it: untick it "
            "(and tick the camera's new id, if it was renamed).")
        assert desk.evaluate("document.activeElement.value") == "lobby" and desk.is_hidden("#users-confirm")
        desk.uncheck("#users-edit-cameras input[value=lobby]")
        desk.click("#users-edit button[type=submit]")
        assert desk.inner_text("#users-confirm-question") == "Make porter a viewer of door, till? Their next request has it."
        desk.click("#users-confirm-yes")
        desk.wait_for_selector("#users-table tr[data-user=porter] td:nth-child(3):text-is('door, till')")
        assert desk.inner_text("#users-status") == "porter is now viewer (door, till)."
        # Once its history is stored, lobby is one of the choices (still marked): saved ticked, it is kept.
        events = EventStore(str(zoned_site.folder / "site.db"))
        events.record("lobby", None, person(1, (0.9, 0.05, 0.05)))
        desk.click("#users-close")
        desk.click("#users-open")
        desk.wait_for_selector("#users-add-cameras input[value=lobby]", state="attached")  # the lists read again
        desk.fill("#users-me-password", ADMIN[1])  # emptied as the dialog closed
        desk.click("button[aria-label='Edit the role and cameras of porter']")
        assert desk.inner_text("#users-edit-cameras label:has(input[value=lobby])").strip() == "lobby (not in the site's file)"
        desk.check("#users-edit-cameras input[value=lobby]")
        desk.click("#users-edit button[type=submit]")
        desk.click("#users-confirm-yes")
        desk.wait_for_selector('#users-table tr[data-user=porter] td:nth-child(3):text-is("door, till, lobby '
                               '(not in the site\'s file)")')
        assert desk.inner_text("#users-status") == "porter is now viewer (door, till, lobby)."
    finally:
        store.remove_user("porter")
        store.close()
        if events is not None:  # lobby's history gone again: the module's other tests know door and till alone
            with events.engine.begin() as connection:
                connection.exec_driver_sql("DELETE FROM events WHERE camera = 'lobby'")
            events.close()


def test_a_viewer_reads_the_zones_of_their_cameras_only(zoned_site):
    """The zone editor's polygons (/v1/cameras names the zones only) under /v1/cameras' rules."""
    from maskwatch.site.schemas import CameraZones
    from tests.conftest import VIEWER
    from tests.test_security import login, session_of

    viewer = session_of(login(zoned_site.base, VIEWER))
    door = httpx.get(zoned_site.base + "/v1/cameras/door/zones", headers=viewer, timeout=10)
    assert door.status_code == 200 and set(CameraZones.model_validate(door.json()).model_fields_set) == {
        "camera", "zones", "motion", "motion_given"}  # as documented
    assert door.json() == {"camera": "door", "zones": [{"name": name, "points": points} for name, points in DOOR_ZONES.items()],
                           "motion": {"threshold": 30, "masks": [DOOR_MASK]}, "motion_given": True}
    refused = httpx.get(zoned_site.base + "/v1/cameras/till/zones", headers=viewer, timeout=10)
    assert refused.status_code == 403 and "secret" not in refused.text
    till = zoned_site.get("/v1/cameras/till/zones").json()
    assert till["zones"] == [{"name": "secret", "points": [[0, 0], [1, 0], [1, 1]]}] and till["motion_given"] is False
    assert zoned_site.get("/v1/cameras/tll/zones").json() == {"error": "no camera 'tll' running; cameras: door, till"}
    assert "points" not in zoned_site.get("/v1/cameras").text  # the cameras' list, polled every second, names them only


def test_a_viewer_reads_plain_words_not_rates_and_probabilities(zoned_site, tab):
    """A clinic's supervisor (a viewer) read "online, 0.5 fps analysed (stream 25 fps)" on each card
    and a "Probability" column of 0.93s: an engineer's words. Now "online", and "How sure" in whole
    percents (cut, not rounded: 0.996 is not 100 %; a stored 0.57, 0.57 * 100 = 56.99999999999999 in
    JavaScript, was "56 %"); an admin keeps the rates."""
    from tests.conftest import VIEWER, log_in

    desk = tab(1280, 800)
    sure = [0.996, 0.57, 0.29]  # the store keeps 4 decimals (events.py)
    desk.route("**/v1/events?*", answer({"events": [dict(event("with_mask", camera="door"), id=n, probability=p)
                                                    for n, p in enumerate(sure, 1)], "next": None}))
    log_in(desk, zoned_site.base, VIEWER)
    desk.wait_for_selector('.camera[data-camera="door"][data-connected="true"]', timeout=30_000)
    assert desk.inner_text('.camera[data-camera="door"] .state') == "online"
    desk.wait_for_selector("#event-list tr.event")
    assert desk.inner_text("#event-table th:nth-child(5)") == "How sure"
    assert desk.locator("#event-list tr.event td:nth-child(5)").all_inner_texts() == ["99 %", "57 %", "29 %"]


def test_the_zone_text_is_checked_by_the_config_s_loader_and_nothing_else(zoned_site, tmp_path):
    """The editor's text was read by a YAML reader written in the page, which could disagree with
    the loader: now the server reads it with the loader, answering GET .../zones' shape or the
    problem in `run --check`'s words, under the zones' access rules, writing nothing."""
    from maskwatch.site.config import SiteConfigError, load_site_config
    from maskwatch.site.schemas import CameraZones
    from tests.conftest import VIEWER
    from tests.test_security import CSRF, login, session_of

    url = zoned_site.base + "/v1/cameras/door/zones/check"
    site_yaml = (zoned_site.folder / "site.yaml").read_text()

    def check(text, camera="door", headers=None):
        return httpx.post(zoned_site.base + f"/v1/cameras/{camera}/zones/check", json={"text": text},
                          headers=zoned_site.credentials.headers if headers is None else headers, timeout=10)

    good = check("zones:\n  front: [[0.1, 0.1], [0.9, 0.1], [0.5, 0.8]]  # a comment\n"
                 "motion: {enabled: true, threshold: 40, masks: [[[0, 0], [0.1, 0], [0.1, 0.1]]]}\n")
    assert good.status_code == 200
    assert CameraZones.model_validate(good.json()).model_dump() == {
        "camera": "door", "zones": [{"name": "front", "points": [(0.1, 0.1), (0.9, 0.1), (0.5, 0.8)]}],
        "motion": {"threshold": 40, "masks": [[[0, 0], [0.1, 0], [0.1, 0.1]]]}, "motion_given": True}
    # nothing drawn yet; door's own motion: is not taken for the text's
    assert check("").json() == {"camera": "door", "zones": [], "motion": {"masks": []}, "motion_given": False}
    # an empty motion: is said as given (it keeps the defaults' masks off the camera; the page dropped it)
    assert check("motion: {masks: []}\n").json()["motion_given"] is True
    assert check("zones: {}\nmotion:\n").json()["motion_given"] is False  # blank: not written, as in the file

    def run_check_says(text: str) -> str:
        """What `run --check` says of the text pasted under door in a copy of the site's file."""
        pasted = "".join("    " + line + "\n" for line in text.splitlines())
        (tmp_path / "site.yaml").write_text(f"cameras:\n  door:\n    source: {zoned_site.folder / 'door.mp4'}\n{pasted}")
        with pytest.raises(SiteConfigError) as err:
            load_site_config(tmp_path / "site.yaml", environ={})
        return "; ".join(err.value.problems)

    for bad, said in (
            ("zones:\n  bad: [[0.1, 0.1], [1.5, 0.1], [0.5, 0.5]]\n",
             "camera 'door', field 'zones.bad.1.0': Input should be less than or equal to 1 (got 1.5)"),
            ("zones:\n  bad: [[0.1, 0.1], [0.5, 0.5]]\n", "camera 'door', field 'zones': zone 'bad' needs at least 3 points, got 2"),
            ("zones:\n  x: [[0, 0], [1, 1], [1, 0], [0, 1]]\n",
             "camera 'door', field 'zones': zone 'x' crosses itself; list its corners in order around it"),
            ("zones:\n  front door: [[0.1, 0.1], [0.5, 0.1], [0.1, 0.5]]\n",
             "camera 'door', field 'zones': zone name 'front door' must be 1-64 of A-Z, a-z, 0-9, _ and - (it is "
             "written in MQTT messages, URLs and the report)"),
            ("zones: [[0.1, 0.1], [0.5, 0.5], [0.1, 0.5]]\n",
             "camera 'door', field 'zones': Input should be a valid dictionary (got [[0.1, 0.1], [0.5, 0.5], [0.1, 0.5]])"),
            ("motion:\n  treshold: 30\n", "camera 'door', field 'motion.treshold': unknown setting (a typo?)"),
            ("motion:\n  masks:\n    - [[0.8, 0], [1, 0]]\n",
             "camera 'door', field 'motion.masks': mask 0 needs at least 3 points, got 2"),
            ("zones:\n  a: [[0, 0], [1, 0], [1, 1]]\n  a: [[0, 0], [1, 0], [0, 1]]\n",
             "not valid YAML: 'a' is given twice in one mapping (the second would replace the first) (line 3, column 3)"),
            ("zones:\n  bad: [[0.1, 0.1], [0.5, 0.5], [0.1, 0.5]\n",
             "not valid YAML: while parsing a flow sequence (line 2, column 8); expected ',' or ']', but got "
             "'<stream end>' (line 3, column 1)")):
        answer = check(bad)
        assert answer.status_code == 400 and answer.json() == {"error": said}, (bad, answer.text)
        if "line " not in said:  # the lines of the file are another count than the text's
            assert run_check_says(bad) == said
    # what the config takes under a camera but the editor does not draw is refused, and not read:
    # a source's file would be looked for on the server
    assert check("fps: 3\nsource: /etc/passwd\n").json() == {"error": (
        "camera 'door', field 'fps': the zone editor's text holds zones: and motion: only; set fps in site.yaml; "
        "camera 'door', field 'source': the zone editor's text holds zones: and motion: only; set source in site.yaml")}
    assert check("- [0, 0]\n").json() == {"error": "camera 'door': expected its settings zones: and motion:, as under "
                                                    "the camera in site.yaml"}
    assert check("motion: {threshold: ${SECRET}}\n").status_code == 400  # no ${VAR} is read from the server's environment
    # bounded before the work: 20,000 '[' were a 500 (a RecursionError), 15,000 corners aliased a worker's minute
    assert check("zones: {q: " + "[" * 20_000).json() == {
        "error": "not valid YAML: nested more than 50 levels deep (line 1, column 60)"}
    assert check("zones: {big: [&p [0.1, 0.2]" + ", *p" * 15_000 + "]}").json() == {
        "error": "camera 'door', field 'zones': zone 'big' has 15001 corners; at most 100: draw it with fewer"}
    outside = check("zones: {far: [" + ", ".join(["[1.5, 0]"] * 100) + "]}").json()["error"].split("; ")
    assert len(outside) == 21 and outside[0] == ("camera 'door', field 'zones.far.0.0': Input should be less than or "
                                                 "equal to 1 (got 1.5)") and outside[-1] == "and 80 more problems"

    for body in (b"zones: {}", b'{"text": 3}', b'{"text": "", "more": 1}', b"[]"):
        answer = httpx.post(url, content=body, headers=zoned_site.credentials.headers, timeout=10)
        assert answer.status_code == 422 and answer.json()["error"].startswith("body"), (body, answer.text)
    huge = check("zones:\n" + "  # a comment\n" * 6000)
    assert huge.status_code == 413 and huge.json() == {
        "error": "request body over 65536 bytes: only POST /v1/detect takes more"}  # every route's small cap
    chunked = httpx.post(url, content=iter([b'{"text": "'] + [b"#" * 8192] * 9 + [b'"}']),
                         headers=zoned_site.credentials.headers, timeout=10)  # no length declared
    assert chunked.status_code == 413
    assert check("zones: {}", camera="tll").json() == {"error": "no camera 'tll' running; cameras: door, till"}

    viewer = session_of(login(zoned_site.base, VIEWER))
    assert check("zones: {}", headers=viewer | CSRF).status_code == 200
    refused = check("zones: {}", camera="till", headers=viewer | CSRF)
    assert refused.status_code == 403 and refused.json() == {"error": "no access to camera 'till'"}
    no_csrf = check("zones: {}", headers=viewer)  # a session's POST needs the page's header, as every POST
    assert no_csrf.status_code == 403 and "X-Maskwatch-CSRF" in no_csrf.json()["error"]
    foreign = check("zones: {}", headers=viewer | CSRF | {"Origin": "http://evil.example"})
    assert foreign.status_code == 403 and "cross-origin" in foreign.json()["error"]
    assert check("zones: {}", headers={}).status_code == 401
    read_only = check("zones: {}", headers={"Authorization": f"Bearer {zoned_site.credentials.read_token}"})
    assert read_only.status_code == 200  # it writes nothing: a read-only token may check (tests/test_security.py)

    assert (zoned_site.folder / "site.yaml").read_text() == site_yaml  # nothing written
    assert zoned_site.get("/v1/cameras/door/zones").json()["zones"][0]["name"] == "queue"
    document = zoned_site.get("/openapi.json").json()
    documented = document["paths"]["/v1/cameras/{camera_id}/zones/check"]["post"]
    assert {"200", "400", "403", "404", "413", "422"} <= set(documented["responses"])
    assert documented["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ZonesText"}
    assert document["components"]["schemas"]["ZonesText"]["required"] == ["text"]


def test_a_reload_with_a_shape_open_leaves_the_history_as_a_fresh_open(zoned_site, admin_state, tab):
    """The history entry the zone editor pushes while a shape is open (for the back gesture) outlived
    a reload of the page: "back" from the reloaded page came to the same page again."""
    phone = tab(375, 740, state=admin_state)
    phone.goto("about:blank")
    phone.goto(zoned_site.base + "/")
    phone.wait_for_function("() => document.querySelector('.camera[data-camera=\"door\"] img')?.naturalWidth > 0",
                            timeout=30_000)
    phone.click('.camera[data-camera="door"] .draw-zones')
    phone.wait_for_function("() => document.getElementById('zone-yaml').value.includes('queue')", timeout=20_000)
    box = phone.locator("#zone-overlay").bounding_box()
    phone.locator("#zone-overlay").click(position={"x": 0.6 * box["width"], "y": 0.1 * box["height"]})
    assert phone.evaluate("history.state?.shapeOpen") is True
    phone.reload()
    phone.wait_for_function("() => !history.state?.shapeOpen", timeout=20_000)
    assert phone.url == zoned_site.base + "/" and phone.is_hidden("#zone-editor")
    phone.go_back()
    phone.wait_for_url("about:blank", timeout=20_000)  # the page before, as from a fresh open (its URL came late once)


def test_zones_drawn_on_a_phone_are_the_picture_s_shares_and_load_as_the_config(zoned_site, tab, tmp_path):
    """Zones were numbers guessed into site.yaml: now clicked on the camera's picture (shown scaled
    on a phone), given as YAML that the config loader reads back as the same polygons, and the
    YAML typed is drawn, or its problem said."""
    from maskwatch.site.config import load_site_config
    from tests.conftest import log_in

    phone = tab(375, 740)
    log_in(phone, zoned_site.base)
    phone.wait_for_function("() => document.querySelector('.camera[data-camera=\"door\"] img')?.naturalWidth > 0",
                            timeout=30_000)
    phone.click('.camera[data-camera="door"] .draw-zones')
    phone.wait_for_function("() => document.getElementById('zone-yaml').value.includes('queue')", timeout=20_000)
    text = phone.input_value("#zone-yaml")
    # the config's zones, in its order, its motion mask, and the motion setting that must come with it
    assert "zones:\n  queue: [[0.1, 0.1], [0.4, 0.1], [0.4, 0.5]]\n  exit: [[0.5, 0.5], [0.9, 0.5], [0.9, 0.9]" in text
    assert "motion:\n  threshold: 30\n  masks:\n    - [[0.8, 0], [1, 0], [1, 0.15], [0.8, 0.15]]" in text
    assert phone.evaluate("[...document.querySelectorAll('#zone-overlay g[data-name]')].map((g) => g.dataset.name)") == [
        "queue", "exit", "mask 1"]
    natural, shown = phone.evaluate("""[document.getElementById('zone-picture').naturalWidth,
        document.getElementById('zone-overlay').getBoundingClientRect().width]""")
    assert natural == 640 and shown < 400  # the picture is scaled down: shares of 640, not of the screen

    corners = [(0.2, 0.6), (0.45, 0.6), (0.45, 0.95), (0.2, 0.95)]
    overlay = phone.locator("#zone-overlay")
    box = overlay.bounding_box()
    for x, y in corners + [(0.3, 0.3)]:  # one too many, taken back with Backspace
        overlay.click(position={"x": x * box["width"], "y": y * box["height"]})
    phone.keyboard.press("Backspace")
    assert phone.inner_text("#zone-status").startswith("4 corners")
    phone.keyboard.press("Enter")  # closes the shape, asks its name
    phone.fill("#zone-name", "front door")
    phone.keyboard.press("Enter")
    phone.wait_for_function("() => document.getElementById('zone-name-error').textContent !== ''", timeout=10_000)
    assert phone.inner_text("#zone-name-error") == (  # the config's rule, from the server's loader
        "Not saved: camera 'door', field 'zones': zone name 'front door' must be 1-64 of A-Z, a-z, 0-9, _ and - "
        "(it is written in MQTT messages, URLs and the report)")
    assert phone.evaluate("[document.activeElement.id, document.activeElement.getAttribute('aria-invalid'), "
                          "document.activeElement.getAttribute('aria-describedby')]") == [
        "zone-name", "true", "zone-name-error"]  # the name is what to mend: a screen reader says so
    phone.fill("#zone-name", "front")
    phone.keyboard.press("Enter")
    phone.wait_for_function("() => document.getElementById('zone-yaml').value.includes('front:')", timeout=10_000)
    text = phone.input_value("#zone-yaml")
    [line] = [line for line in text.splitlines() if line.startswith("  front: ")]
    drawn = json.loads(line.split(": ", 1)[1])
    assert len(drawn) == 4 and all(abs(a - b) < 0.005 for point, corner in zip(drawn, corners)
                                   for a, b in zip(point, corner)), drawn
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    assert phone.evaluate("(e => e.scrollWidth <= e.clientWidth)(document.getElementById('zone-editor'))")  # nor the dialog

    # the phone's back gesture over an open shape takes back a step of it, as Escape does (it closed
    # the editor, the corners lost with it): the naming, then the shape; the page stays
    dashboard = phone.url
    for x, y in ((0.6, 0.1), (0.7, 0.1), (0.7, 0.2)):
        overlay.click(position={"x": x * box["width"], "y": y * box["height"]})
    phone.keyboard.press("Enter")  # closed: its name asked
    phone.go_back()
    assert phone.is_visible("#zone-editor") and phone.is_hidden("#zone-name-form")
    assert phone.locator("#zone-overlay .drawing-points circle").count() == 3
    assert phone.inner_text("#zone-status").startswith("Not named: the shape's 3 corners are kept")
    phone.go_back()
    assert phone.is_visible("#zone-editor") and phone.locator("#zone-overlay .drawing-points").count() == 0
    assert phone.inner_text("#zone-status") == "Shape dropped."
    # where "back" is a modal dialog's close request (Chrome on Android: its cancel), alike; the
    # shape ended, its history entry is taken back (a later "back" leaves no dead step)
    overlay.click(position={"x": 0.6 * box["width"], "y": 0.1 * box["height"]})
    assert phone.evaluate("history.state?.shapeOpen") is True
    phone.evaluate("document.getElementById('zone-editor').requestClose()")
    assert phone.is_visible("#zone-editor") and phone.locator("#zone-overlay .drawing-points").count() == 0
    phone.wait_for_function("() => !history.state?.shapeOpen", timeout=20_000)
    assert phone.url == dashboard and phone.input_value("#zone-yaml") == text

    # pasted under the camera in a site.yaml, it loads (what `run --check` reads) as the same polygons
    pasted = "".join("    " + line + "\n" for line in text.splitlines())
    (tmp_path / "site.yaml").write_text(f"cameras:\n  door:\n    source: {zoned_site.folder / 'door.mp4'}\n{pasted}")
    door = load_site_config(tmp_path / "site.yaml", environ={}).cameras["door"]
    assert list(door.zones) == ["queue", "exit", "front"]
    assert [list(map(list, door.zones[name])) for name in DOOR_ZONES] == list(DOOR_ZONES.values())
    assert [list(p) for p in door.zones["front"]] == drawn
    assert [[list(p) for p in mask] for mask in door.motion.masks] == [DOOR_MASK] and door.motion.threshold == 30

    # text: checked by the config's loader on the server, bad text said in its words in one line and
    # not drawn; good text is drawn
    said_under = "(said) => document.getElementById('zone-yaml-error').textContent.includes(said)"
    for bad, said in ((text.replace("zones:\n", "zones:\n  bad: [[0.1, 0.1], [1.5, 0.1], [0.5, 0.5]]\n"),
                       "camera 'door', field 'zones.bad.1.0': Input should be less than or equal to 1 (got 1.5)"),
                      ("zones:\n  bad: [[0.1, 0.1], [0.5, 0.5]]\n",
                       "camera 'door', field 'zones': zone 'bad' needs at least 3 points, got 2"),
                      ("zones: [[0.1, 0.1], [0.5, 0.5], [0.1, 0.5]]\n",
                       "camera 'door', field 'zones': Input should be a valid dictionary"),
                      ("zones:\n  bad: [[0.1, 0.1], [0.5, 0.5], [0.1, 0.5]\n",
                       "not valid YAML: while parsing a flow sequence (line 2, column 8); expected ',' or ']'")):
        phone.get_by_label("YAML to paste under").fill(bad)  # the keyboard's way to the points, by its label
        phone.wait_for_function(said_under, arg=said, timeout=10_000)
        error = phone.inner_text("#zone-yaml-error")
        assert error.startswith("Not drawn: ") and "\n" not in error, (bad, error)
        assert phone.query_selector('#zone-overlay g[data-name="bad"]') is None
        assert "stale" in phone.get_attribute("#zone-overlay", "class")
        assert phone.get_attribute("#zone-yaml", "aria-invalid") == "true"  # said with the error, its description
        # read out once typing pauses, not as an alert (which cut off what the reader was saying)
        assert phone.evaluate("[document.getElementById('zone-yaml-error').getAttribute('role'),"
                              " document.getElementById('zone-yaml-error').ariaLive]") == [None, "polite"]
    overlay.click(position={"x": 10, "y": 10})  # no drawing over text being mended: it would be written over
    assert phone.input_value("#zone-yaml") == "zones:\n  bad: [[0.1, 0.1], [0.5, 0.5], [0.1, 0.5]\n"
    assert phone.inner_text("#zone-status").startswith("The text has a problem")

    # the newest text wins: an answer to older text that comes after it is dropped
    held = []
    phone.route("**/zones/check", lambda route: held.append(route) if not held else route.continue_())
    phone.fill("#zone-yaml", "zones:\n  old: [[0.1, 0.1], [0.2, 0.1]]\n")
    for _ in range(100):  # its check sent (once typing pauses), and held
        if held:
            break
        phone.wait_for_timeout(50)
    assert len(held) == 1
    phone.fill("#zone-yaml", "zones:\n  only: [[0.1, 0.1], [0.9, 0.1], [0.5, 0.8]]\n")
    phone.wait_for_function("() => document.querySelector('#zone-overlay g[data-name=\"only\"]') !== null", timeout=10_000)
    with phone.expect_event("requestfinished", lambda request: request.url == held[0].request.url, timeout=10_000):
        held[0].continue_()  # the older text's answer (a 400) comes last, read in whole by the page
    phone.evaluate(NEXT_FRAMES)  # and shown, were it taken
    phone.unroute("**/zones/check")
    assert phone.inner_text("#zone-yaml-error") == ""
    assert phone.evaluate("[...document.querySelectorAll('#zone-overlay g[data-name]')].map((g) => g.dataset.name)") == ["only"]
    assert "stale" not in (phone.get_attribute("#zone-overlay", "class") or "")
    points = phone.get_attribute('#zone-overlay g[data-name="only"] polygon', "points")
    assert [float(v) for v in points.split()[1].split(",")] == pytest.approx([0.9 * 640, 0.1 * 480])  # its pixels
    assert phone.get_attribute("#zone-yaml", "aria-invalid") == "false"
    # a name by the picture's edge is moved in, whole: centred on its shape, it was cut off
    phone.fill("#zone-yaml", "zones:\n  checkout_by_the_window: [[0.9, 0.4], [1, 0.4], [1, 0.6]]\n")
    phone.wait_for_function("() => document.querySelector('#zone-overlay g[data-name=\"checkout_by_the_window\"]') !== null",
                            timeout=10_000)
    names = phone.evaluate("[...document.querySelectorAll('#zone-overlay text')].map((t) => t.getBBox())"
                           ".map((b) => [b.x, b.y, b.x + b.width, b.y + b.height])")
    assert len(names) == 1 and all(-0.5 <= x0 and -0.5 <= y0 and x1 <= 640.5 and y1 <= 480.5 for x0, y0, x1, y1 in names), names

    # an empty motion: given (the defaults' masks off this camera) was dropped once a shape was drawn;
    # corners at the picture's edges (a click within 6 px of one is on it: the last pixel was 0.997),
    # and a corner added with the keyboard alone (the picture took clicks only)
    phone.fill("#zone-yaml", "zones: {}\nmotion: {masks: []}\n")
    phone.wait_for_function("() => document.getElementById('zone-list').childElementCount === 0", timeout=10_000)
    overlay.click(position={"x": 2, "y": 1})
    overlay.click(position={"x": box["width"] - 2, "y": 3})
    # the picture is in the Tab order; arrows move a cross on it (from the last click), Space adds a corner there
    phone.get_by_role("application", name="the camera's picture with its zones").focus()  # keys are passed on to it
    for key in ["Shift+ArrowDown"] * 11 + ["Shift+ArrowLeft"] * 5 + ["ArrowLeft"]:
        phone.keyboard.press(key)
    assert phone.inner_text("#zone-status") == "cross at 0.49, 1"  # it stops at the edge
    assert phone.locator("#zone-overlay .cursor").count() == 1
    phone.keyboard.press("Space")
    assert phone.inner_text("#zone-status").startswith("3 corners, the last at 0.49, 1")
    phone.keyboard.press("Enter")
    phone.keyboard.type("hall")
    phone.keyboard.press("Enter")
    phone.wait_for_function("() => document.getElementById('zone-yaml').value.includes('hall')", timeout=10_000)
    assert phone.input_value("#zone-yaml") == "zones:\n  hall: [[0, 0], [1, 0], [0.49, 1]]\nmotion:\n  masks: []\n"
    phone.get_by_role("button", name="Delete zone hall").click()
    assert phone.input_value("#zone-yaml") == "zones: {}\nmotion:\n  masks: []\n"
    # a Delete pressed by mistake: the focus is on Undo (it fell to the page), which brings the zone back
    assert phone.evaluate("document.activeElement.id") == "zone-undo"
    phone.keyboard.press("Enter")
    phone.wait_for_function("() => document.querySelector('#zone-overlay g[data-name=\"hall\"]') !== null", timeout=10_000)
    assert phone.input_value("#zone-yaml") == "zones:\n  hall: [[0, 0], [1, 0], [0.49, 1]]\nmotion:\n  masks: []\n"
    phone.get_by_role("button", name="Delete zone hall").click()
    assert phone.input_value("#zone-yaml") == "zones: {}\nmotion:\n  masks: []\n"
    phone.context.grant_permissions(["clipboard-read", "clipboard-write"])
    phone.get_by_role("button", name="Copy").click()
    phone.wait_for_function("() => document.getElementById('zone-copied').textContent !== ''", timeout=20_000)
    assert phone.inner_text("#zone-copied") == "Copied."
    assert phone.evaluate("navigator.clipboard.readText()") == "zones: {}\nmotion:\n  masks: []\n"
    phone.get_by_role("button", name="Done").click()
    assert not phone.is_visible("#zone-editor")
    assert phone.evaluate("document.activeElement.className") == "draw-zones"  # back where it was opened

    # a camera with no frame yet: its shapes on a blank box; the text left before is back (Done, or
    # Escape, lost it: the editor reopened with the running zones), and "Start again" drops it
    phone.route("**/v1/cameras/door/frame.jpg*", lambda route: route.fulfill(status=404, body="{}"))
    phone.get_by_role("button", name="Draw zones of door").click()
    phone.wait_for_function("() => document.getElementById('zone-status').textContent.startsWith('Your text')", timeout=20_000)
    assert phone.input_value("#zone-yaml") == "zones: {}\nmotion:\n  masks: []\n"
    assert phone.inner_text("#zone-copied") == ""  # "Copied." was of the text before
    assert phone.get_attribute("#zone-picture", "alt") == "no picture from door yet"
    assert phone.get_attribute("#zone-overlay", "viewBox") == "0 0 640 480"
    phone.get_by_role("button", name="Start again from the running zones").click()
    assert "queue" in phone.input_value("#zone-yaml")

    # the session ends mid-edit: the page goes to the login page (every poll is refused), and the
    # text edited is there again after the login
    phone.fill("#zone-yaml", "zones: {}\n")
    phone.evaluate("fetch('/logout', {method: 'POST', headers: {'X-Maskwatch-CSRF': '1'}})")  # as it lapses
    phone.wait_for_url("**/login**", timeout=65_000)  # the next poll: a second, or a minute's back-off on a busy machine
    log_in(phone, zoned_site.base)
    phone.get_by_role("button", name="Draw zones of door").click()
    phone.wait_for_function("() => document.getElementById('zone-status').textContent.startsWith('Your text')", timeout=20_000)
    assert phone.input_value("#zone-yaml") == "zones: {}\n"
    phone.keyboard.press("Escape")
    assert not phone.is_visible("#zone-editor")
    assert phone.evaluate("document.activeElement.className") == "draw-zones"

    # zones that could not be read: no shape is drawn on nothing (pasted, it replaced the camera's)
    phone.route("**/v1/cameras/door/zones", lambda route: route.fulfill(status=503, body="{}"))
    phone.get_by_role("button", name="Draw zones of door").click()
    phone.wait_for_function("() => document.getElementById('zone-status').textContent.includes('could not be read')",
                            timeout=20_000)
    overlay.click(position={"x": 10, "y": 10})
    assert phone.inner_text("#zone-status").startswith("The camera's zones or picture could not be read: press \"Try again\"")
    assert phone.input_value("#zone-yaml") == "" and phone.evaluate("document.getElementById('zone-yaml').readOnly")


def test_escape_while_naming_a_shape_keeps_its_corners(zoned_site, admin_state, tab):
    """Escape in the name of a shape just closed closed the whole editor, and the shape's corners,
    in no text yet, were gone when it reopened; so did Escape with a shape's corners placed, not
    closed: it drops that shape now, and only a second Escape closes the editor."""
    desk = tab(1280, 800, state=admin_state)
    desk.goto(zoned_site.base + "/")
    desk.get_by_role("button", name="Draw zones of door").click()
    desk.wait_for_function("() => document.getElementById('zone-status').textContent.startsWith('Click')", timeout=20_000)
    overlay = desk.locator("#zone-overlay")
    box = overlay.bounding_box()
    for x, y in ((0.2, 0.2), (0.3, 0.2), (0.3, 0.3)):
        overlay.click(position={"x": x * box["width"], "y": y * box["height"]})
    desk.keyboard.press("Enter")
    desk.keyboard.type("ha")
    desk.keyboard.press("Escape")
    assert desk.is_visible("#zone-editor") and desk.is_hidden("#zone-name-form")
    assert desk.evaluate("document.activeElement.id") == "zone-overlay"  # where drawing goes on
    assert desk.inner_text("#zone-status").startswith("Not named: the shape's 3 corners are kept")
    assert desk.locator("#zone-overlay .drawing-points circle").count() == 3
    overlay.click(position={"x": 0.2 * box["width"], "y": 0.3 * box["height"]})  # one more corner, then named
    desk.keyboard.press("Enter")
    desk.keyboard.type("hall")
    desk.keyboard.press("Enter")
    desk.wait_for_function("() => document.getElementById('zone-yaml').value.includes('hall')", timeout=10_000)
    [line] = [line for line in desk.input_value("#zone-yaml").splitlines() if line.startswith("  hall: ")]
    assert len(json.loads(line.split(": ", 1)[1])) == 4
    for x, y in ((0.6, 0.2), (0.7, 0.2)):  # another shape begun, then dropped
        overlay.click(position={"x": x * box["width"], "y": y * box["height"]})
    desk.keyboard.press("Escape")
    assert desk.is_visible("#zone-editor") and desk.locator("#zone-overlay .drawing-points").count() == 0
    assert desk.inner_text("#zone-status") == "Shape dropped; Escape again closes the editor."
    assert desk.evaluate("document.activeElement.id") == "zone-overlay"
    assert "hall" in desk.input_value("#zone-yaml")  # the shapes before it stay
    desk.keyboard.press("Escape")  # no shape open: Escape closes the editor, as before
    assert not desk.is_visible("#zone-editor")
    desk.evaluate("sessionStorage.clear()")  # the text kept is this test's only


def test_a_zone_editor_whose_reads_hang_says_so_in_15_s_and_tries_again(zoned_site, admin_state, tab):
    """A picture or zones request that hung (no answer, no error) left the editor saying "Reading
    the camera's zones and picture…" for good, with no way but to close it."""
    desk = tab(1280, 800, state=admin_state)
    desk.clock.install()  # the page's 15 s moved on below, not waited for
    desk.goto(zoned_site.base + "/")
    frames, zones = [], []  # the frames held: the editor's, and the card's own (read the same way)
    desk.route("**/v1/cameras/door/frame.jpg*", lambda route: frames.append(route))
    desk.route("**/v1/cameras/door/zones", lambda route: zones.append(route))
    draw = desk.get_by_role("button", name="Draw zones of door")
    draw.wait_for(timeout=20_000)
    stop_the_clock(desk)  # the 15 s counted from the requests by fast_forward alone, however slow the machine
    draw.click()
    for _ in range(300):
        if zones and frames:
            break
        desk.wait_for_timeout(100)
    assert zones and frames
    desk.clock.fast_forward(14_000)
    assert desk.inner_text("#zone-status") == "Reading the camera's zones and picture…"
    desk.locator("#zone-overlay").click(position={"x": 20, "y": 20})  # nothing drawn on what is not read
    assert desk.inner_text("#zone-status") == "The camera's zones and picture are being read: a moment."
    desk.clock.fast_forward(1_100)
    desk.wait_for_function("() => document.getElementById('zone-status').textContent.includes('could not be read')",
                           timeout=20_000)
    assert desk.inner_text("#zone-status") == ("The camera's zones and picture could not be read (the server did not "
                                               "answer in 15 s): press \"Try again\".")
    assert desk.evaluate("document.getElementById('zone-yaml').readOnly") and desk.input_value("#zone-yaml") == ""
    for url in ("**/v1/cameras/door/frame.jpg*", "**/v1/cameras/door/zones"):
        desk.unroute(url)
    desk.get_by_role("button", name="Try again").click()
    desk.wait_for_function("() => document.getElementById('zone-status').textContent.startsWith('Click')", timeout=20_000)
    assert "queue" in desk.input_value("#zone-yaml") and desk.is_hidden("#zone-retry")
    assert desk.evaluate("document.activeElement.id") == "zone-overlay"  # not the page's top: the button went
    assert desk.evaluate("document.getElementById('zone-picture').naturalWidth") == 640

    # a shape's check that hangs is said too: it left the name form waiting, nothing said
    held = []
    desk.route("**/zones/check", lambda route: held.append(route))
    overlay, box = desk.locator("#zone-overlay"), desk.locator("#zone-overlay").bounding_box()
    for x, y in ((0.2, 0.2), (0.3, 0.2), (0.3, 0.3)):
        overlay.click(position={"x": x * box["width"], "y": y * box["height"]})
    desk.keyboard.press("Enter")
    desk.keyboard.type("hall")
    desk.keyboard.press("Enter")
    for _ in range(300):
        if held:
            break
        desk.wait_for_timeout(100)
    assert held
    desk.clock.fast_forward(15_100)
    desk.wait_for_function("() => document.getElementById('zone-name-error').textContent !== ''", timeout=20_000)
    assert desk.inner_text("#zone-name-error") == ("Not saved: the server did not answer in 15 s; edit the text to "
                                                   "try again")
    for _ in range(3):  # the naming, the shape, the editor
        desk.keyboard.press("Escape")
    assert not desk.is_visible("#zone-editor")


def test_a_4k_a_tall_and_a_wide_picture_take_clicks_as_shares_of_themselves(zoned_site, admin_state, tab):
    """The editor on a desk screen with pictures of other sizes than the clip's: a click maps to the
    same share of the frame at any scale, the corners at the edges reach 0 and 1, and a tall
    picture (a camera on its side) no longer pushed the text two screens down."""
    import cv2
    import numpy as np

    def picture_of(jpeg):
        return lambda route: route.fulfill(status=200, content_type="image/jpeg", body=jpeg)

    desk = tab(1280, 800, state=admin_state)
    desk.goto(zoned_site.base + "/")
    desk.wait_for_selector('.camera[data-camera="door"] .draw-zones', timeout=30_000)
    overlay = desk.locator("#zone-overlay")
    for width, height in ((3840, 2160), (480, 2000), (4000, 200)):
        jpeg = cv2.imencode(".jpg", np.full((height, width, 3), 128, np.uint8))[1].tobytes()
        desk.route("**/v1/cameras/door/frame.jpg*", picture_of(jpeg))
        desk.get_by_role("button", name="Draw zones of door").click()
        desk.wait_for_function("() => document.getElementById('zone-status').textContent.startsWith('Click')", timeout=20_000)
        assert desk.get_attribute("#zone-overlay", "viewBox") == f"0 0 {width} {height}"
        picture, box = desk.locator("#zone-picture").bounding_box(), overlay.bounding_box()
        assert all(abs(picture[k] - box[k]) < 1 for k in ("x", "y", "width", "height")), (picture, box)
        assert box["height"] <= 0.7 * 800 + 1 and box["width"] <= 1280  # the whole picture in view
        for x, y in ((1, 1), (box["width"] / 4, box["height"] / 2), (box["width"] - 1, box["height"] - 1)):
            overlay.click(position={"x": x, "y": y})
        wide = width / height > 10
        if wide:  # shown some 48 px high: 4 px from its top is not its top (6 px were)
            assert box["height"] < 60
            overlay.click(position={"x": box["width"] / 2, "y": 4})
        corners = desk.evaluate("editor.drawing")
        assert corners[0] == [0, 0] and corners[2] == [1, 1], corners
        assert corners[1] == pytest.approx([0.25, 0.5], abs=1 / min(box["width"], box["height"]))  # a whole pixel
        assert corners[3:] == ([pytest.approx([0.5, 4 / box["height"]], abs=1 / box["height"])] if wide else []), corners
        desk.keyboard.press("Escape")  # the shape open dropped, then the editor closed
        desk.keyboard.press("Escape")
        assert not desk.is_visible("#zone-editor")
        desk.unroute("**/v1/cameras/door/frame.jpg*")


def test_an_offline_card_points_an_admin_at_the_substream_it_reads(server, tab):
    """A camera with a `detect_source` reads that substream only (`source` is never opened), but its
    offline card said "mend what the error above says at <source>" under an error about the
    substream: the admin was sent to a stream that works."""
    down = {"id": "side", "name": "Side entrance", "source": "rtsp://admin:***@10.0.0.7:554/main",
            "detect_source": "rtsp://admin:***@10.0.0.7:554/sub", "zones": [], "fps_target": 1.0,
            "connected": False, "last_frame_at": None, "offline_since": "2026-12-07T06:58:00.000+01:00", "fps": 0.0,
            "frames": 0, "reconnects": 4, "last_error": "rtsp://admin:***@10.0.0.7:554/sub: 404 Not Found",
            "analysed": 0, "detected": 0, "analysis_error": None, "today": None}
    plain = {**down, "id": "door", "name": "Door", "detect_source": None}
    desk = tab()
    desk.route("**/v1/cameras", answer([down, plain]))
    desk.goto(server + "/")  # an open server: its caller is an admin
    desk.wait_for_function("() => document.querySelector('.camera[data-camera=\"door\"] .todo')?.textContent"
                           ".includes('/main;')", timeout=20_000)
    assert desk.inner_text('.camera[data-camera="side"] .todo') == (
        "What to do: mend what the error above says at rtsp://admin:***@10.0.0.7:554/sub (its detect_source); "
        "`maskwatch run --probe` tries it again.")
