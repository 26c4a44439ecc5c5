"""Shared fixtures: the bundled sample and small datasets with broken inputs built on the fly."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
from pathlib import Path

import pytest
from hypothesis import settings

# Before any test module imports cv2: maskwatch sets what OpenCV and ONNX Runtime read when they load
# (the pixel limit against decompression bombs, their logging, telemetry off), as its commands do. A
# module importing cv2 first (test_bad_links) left the limit off for its whole process, and the
# web cameras' bomb test failed where it ran after it.
import maskwatch  # noqa: E402,F401

# Property tests draw the same examples on every run (like the seeded API fuzz run), so that CI
# judges a commit on its code, not on its luck; HYPOTHESIS_PROFILE=explore draws new ones.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

# A shell starts a job run with `&` with SIGINT ignored, and Python then installs no
# KeyboardInterrupt handler: the tests of Ctrl-C (a real SIGINT to this process) failed when the
# suite ran in the background. Every command a user runs in a terminal has Python's own handler.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Under `make test`'s xdist workers each worker's PyTorch took a thread per core, and on 2 cores
# the two workers' trainings waited on each other's threads: test_train took 64 s against 43 s
# with one thread each (medians of 3, alternating, a loaded dev-2c). Set before anything imports
# torch; a value the caller set stays. ONNX Runtime ignores it (runtime.py sets its own threads).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, len(os.sched_getaffinity(0)) // _WORKERS)))

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample" / "face-mask-detection"


def usage_error(output: str) -> str:
    """The line of a usage error (`Invalid value for '--x': ...`) out of Typer's box, joined where it wraps."""
    said = " ".join(output.replace("│", " ").split())
    return said[said.find("Invalid value"):].partition(" ╰")[0]


def voc_xml(filename: str, width: int, height: int, objects: list[tuple[str, tuple]]) -> str:
    """A Pascal VOC annotation as text: objects are (label, (xmin, ymin, xmax, ymax))."""
    parts = [f"<annotation><folder>images</folder><filename>{filename}</filename>"
             f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>"]
    for label, (x0, y0, x1, y1) in objects:
        parts.append(f"<object><name>{label}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
                     f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>")
    parts.append("</annotation>")
    return "".join(parts)


# Test tiers. `pytest` alone runs the fast unit tests; `pytest -m ""` (what `make test` and CI
# run) runs everything. A test is `system` when it starts a real server, browser or command
# process (its fixture, its module or its own mark says so), `ray` when it starts Ray, `slow`
# when it trains a network or builds a venv.
SYSTEM_FIXTURES = {"rtsp_server", "broker", "postgres", "page", "server", "secured"}
SYSTEM_MODULES = {"test_serve", "test_serve_workers", "test_security_deploy", "test_site", "test_site_trend",
                  "test_figures"}
RAY_MODULES = {"test_ray_batch", "test_ray_serve", "test_ray_site"}
ONE_EPOCH_MODULES = {"test_gate", "test_closeup", "test_onnx"}
SLOW_MODULES = {"test_train", "test_cv", "test_cv_sweep", "test_gate", "test_onnx", "test_cli", "test_masks",
                "test_base_install", "test_own_detector", "test_detection", "test_resume"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = _module(item)
        if SYSTEM_FIXTURES & set(getattr(item, "fixturenames", ())) or module in SYSTEM_MODULES:
            item.add_marker(pytest.mark.system)
        if module in RAY_MODULES:
            item.add_marker(pytest.mark.ray)
        if module in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
        item.add_marker(pytest.mark.xdist_group(_worker_group(module)))


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of 2 CPUs (a small machine's) in this process, shared by the Ray modules:
    started by the first module that asks, shut down after the last Ray test in a row
    (pytest_runtest_teardown); a start and stop per module was 8-11 s on 2 busy cores. Started as
    `serve --ray-replicas` starts one (log_to_driver, Serve's proxy believing the shipped trusted
    proxies only), with Serve's proxy given 60 s to say it is ready: its 5 s are too short on 2
    busy cores. The cluster's processes inherit these variables; they are set for the start alone,
    as FORWARDED_ALLOW_IPS left in the worker's environment reached every later `maskwatch serve`."""
    import ray

    if not ray.is_initialized():
        from maskwatch.scale.serving import proxy_environment
        from maskwatch.serving.app import ServeSettings

        with pytest.MonkeyPatch.context() as patch:
            for name in ("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", "RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S"):
                patch.setenv(name, os.environ.get(name, "60"))
            for name, value in proxy_environment(ServeSettings()).items():
                patch.setenv(name, value)
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=True)
    yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """The shared cluster (`cluster`) shut down once a Ray module's test is followed by none."""
    result = yield
    if _module(item) in RAY_MODULES and (nextitem is None or _module(nextitem) not in RAY_MODULES):
        import ray

        ray.shutdown()
    return result


def _module(item) -> str:
    return item.module.__name__.rsplit(".", 1)[-1]


def _worker_group(module: str) -> str:
    """The tests that must share a worker under `pytest -n 2 --dist loadgroup`: a module's (its
    module fixtures start once), the Ray modules' (one local cluster at a time) and those of the
    session's one-epoch trainings (trained once)."""
    if module in RAY_MODULES:
        return "ray"
    if module in ONE_EPOCH_MODULES:
        return "one-epoch"
    return module


# Argon2 at the shipped cost (~150 ms a hash) was ~60 s of the suite's CPU: the test process hashes
# with the smallest parameters Argon2 allows (Django's practice), and DUMMY_HASH is made with them
# so an unknown name still costs what a wrong password does. A hash verifies under whatever
# parameters it names, and needs_rehash compares with the hasher in use, so a cheap hash is never
# re-hashed here. Servers run as commands keep the shipped hasher (nothing in src/ changes), and the
# users made for them (Credentials) are hashed as shipped, else their first login re-hashed them. A
# test whose point is the shipped cost or parameters is marked `shipped_hash`.
def pytest_configure(config):
    config.addinivalue_line("markers", "shipped_hash: hashes passwords at the shipped Argon2 cost (tests/conftest.py)")


@functools.cache
def _hashers() -> dict[str, dict]:
    """passwords' _HASHER and DUMMY_HASH, as shipped and cheap."""
    from pwdlib.hashers.argon2 import Argon2Hasher

    from maskwatch.security import passwords

    cheap = Argon2Hasher(time_cost=1, memory_cost=8, parallelism=1)
    return {"shipped": {"_HASHER": passwords._HASHER, "DUMMY_HASH": passwords.DUMMY_HASH},
            "cheap": {"_HASHER": cheap, "DUMMY_HASH": cheap.hash("maskwatch: no such user")}}


@contextlib.contextmanager
def hashing(kind: str):
    """The test process hashes passwords the `kind` way ("shipped" or "cheap") inside."""
    from maskwatch.security import passwords

    with pytest.MonkeyPatch.context() as patch:
        for name, value in _hashers()[kind].items():
            patch.setattr(passwords, name, value)
        yield


@pytest.fixture(scope="session", autouse=True)
def cheap_hashing():
    """Cheap from the first fixture on (module fixtures' users too)."""
    with hashing("cheap"):
        yield


@pytest.fixture(autouse=True)
def shipped_hash(request, cheap_hashing):
    """The shipped hasher and DUMMY_HASH for a test marked `shipped_hash`."""
    if request.node.get_closest_marker("shipped_hash") is None:
        yield
        return
    with hashing("shipped"):
        yield


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def prepared_sample(tmp_path_factory) -> Path:
    """The sample prepared once (colour, 32 px crops, split by photo) for the tests that train."""
    return prepare_sample(tmp_path_factory.mktemp("work") / "sample", size=32)


@pytest.fixture(scope="session")
def one_epoch_runs(prepared_sample, tmp_path_factory) -> dict[str, Path]:
    """The seed CNN ("model") and the gate CNN ("gate"), one epoch each (seed 0) on the prepared
    sample, as trained (not evaluated). test_gate, test_closeup and test_onnx need these: trained
    once, each module works on copies of them (copies_of)."""
    from maskwatch.training.classifier.train import TrainConfig, train_run

    folder = tmp_path_factory.mktemp("one-epoch")
    configs = {"model": TrainConfig(epochs=1, seed=0), "gate": TrainConfig(model="gate-cnn", epochs=1, seed=0)}
    return {name: train_run(prepared_sample, folder / name, cfg, progress=False) for name, cfg in configs.items()}


def copies_of(runs: dict[str, Path], folder: Path) -> dict[str, Path]:
    """Copies of run folders in `folder`, for a module to evaluate and export without touching the shared ones."""
    return {name: Path(shutil.copytree(run, folder / name)) for name, run in runs.items()}


def prepare_sample(work: Path, size: int) -> Path:
    """The bundled sample as a work folder of `size` px colour crops, split by photo (seed 0)."""
    from maskwatch.data.crops import CropSpec
    from maskwatch.data.prepare import prepare, read_faces_csv
    from maskwatch.data.split import split_faces, write_split_csv

    prepare(SAMPLE, work, CropSpec(size=size), progress=False)
    rows = read_faces_csv(work / "faces.csv")
    is_val = split_faces([r["label"] for r in rows], [r["image"] for r in rows], by="photo", seed=0)
    write_split_csv(work / "split.csv", [r["face_id"] for r in rows], is_val, by="photo", seed=0)
    return work


@pytest.fixture()
def small_dataset(tmp_path, sample_dir) -> Path:
    """A copy of three sample photos: tests break it in the ways they need."""
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "annotations").mkdir()
    for xml in sorted(sample_dir.glob("annotations/*.xml"))[:3]:
        shutil.copy(xml, data / "annotations")
        shutil.copy(sample_dir / "images" / f"{xml.stem}.png", data / "images")
    return data


# Who the tests log in as (tests/test_security.py and every test of a site with users).
ADMIN = ("admin", "correct horse battery staple")
VIEWER = ("viewer", "viewer sees one camera")


class Credentials:
    """Users and API tokens made in a site's database before its server starts."""

    def __init__(self, database, viewer_cameras: list[str] | None = None) -> None:
        from maskwatch.security.store import AuthStore

        self.database = str(database)
        store = AuthStore(self.database)
        with hashing("shipped"):  # for a server run as a command
            store.add_user(*ADMIN, "admin")
            store.add_user(*VIEWER, "viewer", viewer_cameras)
        self.token = store.add_token("tests-full", "full")
        self.read_token = store.add_token("tests-read", "read")
        store.close()

    @property
    def headers(self) -> dict:
        """An admin's (full-scope token) Authorization header."""
        return {"Authorization": f"Bearer {self.token}"}


def log_in(page, base: str, user: tuple[str, str] = ADMIN) -> None:
    """Log in through the login page in a real browser (as `user` again if the page was logged in
    already); lands on the dashboard."""
    page.goto(base + "/")  # not logged in: the server sends the browser to the login page
    if not page.url.startswith(base + "/login"):
        page.goto(base + "/login")
    page.wait_for_selector("#login", timeout=20_000)
    page.fill("#username", user[0])
    page.fill("#password", user[1])
    page.click("button[type=submit]")
    page.wait_for_url(base + "/", timeout=20_000)


# The browser tests drive the pages under their real Content-Security-Policy (no 'unsafe-inline', no
# 'unsafe-eval'; docs/security.md): a style="" or an inline handler a script adds, or an eval, is
# refused by the browser and breaks the real page, so it fails the test that met it. Playwright's
# wait_for_function takes a function ("() => ..."): a bare expression is evaluated again at each
# poll with eval, which the policy refuses.
REPORT_REFUSALS = """document.addEventListener("securitypolicyviolation", (e) => console.error(
  `Content Security Policy refused ${e.effectiveDirective} (${e.blockedURI}) at ${e.sourceFile}:${e.lineNumber}`));"""
BROWSER_TROUBLE: list[str] = []  # what the watched pages met during the running test
WATCHED: list = []


def watched(page):
    """`page`, with its CSP refusals (the browser's console message, or the securitypolicyviolation
    event where a script caught the refusal) and uncaught script errors kept in BROWSER_TROUBLE."""
    page.add_init_script(REPORT_REFUSALS)
    page.on("console", lambda message: BROWSER_TROUBLE.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text else None)
    page.on("pageerror", lambda error: BROWSER_TROUBLE.append(f"{page.url}: {error}"))
    WATCHED[:] = [each for each in WATCHED if not each.is_closed()] + [page]
    return page


def stop_the_clock(page) -> None:
    """Stop the page's installed clock (page.clock.install()) where it is: from here on its timers
    fire only as clock.fast_forward moves it. An installed clock runs on with real time, so a 15 s
    timeout checked "not yet" after fast_forward(14_000) had fired when the machine took over a
    second between the request and the check (test_dashboard's zone editor, once under load)."""
    for _ in range(5):  # pause_at cannot go back: a time the running clock passed meanwhile is tried again
        try:
            page.clock.pause_at(page.evaluate("Date.now()") + 1_000)
            return
        except Exception as err:  # playwright's Error: "Cannot fast-forward to the past"
            if "past" not in str(err):
                raise
    raise AssertionError("the page's clock ran past every time it was asked to stop at")


def browser_trouble() -> list[str]:
    """BROWSER_TROUBLE once the open pages' events so far have reached the test (one round trip each)."""
    for each in WATCHED:
        # A page of a module whose browser has closed (its Playwright stopped with it) is skipped: asking
        # it failed the next module's first browser test ("Event loop is closed") where both ran in one process.
        if not each.is_closed() and each.context.browser is not None and each.context.browser.is_connected():
            each.context.cookies()
    return list(BROWSER_TROUBLE)


@pytest.fixture(autouse=True)
def no_browser_trouble(request):
    """Fails a browser test (one using the `page` fixture) whose pages met a refusal or a script error."""
    if "page" not in request.fixturenames:
        yield
        return
    BROWSER_TROUBLE.clear()
    yield
    trouble = browser_trouble()
    if trouble:
        pytest.fail("the page's CSP refused something or a script failed:\n" + "\n".join(trouble), pytrace=False)
