# Every target sets itself up from nothing: a virtual environment in .venv,
# the requirements, this repository's library, and the data.
VENV   ?= .venv
PY     := $(VENV)/bin/python
JB     := $(VENV)/bin/jupyter-book
STAMP  := $(VENV)/.installed
export PY

.PHONY: book test data bench student clean

$(STAMP): requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	# d2l 1.0.3 pins numpy==1.23.5, which has no wheel for current Python and
	# breaks Colab's numpy: install it without its pins (its real dependencies,
	# pandas, scipy, matplotlib and requests, come from requirements.txt).
	$(PY) -m pip install -q --no-deps d2l==1.0.3
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

data: $(STAMP)
	scripts/get_data.sh

# The HTML site, every notebook executed, into _build/html.
book: data
	$(JB) build --all . -W -n --keep-going
	$(PY) scripts/exec_times.py

# What CI runs: the tests, then the strict build from scratch.
test: data
	$(PY) -m pytest -q
	rm -rf _build
	$(JB) build --all . -W -n --keep-going
	$(PY) scripts/exec_times.py

# Speed of our trainer and sweeps against the usual tutorial pipeline and d2l.Trainer.
bench: data
	$(PY) bench/bench_pipelines.py --out bench/RESULTS.md

clean:
	rm -rf _build
