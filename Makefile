# Two commands do all the set-up: `make demo` and `make test`.
# Each creates .venv on first use and reuses it afterwards.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,draw,train,examples,onnx,tensorboard,rl]'
	touch $(STAMP)

.PHONY: demo test test-slow bench clean
demo: $(STAMP)
	$(PY) examples/gallery.py

# The fast selection (setup.cfg deselects the `slow` marker): what a user needs
# to trust the install, in under a minute on two idle cores. pytest-xdist runs it
# on every core (`-n auto`); a plain `pytest` runs it in one process.
test: $(STAMP)
	$(PY) -m pytest -q -n auto

# The long cases only, on every core; CI (.ci/run) runs both.
test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow -n auto

# PyTorch (a local CPU build) is the benchmarks' second baseline; only `make bench` installs it.
bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) build *.egg-info
