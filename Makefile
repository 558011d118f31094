# Every target creates the venv and installs the project on first use.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	# opencv-python-headless (albumentations' dependency) and the contrib wheel share cv2's files;
	# whichever installed last wins. Re-install contrib when cv2.face went missing.
	$(BIN)/python -c "import cv2; cv2.face.createFacemarkLBF" 2>/dev/null || \
	  $(BIN)/python -m pip install -q --force-reinstall --no-deps \
	    "opencv-contrib-python-headless==$$($(BIN)/python -c 'import importlib.metadata as m; print(m.version("opencv-python-headless"))')"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

demo: $(STAMP)
	$(BIN)/python cli.py run-all configs/demo.yaml

bench: $(STAMP)
	$(BIN)/python -m bench.extract

clean:
	rm -rf $(VENV) out .pytest_cache
