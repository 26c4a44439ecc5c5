"""Cameras on a bad mobile link (a bus's 4G): the real RTSP server behind a proxy that delays,
stalls, drops or throttles (tests/link_proxy.py), and a camera that comes back at another
resolution. What a user sees: the camera's state, its people, its rate and the log."""

from maskwatch.video.cameras import CameraReader
from tests.link_proxy import LinkProxy
from tests.rtsp import rtsp_server  # noqa: F401  (fixture)
from tests.test_cameras import wait_until


def test_a_link_that_drops_and_is_reopened_within_stall_timeout_never_counts_as_offline(rtsp_server):  # noqa: F811
    """A 4G link drops the connection and the camera is reached again a second later: it read
    `connected: false` (MQTT `offline`, the page's offline, maskwatch_camera_up 0) until it was
    reopened, though `stall_timeout` says how long without a frame counts as down."""
    proxy = LinkProxy(rtsp_server.port)
    reader = CameraReader(proxy.url(), stall_timeout=8.0, retry_max=0.5, retry_first=0.25, name="bus").start()
    try:
        assert wait_until(lambda: reader.state().frames > 0), reader.state()
        frames = reader.state().frames
        proxy.drop()
        seen = []  # the state, looked at through the outage until frames flow again

        def back() -> bool:
            seen.append(reader.state())
            return seen[-1].reconnects >= 1 and seen[-1].frames > frames + 5

        assert wait_until(back, 20), seen[-1]
        assert all(state.connected for state in seen), [state for state in seen if not state.connected][0]
        assert proxy.connections >= 3  # it was reopened: the first check and open, then the new ones
    finally:
        reader.stop()
        proxy.close()
