"""A cheap web camera on loopback: an ESP32-CAM's or a phone app's MJPEG stream, a snapshot URL
(one JPEG per GET, as Reolink's and Hikvision's), a login page, each behind HTTP Basic auth when asked."""

from __future__ import annotations

import base64
import hashlib
import ssl
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.request import parse_http_list

import cv2
import numpy as np

USER, PASSWORD = "admin", "right-pass"


def picture() -> bytes:
    image = np.full((120, 160, 3), 128, np.uint8)
    cv2.circle(image, (80, 60), 30, (0, 0, 255), -1)
    return cv2.imencode(".jpg", image)[1].tobytes()


def grey_16_bits() -> bytes:
    """An infrared camera's snapshot as a 16-bit grey PNG of a 12-bit sensor: a ramp 0-4095 left to right."""
    ramp = np.tile(np.linspace(0, 4095, 160).astype(np.uint16), (120, 1))
    return cv2.imencode(".png", ramp)[1].tobytes()


def bomb() -> bytes:
    """A small JPEG whose header claims 20000x20000 pixels: a decompression bomb (1.2 GB decoded)."""
    jpeg = bytearray(picture())
    start = jpeg.find(b"\xff\xc0")  # its frame header: length, precision, height, width
    jpeg[start + 5:start + 9] = (20000).to_bytes(2, "big") * 2
    return bytes(jpeg)


@contextmanager
def web_camera(login: str | None = None, tls: tuple | None = None, passwords: list | None = None):
    """Yields (host:port, the paths asked for). Paths: /shot.jpg (a snapshot), /closing/shot.jpg (one
    whose end is told by closing the connection, no Content-Length), /drip/shot.jpg (one whose first
    40 bytes come 0.05 s apart), /bomb/shot.jpg (see bomb), /moved/shot.jpg (redirected to
    `http://a..b/`), /grey16/shot.png (see grey_16_bits), /untyped/shot.jpg (a JPEG said as application/octet-stream), /login.html (a web page), /cgi-bin/api.cgi (Reolink's JSON error), /stream
    (MJPEG, 10 frames a second), with `nolength` (parts without Content-Length), `nodash` (the boundary declared without its leading --), `ends`
    (closed after 5 parts), `once` (closed after one part, the first time), `stalls` (silent after 5
    parts, the connection kept). login: "basic" or "digest": every path asks for USER and the last of
    `passwords` (PASSWORD; append one to change it) so (Digest: RFC 2617, MD5, qop=auth).
    tls: (certificate, key) files: served over https, as cameras do with a certificate of their own."""
    jpeg, asked = picture(), []
    passwords = passwords if passwords is not None else [PASSWORD]

    class Camera(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self) -> None:
            asked.append(self.path)
            if login and not self._signed(self.headers.get("Authorization") or ""):
                challenge = 'Basic realm="camera"' if login == "basic" else \
                    'Digest realm="camera", nonce="5ca1ab1e", qop="auth", algorithm=MD5'
                self._answer(401, "text/plain", b"", ("WWW-Authenticate", challenge))
            elif self.path == "/closing/shot.jpg":  # its end told by closing, as CGI scripts do
                self._answer(200, "image/jpeg", jpeg, ("Connection", "close"), length=False)
            elif self.path == "/untyped/shot.jpg":  # a cheap camera's CGI script: its JPEG said as bytes
                self._answer(200, "application/octet-stream", jpeg)
            elif self.path == "/moved/shot.jpg":  # a redirect to a host name no resolver takes
                self._answer(302, "text/plain", b"", ("Location", "http://a..b/shot.jpg"))
            elif self.path == "/grey16/shot.png":
                self._answer(200, "image/png", grey_16_bits())
            elif self.path == "/bomb/shot.jpg":
                self._answer(200, "image/jpeg", bomb())
            elif self.path == "/drip/shot.jpg":  # a slow link's or a hung camera's: a byte at a time
                self._drip(jpeg)
            elif self.path.startswith("/shot.jpg"):
                self._answer(200, "image/jpeg", jpeg)
            elif self.path.startswith("/login.html"):
                self._answer(200, "text/html; charset=utf-8", b"<html><form>User <input name=user></form></html>")
            elif self.path.startswith("/cgi-bin/api.cgi"):  # Reolink's answer to a Snap with a wrong password
                self._answer(200, "text/html", b'[{"cmd": "Snap", "code": 1, "error": {"detail": "login failed", '
                                               b'"rspCode": -7}}]')
            elif self.path.startswith("/stream"):
                self._stream(jpeg)
            else:
                self._answer(404, "text/plain", b"not found")

        def _signed(self, authorization: str) -> bool:
            if login == "basic" or not authorization.startswith("Digest "):
                return authorization == "Basic " + base64.b64encode(f"{USER}:{passwords[-1]}".encode()).decode()
            fields = {}
            for item in parse_http_list(authorization[7:]):
                name, _, value = item.partition("=")
                fields[name.strip()] = value.strip().strip('"')

            def md5(text: str) -> str:
                return hashlib.md5(text.encode()).hexdigest()

            known = md5(f"{USER}:camera:{passwords[-1]}"), md5(f"GET:{fields.get('uri')}")
            due = md5(f"{known[0]}:5ca1ab1e:{fields.get('nc')}:{fields.get('cnonce')}:auth:{known[1]}") \
                if fields.get("qop") == "auth" else md5(f"{known[0]}:5ca1ab1e:{known[1]}")
            return fields.get("username") == USER and fields.get("response") == due

        def _answer(self, status: int, kind: str, body: bytes, *headers: tuple[str, str], length: bool = True) -> None:
            self.send_response(status)
            for name, value in (("Content-Type", kind), *(("Content-Length", str(len(body))),) * length, *headers):
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _drip(self, jpeg: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(jpeg)))
            self.end_headers()
            try:
                for byte in range(40):  # each within a read's timeout, 2 s in all; then the rest
                    self.wfile.write(jpeg[byte:byte + 1])
                    self.wfile.flush()
                    time.sleep(0.05)
                self.wfile.write(jpeg[40:])
            except OSError:
                pass

        def _stream(self, jpeg: bytes) -> None:
            self.send_response(200)
            boundary = "frame" if "nodash" in self.path else "--frame"  # ESP32-CAM's sketch declares it so
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={boundary}")
            self.end_headers()
            length = b"" if "nolength" in self.path else f"Content-Length: {len(jpeg)}\r\n".encode()
            try:
                once = "once" in self.path and self.path not in asked[:-1]  # its first viewer gets one part
                for part in range(1 if once else 5 if "ends" in self.path else 10 ** 6):
                    if "stalls" in self.path and part == 5:
                        time.sleep(60)  # sends nothing more, the connection kept open
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n" + length + b"\r\n" + jpeg + b"\r\n")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass

        def log_message(self, *args) -> None:
            pass

    with loopback_http(Camera, tls) as port:
        yield f"127.0.0.1:{port}", asked


@contextmanager
def loopback_http(handler, tls: tuple | None = None):
    """An HTTP server of `handler` on loopback, in a thread (TLS with `tls`: (cert, key)); yields its port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
