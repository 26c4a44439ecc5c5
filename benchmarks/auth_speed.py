"""What security costs: login latency (Argon2id) and requests/s with auth on against off.

    nice -n 10 python benchmarks/auth_speed.py [--seconds 4] [--rounds 3] [--threads 4]

1. Argon2id verify alone (passwords.py's parameters), median of 15 (--verifies), and POST /login
   end to end over HTTP (hash + session row + cookie), median of 10 (--logins).
2. Two `maskwatch serve` processes on loopback, one open (no users: auth off) and one with users
   (auth on), each answering GET /v1/classes (no model work, so the check is what differs); the
   client alternates them in rounds, so both see the same machine load: off, session cookie,
   API token, per round. Prints medians over rounds and the ratios, as a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PASSWORD = "benchmark password 1"


def hash_latency(n: int = 15) -> tuple[float, float]:
    """Median wall and CPU seconds (all threads of this process) of one Argon2id verify. CPU time
    is what a login costs the machine, whatever else runs on it; wall time is what a user waits."""
    from maskwatch.security.passwords import hash_password, verify_password

    stored = hash_password(PASSWORD)
    wall, cpu = [], []
    for _ in range(n):
        started, started_cpu = time.perf_counter(), time.process_time()
        assert verify_password(PASSWORD, stored)
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return statistics.median(wall), statistics.median(cpu)


def check_cost(db: str, token: str, n: int = 2000) -> dict[str, float]:
    """Median CPU seconds of deciding who asks (AccessControl.identify: one database read), per
    kind of request, in this process: what auth adds to every request, whatever the load."""
    from starlette.requests import Request

    from maskwatch.security.access import AccessControl
    from maskwatch.security.auth_settings import AuthSettings
    from maskwatch.security.request_checks import SECURE_COOKIE
    from maskwatch.security.store import AuthStore

    store = AuthStore(db)
    user = store.check_login("bench", PASSWORD)
    session = store.start_session(user["id"], user["password_hash"])
    access = AccessControl(AuthSettings(database=db, open_without_users=False), store)
    open_access = AccessControl(AuthSettings(), None)

    def request(headers: dict) -> Request:
        return Request({"type": "http", "method": "GET", "path": "/v1/classes", "query_string": b"",
                        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
                        "scheme": "http", "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 5000)})

    kinds = {"auth off (loopback, no users)": (open_access, {}),
             "auth on, session cookie": (access, {"Cookie": f"{SECURE_COOKIE}={session}"}),
             "auth on, API token": (access, {"Authorization": f"Bearer {token}"})}
    costs = {}
    for name, (control, headers) in kinds.items():
        times = []
        for _ in range(n):
            started = time.process_time_ns()
            control.identify(request(headers))
            times.append(time.process_time_ns() - started)
        costs[name] = statistics.median(times) / 1e9
    store.close()
    return costs


def start(args: list[str], folder: Path) -> tuple[subprocess.Popen, str]:
    """`maskwatch serve ARGS` on a free port, started; wait_ready waits for it to answer."""
    from tests.test_serve import free_port

    port = free_port()
    log = open(folder / f"serve-{port}.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "maskwatch.cli", "serve", "--port", str(port), *args],
                               stdout=log, stderr=subprocess.STDOUT, env=os.environ | {"PYTHONUNBUFFERED": "1"})
    return process, f"http://127.0.0.1:{port}"


def wait_ready(process: subprocess.Popen, base: str) -> None:
    for _ in range(480):
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.25)
    process.kill()
    raise RuntimeError(f"serve on {base} did not start; see serve-{base.rsplit(':', 1)[1]}.log")


def rate(base: str, headers: dict, seconds: float, threads: int) -> float:
    """Requests/s of GET /v1/classes from `threads` keep-alive clients for `seconds`."""
    done, stop = [0] * threads, time.perf_counter() + seconds

    def work(i: int) -> None:
        with httpx.Client(headers=headers, timeout=30) as client:
            while time.perf_counter() < stop:
                response = client.get(base + "/v1/classes")
                assert response.status_code == 200, response.text
                done[i] += 1

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(done) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--verifies", type=int, default=15, help="Argon2id verifies timed alone")
    parser.add_argument("--logins", type=int, default=10, help="POST /login requests timed")
    parser.add_argument("--checks", type=int, default=2000, help="who-asks checks timed per kind of request")
    args = parser.parse_args()
    from maskwatch.security.passwords import LANES, MEMORY_KIB, TIME_COST
    from maskwatch.security.store import AuthStore

    load_before = os.getloadavg()[0]
    verify, verify_cpu = hash_latency(args.verifies)
    folder = Path(tempfile.mkdtemp(prefix="auth-speed-"))
    db = str(folder / "users.db")
    store = AuthStore(db)
    store.add_user("bench", PASSWORD, "admin")
    token = store.add_token("bench", "full")
    store.close()
    costs = check_cost(db, token, args.checks)
    open_server, open_base = start(["--database", str(folder / "none.db")], folder)
    auth_server, auth_base = start(["--database", db], folder)  # the two start together
    try:
        wait_ready(open_server, open_base)
        wait_ready(auth_server, auth_base)
        logins, cookie = [], None
        for _ in range(args.logins):
            started = time.perf_counter()
            response = httpx.post(auth_base + "/login", json={"username": "bench", "password": PASSWORD},
                                  headers={"X-Maskwatch-CSRF": "1"}, timeout=30)
            logins.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
            cookie = response.cookies["__Host-maskwatch-session"]
        rows = {"auth off (loopback, no users)": [], "auth on, session cookie": [], "auth on, API token": []}
        for _ in range(args.rounds):
            rows["auth off (loopback, no users)"].append(rate(open_base, {}, args.seconds, args.threads))
            rows["auth on, session cookie"].append(
                rate(auth_base, {"Cookie": f"__Host-maskwatch-session={cookie}"}, args.seconds, args.threads))
            rows["auth on, API token"].append(rate(auth_base, {"Authorization": f"Bearer {token}"}, args.seconds,
                                                   args.threads))
    finally:
        for process in (open_server, auth_server):
            process.terminate()
            process.wait(timeout=20)
    print(f"machine: {os.cpu_count()} cores, 1-minute load average {load_before:.1f} at start, "
          f"{os.getloadavg()[0]:.1f} at end")
    print(f"Argon2id t={TIME_COST}, m={MEMORY_KIB // 1024} MiB, p={LANES}: verify median {verify * 1000:.0f} ms wall, "
          f"{verify_cpu * 1000:.0f} ms CPU ({args.verifies} runs); POST /login end to end median "
          f"{statistics.median(logins) * 1000:.0f} ms ({args.logins} runs, min {min(logins) * 1000:.0f}, max {max(logins) * 1000:.0f})")
    print(f"\nGET /v1/classes, {args.threads} keep-alive clients, {args.rounds} alternating rounds of {args.seconds:g} s\n")
    print("| requests | req/s (median of rounds) | rounds | vs auth off | who-asks check, CPU per request |")
    print("|---|---|---|---|---|")
    base = statistics.median(rows["auth off (loopback, no users)"])
    for name, values in rows.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.0f} | {', '.join(f'{v:.0f}' for v in values)} | {median / base:.2f} "
              f"| {costs[name] * 1e6:.0f} µs |")


if __name__ == "__main__":
    main()
