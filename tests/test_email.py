"""E-mail through apprise's mailto:// and mailtos:// URLs, as a practice manager's IT writes them
from docs/site.md, against a real SMTP server on loopback (tests/smtp_server.py: plain as a local
Postfix on 25, STARTTLS with a login as an office relay or Microsoft 365 on 587, implicit TLS with a
login on 465, on a certificate the test makes and trusts through SSL_CERT_FILE): the daily report
and an alert arrive and read as `maskwatch report` prints them, a non-ASCII camera name survives,
each failure is a line naming its problem without the password, and a relay that never answers
holds up neither a camera nor another service."""

import logging
import socket
import time
import urllib.parse

import pytest
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.site.config import load_site_config
from maskwatch.site.events import EventStore
from maskwatch.site.notify import Notifier, NotifyRule
from tests.smtp_server import PASSWORD, REFUSED_DOMAIN, USER, Silent, SmtpServers
from tests.test_events import person
from tests.test_notify import RootLog
from tests.test_security_deploy import self_signed

NAME = "Wartezimmer Süd"
LOGIN = f"{urllib.parse.quote(USER, safe='')}:{PASSWORD}"
MANAGER = "manager@clinic.example"
UMLAUT = "Wartezimmer-Süd-2026"  # a password Python's smtplib cannot send
ALERT = {"rule": 0, "camera": "waiting", "zone": "Tür", "compliance": 40.0, "compliance_low": 20.5,
         "compliance_high": 61.2, "observed": 40.0, "below": 80.0, "people": 10, "with_mask": 4, "unassessable": 2,
         "minutes": 15, "at": 1_800_000_000.0}


@pytest.fixture(scope="session")
def smtp(tmp_path_factory):
    cert, key = self_signed(tmp_path_factory.mktemp("smtp-cert"))
    servers = SmtpServers(cert, key)
    servers.cert = cert
    yield servers
    servers.close()


@pytest.fixture()
def trusted(smtp, monkeypatch):
    """The test's certificate trusted as a real relay's would be (Python's ssl reads SSL_CERT_FILE)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(smtp.cert))
    smtp.box.take()
    yield smtp
    smtp.box.take()


def starttls_url(smtp, login=LOGIN, to=MANAGER):
    return f"mailtos://{login}@127.0.0.1:{smtp.starttls.port}?from={USER}&to={to}"


def site_file(tmp_path, more: str):
    path = tmp_path / "site.yaml"
    path.write_text("cameras:\n"
                    f"  waiting: {{name: {NAME}, source: webcam:0}}\n"
                    f"timezone: Europe/Berlin\n{more}")
    return path


def body_of(message) -> str:
    part = message.get_body(("plain",))
    assert part.get_content_charset() == "utf-8"
    return part.get_content().replace("\r\n", "\n").strip()


def test_the_daily_report_arrives_by_starttls_as_maskwatch_report_prints_it(tmp_path, trusted):
    path = site_file(tmp_path, f"reports: [{{urls: '{starttls_url(trusted)}', at: '23:59'}}]\n")
    config = load_site_config(path, environ={})
    store = EventStore(config.storage.database, config.storage.snapshots, retention_days=30)
    now = time.time()
    for track, probabilities in enumerate([(0.9, 0.05, 0.05)] * 3 + [(0.05, 0.9, 0.05)]):
        store.record("waiting", None, person(track, probabilities, first=now - 6, last=now - 1))
    store.close()
    printed = CliRunner().invoke(app, ["report", "--config", str(path)])
    assert printed.exit_code == 0, printed.output
    sent = CliRunner().invoke(app, ["report", "--config", str(path), "--send", "0"])
    assert sent.exit_code == 0, sent.output
    assert sent.output.splitlines()[-1] == f"report 0 sent to mailtos://127.0.0.1:{trusted.starttls.port}/…"
    (recipients, message), = trusted.box.take()
    assert recipients == [MANAGER] and message["From"].addresses[0].addr_spec == USER
    lines = printed.output.splitlines()
    title, body = lines[1], lines[2:4]
    assert message["Subject"] == title and title.startswith("Mask compliance ")
    assert body_of(message).splitlines() == body
    assert body[0].startswith(f"{NAME}: 4 people: 3 with a mask, 1 without")
    (attached,) = [part for part in message.iter_attachments()]
    name = body[1].rpartition(": ")[2]
    assert attached.get_filename() == name
    assert attached.get_content().replace("\r\n", "\n") == printed.output.split(f"--- {name}\n")[1].rstrip("\n") + "\n"


def test_a_test_alert_and_a_compliance_alert_arrive_by_tls_on_465_and_plain_on_25(tmp_path, trusted):
    implicit = f"mailtos://{LOGIN}@127.0.0.1:{trusted.implicit.port}?mode=ssl&from={USER}&to={MANAGER}"
    plain = f"mailto://127.0.0.1:{trusted.plain.port}?from=maskwatch@clinic.example&to={MANAGER}"
    path = site_file(tmp_path, f"alerts: {{notify: [{{urls: ['{implicit}', '{plain}']}}]}}\n")
    result = CliRunner().invoke(app, ["alerts", "test", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1:] == [
        f"notify 0 mailtos://127.0.0.1:{trusted.implicit.port}/…: OK (apprise accepted)",
        f"notify 0 mailto://127.0.0.1:{trusted.plain.port}/…: OK (apprise accepted)"]
    received = trusted.box.take()
    assert len(received) == 2
    for _, message in received:
        assert message["Subject"] == f"maskwatch test alert from site site.yaml on {socket.gethostname()}"
        assert f"Camera: {NAME} (waiting)" in body_of(message).splitlines()
    notifier = Notifier([NotifyRule(plain, retries=0)], names={"waiting": NAME}).start()
    notifier.alert(ALERT)
    notifier.stop()
    (_, message), = trusted.box.take()
    assert message["Subject"] == f"{NAME}, Tür: 40 % masked over 15 minutes, under 80 %"
    assert "Zone: Tür" in body_of(message).splitlines()


def test_each_failure_is_a_line_naming_its_problem_without_the_password(tmp_path, smtp, monkeypatch):
    """`alerts test` and the running site's warning alike (the site's apprise logger is not at DEBUG)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(smtp.cert))
    wrong = f"{urllib.parse.quote(USER, safe='')}:{PASSWORD[:-1]}X"
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        down = closed.getsockname()[1]
    cases = [  # (URL, what its line must say)
        (starttls_url(smtp, login=wrong), "login refused (535 5.7.8 Authentication credentials invalid): a wrong user or password?"),
        (f"mailtos://{LOGIN}@127.0.0.1:{down}?from={USER}&to={MANAGER}", "connection refused"),
        (f"mailtos://{LOGIN}@127.0.0.1:{smtp.starttls.port}?mode=ssl&from={USER}&to={MANAGER}", "mode=ssl"),
        (f"mailtos://{LOGIN}@127.0.0.1:{smtp.plain.port}?from={USER}&to={MANAGER}", "offers no STARTTLS"),
        (starttls_url(smtp, to=f"boss@{REFUSED_DOMAIN}"), "550 5.7.1 Relaying denied"),
        (starttls_url(smtp, login=f"{urllib.parse.quote(USER, safe='')}:{UMLAUT}"), "a character outside ASCII"),
    ]
    path = site_file(tmp_path, "alerts: {notify: [" + ", ".join(f"{{urls: '{url}'}}" for url, _ in cases) + "]}\n")
    result = CliRunner().invoke(app, ["alerts", "test", "--config", str(path)])
    assert result.exit_code == 1
    lines = result.output.splitlines()[1:-1]
    assert len(lines) == len(cases)
    for line, (_, expected) in zip(lines, cases):
        assert ": failed, " in line and expected in line, line
    # the running site's warning: its log at INFO, never DEBUG (where the old code's reason had no cause)
    notifier = Notifier([NotifyRule(url, retries=0) for url, _ in cases])
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    try:
        with RootLog() as log:
            for index, (url, expected) in enumerate(cases):
                outcome = notifier.try_now(index, {"type": "compliance", "alert": ALERT})
                assert expected in outcome.reason, outcome.reason
    finally:
        root.setLevel(level)
    said = result.output + " ".join(record.getMessage() for record in log.records
                                    if not record.name.startswith(("mail.log", "asyncio")))  # the test server's own
    assert PASSWORD not in said and PASSWORD[:-1] not in said and UMLAUT not in said and f"boss@{REFUSED_DOMAIN}" not in said
    assert smtp.box.take() == []


def test_a_relay_that_never_answers_holds_up_no_camera_and_no_other_service(tmp_path, trusted):
    """A server that takes the connection and says nothing (not even its greeting): the camera's
    call queues and returns, the plain relay beside it gets its message, `alerts test` says the
    timeout, and the stop is not held."""
    silent = Silent()
    hung = f"mailto://127.0.0.1:{silent.port}?from=maskwatch@clinic.example&to={MANAGER}"
    plain = f"mailto://127.0.0.1:{trusted.plain.port}?from=maskwatch@clinic.example&to={MANAGER}"
    try:
        notifier = Notifier([NotifyRule(hung, retries=0, timeout=1), NotifyRule(plain, retries=0)],
                            names={"waiting": NAME}).start()
        notifier.alert(ALERT)  # what a camera's thread calls: it returns while the relay is silent
        for _ in range(200):
            if trusted.box.messages:
                break
            time.sleep(0.05)
        (_, message), = trusted.box.take()
        assert message["Subject"].startswith(f"{NAME}, Tür: 40 % masked")
        assert len(silent.connections) == 1  # the hung relay has the other try, still unanswered
        notifier.stop(timeout=3)
        assert notifier.stats.sent == 1
        path = site_file(tmp_path, f"alerts: {{notify: [{{urls: '{hung}', timeout: 1}}]}}\n")
        result = CliRunner().invoke(app, ["alerts", "test", "--config", str(path)])
        assert result.exit_code == 1
        assert result.output.splitlines()[1].startswith(f"notify 0 mailto://127.0.0.1:{silent.port}/…: failed, "
                                                        "timeout: no answer within 1 s")
    finally:
        silent.close()


def test_a_wrong_password_is_retried_and_said_once_in_the_sites_log(trusted):
    wrong = f"{urllib.parse.quote(USER, safe='')}:{PASSWORD[:-1]}X"
    before = trusted.box.refused_logins
    notifier = Notifier([NotifyRule(starttls_url(trusted, login=wrong), retries=1)], names={"waiting": NAME}).start()
    with RootLog() as log:
        notifier.alert(ALERT)
        notifier.stop(timeout=10)
    # a try and its retry, 1 s later, each refused twice: smtplib tries AUTH PLAIN, then LOGIN
    assert trusted.box.refused_logins - before == 4
    said = [record.getMessage() for record in log.records if record.name.startswith("maskwatch")]
    assert [line for line in said if "login refused (535" in line] == [said[0]] and PASSWORD[:-1] not in " ".join(said)


@pytest.mark.parametrize("url", [
    "mailtos://reports:{secret}@mail.example.com?to=manager@clinic.example",
    "mailtos://reports%40clinic.example:{secret}@mail.example.com?from=reports@clinic.example&to=x@clinic.example",
    "mailtos://reports@clinic.example:pw-{secret}@smtp.office365.com?from=reports@clinic.example&to=x@clinic.example",
])
def test_a_bare_at_in_the_login_stops_the_start_and_shows_no_part_of_the_password(tmp_path, url):
    """apprise took the password's tail after its @ for the host: mail to host 'tail-3f9c',
    `notify: mailtos://tail-3f9c/…` in --check and the log."""
    path = site_file(tmp_path, f"reports: [{{urls: '{url.format(secret='p@tail-3f9c')}'}}]\n")
    result = CliRunner().invoke(app, ["run", "--config", str(path), "--check"])
    assert result.exit_code != 0
    assert "field 'reports.0.urls.0': the user or password holds a bare @: write it %40" in result.output
    assert "tail-3f9c" not in result.output


@pytest.mark.parametrize("secret", ["pw/tail-3f9c", "pw?tail-3f9c", "pw#tail-3f9c"])
def test_a_bare_slash_question_or_hash_in_the_password_stops_the_start(tmp_path, secret):
    """With a bare / the URL passed --check: apprise read no host and the password's tail as the
    recipient (`tail-3f9c@mail.example.com`), and each mail failed at the site; with ? or # the
    start said only "Invalid ~From~ email specified"."""
    url = f"mailtos://reports:{secret}@mail.example.com?from=reports@clinic.example&to=x@clinic.example"
    result = CliRunner().invoke(app, ["run", "--config", str(site_file(tmp_path, f"reports: [{{urls: '{url}'}}]\n")),
                                      "--check"])
    assert result.exit_code != 0
    assert "field 'reports.0.urls.0': the user or password holds a bare / ? or #: write them %2F %3F %23" in result.output
    assert "tail-3f9c" not in result.output


def test_a_relays_own_certificate_is_said_untrusted_and_verify_no_takes_it(smtp, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    smtp.box.take()
    notifier = Notifier([NotifyRule(starttls_url(smtp), retries=0), NotifyRule(starttls_url(smtp) + "&verify=no", retries=0)])
    untrusted = notifier.try_now(0, {"type": "compliance", "alert": ALERT})
    assert untrusted.reason.endswith("(TLS certificate not trusted)"), untrusted.reason
    assert notifier.try_now(1, {"type": "compliance", "alert": ALERT}) == "apprise accepted"
    assert len(smtp.box.take()) == 1


def test_the_documented_email_entries_load_and_show_no_password(tmp_path):
    from tests.conftest import ROOT

    docs = (ROOT / "docs" / "site.md").read_text()
    block = docs.split("**By e-mail, worked through.**")[1].split("```yaml\n")[1].split("```")[0]
    path = site_file(tmp_path, block)
    config = load_site_config(path, environ={"MAIL_PASSWORD": "pw%40" + PASSWORD})
    assert [len(config.reports), len(config.alerts.notify)] == [1, 2]
    checked = CliRunner().invoke(app, ["run", "--config", str(path), "--check"], env={"MAIL_PASSWORD": PASSWORD})
    assert checked.exit_code == 0, checked.output
    assert "mailtos://smtp.office365.com/…" in checked.output and PASSWORD not in checked.output


@pytest.mark.parametrize("host", ["mail.example.com", "[2001:db8::25]"])
@pytest.mark.parametrize("port", ["99999", "0", "58x"])
def test_a_mail_servers_port_that_is_no_port_stops_the_start_naming_the_port(tmp_path, host, port):
    """`:99999` passed --check, and each mail failed at the site; `:58x` was said to be a bare / ? or #
    in the password, which held none. An IPv6 server's ([2001:db8::25]:58x: apprise then had no host) too."""
    url = f"mailtos://reports:pw-3f9c@{host}:{port}?from=reports@clinic.example&to=x@clinic.example"
    result = CliRunner().invoke(app, ["run", "--config", str(site_file(tmp_path, f"reports: [{{urls: '{url}'}}]\n")),
                                      "--check"])
    assert result.exit_code != 0
    assert (f"field 'reports.0.urls.0': the mail server's port '{port}' is no number of 1-65535 (587 for STARTTLS, "
            "465 with mode=ssl, 25 for a relay)") in result.output
    assert "pw-3f9c" not in result.output


@pytest.mark.parametrize("to, said", [
    ("notanaddress", "to= holds 'notanaddress', which is no e-mail address: apprise drops it and sends to no one"),
    ("manager@clinic.example,nurse", "to= holds 'nurse', which is no e-mail address: apprise drops it;"),
    ("o%27brien@clinic.example", "to= holds \"o'brien@clinic.example\", which apprise reads as 'brien@clinic.example' "
                                 "(a name, then an address) and sends to that other mailbox;"),
    ("ana@clinic.example&to=bea@clinic.example", "to= is given 2 times: apprise sends to the last alone "
                                                  "('bea@clinic.example');"),
    ("ana@clinic.example&bea@clinic.example", "'bea@clinic.example' stands alone after an &: apprise reads no "
                                              "recipient there and drops it;"),
    ("ana@clínica.example", "to= holds 'ana@clínica.example', which apprise drops (it takes addresses in ASCII "
                            "only) and sends to no one; write its domain as DNS has it: ana@xn--clnica-4va.example"),
])
def test_a_recipient_apprise_would_drop_stops_the_start_naming_it(tmp_path, to, said):
    """`to=notanaddress` passed --check, and each report then failed at the site ("There are no Email
    recipients to notify"); `to=manager@clinic.example,nurse` went to the manager alone, in silence;
    `to=o'brien@clinic.example` went to brien@clinic.example, someone else, in silence, and
    `to=ana@…&to=bea@…` or `to=ana@…&bea@…` to one of them alone; an address of an
    IDN domain (ana@clínica.example) was said to be "no e-mail address", its ASCII form not given."""
    url = f"mailtos://reports:pw-3f9c@mail.example.com?from=reports@clinic.example&to={to}"
    result = CliRunner().invoke(app, ["run", "--config", str(site_file(tmp_path, f"reports: [{{urls: '{url}'}}]\n")),
                                      "--check"])
    assert result.exit_code != 0 and f"field 'reports.0.urls.0': {said}" in result.output, result.output
    assert "pw-3f9c" not in result.output
    plus = url.replace(to, "ana+maskwatch@clinic.example,Bea%20Weber%20%3Cbea@clinic.example%3E")  # both taken
    assert CliRunner().invoke(app, ["run", "--config", str(site_file(tmp_path, f"reports: [{{urls: '{plus}'}}]\n")),
                                    "--check"]).exit_code == 0


def test_a_url_apprise_cannot_read_is_refused_without_the_first_and_last_letters_of_its_login(tmp_path):
    """apprise's own line names the URL in its privacy form, which keeps a user's and a password's first
    and last letters: `not a E-Mail URL apprise can use (... mailtos://ü...r:S...c@m...m?to=a...e)` in
    --check and the journal. Now the URL is the scheme alone there, and the line says how to give a sender."""
    url = "mailtos://üser:Secret-3f9c@mail.example.com?to=manager@clinic.example"
    result = CliRunner().invoke(app, ["run", "--config", str(site_file(tmp_path, f"reports: [{{urls: '{url}'}}]\n")),
                                      "--check"])
    assert result.exit_code != 0
    said = next(line for line in result.output.splitlines() if "field 'reports.0.urls.0'" in line)
    assert said.split("field 'reports.0.urls.0': ", 1)[1].startswith("not an E-Mail URL apprise can use (Invalid ~From~ email specified: ")
    assert "Could not load E-Mail URL: mailtos://…;" in said and "give from=ADDRESS" in said, said
    assert not any(letters in said for letters in ("S...c", "ü...r", "Secret", "üser")), said


@pytest.mark.parametrize("password", ["Secret-3f9c)", "Secret-3f9c;"])
def test_a_password_ending_in_a_bracket_or_semicolon_leaves_no_letter_of_it_in_the_refusal(tmp_path, password):
    """apprise's URL in its own line was cut at a ) or ;, taken for the end of the sentence: its privacy
    form's tail, the password's last letter among it, stayed in --check's line ("mailtos://…)@m...m")."""
    url = f"mailtos://üser:{password}@mail.example.com?to=manager@clinic.example"
    result = CliRunner().invoke(app, ["run", "--config", str(site_file(tmp_path, f"reports: [{{urls: '{url}'}}]\n")),
                                      "--check"])
    said = next(line for line in result.output.splitlines() if "field 'reports.0.urls.0'" in line)
    assert result.exit_code != 0 and "Could not load E-Mail URL: mailtos://…; without from=" in said, said


def test_a_lone_address_is_looked_for_after_to_only_never_in_a_password(tmp_path):
    """`to=ana@…&bea@…` is refused naming bea@…; a password in pass= with a bare & ("pw&3f9c@x.example")
    is no recipient, and its tail is not shown as one."""
    url = "mailtos://reports@mail.example.com?pass=pw&3f9c@x.example&from=reports@clinic.example&to=ana@clinic.example"
    result = CliRunner().invoke(app, ["run", "--config", str(site_file(tmp_path, f"reports: [{{urls: '{url}'}}]\n")),
                                      "--check"])
    assert "3f9c" not in result.output, result.output
