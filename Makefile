# A newcomer's two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PIP := $(VENV)/bin/pip
MASKWATCH := $(VENV)/bin/maskwatch
SAMPLE := sample/face-mask-detection
DEMO_OUT := demo-output

.PHONY: setup demo test clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt -e '.[train,dev]'
	touch $@

demo: setup
	$(MASKWATCH) study $(SAMPLE) --out $(DEMO_OUT)
	@echo "Open $(DEMO_OUT)/report.html to read the study."

test: setup
	$(VENV)/bin/pytest

clean:
	rm -rf $(VENV) $(DEMO_OUT) build src/*.egg-info
