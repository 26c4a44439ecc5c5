"""Why an RTSP camera refuses a stream OpenCV could not open: a wrong path, user or password.

OpenCV says only that the capture did not open (FFmpeg's own messages are silenced, and would
go to stderr, not to the camera's status), and a wrong password or stream path is the most
common setup mistake there is. So after a failed open, the URL is asked for once more the way
FFmpeg asks for it, with a DESCRIBE, signed as RFC 2617 says (Digest, which IP cameras use, or
Basic), and the camera's own status is told: 401 after the credentials, 404, or another refusal.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
import ssl
import time
from urllib.error import HTTPError
from urllib.parse import unquote, urlsplit
from urllib.request import HTTPDigestAuthHandler, HTTPPasswordMgrWithDefaultRealm, parse_http_list

from maskwatch.video.sources import host_port, split_authority, stream_address

LONGEST_ANSWER = 64 * 1024  # the headers of an answer; a camera's are a few hundred bytes


class HttpAnswer(ValueError):
    """An rtsp:// URL's port answered in HTTP: the camera's web page, not its stream."""


def _answer(connection: socket.socket, timeout: float) -> tuple[int, str, dict[str, list[str]]]:
    """The status code, reason and headers (lower-cased names) of one RTSP answer, read within
    `timeout` seconds in all (TimeoutError after): a socket's timeout is per recv, and a camera
    sending a byte now and then would have held the camera's reader for hours."""
    data = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in data and len(data) < LONGEST_ANSWER:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no whole answer in time")
        connection.settimeout(left)
        part = connection.recv(4096)
        if not part:
            break
        data += part
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    status = re.match(r"RTSP/\d\.\d (\d{3}) ?(.*)", lines[0])
    if status is None:
        web = lines[0].startswith(("HTTP/", "<"))  # a status line, or a page sent bare (HTTP/0.9's way)
        raise HttpAnswer() if web else ValueError("not an RTSP answer")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(status.group(1)), status.group(2).strip(), headers


def _challenge(values: list[str]) -> tuple[str, dict[str, str]] | None:
    """The scheme and parameters of the strongest WWW-Authenticate challenge: Digest before Basic."""
    found = {}
    for value in values:
        scheme, _, rest = value.strip().partition(" ")
        params = {}
        for item in parse_http_list(rest):  # quoted strings keep their commas: realm="Hall, east"
            name, equals, text = item.partition("=")
            if equals:
                text = text.strip()
                params[name.strip().lower()] = text[1:-1] if text[:1] == text[-1:] == '"' and len(text) > 1 else text
        found[scheme.lower()] = params
    for scheme in ("digest", "basic"):
        if scheme in found:
            return scheme, found[scheme]
    return None


def authorization(scheme: str, params: dict[str, str], user: str, password: str, uri: str) -> str | None:
    """The Authorization header for DESCRIBE `uri` (RFC 2617, MD5), or None for a scheme or
    algorithm not spoken here."""
    if scheme == "basic":
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    if params.get("algorithm", "MD5").upper() != "MD5":
        return None

    def md5(text: str) -> str:
        return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()

    def quoted(text: str) -> str:  # RFC 7230's quoted-string: \\ and \" escaped
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    realm, nonce = params.get("realm", ""), params.get("nonce", "")
    ha1, ha2 = md5(f"{user}:{realm}:{password}"), md5(f"DESCRIBE:{uri}")
    fields = f"username={quoted(user)}, realm={quoted(realm)}, nonce={quoted(nonce)}, uri={quoted(uri)}"
    if "auth" in [q.strip() for q in params.get("qop", "").split(",")]:
        cnonce = hashlib.sha256(nonce.encode()).hexdigest()[:16]
        response = md5(f"{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}")
        fields += f', qop=auth, nc=00000001, cnonce="{cnonce}"'
    else:
        response = md5(f"{ha1}:{nonce}:{ha2}")
    if "opaque" in params:
        fields += f", opaque={quoted(params['opaque'])}"
    return f'Digest {fields}, response="{response}", algorithm=MD5'


def _describe(address: tuple[str, int], uri: str, sequence: int, auth: str | None, deadline: float):
    """One DESCRIBE and its answer, by `deadline` (time.monotonic) or TimeoutError."""
    def left() -> float:
        if (seconds := deadline - time.monotonic()) <= 0:
            raise TimeoutError("no answer in time")
        return seconds

    with socket.create_connection(address, timeout=left()) as connection:
        request = (f"DESCRIBE {uri} RTSP/1.0\r\nCSeq: {sequence}\r\nAccept: application/sdp\r\n"
                   "User-Agent: maskwatch\r\n" + (f"Authorization: {auth}\r\n" if auth else "") + "\r\n")
        connection.settimeout(left())
        connection.sendall(request.encode())
        return _answer(connection, left())


def _parts(source: str) -> tuple[str, str, str, str]:
    """(user, password, host[:port], path and query) of a stream URL, user and password decoded.
    Read as stream_address and FFmpeg read it, not with urlsplit: a password holding a [ or ]
    (written as is, as FFmpeg takes it) was its ValueError, which ended the camera's reader."""
    authority, tail = split_authority(source.partition("://")[2])
    userinfo, _, host = authority.rpartition("@")
    user, _, password = userinfo.partition(":")
    return unquote(user), unquote(password), host, tail.split("#", 1)[0]


def rtsp_refusal(source: str, timeout: float = 5.0) -> str | None:
    """What the camera of the rtsp:// URL `source` refuses its stream for, in a line that repeats
    no part of the URL (a password may be in it); None where it serves it, where it is not RTSP,
    or where it cannot be asked (the connection problems are said before OpenCV's open).
    `timeout`: seconds for the whole (both DESCRIBEs): the camera's reader waits on it."""
    address = stream_address(source)
    if address is None or not source.lower().startswith("rtsp://"):
        return None
    user, password, host, tail = _parts(source)
    uri = f"rtsp://{host}{tail if tail.startswith('/') else '/' + tail}"
    deadline = time.monotonic() + timeout
    try:
        status, reason, headers = _describe(address, uri, 1, None, deadline)
        if status == 401 and user:
            challenge = _challenge(headers.get("www-authenticate", []))
            auth = authorization(*challenge, user, password, uri) if challenge else None
            if auth is None:
                return None  # a scheme not spoken here: nothing to tell
            status, reason, headers = _describe(address, uri, 2, auth, deadline)
    except HttpAnswer:  # the camera's web port written in an rtsp:// URL was 'cannot open'
        return (f"{host_port(address)} answers in HTTP, not RTSP: a web page's port? (RTSP is most often 554; "
                "an MJPEG stream is written http://)")
    except (OSError, ValueError):
        return None
    return refusal_words(status, reason, bool(user), "rtsp")


def refusal_words(status: int, reason: str, with_user: bool, scheme: str) -> str | None:
    """A camera's refusal of its stream in words: 401 after the credentials (or without any), 404,
    another status with the camera's own reason; None where it served it."""
    if status == 401:
        return ("the camera refused the user name or password (401)" if with_user else
                f"the camera asks for a user name and password (401): {scheme}://USER:PASSWORD@host/...")
    if status == 404:
        return "the camera has no stream at this path (404); see its manual for the stream's path"
    if status >= 400:
        # The camera's words, printable and short: a bare \n in them would have begun a log line
        # of the camera's making.
        reason = re.sub(r"[^\x20-\x7e]", "?", reason)[:80]
        return f"the camera refused the stream: {status} {reason}".rstrip()
    return None


def http_refusal(source: str, timeout: float = 5.0) -> str | None:
    """What the camera of the http(s):// URL `source` (an MJPEG or snapshot stream) refuses it
    for, as rtsp_refusal says it: asked once with a GET, signed with the URL's user and password
    (Basic or Digest, as FFmpeg signs it), its status alone read; None where it serves it or
    cannot be asked. A wrong password or path read `cannot open`."""
    import http.client
    import urllib.error
    import urllib.request

    scheme = source.partition("://")[0].lower()
    if scheme not in ("http", "https") or stream_address(source) is None:
        return None
    opener, request, user = web_request(source)
    deadline = time.monotonic() + timeout  # the DESCRIBE below within it too
    try:
        with opener.open(request, timeout=timeout) as answer:
            # its body (a stream that never ends) is not read; no Content-Type is no "text/plain"
            kind = answer.headers.get_content_type() if answer.headers.get("Content-Type") else ""
            return not_a_picture(kind, answer.read(64) if _texts(kind) else b"")
    except urllib.error.HTTPError as err:
        err.close()
        if re.search(r"\bRTSP\b", err.headers.get("Server", ""), re.IGNORECASE) and _speaks_rtsp(source, deadline):
            return _rtsp_port(stream_address(source), scheme)
        return refusal_words(err.code, str(err.reason or ""), bool(user), scheme)
    except http.client.BadStatusLine as err:  # an RTSP status line, where an HTTP one was due
        return _rtsp_port(stream_address(source), scheme) if str(err.line).startswith("RTSP/") else None
    except urllib.error.URLError as err:
        return untrusted(err.reason) if isinstance(err.reason, ssl.SSLCertVerificationError) else None
    except (OSError, ValueError, http.client.HTTPException):
        return None


def web_request(source: str):
    """(opener, request, user) for a GET of the http(s):// URL `source` as FFmpeg sends it: signed
    with the URL's user and password (Basic or Digest, as the camera asks), through FFmpeg's proxy
    (ffmpeg_proxies), the certificate checked unless FFmpeg is told not to (tls_verified)."""
    import urllib.request

    scheme = source.partition("://")[0].lower()
    user, password, host, tail = _parts(source)
    url = f"{scheme}://{host}{tail or '/'}"
    handlers = []
    if user:
        passwords = OwnSchemePasswords(scheme)
        passwords.add_password(None, url, user, password)
        handlers = [urllib.request.HTTPBasicAuthHandler(passwords), OneTryDigest(passwords)]
    handlers.append(urllib.request.ProxyHandler(ffmpeg_proxies(host)))
    if scheme == "https" and not tls_verified():  # as FFmpeg was told: the camera's 401 said, not its certificate
        unverified = ssl.create_default_context()
        unverified.check_hostname, unverified.verify_mode = False, ssl.CERT_NONE
        handlers.append(urllib.request.HTTPSHandler(context=unverified))
    return urllib.request.build_opener(*handlers), urllib.request.Request(url, headers={"User-Agent": "maskwatch"}), user


class OneTryDigest(HTTPDigestAuthHandler):
    """urllib's Digest signing, tried once a request as FFmpeg tries it (again only where the camera
    says its nonce was stale): urllib's signed again after each 401, a new cnonce each time, up to 6
    tries, and a camera that locks its user after 5 failed logins (Hikvision's default) was locked
    by one fetch with a wrong password."""

    def http_error_401(self, req, fp, code, msg, headers):
        challenge = re.sub(r'[\s"]', "", headers.get("WWW-Authenticate") or "").lower()
        if req.get_header("Authorization") and "stale=true" not in challenge:
            raise HTTPError(req.full_url, code, msg, headers, fp)  # the signed request refused: the 401 stands
        return super().http_error_401(req, fp, code, msg, headers)


class OwnSchemePasswords(HTTPPasswordMgrWithDefaultRealm):
    """urllib's password manager, giving the URL's user and password to its own scheme only: urllib's
    matches a host without its port, and gave an https:// camera's password to http:// (in the clear)
    after a redirect to http://the-same-host/the-same-path."""

    def __init__(self, scheme: str) -> None:
        super().__init__()
        self.scheme = scheme

    def find_user_password(self, realm, authuri):
        if "://" in authuri and urlsplit(authuri).scheme.lower() != self.scheme:
            return None, None
        return super().find_user_password(realm, authuri)


def ffmpeg_proxies(host: str) -> dict[str, str]:
    """The proxy FFmpeg goes through to `host`, for urllib's ProxyHandler: `http_proxy` (lower case,
    an http:// one) for http and https alike, unless `no_proxy` names the host. urllib's own choice
    (HTTP_PROXY, https_proxy too) sent a camera that FFmpeg reached directly, its password with it,
    to a proxy, which could not reach the camera's network: every picture after the first failed."""
    import urllib.request

    proxy = os.environ.get("http_proxy", "")
    if not proxy.startswith("http://") or urllib.request.proxy_bypass_environment(
            host, {"no": os.environ.get("no_proxy", "")}):
        return {}
    return {"http": proxy, "https": proxy}


def tls_verified() -> bool:
    """Whether FFmpeg checks an https:// camera's certificate: it does (OpenCV's build), unless
    OPENCV_FFMPEG_CAPTURE_OPTIONS holds tls_verify;0."""
    return "tls_verify;0" not in os.environ.get("OPENCV_FFMPEG_CAPTURE_OPTIONS", "").replace(" ", "")


def untrusted(error: ssl.SSLCertVerificationError) -> str:
    """An https:// camera whose certificate FFmpeg refused, as most cameras' own (self-signed) are:
    it read `cannot open`, with the right password as with a wrong one."""
    return (f"the camera's certificate is not trusted ({error.verify_message or error.reason}): a camera's own, self-signed one "
            "is refused as a browser refuses it; use its http:// URL on a network you trust, or add tls_verify;0 "
            "to OPENCV_FFMPEG_CAPTURE_OPTIONS (docs/site.md, Web cameras)")


def _texts(kind: str) -> bool:
    return kind.startswith("text/") or kind in ("application/xhtml+xml", "application/json", "application/xml")


def not_a_picture(kind: str, start: bytes) -> str | None:
    """What an http(s) URL that OpenCV could not open serves instead of a stream or a picture, where
    its Content-Type tells (`start`: its body's first bytes): a camera's login page or home page (a
    wrong path, a camera that logs in by a form), or its API's error in JSON or XML (Reolink's Snap
    answers a wrong password so, with a 200), each of which read `cannot open`. None for any other
    type (left as FFmpeg's refusal)."""
    if not _texts(kind):
        return None
    if start.lstrip()[:1] in (b"[", b"{") or kind in ("application/json", "application/xml", "text/xml"):
        return (f"the camera answers with text ({kind}), not a video stream or a picture: its API's error, "
                "such as a wrong user or password in the URL's query (Reolink's Snap says so with a 200), or a "
                "wrong command or path (see its manual)")
    return (f"the camera answers with a web page ({kind}), not a video stream or a picture: its login page, "
            "or its web page's path instead of its MJPEG stream's or snapshot's (see its manual)")


def _speaks_rtsp(source: str, deadline: float) -> bool:
    """Whether the port of `source` answers a DESCRIBE in RTSP: a web camera's Server header may name
    RTSP too (its own RTSP server, on another port), and its 401 read as "did you mean rtsp://"."""
    _, _, host, tail = _parts(source)
    try:
        _describe(stream_address(source), f"rtsp://{host}{tail or '/'}", 1, None, deadline)
    except (OSError, ValueError):
        return False
    return True


def _rtsp_port(address: tuple[str, int], scheme: str) -> str:
    """An http(s):// URL's port that answers as an RTSP server (its Server header, or an RTSP status
    line): GStreamer's answers a GET with 503, which was said as the camera's refusal."""
    return f"{host_port(address)} is an RTSP server, not a web one: did you mean rtsp:// (not {scheme}://)?"


def stream_refusal(source: str, timeout: float = 5.0) -> str | None:
    """rtsp_refusal or http_refusal, as the URL's scheme is; None for any other source."""
    return http_refusal(source, timeout) if source.lower().startswith(("http://", "https://")) \
        else rtsp_refusal(source, timeout)
