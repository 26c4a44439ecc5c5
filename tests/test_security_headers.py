"""The security headers on an answer no route gave: a failure that nothing handled (a 500)."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.testclient import TestClient

from maskwatch.security.headers import SecurityHeaders
from maskwatch.serving.service_api import STATIC


def test_a_failure_nothing_handled_is_a_500_with_the_security_headers_and_no_trace():
    """Starlette's 500 is sent from outside every middleware: it went without nosniff, CSP and
    no-store, as text/plain."""
    app = FastAPI()

    @app.get("/fails")
    def fails() -> None:
        raise RuntimeError("/srv/maskwatch/secret-path failed")

    app.add_middleware(SecurityHeaders, pages=[STATIC / "dashboard.html", STATIC / "login.html"])
    answer = TestClient(app, raise_server_exceptions=False).get("/fails")
    assert answer.status_code == 500
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["cache-control"] == "no-store"
    assert answer.json() == {"error": "the server failed on this request; its log says why"}
    assert "secret-path" not in answer.text
