"""A real RTSP server on loopback for the camera tests: GStreamer's, from Debian's packages.

Run by the system python3 (python3-gi, gir1.2-gst-rtsp-server-1.0), not the venv's:

    /usr/bin/python3 tests/rtsp_server.py FRAMES_DIR PORT [FPS]

serves the JPEGs FRAMES_DIR/frame000.jpg, frame001.jpg ... (frame%04d.jpg with FPS given, for
long clips) as H.264, looped forever at FPS (default 5) with a key frame each second,
at rtsp://127.0.0.1:PORT/clip, and prints "ready" once it listens. SIGTERM stops it.
With RTSP_AUTH=METHOD:USER:PASSWORD in the environment (METHOD basic or digest), the clip is
served to that user only, as IP cameras do.
"""

import os
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstRtsp", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402


def require_login(server, factory, spec: str) -> None:
    """Serve the clip only to USER:PASSWORD of the spec METHOD:USER:PASSWORD."""
    method, user, password = spec.split(":", 2)
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", "viewer")
    if method == "digest":
        auth.add_digest(user, password, token)
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
    else:
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
    server.set_auth(auth)
    permissions = GstRtspServer.RTSPPermissions()
    permissions.add_permission_for_role("viewer", "media.factory.access", True)
    permissions.add_permission_for_role("viewer", "media.factory.construct", True)
    factory.set_permissions(permissions)


def main(frames_dir: str, port: str, fps: str | None = None) -> None:
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f"( multifilesrc location={frames_dir}/frame{'%04d' if fps else '%03d'}.jpg loop=true "
        f"caps=image/jpeg,framerate={int(fps or 5)}/1 ! jpegdec ! videoconvert ! "
        f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={int(fps or 5)} ! "
        "rtph264pay name=pay0 pt=96 config-interval=1 )")
    factory.set_shared(True)
    if os.environ.get("RTSP_AUTH"):
        require_login(server, factory, os.environ["RTSP_AUTH"])
    server.get_mount_points().add_factory("/clip", factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{port}")
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    print("ready", flush=True)
    loop.run()


if __name__ == "__main__":
    main(*sys.argv[1:4])
