"""The running service against its own OpenAPI document: a bounded schemathesis run, no failures.

Every check schemathesis has (`-c all`): no 5xx for any input, every status, content type, header
and body as documented, schema-invalid input refused, schema-valid input accepted. A JSON Schema
cannot say "a PNG", so schemathesis_hooks.py tells it what a valid image body is.

The run is seeded (MASKWATCH_FUZZ_SEED, default 1) so that CI judges every commit on the same
inputs: an unseeded run failed CI once on a new input (a 300-character snapshot name, fixed). To
look further, run this test with other seeds: MASKWATCH_FUZZ_SEED=7 pytest -m "" tests/test_api_fuzz.py.
"""

import os
import subprocess
import sys
import time

import httpx

from tests.conftest import ROOT
from tests.test_serve import server, server_log  # noqa: F401  (the running service and its log)

SCHEMATHESIS = [sys.executable, "-m", "schemathesis.cli"]


def test_schemathesis_finds_no_failure(server, tmp_path):  # noqa: F811
    for _ in range(60):  # the camera's frame answers 404 until the first frame is in
        if httpx.get(f"{server}/v1/cameras/live/frame.jpg", timeout=5).status_code == 200:
            break
        time.sleep(0.5)
    schemathesis_passes(f"{server}/openapi.json", tmp_path, "--request-timeout", "60")


def schemathesis_passes(openapi: str, tmp_path, *options: str) -> None:
    """A schemathesis run against the OpenAPI document at `openapi`, with this module's bounds, hooks
    and seed (MASKWATCH_FUZZ_SEED, default 1) and `options`, passes with test cases run."""
    env = os.environ | {"SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks",
                        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run(
        [*SCHEMATHESIS, "run", openapi, "--checks", "all", "--max-examples", "25", *options,
         "--workers", "1", "--generation-database", "none", "--no-color",
         "--output-truncate", "true", "--seed", os.environ.get("MASKWATCH_FUZZ_SEED", "1")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400, check=False)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-6000:]
    assert "Test cases:" in report and "passed" in report, report[-3000:]
