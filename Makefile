# eipl_trt developer entry points. `make test` and `make demo` work on a fresh machine from a clean clone.
PYTHON ?= python3
VENV ?= .venv
DEMO_VENV ?= .venv-demo
PY := $(VENV)/bin/python
DEMO_PY := $(DEMO_VENV)/bin/python
PIP_FLAGS ?= -q --disable-pip-version-check
# ament_index_python finds pip-installed data_files under the venv prefix only with this set.
export AMENT_PREFIX_PATH := $(abspath $(VENV))

.PHONY: help venv install test test-fast test-matrix demo live bench docs clean

help:
	@echo "make test    create $(VENV), install everything the tests need, run the whole suite"
	@echo "make test-matrix  then the suite on Python 3.10 and 3.12, the node tests on the Jazzy wheels"
	@echo "make demo    create $(DEMO_VENV) (no torch), replay the bundled bag to the node, print a summary"
	@echo "make live    the node (bundled sarnn8rt) drives the simulated Pusher arm over ROS 2 in real time; success beside the expert, a video"
	@echo "make bench   latency table of the bundled models (ONNX Runtime vs eager PyTorch)"
	@echo "make docs    regenerate docs/parameters.md, config/eipl_trt.yaml, robot.launch.py's arguments and docs/cli.md"
	@echo "make clean   remove build outputs (keeps the virtual environments)"

$(VENV)/.stamp-test: requirements/runtime.txt requirements/ros.txt requirements/test.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) --upgrade pip
	$(PY) -m pip install $(PIP_FLAGS) -r requirements/test.txt
	touch $@

venv: $(VENV)/.stamp-test

# A real (non-editable) install, so console scripts and share/ data files exist as on a robot.
install: venv
	$(PY) -m pip install $(PIP_FLAGS) --no-deps --no-build-isolation --force-reinstall .

test: install
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow"

# Python x ROS wheel matrix (scripts/test_matrix.sh says what runs where); `make test` first fills
# the test-model cache the torch-less environments use.
test-matrix: test
	scripts/test_matrix.sh

bench: install
	$(VENV)/bin/eipl-trt bench --out results/bench

# Files generated from the code (docs/development.md, "Generated files"); run after changing a parameter or a flag.
docs: venv
	$(PY) -m eipl_trt.ros.paramdocs --write
	$(PY) -m eipl_trt.cli.clidocs --write

# The main job on the bundled default: no torch, ONNX Runtime on the CPU.
$(DEMO_VENV)/.stamp-demo: requirements/runtime.txt requirements/ros.txt requirements/demo.txt
	test -x $(DEMO_PY) || $(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_PY) -m pip install $(PIP_FLAGS) --upgrade pip
	$(DEMO_PY) -m pip install $(PIP_FLAGS) -r requirements/demo.txt
	touch $@

demo: $(DEMO_VENV)/.stamp-demo
	$(DEMO_PY) -m pip install $(PIP_FLAGS) --no-deps --no-build-isolation --force-reinstall .
	AMENT_PREFIX_PATH=$(abspath $(DEMO_VENV)) $(DEMO_PY) -m eipl_trt.demo --out results/demo

# Closed loop in the simulator: the demo environment plus MuJoCo (requirements/live.txt).
LIVE_EPISODES ?= 5
# real time, as a robot runs (LIVE_CLOCK=lockstep for scores that do not depend on the machine's load)
LIVE_CLOCK ?= realtime
LIVE_MODEL ?= sarnn8rt
$(DEMO_VENV)/.stamp-live: $(DEMO_VENV)/.stamp-demo requirements/live.txt
	$(DEMO_PY) -m pip install $(PIP_FLAGS) -r requirements/live.txt
	touch $@

live: $(DEMO_VENV)/.stamp-live
	$(DEMO_PY) -m pip install $(PIP_FLAGS) --no-deps --no-build-isolation --force-reinstall .
	AMENT_PREFIX_PATH=$(abspath $(DEMO_VENV)) $(DEMO_VENV)/bin/eipl-trt control --model $(LIVE_MODEL) --precision fp32 \
		--interface joint_trajectory --episodes $(LIVE_EPISODES) --clock $(LIVE_CLOCK) --out results/live

clean:
	rm -rf build *.egg-info .pytest_cache
