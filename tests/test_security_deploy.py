"""The same rules where maskwatch is deployed: PostgreSQL for users and sessions, shared by
several app instances (as serve's workers or Ray Serve replicas share them), and HTTPS with a
certificate made here, under `serve --workers 2`."""

from __future__ import annotations

import datetime
import ipaddress
import time

import httpx
import pytest

from maskwatch.security.auth_settings import AuthSettings
from maskwatch.security.request_checks import SECURE_COOKIE
from maskwatch.security.schema import MIGRATIONS
from maskwatch.security.store import AuthStore
from maskwatch.serving.app import ServeSettings, create_app
from tests.conftest import ADMIN, VIEWER
from tests.postgres import postgres  # noqa: F401  (fixture)
from tests.test_serve import serving

CSRF = {"X-Maskwatch-CSRF": "1"}


class NoFaces:
    """A detector that finds nothing: these tests are about who may ask, not about faces."""

    classifier = type("C", (), {"info": {}, "gate_info": lambda self: None})()

    def detect(self, image):
        return []


def test_users_sessions_tokens_and_limits_on_postgresql_shared_by_two_instances(postgres):  # noqa: F811
    from fastapi.testclient import TestClient

    store = AuthStore(postgres.url)
    store.add_user(*ADMIN, "admin")
    store.add_user(*VIEWER, "viewer", ["door"])
    token = store.add_token("prometheus", "read")
    again = AuthStore(postgres.url)  # a second open (a restart) changes nothing
    assert again.migrate() == len(MIGRATIONS) and again.user_count() == 2  # the version it is at
    checked = again.check_login(*VIEWER)  # a session starts only for the password checked (rowcount was -1 here)
    assert again.start_session(checked["id"], "another hash") is None and again.session_count("viewer") == 0
    started = again.start_session(checked["id"], checked["password_hash"])
    assert started is not None and again.session_count("viewer") == 1
    again.end_session(started)
    again.close()
    settings = ServeSettings(auth=AuthSettings(database=postgres.url, open_without_users=False, user_limit=3))
    one, two = (TestClient(create_app(NoFaces(), settings), base_url="http://maskwatch.lan") for _ in range(2))
    with one, two:
        assert one.get("/v1/classes").status_code == 401
        assert one.post("/login", json={"username": ADMIN[0], "password": ADMIN[1]}, headers=CSRF).status_code == 200
        two.cookies = one.cookies  # the same browser, answered by another worker
        assert two.get("/v1/me").json()["user"] == "admin"
        assert one.post("/logout", headers=CSRF).status_code == 200
        two.cookies = one.cookies
        assert two.get("/v1/me").status_code == 401
        bearer = {"Authorization": f"Bearer {token}"}
        assert two.get("/v1/classes", headers=bearer).status_code == 200
        store.revoke_token("prometheus")
        assert one.get("/v1/classes", headers=bearer).status_code == 401
        for _ in range(3):  # failures counted in the database: every instance sees them
            assert one.post("/login", json={"username": "viewer", "password": "wrong one"}, headers=CSRF).status_code == 401
        limited = two.post("/login", json={"username": VIEWER[0], "password": VIEWER[1]}, headers=CSRF)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    one.app.state.access.close(), two.app.state.access.close()
    log = store.access_log()
    assert [e["action"] for e in log[:5]] == ["login_limited", "login_failed", "login_failed", "login_failed", "logout"]
    kept = len(store.access_log(limit=1000))
    assert store.enforce_retention(session_limit=3600, now=time.time() + 31 * 86400) == kept  # 30 days' retention
    assert store.access_log() == []
    store.close()


def self_signed(folder):
    """A certificate for 127.0.0.1 and localhost, made with `cryptography`; (cert, key) paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder / "cert.pem", folder / "key.pem"


def test_https_with_two_workers_sessions_shared_and_hsts(tmp_path, monkeypatch):
    cert, key = self_signed(tmp_path)
    AuthStore(str(tmp_path / "users.db")).add_user(*ADMIN, "admin")
    # `serving` polls http://; point its health check at https with our certificate
    monkeypatch.setattr(httpx, "get", lambda url, **kw: httpx.request("GET", url.replace("http://", "https://"),
                                                                       verify=str(cert), **kw))
    with serving(["--workers", "2", "--database", str(tmp_path / "users.db"), "--tls-cert", str(cert),
                  "--tls-key", str(key)], tmp_path, tries=240) as base:
        base = base.replace("http://", "https://")
        with httpx.Client(verify=str(cert), timeout=30) as client:
            assert client.get(base + "/v1/classes").status_code == 401
            response = client.post(base + "/login", json={"username": ADMIN[0], "password": ADMIN[1]}, headers=CSRF)
            assert response.status_code == 200
            cookie = response.headers["set-cookie"]
            assert cookie.startswith(SECURE_COOKIE) and "Secure" in cookie and "HttpOnly" in cookie
            assert response.headers["strict-transport-security"].startswith("max-age=")
            # new connections, so both workers answer: the session is in the database, not a process
            codes = [client.get(base + "/v1/me", headers={"Connection": "close"}).status_code for _ in range(12)]
            assert codes == [200] * 12
            assert client.post(base + "/logout", headers=CSRF).status_code == 200
            client.cookies.clear()
            client.cookies.set(SECURE_COOKIE, response.cookies[SECURE_COOKIE])
            codes = [client.get(base + "/v1/me", headers={"Connection": "close"}).status_code for _ in range(12)]
            assert codes == [401] * 12
        with pytest.raises(httpx.HTTPError):  # no plain http on the TLS port
            httpx.request("GET", base.replace("https://", "http://") + "/healthz", timeout=5)


def test_a_certificate_and_key_that_do_not_load_end_serve_by_name(tmp_path):
    from typer.testing import CliRunner

    from maskwatch.cli import app

    _, key = self_signed(tmp_path)
    (tmp_path / "other").mkdir()
    other_cert, _ = self_signed(tmp_path / "other")  # a certificate of another key
    (tmp_path / "junk.pem").write_text("not a certificate")
    for cert_file, key_file in ((tmp_path / "junk.pem", key), (other_cert, key)):
        result = CliRunner().invoke(app, ["serve", "--tls-cert", str(cert_file), "--tls-key", str(key_file),
                                          "--database", str(tmp_path / "users.db")])
        assert result.exit_code == 1, result.output
        assert f"TLS certificate {cert_file} and key {key_file}: not a PEM certificate and its matching" in result.output
