"""A real SMTP server on loopback for the e-mail tests (aiosmtpd): plain (a local Postfix on 25,
no login), STARTTLS with a login (an office relay or Microsoft 365 on 587) and implicit TLS with a
login (465), each on a certificate the tests make; what arrives is kept as parsed messages. A
recipient under `refused.example.com` is refused (550) as a relay refuses one it does not serve."""

from __future__ import annotations

import email
import email.policy
import logging
import socket
import ssl
import threading
import warnings
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USER, PASSWORD = "reports@clinic.example", "pw-9f3c7e1a-Secret"
REFUSED_DOMAIN = "refused.example.com"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Mailbox:
    """What the servers received, in order, and the logins they refused."""

    messages: list = field(default_factory=list)
    refused_logins: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> list:
        with self.lock:
            taken, self.messages[:] = list(self.messages), []
            return taken


class _Handler:
    def __init__(self, box: Mailbox):
        self.box = box

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().endswith("@" + REFUSED_DOMAIN):
            return "550 5.7.1 Relaying denied"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.box.lock:
            self.box.messages.append((envelope.rcpt_tos, message))
        return "250 Message accepted for delivery"


def _authenticator(box: Mailbox):
    def check(server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword) and auth_data.login.decode() == USER \
                and auth_data.password.decode() == PASSWORD:
            return AuthResult(success=True)
        box.refused_logins += 1
        return AuthResult(success=False, handled=False)
    return check


class _ImplicitTls(Controller):
    """Port 465's server: its whole connection is TLS, which aiosmtpd's auth_require_tls does not
    count (it looks for STARTTLS), so it is off, and its warning about that, at each connection, too."""

    def factory(self):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS", UserWarning)
            return super().factory()


# aiosmtpd's own log (its settings, "Session.login_data is deprecated") goes nowhere: a root handler
# an earlier test of the worker left (the CLI's stderr log) put its lines among the lines the e-mail
# tests read from `maskwatch alerts test`, which passed alone and failed in `make test`.
_server_log = logging.getLogger("mail.log")
_server_log.propagate = False
_server_log.addHandler(logging.NullHandler())


class SmtpServers:
    """The three servers, started on free ports; `close()` stops them."""

    def __init__(self, cert, key):
        self.box = Mailbox()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        handler = _Handler(self.box)
        self.plain = Controller(handler, hostname="127.0.0.1", port=_free_port())
        self.starttls = Controller(handler, hostname="127.0.0.1", port=_free_port(), tls_context=context,
                                   require_starttls=True, authenticator=_authenticator(self.box),
                                   auth_required=True, auth_require_tls=True)
        self.implicit = _ImplicitTls(handler, hostname="127.0.0.1", port=_free_port(), ssl_context=context,
                                     authenticator=_authenticator(self.box), auth_required=True,
                                     auth_require_tls=False)
        self._started = []
        for controller in (self.plain, self.starttls, self.implicit):
            controller.start()
            self._started.append(controller)

    def close(self) -> None:
        for controller in self._started:
            controller.stop()


class Silent:
    """Accepts TCP and never answers (a relay that hangs): what each connection got is kept open."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self):
        self.sock.close()
        for connection in self.connections:
            connection.close()
