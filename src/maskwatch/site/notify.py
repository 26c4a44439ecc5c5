"""Alerts a person reads: "Front door: a person without a mask" on Slack, Telegram, ntfy, e-mail...

Sent with apprise (one URL per service: slack://, tgram://, ntfy://, mailto://, json:// ...), on
the webhooks' machinery (alerts.py): the same filters, cooldowns and opening hours, a thread and
a bounded queue per URL so that a dead service never holds up a camera or another service, the
same retries, and a failure said once in the log.

A URL holds its service's secret (a bot token, a topic, a password), so logs, errors and `run
--check` show it as apprise's privacy form cut after its host (`tgram://1...8/…`), and apprise's
own log lines, which may name a token, are not passed on: the reason a try failed is taken from
the call's result, less every part of the URL.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import urllib.parse
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Callable

import apprise
from apprise.attachment.memory import AttachMemory

from maskwatch.site.alerts import AlertFilter, AlertQueues, Failure, shown_url
from maskwatch.site.apprise_logs import quiet_apprise
from maskwatch.site.infrared import infrared_words

SERVICES_PAGE = "https://appriseit.com/services/"
TEST_NOTE = "A test (maskwatch alerts test): no one was seen; a real alert reads as the lines above."
WHO = {"without_mask": "a person without a mask", "mask_weared_incorrect": "a person wearing a mask wrongly",
       "with_mask": "a person with a mask", "unassessable": "a person whose mask could not be judged"}
# Each call runs in the caller's thread (async_mode off, no service_timeout): Notifier._try limits
# it itself. apprise's own timeout left a hung call on its process-wide worker pool, where a few
# filled every worker (no other service's message went) and held the process's exit for good.
ASSET = apprise.AppriseAsset(app_id="maskwatch", app_desc="maskwatch face-mask alerts", async_mode=False,
                             service_timeout=0)


_detail = {"calls": 0, "level": logging.NOTSET}  # calls running with apprise's logger at DEBUG; its level before
_detail_lock = threading.Lock()


@contextmanager
def apprise_detail():
    """apprise's logger at DEBUG while a call runs (the first call in sets it, the last out puts
    the level back), its lines going nowhere but the call's own capture (quiet_apprise), whose
    `Socket Exception` line alone names why a try failed: at the site's level (INFO) every e-mail
    failure, a wrong password, TLS or a refused recipient, read "Connection error"."""
    logger = logging.getLogger("apprise")
    with _detail_lock:
        if _detail["calls"] == 0:
            _detail["level"] = logger.level
            logger.setLevel(logging.DEBUG)
        _detail["calls"] += 1
    try:
        yield
    finally:
        with _detail_lock:
            _detail["calls"] -= 1
            if _detail["calls"] == 0:
                logger.setLevel(_detail["level"])


# What a failed connection's `Socket Exception` (requests' error, naming the URL's path) says, in
# words that name no part of the URL.
CAUSES = (("Connection refused", "connection refused"), ("NameResolutionError", "host not found (DNS)"),
          ("Name or service not known", "host not found (DNS)"), ("timed out", "timed out"),
          ("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted"),
          # e-mail (smtplib): a TLS mode that is not the port's, a server offering no STARTTLS or login
          ("WRONG_VERSION_NUMBER", "TLS failed: the server does not start with TLS on this port "
                                   "(mode=ssl is for port 465; 587 and 25 take STARTTLS, mailtos:// without mode)"),
          ("STARTTLS extension not supported", "the server offers no STARTTLS (mailtos://): a plain server is mailto://"),
          ("SMTP AUTH extension not supported", "the server offers no login on this connection "
                                                "(a relay offers it after STARTTLS, mailtos://; one without login takes no user and password)"),
          ("Connection unexpectedly closed", "the server closed the connection"),
          ("SSLError", "TLS failed"), ("[SSL", "TLS failed"), ("Connection reset", "connection reset"))
# An SMTP server's answer as smtplib's errors hold it: (535, b'5.7.8 Authentication credentials invalid')
SMTP_REPLY = re.compile(r"\((\d{3}), b(['\"])(.*?)\2")


def cause(lines: list[str], url: str) -> str | None:
    """Why apprise's connection failed, from its debug lines (each call captures them,
    apprise_detail): its `Socket Exception` line alone tells a refused connection from a host not
    found, a wrong password or a refused recipient, which its warning does not; None where they do not say. A server's own words are said less every part of `url`
    (they may echo an address); ours name none."""
    for line in lines:
        if line.startswith("Notification Exception") and "'ascii' codec can't encode" in line \
                and url.lower().startswith("mailto"):  # smtplib encodes AUTH's user and password as ASCII
            return "a character outside ASCII in the user or password, which Python's SMTP login cannot send"
        if line.startswith("Socket Exception"):
            if reply := SMTP_REPLY.search(line):
                code, text = reply[1], without_url(" ".join(reply[3].replace("\\r\\n", " ").split()), url)
                if code == "535":
                    return f"login refused ({code} {text}): a wrong user or password?"
                return f"the mail server answered {code} {text}"
            return next((words for mark, words in CAUSES if mark in line), None)
    return None


def without_url(text: str, url: str) -> str:
    """`text` less every part of `url` past its scheme that `shown_notify_url` does not show
    (tokens, a password, a topic, a chat id), as written and percent-decoded."""
    shown = shown_notify_url(url)
    parts = {part for raw in re.split(r"[/:@?&=#,;\s]+", url.partition("://")[2]) if raw
             for part in (raw, urllib.parse.unquote(raw)) if len(part) >= 3 and part not in shown}
    for part in sorted(parts, key=len, reverse=True):
        text = text.replace(part, "…")
    # The URL as apprise writes it in its own lines, its privacy form: a user's and a password's
    # first and last letters ("Could not load E-Mail URL: mailtos://r...s:S...c@m...m"), none of the above.
    # Up to the next space: cut at a ) or ; (a password's last letter), the tail after them stayed.
    scheme = url.partition("://")[0]
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        text = re.sub(rf"(?i)\b{re.escape(scheme)}://\S*", lambda _: shown, text)
    return text


@functools.lru_cache(maxsize=256)
def _plugin(url: str):
    """apprise's service object for `url` (None where apprise cannot read it), and what it said."""
    quiet_apprise()
    said: list[str] = []

    class Said(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.thread == threading.get_ident():  # not another rule's thread, at the same time
                said.append(record.getMessage())

    handler = Said(logging.WARNING)
    apprise_log = logging.getLogger("apprise")
    apprise_log.addHandler(handler)
    try:
        return apprise.Apprise.instantiate(url, asset=ASSET), tuple(said)
    finally:
        apprise_log.removeHandler(handler)


def shown_notify_url(url: str) -> str:
    """The URL as logs, errors and `run --check` show it: apprise's privacy form (which knows what
    each service's secret is: `tgram://1...8/...`, `pover://u...y@t...n`) cut after its host as
    a webhook URL is (a topic or chat id is a secret too). A URL apprise cannot read shows its
    scheme only: which of its parts is a secret is then not known."""
    plugin, _ = _plugin(url)
    if plugin is not None:
        private = plugin.url(privacy=True)
        shown = shown_url(private)
        # What stands where a host would is shown where apprise masked it (`1...8`) or it is the
        # service's host; else it is a secret apprise does not mask (ntfy://<topic> on ntfy.sh).
        authority = re.split(r"[/?#]", private.partition("://")[2], maxsplit=1)[0].rpartition("@")[2]
        host = str(getattr(plugin, "host", None) or "")
        if "..." not in authority and not (host and host.lower() in authority.lower()):
            return f"{private.partition('://')[0].lower()}://…"
        return shown
    scheme, sep, _ = url.partition("://")
    return f"{scheme.lower()}://…" if sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme) else "…"


@functools.lru_cache(maxsize=1)
def _services() -> dict[str, dict]:
    """Every scheme apprise has, to its service's details (name, enabled, packages it needs)."""
    details = apprise.Apprise(asset=ASSET).details(show_requirements=True, show_disabled=True)
    services = {}
    for service in details["schemas"]:
        for scheme in (*(service.get("protocols") or ()), *(service.get("secure_protocols") or ())):
            services[scheme.lower()] = service
    return services


def _mail_port_problem(authority: str) -> str | None:
    """What is wrong with an e-mail URL's host:port, where its port is no number of 1-65535: a port
    of 99999 passed --check, and each mail then failed at the site; "mail.example.com:58x" was said
    to be a bare / in the password."""
    login, at, host_port = authority.rpartition("@")
    # host:port, or [IPv6]:port (its port's words as any's: "[::1]:58x" left apprise no host at all)
    port = re.fullmatch(r"(?!\[)[^:]*:([^:]*)|\[[^\]]*\]:(.*)", host_port)
    number = port and (port.group(1) if port.group(1) is not None else port.group(2))
    if not number or (number.isascii() and number.isdigit() and 1 <= int(number) <= 65535):
        return None
    if not at and port.group(1) is not None:
        # "mailtos://reports:pa/ss@mail.example.com" (a bare / ? or # in the password) was taken with no
        # host and the password's tail as the recipient: what looks like host:port is the user and password
        return ("the user or password holds a bare / ? or #: write them %2F %3F %23 (p%2Fss), as every "
                "character of /?#:%@ in them is written percent-encoded")
    return f"the mail server's port {number!r} is no number of 1-65535 (587 for STARTTLS, 465 with mode=ssl, 25 for a relay)"


def _ascii_address(address: str) -> str | None:
    """How to write an address with letters outside ASCII that apprise can send to, in words (None:
    not an address): its domain in the form DNS has (IDNA, xn--), or no way where they are before the @."""
    user, at, domain = address.rpartition("@")
    if not at or not user or not domain:
        return None
    if not user.isascii():
        return "no ASCII form of it exists: give another address of that person's"
    try:
        return f"write its domain as DNS has it: {user}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:  # no domain name IDNA can write
        return None


ONE_TO = "write the addresses in one to=, comma-separated (to=ana@clinic.example,bea@clinic.example)"


def _mail_recipients_problem(url: str) -> str | None:
    """What in an e-mail URL's `to=` is no address apprise sends to: apprise drops it (a warning at
    most), and `to=notanaddress` (or `to=ñ@clinic.example`) passed --check, each mail then failing
    with "no recipients"; `to=ana@clinic.example,bea` went to ana alone, in silence."""
    from apprise.utils.parse import EMAIL_DETECTION_RE, STRING_DELIMITERS, is_email, parse_url

    # The query's own words: apprise keeps the last of a repeated key, and reads a lone "bea@…" as no key it knows
    words = [part.partition("=") for part in urllib.parse.urlsplit(url).query.split("&") if part]
    keys = [urllib.parse.unquote(key).strip().lower() for key, _, _ in words]
    if keys.count("to") > 1:
        last = urllib.parse.unquote(next(value for key, _, value in reversed(words) if key.strip().lower() == "to"))
        return f"to= is given {keys.count('to')} times: apprise sends to the last alone ({last!r}); {ONE_TO}"
    # Addresses after to='s only: "pw&3f9c@x.example" in a pass= (a bare & in the password) is not to be shown
    for (key, eq, _), (before, _, _) in zip(words[1:], words):
        if not eq and before.strip().lower() == "to" and is_email(stray := urllib.parse.unquote(key)):
            return f"{stray!r} stands alone after an &: apprise reads no recipient there and drops it; {ONE_TO}"
    value = ((parse_url(url) or {}).get("qsd") or {}).get("to")  # as apprise reads it: a + is a +
    if not value:
        return None
    found = [match if isinstance(match, str) else match[0] for match in EMAIL_DETECTION_RE.findall(value)]
    kept = [address for address in found if is_email(address)]
    left = [part for part in re.split(STRING_DELIMITERS, EMAIL_DETECTION_RE.sub(" ", value)) if part]
    left += [address for address in found if address not in kept]
    to_no_one = "" if kept else " and sends to no one"
    if left and not left[0].isascii() and (ascii_form := _ascii_address(left[0])):  # an IDN domain: an address all the same
        return (f"to= holds {left[0]!r}, which apprise drops (it takes addresses in ASCII only){to_no_one}; "
                f"{ascii_form}")
    if left:
        return (f"to= holds {left[0]!r}, which is no e-mail address: apprise drops it{to_no_one}; "
                "write the addresses comma-separated (to=ana@clinic.example,bea@clinic.example)")
    for address in kept:  # "o'brien@clinic.example" is taken as the name o and brien@clinic.example, in silence
        written = address.rpartition("<")[2].rstrip(">").strip() if "<" in address else address.strip()
        if (read := is_email(address)["full_email"]).lower() != written.lower():
            return (f"to= holds {written!r}, which apprise reads as {read!r} (a name, then an address) and sends to "
                    "that other mailbox; apprise cannot send to this address: give another one of that person's")
    return None


def url_problem(url: str) -> str | None:
    """Why apprise could not send to `url` (None when it can), never repeating a secret of it."""
    if not url.strip():
        return "empty; an apprise URL such as slack://TokenA/TokenB/TokenC or ntfy://ntfy.sh/topic"
    scheme, sep, _ = url.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        return ("not an apprise URL (service://...), such as slack://TokenA/TokenB/TokenC or ntfy://ntfy.sh/topic; "
                f"services: {SERVICES_PAGE}")
    authority = re.split(r"[/?#]", url.partition("://")[2], maxsplit=1)[0]
    if authority.count("@") > 1:
        # apprise reads the host after the first @: "mailtos://reports:p@ss@mail.example.com" sent to
        # host "ss", shown with the password's tail in the log and --check
        return ("the user or password holds a bare @: write it %40 (reports%40clinic.example), as every "
                "character of /?#:%@ in them is written percent-encoded")
    if scheme.lower() in ("mailto", "mailtos") and (problem := _mail_port_problem(authority)):
        return problem
    service = _services().get(scheme.lower())
    if service is None and scheme.lower() not in ("http", "https"):
        return f"apprise has no service {scheme.lower()}://; services: {SERVICES_PAGE}"
    if service is not None and not service["enabled"]:
        needs = ", ".join(service["requirements"]["packages_required"]) or "what this system lacks"
        return f"apprise's {service['service_name']} ({scheme.lower()}://) needs {needs}, not installed"
    plugin, said = _plugin(url)
    if plugin is not None:
        return _mail_recipients_problem(url) if scheme.lower() in ("mailto", "mailtos") else None
    if service is None:  # http(s)://: apprise reads some services' own web hook URLs (Slack, Discord, Teams)
        return (f"{shown_url(url)} is no service's web hook URL apprise knows; for a JSON POST write json://… "
                f"(or use alerts.webhooks); services: {SERVICES_PAGE}")
    why = "; ".join(without_url(line, url) for line in said) or "its form is not the service's"
    if "Invalid ~From~ email" in why:  # the sender apprise made of the user and the server's name
        why += "; without from=, the sender is the user at the server's name: give from=ADDRESS (from=reports@clinic.example)"
    article = "an" if service["service_name"][:1].upper() in "AEIOU" else "a"  # "an E-Mail URL"
    return f"not {article} {service['service_name']} URL apprise can use ({why}); see {service.get('setup_url') or SERVICES_PAGE}"


@dataclass(frozen=True)
class NotifyRule(AlertFilter):
    """Events to one apprise URL; with `snapshot`, the event's blurred snapshot attached."""

    url: str
    snapshot: bool = False

    @property
    def shown(self) -> str:
        return shown_notify_url(self.url)


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    attachment: Path | None = None
    warning: bool = True  # apprise's notify type: a colour or icon on most services
    document: tuple[str, str] | None = None  # (file name, text) attached from memory: a report's CSV


def when(timestamp: float, tz: tzinfo | None) -> str:
    """A time as people read it, in the site's timezone (None: the machine's)."""
    return datetime.fromtimestamp(timestamp).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def camera_line(camera: str, names: dict[str, str]) -> str:
    name = names.get(camera, camera)
    return f"Camera: {name}" + (f" ({camera})" if name != camera else "")


def event_message(event: dict, names: dict[str, str], tz: tzinfo | None) -> tuple[str, str]:
    """The title and body of a person's alert: who, where, when."""
    title = f"{names.get(event['camera'], event['camera'])}: {WHO.get(event['label'], event['label'])}"
    lines = [camera_line(event["camera"], names), *([f"Zone: {event['zone']}"] if event["zone"] else []),
             f"When: {when(event['last_seen'], tz)}",
             # an unassessable person has no label to be sure of (probability 0): "Certainty: 0 %" misled
             f"Seen in {event['frames']} frames, too few of a large enough face to judge"
             if event["label"] == "unassessable" else
             f"Certainty: {100 * event['probability']:.0f} % over {event['frames']} frames"]
    return title, "\n".join(lines)


def compliance_message(alert: dict, names: dict[str, str], tz: tzinfo | None) -> tuple[str, str]:
    """The title and body of a compliance rule's alert: the share masked with its 95 % interval."""
    where = names.get(alert["camera"], alert["camera"]) + (f", {alert['zone']}" if alert["zone"] else "")
    title = f"{where}: {alert['compliance']:g} % masked over {alert['minutes']} minutes, under {alert['below']:g} %"
    lines = [f"Masked: {alert['compliance']:g} % (95 % interval {alert['compliance_low']:g}-{alert['compliance_high']:g} %), "
             f"under {alert['below']:g} % beyond doubt",
             f"Counted: {alert['with_mask']} of {alert['people']} people with a mask ({alert['observed']:g} %) "
             f"in the last {alert['minutes']} minutes ({alert['unassessable']} more not judged)",
             camera_line(alert["camera"], names), *([f"Zone: {alert['zone']}"] if alert["zone"] else []),
             f"When: {when(alert['at'], tz)}"]
    if alert.get("infrared"):  # a night camera's: judged by the night model, read with care
        lines.insert(2, f"Infrared: {infrared_words(alert['infrared'], alert['seen'])}")
    return title, "\n".join(lines)


class Notifier(AlertQueues):
    """Events and compliance alerts as messages a person reads, through apprise."""

    kind = "notify"

    def __init__(self, rules: list[NotifyRule], names: dict[str, str] | None = None, tz: tzinfo | None = None,
                 snapshot_of: Callable[[str], Path | None] = lambda name: None, **queues) -> None:
        """`names`: camera id -> the name people know it by; `snapshot_of`: an event's snapshot
        name -> its file (None where there is none, as in privacy mode)."""
        super().__init__(rules, **queues)
        quiet_apprise()
        self.names, self.tz, self.snapshot_of = names or {}, tz, snapshot_of
        self._senders = []  # one per rule, used by its thread only
        self._trying: list[threading.Thread | None] = [None] * len(rules)  # a try past its timeout, per rule
        for rule in rules:
            sender = apprise.Apprise(asset=ASSET)
            if not sender.add(rule.url):  # checked at config load; a rule made in code is said here
                raise ValueError(f"notify URL {rule.shown}: {url_problem(rule.url)}")
            self._senders.append(sender)

    def _message(self, index: int, rule: NotifyRule, payload: dict) -> Message:
        if payload["type"] == "report":  # made once by reports.py, the same to each of its URLs
            return payload["message"]
        if payload["type"] == "compliance":
            return Message(*compliance_message(payload["alert"], self.names, self.tz))
        event = payload["event"]
        attachment = self.snapshot_of(event["snapshot"]) if rule.snapshot and event.get("snapshot") else None
        title, body = event_message(event, self.names, self.tz)
        if "test" in payload:  # `maskwatch alerts test` (try_alerts.py): the real alert's lines, said to be a test
            title, body = f"maskwatch test alert from site {payload['test']}", f"{title}\n{body}\n{TEST_NOTE}"
            attachment = payload.get("picture") if rule.snapshot else None  # a generated picture, or none
        return Message(title, body, attachment=attachment, warning=event["label"] != "with_mask")

    def _try(self, index: int, rule: NotifyRule, message: Message) -> Failure | str:
        """One try on a thread of its own, waited for `rule.timeout` seconds; one past it is left to
        end in the background (a daemon: it holds neither the stop nor the exit), and no other try
        of this URL starts while it runs, so a hung service holds one thread, not one per alert."""
        if (hung := self._trying[index]) is not None and hung.is_alive():
            return Failure(f"a try of more than {rule.timeout:g} s still has no answer")
        outcome: list[Failure | None] = []
        thread = threading.Thread(target=lambda: outcome.append(self._send(index, rule, message)),
                                  name=f"maskwatch-notify-{index}-try", daemon=True)
        thread.start()
        thread.join(rule.timeout)
        if not outcome:
            self._trying[index] = thread
            return Failure(f"no answer within {rule.timeout:g} s (the service may have it)")
        return outcome[0]

    def _send(self, index: int, rule: NotifyRule, message: Message) -> Failure | str:
        attach = None
        if message.attachment is not None and message.attachment.is_file():  # retention may have taken it
            attach = apprise.AppriseAttachment([str(message.attachment)], asset=ASSET)
        elif message.document is not None:
            name, text = message.document
            attach = apprise.AppriseAttachment(asset=ASSET)
            attach.add(AttachMemory(content=text, name=name, mimetype="text/csv" if name.endswith(".csv") else None))
        try:
            with apprise_detail():
                result = self._senders[index].notify(
                    body=message.body, title=message.title, body_format=apprise.NotifyFormat.TEXT, attach=attach,
                    notify_type=apprise.NotifyType.WARNING if message.warning else apprise.NotifyType.INFO,
                    log_level=logging.DEBUG)
        except Exception as err:  # noqa: BLE001  a service's own bug ends no thread, as a webhook's failure
            return Failure(without_url(f"{type(err).__name__}: {err}", rule.url))
        if result:
            return "apprise accepted"
        entries = list(result.logs())
        said = [entry.message for entry in entries if entry.level in ("WARNING", "ERROR", "CRITICAL")]
        reason = said[-1] if said else f"apprise: {result.status.name.lower()}"
        why = cause([entry.message for entry in entries if entry.level == "DEBUG"], rule.url)
        return Failure(without_url(reason, rule.url) + (f" ({why})" if why else ""))
