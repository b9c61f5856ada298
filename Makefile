# Every target sets itself up from nothing: a virtual environment in .venv,
# the requirements, this repository's library, and the data.
VENV   ?= .venv
PY     := $(VENV)/bin/python
JB     := $(VENV)/bin/jupyter-book
STAMP  := $(VENV)/.installed
export PY

.PHONY: book test data browser bench exercises notebooks colab student grade check clean

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

# Headless Chromium for the site test (Debian's package; Playwright drives it).
browser:
	@command -v chromium >/dev/null || { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get install -y -q chromium >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q chromium >/dev/null; }; }

# The HTML site, every notebook executed, into _build/html.
book: data
	$(JB) build --all . -W -n --keep-going
	$(PY) scripts/exec_times.py

# What CI runs: the tests, the strict build from scratch, then the site in a browser.
test: data browser
	$(PY) scripts/notebooks.py check
	$(PY) -m pytest -q --durations=10 --ignore=tests/site
	rm -rf _build
	$(JB) build --all . -W -n --keep-going
	$(PY) scripts/exec_times.py
	$(PY) -m pytest -q tests/site

# Speed of our trainer and sweeps against the usual tutorial pipeline and d2l.Trainer.
bench: data
	$(PY) bench/bench_pipelines.py --out bench/RESULTS.md

# Student notebooks, regenerated from the solutions.
exercises: $(STAMP)
	$(PY) scripts/make_student.py

# Every generated notebook, in order: the student notebooks from the solutions,
# then each page's setup cell and the .ipynb that Colab opens (sphinx-tojupyter).
notebooks: exercises
	$(PY) scripts/notebooks.py sync

# The simulated-Colab run alone (also part of make test): a chapter page, an
# exercise and a solution, each from its own setup cell, in a fresh environment.
colab: data
	$(PY) -m pytest -q tests/test_colab.py

# The site without solutions, into _build/student/_build/html.
student: data
	$(PY) scripts/make_student.py --check
	$(PY) scripts/make_student.py --student-toc _build/_toc_student.yml
	$(JB) build --all . --toc _build/_toc_student.yml --path-output _build/student -W -n --keep-going

# make grade NB="alice_08_backward.ipynb bob.ipynb" or NB=submissions/ (a folder), and
#   CSV=grades.csv FEEDBACK=feedback/ JSON=grades.json TIMEOUT=1200 (s per notebook)
#   MEMORY=8000 (MB per kernel) THREADS=2 JOBS=2 (submissions at once)
#   EXERCISE=08 (when the file names do not say)
GRADE_OPTIONS = $(if $(EXERCISE),--exercise $(EXERCISE)) $(if $(TIMEOUT),--timeout $(TIMEOUT)) \
	$(if $(MEMORY),--memory $(MEMORY)) $(if $(THREADS),--threads $(THREADS)) \
	$(if $(JOBS),--jobs $(JOBS)) $(if $(JSON),--json $(JSON)) $(if $(CSV),--csv $(CSV)) \
	$(if $(FEEDBACK),--feedback $(FEEDBACK))
grade: data
	@test -n "$(NB)" || { echo "usage: make grade NB=notebook.ipynb|folder [CSV=..] [FEEDBACK=..]" \
	  "[JSON=..] [TIMEOUT=s] [MEMORY=MB] [THREADS=n] [JOBS=n] [EXERCISE=NN]"; exit 2; }
	$(PY) scripts/grade.py $(NB) $(GRADE_OPTIONS)

# The quick tests: no book build, no browser (make test is what CI runs).
check: data
	$(PY) scripts/make_student.py --check
	$(PY) -m pytest -q --ignore=tests/site

clean:
	rm -rf _build
