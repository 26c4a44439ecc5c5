"""The dashboard on a phone's touch screen (Chromium emulating one: is_mobile, has_touch), against
test_dashboard's zoned site: every view and dialog within the screen, every control a finger can hit,
the people seen readable without scrolling sideways; a mouse's desktop as it was."""

import pytest

from tests.conftest import log_in, watched
from tests.test_dashboard import answer, event, page, zoned_site  # noqa: F401  (Chromium, the site)

pytestmark = pytest.mark.system

# The controls a finger taps, visible now, under 44 px either way (Apple's and Material's least tap
# target; a checkbox is tapped by its label); the CSV links too, a line of 17 px each.
SMALL = """(scope) => [...document.querySelector(scope).querySelectorAll(
    'button, select, input:not([type=checkbox]), textarea, summary, label:has(input[type=checkbox]), #events h2 a')]
  .filter((el) => el.checkVisibility()).map((el) => [el.id || el.textContent.trim().slice(0, 30), el.getBoundingClientRect()])
  .filter(([, box]) => box.height < 44 || box.width < 44).map(([name, box]) => `${name} ${box.width}x${box.height}`)"""
# Whether the page scrolls sideways, and the dialog's box against the screen
SIDEWAYS = "() => document.documentElement.scrollWidth > innerWidth"
WITHIN = """(dialog) => { const box = document.getElementById(dialog).getBoundingClientRect();
  return box.left >= 0 && box.top >= 0 && box.right <= innerWidth && box.bottom <= innerHeight; }"""
# Each sideways-scrolling box in `scope`, once the page has laid out and its ResizeObservers have
# run: [its label, its tabindex, whether it scrolls sideways now]
STOPS = """async (scope) => { await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  return [...document.querySelector(scope).querySelectorAll('.scroll[role=region]')].map((box) => [
    box.getAttribute('aria-label'), box.getAttribute('tabindex'), box.scrollWidth > box.clientWidth]); }"""


def stops(tab, scope: str) -> dict:
    """{label: scrolls} of the boxes in `scope`, each checked true: a keyboard stop, said to scroll
    sideways, only while it does."""
    boxes = tab.evaluate(STOPS, scope)
    for label, tabindex, scrolls in boxes:
        assert label.endswith(" (scrolls sideways)") == scrolls and (tabindex == "0") == scrolls, boxes
    return {label.removesuffix(" (scrolls sideways)"): scrolls for label, _, scrolls in boxes}


# The zone editor's instructions and picture, the editor scrolled to its top: [instructions, picture, editor]
ZONE_BOXES = """() => { document.getElementById('zone-editor').scrollTop = 0;
  return ['zone-help', 'zone-picture', 'zone-editor'].map((id) => document.getElementById(id).getBoundingClientRect().toJSON()); }"""


def phone_tab(page, width, height):  # noqa: F811
    """A page of its own in a touch-screen phone's browser (a context: a tab cannot be made mobile)."""
    context = page.context.browser.new_context(viewport={"width": width, "height": height}, is_mobile=True,
                                               has_touch=True)
    return watched(context.new_page())


def test_a_phone_shows_every_view_in_its_width_with_controls_a_finger_can_hit(zoned_site, page):  # noqa: F811
    """At 390x844, 360x640 and 844x390 (landscape) the buttons and selects were 35 px high, the chart
    table's summary 19, the CSV links 17, a viewer's camera checkboxes 13, the login's fields 38; the
    people seen scrolled sideways in their box, the probability cut at the screen's edge and the
    snapshot out of sight; why a snapshot is "no picture" was in a tooltip, which no finger brings up;
    turned, the zone editor's instructions pushed half its picture off the first screen. With a mouse
    the controls keep their 2.2em, the people their table and the zone
    editor its instructions above the picture."""
    phone = phone_tab(page, 390, 844)
    try:
        phone.goto(zoned_site.base + "/login")
        assert not phone.evaluate(SIDEWAYS) and phone.evaluate(SMALL, "#login") == []
        log_in(phone, zoned_site.base)
        gone = {**event("with_mask", camera="door"), "snapshot": "/v1/snapshots/gone.jpg"}  # 404: "not kept"
        phone.route("**/v1/events?*", answer({"events": [gone, event("unassessable", camera="door", seconds_ago=5)]}))
        phone.reload()
        phone.wait_for_selector("#event-list tr.event", timeout=20_000)
        phone.wait_for_selector("#users-open", state="visible")
        for width, height in ((390, 844), (360, 640), (844, 390)):
            phone.set_viewport_size({"width": width, "height": height})
            assert not phone.evaluate(SIDEWAYS), width
            assert phone.evaluate(SMALL, "body") == [], width
        phone.set_viewport_size({"width": 360, "height": 640})
        # each person a block, each value after its heading, all of it on the screen
        cells = phone.eval_on_selector_all("#event-list tr.event:first-child td", """(tds) => tds.map((td) => [
            td.getAttribute('role'), getComputedStyle(td, '::before').content, td.getBoundingClientRect().right])""")
        assert [content for _, content, _ in cells] == [
            '"Last seen: "', '"Camera: "', '"Zone: "', '"Label: "', '"How sure: "', "none"]  # the picture says itself
        assert all(role == "cell" and right <= 360 for role, _, right in cells), cells
        assert phone.evaluate("(r => r.scrollWidth <= r.clientWidth)(document.querySelector('#events .scroll'))")
        # stacked, the people scroll nothing: no keyboard stop, not said to scroll ("(scrolls sideways)" and
        # tabindex=0 were fixed in the page); the chart's figures, six columns, do scroll here
        assert stops(phone, "#events") == {"people seen": False}
        phone.click("#trend details summary")
        assert stops(phone, "#trend") == {"the chart's figures": True}
        phone.set_viewport_size({"width": 1280, "height": 800})  # on resize: checked again
        assert stops(phone, "#trend") == {"the chart's figures": False}
        phone.set_viewport_size({"width": 360, "height": 640})
        assert stops(phone, "#trend") == {"the chart's figures": True}
        phone.click("#trend details summary")
        # why there is no picture is shown where no finger can bring a tooltip up
        phone.wait_for_selector("#event-list .nosnap .why")
        assert phone.eval_on_selector("#event-list .nosnap .why", "(s) => s.getBoundingClientRect().width") > 20

        dialogs = {"users": "#users-dialog", "two-step": "#two-step-dialog", "password": "#password-dialog",
                   "access-log": "#access-log-dialog"}
        for name, dialog in dialogs.items():
            phone.click(f"#{name}-open")
            phone.wait_for_selector(f"{dialog}[open]")
            if name == "access-log":
                phone.wait_for_selector("#access-log-table tbody tr")
            assert phone.evaluate(WITHIN, dialog[1:]) and not phone.evaluate(SIDEWAYS), name
            assert phone.evaluate(SMALL, dialog) == [], name
            if name == "users":  # the users and tokens stack too
                assert stops(phone, dialog) == {"users": False, "API tokens": False}
            phone.keyboard.press("Escape")
        phone.click('.camera[data-camera="door"] .draw-zones')
        phone.wait_for_function("() => document.getElementById('zone-yaml').value.includes('queue')", timeout=20_000)
        for width, height in ((360, 640), (844, 390)):
            phone.set_viewport_size({"width": width, "height": height})
            assert phone.evaluate(WITHIN, "zone-editor") and not phone.evaluate(SIDEWAYS), width
            assert phone.evaluate(SMALL, "#zone-editor") == [], width
        # turned, the instructions beside the picture: above it, they pushed half of it off the first screen
        help_box, picture, editor = phone.evaluate(ZONE_BOXES)
        assert picture["bottom"] <= editor["bottom"] and help_box["left"] >= picture["right"], (help_box, picture)
        phone.keyboard.press("Escape")
        phone.click("#logout")
        phone.wait_for_url("**/login*")
    finally:
        phone.context.close()

    desk = watched(page.context.browser.new_page(viewport={"width": 1280, "height": 800}))
    try:  # a mouse: the sizes and the table as before
        log_in(desk, zoned_site.base)
        desk.route("**/v1/events?*", answer({"events": [gone]}))
        desk.reload()
        desk.wait_for_selector("#event-list tr.event", timeout=20_000)
        assert desk.evaluate("document.querySelector('#trend-bucket').getBoundingClientRect().height") == pytest.approx(
            2.2 * 16, abs=0.5)
        assert desk.evaluate("getComputedStyle(document.querySelector('#event-list td')).display") == "table-cell"
        desk.click('.camera[data-camera="door"] .draw-zones')  # the zone editor's instructions above its picture
        desk.wait_for_selector("#zone-editor[open]")
        help_box, picture, _ = desk.evaluate(ZONE_BOXES)
        assert help_box["bottom"] <= picture["top"] and help_box["width"] > picture["width"]
    finally:
        desk.close()
