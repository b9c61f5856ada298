"""Keep every notebook's Colab setup cell and its paired .ipynb in step with its .md.

    python scripts/notebooks.py sync    # rewrite setup cells, write the .ipynb twins
    python scripts/notebooks.py check   # exit 1 if anything is out of date (CI, tests)

The .md (MyST, jupytext) is the source; the .ipynb next to it exists so that
Colab can open the page from the repository. The setup cell is the first code
cell of every notebook; its text is SETUP_CELL below, with the repository URL
taken from _config.yml (the one place that names it).
"""
import sys
from pathlib import Path

import jupytext
import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIRS = ("chapters", "exercises", "solutions")
MARKER = "# Colab setup"
SETUP_CELL = '''\
# Colab setup: installs this chapter's library and d2l; does nothing elsewhere.
import sys

if "google.colab" in sys.modules:
    import subprocess
    import torch
    repo = "{repo}"
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    subprocess.run(pip + [f"dropout-lab @ git+{{repo}}"], check=True)
    # d2l 1.0.3 pins an old numpy that breaks Colab: install it without its pins.
    subprocess.run(pip + ["--no-deps", "d2l==1.0.3"], check=True)
    if not torch.cuda.is_available():
        print("No GPU in this runtime. Runtime > Change runtime type > GPU "
              "makes the training cells several times faster.")'''


def repository_url():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    return config["repository"]["url"].rstrip("/")


def setup_source():
    return SETUP_CELL.format(repo=repository_url())


def notebooks():
    return sorted(p for d in NOTEBOOK_DIRS for p in (ROOT / d).glob("*.md")
                  if jupytext.read(p).metadata.get("kernelspec"))


def with_setup_cell(nb):
    """Return True if nb's setup cell was added or replaced."""
    source = setup_source()
    code = [c for c in nb.cells if c.cell_type == "code"]
    if code and code[0].source.startswith(MARKER):
        if code[0].source == source and code[0].metadata.get("tags") == ["hide-input"]:
            return False
        code[0].source = source
        code[0].metadata["tags"] = ["hide-input"]
        return True
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["hide-input"]
    first = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
    # after the title and the "what you will learn" text, before the first code
    nb.cells.insert(first, cell)
    return True


def cells_of(nb):
    return [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", [])))
            for c in nb.cells]


def problems():
    found = []
    for md in notebooks():
        nb = jupytext.read(md)
        if with_setup_cell(nb):
            found.append(f"{md.relative_to(ROOT)}: setup cell missing or out of date")
        ipynb = md.with_suffix(".ipynb")
        if not ipynb.exists():
            found.append(f"{ipynb.relative_to(ROOT)}: missing")
        elif cells_of(jupytext.read(ipynb)) != cells_of(jupytext.read(md)):
            found.append(f"{ipynb.relative_to(ROOT)}: differs from its .md")
    return found


def sync():
    for md in notebooks():
        nb = jupytext.read(md)
        if with_setup_cell(nb):
            jupytext.write(nb, md, fmt="md:myst")
            print("setup cell written:", md.relative_to(ROOT))
        nb = jupytext.read(md)
        ipynb = md.with_suffix(".ipynb")
        if not ipynb.exists() or cells_of(jupytext.read(ipynb)) != cells_of(nb):
            nb.metadata.pop("jupytext", None)
            jupytext.write(nb, ipynb)
            print("written:", ipynb.relative_to(ROOT))


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "check"
    if command == "sync":
        sync()
    elif command == "check":
        found = problems()
        for line in found:
            print(line)
        if found:
            print("run: python scripts/notebooks.py sync")
        sys.exit(1 if found else 0)
    else:
        sys.exit(f"unknown command {command!r}: use sync or check")
