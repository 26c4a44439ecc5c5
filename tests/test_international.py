"""Names, passwords and text of a site outside the English-speaking world: a password typed with
"ü" on a Mac (NFD) and on Windows (NFC), a Japanese input method's full-width letters, a user
named in Japanese, against a real SQLite database and the app's own login; a camera named in
Hebrew on the dashboard, in Chromium with a Hebrew locale."""

from __future__ import annotations

import sqlite3
import time
import unicodedata

import pyotp
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from maskwatch.cli import app as cli_app
from maskwatch.detection.detector import WEIGHTS, Detector
from maskwatch.security import passwords
from maskwatch.security.auth_settings import AuthSettings
from maskwatch.security.store import AuthStore
from maskwatch.security.two_step import new_recovery_codes, recovery_hashes
from maskwatch.serving.app import ServeSettings, create_app
from maskwatch.site.config import load_site_config
from maskwatch.site.runner import Site
from tests.conftest import Credentials, log_in, watched
from tests.rtsp import refused_port
from tests.test_alert_rules import crowd
from tests.test_alerts_page import about_noon
from tests.test_dashboard import page  # noqa: F401  (headless Chromium)
from tests.test_site_trend import serving
from tests.test_two_step import code_at

CSRF = {"X-Maskwatch-CSRF": "1"}
COMPOSED = unicodedata.normalize("NFC", "Grüße aus München")  # Windows, Linux, a phone
DECOMPOSED = unicodedata.normalize("NFD", COMPOSED)  # a Mac's text fields may send it so
FULL_WIDTH = "ｋａｎｒｉｓｈａ２０２６"  # a Japanese input method left on full-width: kanrisha2026


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app over a real SQLite database of users; a fresh TestClient per login."""
    database = str(tmp_path_factory.mktemp("intl") / "users.db")
    store = AuthStore(database)
    store.add_user("admin", "correct horse battery staple", "admin")
    store.close()
    detector = Detector.load(config=WEIGHTS / "centerface.json")  # never called
    served = create_app(detector, ServeSettings(auth=AuthSettings(database=database, open_without_users=False)))
    return database, served


def logs_in(served, name: str, password: str) -> bool:
    answer = TestClient(served).post("/login", json={"username": name, "password": password}, headers=CSRF)
    assert answer.status_code in (200, 401), answer.text
    return answer.status_code == 200


def test_a_password_with_an_umlaut_logs_in_however_the_keyboard_composed_it(served):
    """Set on Windows ("ü" one character), typed on a Mac (u and a combining diaeresis): the bytes
    differed, so did the hash, and the right password was refused; and the other way round."""
    database, app = served
    store = AuthStore(database)
    store.add_user("mueller", COMPOSED, "viewer")
    store.add_user("schmidt", DECOMPOSED, "viewer")
    store.add_user("tanaka", FULL_WIDTH, "viewer")
    store.close()
    assert DECOMPOSED != COMPOSED
    for name in ("mueller", "schmidt"):
        assert logs_in(app, name, COMPOSED) and logs_in(app, name, DECOMPOSED)
        assert not logs_in(app, name, COMPOSED.replace("ü", "u"))
    assert logs_in(app, "tanaka", "kanrisha2026") and logs_in(app, "tanaka", FULL_WIDTH)


def test_a_password_hashed_as_typed_before_still_logs_in_as_typed(served):
    """Hashes made before passwords were normalized hold the bytes typed: those still log in."""
    database, app = served
    store = AuthStore(database)
    store.add_user("weber", "placeholder password", "viewer")
    store.close()
    with passwords._CONCURRENT:
        old_hash = passwords._HASHER.hash(DECOMPOSED)  # as hash_password made it before
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE users SET password_hash = ? WHERE name = 'weber'", (old_hash,))
    assert logs_in(app, "weber", DECOMPOSED)


def test_a_too_short_password_is_counted_in_characters_not_combining_marks():
    """"Müllerüäö" typed on a Mac is 12 code points: it passed the 10-character rule with 9 characters."""
    with pytest.raises(passwords.WeakPassword, match="got 9"):
        passwords.check_strength(unicodedata.normalize("NFD", "Müllerüäö"), "mueller")


def test_a_user_named_in_japanese_or_with_an_umlaut_is_told_the_rule_in_characters_it_can_follow(served):
    """`users add 田中` said "user names are 1-64 letters, digits ...": 田 and ü are letters, and the
    rule refused them; it now names the characters (A-Z, a-z, 0-9) it means."""
    database, app = served
    rule = "user names are 1-64 of A-Z, a-z, 0-9, _ . @ or - (no accents or other scripts)"
    for name in ("田中", "müller"):
        refused = CliRunner().invoke(cli_app, ["users", "add", name, "--database", database], input="a long password 1\n")
        assert refused.exit_code == 1 and rule in refused.output, refused.output
    admin = TestClient(app)
    assert admin.post("/login", json={"username": "admin", "password": "correct horse battery staple"},
                      headers=CSRF).status_code == 200
    answer = admin.post("/v1/users", headers=CSRF, json={"name": "müller", "role": "viewer", "password": "a long password 1",
                                                         "admin_password": "correct horse battery staple"})
    assert answer.status_code == 400 and rule in answer.json()["error"], answer.text


# Where the figure after the camera's name in an alert's line begins, and where the bold part
# (time and name) ends: a right-to-left name took the figure into its run, shown before it.
FIGURE_AFTER_NAME = """(item) => {
  const bold = item.querySelector("b"), after = bold.nextSibling;
  const range = document.createRange(), at = after.textContent.search(/[0-9]/);
  range.setStart(after, at);
  range.setEnd(after, at + 1);
  return [range.getBoundingClientRect().left, bold.getBoundingClientRect().right];
}"""


def test_an_alert_on_a_camera_named_in_hebrew_reads_its_figure_after_the_name(tmp_path, page):  # noqa: F811
    """A pharmacy till named "קופה 2": its alert read "12:58 7 :2 קופה % wearing a mask" (the
    figure drawn into the name's right-to-left run); the name is now isolated (<bdi>)."""
    dead = f"rtsp://127.0.0.1:{refused_port()}/none"
    (tmp_path / "site.yaml").write_text(f"""
cameras:
  till: {{name: "קופה 2", source: "{dead}"}}
timezone: {about_noon()}
storage: {{database: site.db, privacy: true, retention_days: 30}}
alerts:
  compliance:
    - {{camera: till, below: 80, minutes: 5, min_people: 5}}
""", encoding="utf-8")
    Credentials(tmp_path / "site.db")
    detector = Detector.load(config=WEIGHTS / "centerface.json")  # never called: no camera sends a frame
    site = Site(load_site_config(tmp_path / "site.yaml", environ={}), detector)
    now = time.time()
    crowd(site.store, masked=2, unmasked=18, when=now - 120, camera="till")
    assert [a["camera"] for a in site.compliance.check(now)] == ["till"]
    auth = AuthSettings(database=str(tmp_path / "site.db"), open_without_users=False)
    with serving(create_app(detector, ServeSettings(auth=auth), site=site), lifespan="off") as base:
        tab = watched(page.context.browser.new_page(locale="he-IL"))
        try:
            log_in(tab, base)
            item = tab.wait_for_selector("li.alert")
            assert "קופה 2" in item.inner_text()
            figure_left, bold_right = item.evaluate(FIGURE_AFTER_NAME)
            assert figure_left > bold_right, (figure_left, bold_right)
        finally:
            tab.close()
            site.store.close()


def full_width(text: str) -> str:
    """As a Japanese input method in full-width mode types it: "４２００４７", "ａｂｃｄ－ｅｆｇｈ"."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else "\u3000" if c == " " else c for c in text)


def test_a_two_step_code_typed_in_full_width_digits_logs_in(served):
    """"４２００４７" from a Japanese input method was a wrong code (401, a failed login counted),
    and so was a recovery code typed so."""
    database, app = served
    secret = pyotp.random_base32(32)
    codes = new_recovery_codes()
    store = AuthStore(database)
    store.add_user("sato", "sato's long password", "viewer")
    assert store.turn_on("sato", secret, step=0, recovery=recovery_hashes(secret, codes)) == ""
    store.close()
    login = {"username": "sato", "password": "sato's long password"}
    code = code_at(secret)
    typed = full_width(f"{code[:3]} {code[3:]}")
    assert typed != f"{code[:3]} {code[3:]}"
    assert TestClient(app).post("/login", json=login | {"code": typed}, headers=CSRF).status_code == 200
    assert TestClient(app).post("/login", json=login | {"code": full_width(codes[0])}, headers=CSRF).status_code == 200


def test_a_user_name_typed_in_full_width_letters_logs_in(served):
    """The login page's name field takes the input method's mode (a password field does not):
    "ｔａｎａｋａ" was no user's, a failed login counted, for user suzuki."""
    database, app = served
    store = AuthStore(database)
    store.add_user("suzuki", "suzuki's long password", "viewer")
    store.close()
    assert logs_in(app, full_width("suzuki"), "suzuki's long password")


def test_run_check_warns_of_two_cameras_named_alike_one_written_on_a_mac(tmp_path):
    """"Eingang Süd" with "ü" as one character and as u and a combining mark (a Mac's editor) shows
    alike on the dashboard; --check warned only of names equal code point for code point."""
    (tmp_path / "site.yaml").write_text("cameras:\n"
                                        f"  door: {{source: webcam:0, name: '{COMPOSED}'}}\n"
                                        f"  door2: {{source: webcam:1, name: '{DECOMPOSED.upper()}'}}\n", encoding="utf-8")
    result = CliRunner().invoke(cli_app, ["run", "--config", str(tmp_path / "site.yaml"), "--check"])
    assert result.exit_code == 0, result.output
    assert "warning: cameras door, door2 share the name" in result.output, result.output


def test_a_new_password_that_is_the_current_one_typed_on_a_mac_is_refused_as_the_current_one(served):
    """Change password with the current one, set on Windows, as the new one typed on a Mac: the two
    strings differed, so the change went through and changed nothing (both hash alike now)."""
    database, app = served
    store = AuthStore(database)
    store.add_user("koch", COMPOSED, "viewer")
    store.close()
    client = TestClient(app)
    assert client.post("/login", json={"username": "koch", "password": COMPOSED}, headers=CSRF).status_code == 200
    answer = client.post("/password", json={"current": COMPOSED, "new": DECOMPOSED}, headers=CSRF)
    assert answer.status_code == 400 and answer.json()["error"] == passwords.SAME_PASSWORD, answer.text


class CountingHasher(passwords.Argon2Hasher):
    """The real Argon2 hasher, counting its verifications: each is the ~150 ms an answer's time shows."""

    verified = 0

    def verify(self, password, hash):
        CountingHasher.verified += 1
        return super().verify(password, hash)


def test_a_right_password_without_the_code_takes_the_hashing_a_wrong_one_does(served, monkeypatch):
    """A user with two-step login on, a guesser without the code: a password sent with one letter in
    full-width was checked once when its NFKC form was right and twice when wrong (the second try
    as typed), so the answer's time (150 ms against 300) told the guesser the password was right."""
    database, app = served
    store = AuthStore(database)
    store.add_user("ito", "ito's long password", "viewer")
    secret = pyotp.random_base32(32)
    assert store.turn_on("ito", secret, step=0, recovery=recovery_hashes(secret, new_recovery_codes())) == ""
    store.close()
    monkeypatch.setattr(passwords, "_HASHER", CountingHasher(time_cost=passwords.TIME_COST,
                                                             memory_cost=passwords.MEMORY_KIB,
                                                             parallelism=passwords.LANES))
    verified = {}
    for guess in ("ｉto's long password", "ｉto's wrong password"):  # "ｉ": the full-width i
        CountingHasher.verified = 0
        assert not logs_in(app, "ito", guess)  # no code: 401 either way
        verified[guess] = CountingHasher.verified
    assert len(set(verified.values())) == 1, verified


def test_a_password_is_counted_in_the_characters_typed_not_those_nfkc_expands_them_to():
    """U+FDFA, one character, is 18 in NFKC ("⑽" is "(10)"): one passed the 10-character rule."""
    with pytest.raises(passwords.WeakPassword, match="got 1"):
        passwords.check_strength("\ufdfa", "bob")
    with pytest.raises(passwords.WeakPassword, match="got 3"):
        passwords.check_strength("⑽⑽⑽", "bob")
