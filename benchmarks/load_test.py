"""Bounded load test of `maskwatch serve` on loopback, with 1 and then 2 worker processes.

    python benchmarks/load_test.py [--requests 2000] [--clients 8] [--workers 1 2]

Each client POSTs a bundled sample photo to /v1/detect as fast as answers come back.
Prints p50/p99 latency, throughput and errors per worker count.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

SAMPLE = Path(__file__).resolve().parents[1] / "sample" / "face-mask-detection" / "images"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "maskwatch.cli", "serve", "--port", str(port),
                                "--workers", str(workers)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.25)
    process.kill()
    raise RuntimeError("server did not start")


async def hammer(base: str, body: bytes, requests: int, clients: int) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    remaining = iter(range(requests))

    async def client() -> None:
        nonlocal errors
        async with httpx.AsyncClient(timeout=60) as http:
            for _ in remaining:
                start = time.perf_counter()
                try:
                    response = await http.post(f"{base}/v1/detect", content=body,
                                               headers={"content-type": "image/png"})
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - start)
                errors += not ok

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, errors, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--photo", type=Path, default=None, help="Photo to send (default: a sample photo).")
    args = parser.parse_args()
    photo = args.photo or sorted(SAMPLE.glob("*.png"))[0]
    body = photo.read_bytes()
    print(f"{args.requests} requests, {args.clients} concurrent clients, photo {photo.name} "
          f"({len(body) // 1024} kB)")
    print("| workers | p50 ms | p99 ms | requests/s | errors | wall s |")
    print("|--------:|-------:|-------:|-----------:|-------:|-------:|")
    for workers in args.workers:
        process, base = start_server(workers)
        try:
            asyncio.run(hammer(base, body, 4 * args.clients, args.clients))  # warm-up
            latencies, errors, wall = asyncio.run(hammer(base, body, args.requests, args.clients))
        finally:
            process.terminate()
            process.wait(timeout=20)
        q = statistics.quantiles(latencies, n=100)
        print(f"| {workers} | {statistics.median(latencies) * 1000:.0f} | {q[98] * 1000:.0f} | "
              f"{len(latencies) / wall:.1f} | {errors} | {wall:.0f} |", flush=True)


if __name__ == "__main__":
    main()
