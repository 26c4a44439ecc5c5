"""Joining a Ray cluster, or starting one on this machine, and the per-worker thread settings.

    with ray_cluster(address=None):      # a local cluster, one CPU per core, shut down after
        ...
    with ray_cluster("10.0.0.5:6379"):   # an existing cluster (its head's GCS address)

Inside a process that already called ray.init (tests, notebooks), the cluster in use is kept
and left running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from collections.abc import Iterator


class ClusterError(RuntimeError):
    """A Ray cluster that cannot be reached or started, with the address and the reason."""


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a GCS or Ray Client address; None for 'auto' and other names Ray resolves."""
    bare = address.removeprefix("ray://")
    host, sep, port = bare.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)


# HTTP/2's client preface and an empty SETTINGS frame: a gRPC server (Ray's GCS, its Ray Client
# server) answers with a SETTINGS frame (type 4, the 4th byte of a frame header).
_HTTP2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """ClusterError unless a gRPC server (as Ray's GCS is) listens at `address`: ray.init retries
    a dead address, or one where something else listens (the dashboard's 8265), for minutes
    without a word, so a wrong one is caught here first; so is a cluster that refuses this
    process's token, or its lack of one."""
    target = _host_port(address)
    if target is None:
        if address != "auto":
            raise ClusterError(f"Ray address {address!r}: expected HOST:PORT (the head's GCS port, "
                               "6379 by default), ray://HOST:PORT or auto")
        return
    try:
        conn = socket.create_connection(target, timeout=timeout)
    except OSError as err:
        raise ClusterError(f"cannot reach a Ray cluster at {address}: {err.strerror or err}") from None
    with conn:
        if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
            return  # a TLS handshake comes first there: no plain HTTP/2 to ask with
        answer = b""
        try:
            conn.sendall(_HTTP2_HELLO)
            while len(answer) < 4 and (part := conn.recv(9)):
                answer += part
        except OSError:
            pass
    if len(answer) < 4 or answer[3] != 4:
        raise ClusterError(f"{address} answers, but not as a Ray cluster: give the head's GCS port (6379 by "
                           "default, as `ray start --head` prints it), or ray://HOST:10001 for Ray Client")
    _check_token(address, target, timeout)


def _check_token(address: str, target: tuple[str, int], timeout: float) -> None:
    """ClusterError where the cluster asks for a token (`ray start --head` turns that on where
    ~/.ray/auth_token exists) and refuses what ray.init would send, which is no token at all unless
    RAY_AUTH_MODE=token: Ray never sends the machine's token to an address given unasked. ray.init
    retries a refusal for 20 s, a warning a second, then says only "Failed to connect"."""
    import grpc
    from ray.exceptions import AuthenticationError

    try:  # Ray's internals (2.60): where a later Ray moved them, ray.init's own words stand instead
        from ray._private.authentication.authentication_utils import is_token_auth_enabled
        from ray._private.ray_constants import GLOBAL_GRPC_OPTIONS
        from ray._raylet import AuthenticationTokenLoader
    except ImportError:
        return

    fix = ("the head's token (`ray get-auth-token` there prints it) in RAY_AUTH_TOKEN, in a file named "
           "by RAY_AUTH_TOKEN_PATH or in ~/.ray/auth_token")
    try:
        sent = AuthenticationTokenLoader.instance().get_token_for_http_header()  # ray.init's own header
    except AuthenticationError as err:  # RAY_AUTH_MODE=token and no token here: Ray's first sentence says why
        reason = str(err).split(". ")[0]
        raise ClusterError(f"cannot join the Ray cluster at {address}: {reason}; put {fix}") from None
    method = ("/ray.rpc.RayletDriver/ClusterInfo" if address.startswith("ray://")  # Ray Client's server
              else "/ray.rpc.NodeInfoGcsService/GetClusterId")
    host = f"[{target[0]}]" if ":" in target[0] else target[0]
    # Ray's own channel options: no HTTP proxy unless RAY_grpc_enable_http_proxy says so
    with grpc.insecure_channel(f"{host}:{target[1]}", options=GLOBAL_GRPC_OPTIONS) as channel:
        try:
            channel.unary_unary(method)(b"", timeout=timeout, metadata=tuple(sent.items()))
            return
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.UNAUTHENTICATED:
                return  # anything else is ray.init's to find and name
    if not is_token_auth_enabled():
        raise ClusterError(f"the Ray cluster at {address} asks for a token: set RAY_AUTH_MODE=token, with {fix}")
    raise ClusterError(f"the Ray cluster at {address} refused this machine's token: put {fix}")


def refuses_connections(address: str, timeout: float = 0.5) -> bool:
    """True when nothing listens at `address` (HOST:PORT) any more: a cluster whose GCS is gone,
    as a stop signal to the process group leaves a local one. A timeout or other error is no
    proof of that: False."""
    target = _host_port(address)
    if target is None:
        return False
    try:
        socket.create_connection(target, timeout=timeout).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        pass
    return False


@contextlib.contextmanager
def ray_cluster(address: str | None = None, num_cpus: int | None = None,
                log_to_driver: bool = False) -> Iterator[None]:
    """Ray, initialised for the block: the cluster at `address`, or (None or "local") a new
    local one with `num_cpus` CPUs (default: this machine's cores), no dashboard, shut down
    afterwards. log_to_driver: what this job's actors write to stdout and stderr is written
    to this process's (each line after the actor's name and pid)."""
    import ray

    address = None if address == "local" else address
    if address:
        check_reachable(address)
    if ray.is_initialized():
        yield
        return
    if address:
        kwargs = {"address": address}
    else:
        # "local": a cluster of our own even if RAY_ADDRESS points elsewhere.
        kwargs = {"address": "local", "num_cpus": num_cpus or os.cpu_count() or 1}
    # ray.init takes SIGTERM for its own (a crash handler that aborts the driver: exit 134, no
    # clean-up, a batch's batch.json never written, its temp folders left): the handler the
    # command had (maskwatch.cli turns SIGTERM into Ctrl-C) is given it back.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main_thread else None
    try:
        ray.init(**kwargs, include_dashboard=False, log_to_driver=log_to_driver, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError, ray.exceptions.AuthenticationError) as err:
        raise ClusterError(f"cannot start Ray{f' at {address}' if address else ''}: {err}") from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    try:
        yield
    finally:
        ray.shutdown()


def cluster_cpus() -> float:
    """The CPUs the cluster has in all (what actors and tasks share)."""
    import ray

    return float(ray.cluster_resources().get("CPU", 0.0))


def cpus_each(count: int, share: float = 1.0, cpus: float | None = None) -> float:
    """The CPU request of each of `count` actors: one core, or an equal part of `share` of the
    cluster's `cpus` when there are more actors than that, so that all of them can start."""
    return min(1.0, share * (cluster_cpus() if cpus is None else cpus) / count)
