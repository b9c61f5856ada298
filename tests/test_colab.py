"""The notebooks run as a student runs them in Colab.

A fresh virtual environment holds only what Colab preinstalls (COLAB_PACKAGES);
a stub `google.colab` module on its path makes the setup cell believe it is in
Colab. Each notebook runs top to bottom in a kernel of that environment, in a
folder outside the repository, and its OWN setup cell installs dropout-lab,
non-editable, from this repository's committed HEAD: the cell honours
DROPOUT_LAB_URL, so the notebook under test is the committed file byte for
byte (rewriting the URL in a copy would test a different cell). The real
FashionMNIST files lie where torchvision's download puts them in Colab
(~/dropout_lab_data/FashionMNIST/raw).

The environment is built once (torch is large: about 1 minute from pip's
cache here, more from the network) and reused, keyed by the package list;
what a setup cell installed into it is removed before the next notebook.
Set COLAB_VENV_CACHE to choose where it lives. The executed notebooks are
kept in _build/colab-run/.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import nbformat
import pytest

import dropout_lab as dl

ROOT = Path(__file__).resolve().parents[1]
# What Colab has before any cell runs (of what matters here), at the versions
# of this machine's torch so that pip can take them from its cache.
COLAB_PACKAGES = [f"torch=={version('torch')}", f"torchvision=={version('torchvision')}",
                  "numpy", "pandas", "scipy", "matplotlib", "ipywidgets", "ipykernel<7",
                  "nbclient"]
RUNS = {  # notebook: what its outputs must show
    "chapters/from_scratch.ipynb": "chapter",
    "exercises/08_backward.ipynb": "exercise",
    "solutions/08_backward.ipynb": "solution",
}

DRIVER = r"""
import json, sys
import nbformat
from nbclient import NotebookClient
path, folder, allow_errors = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
sys.path.insert(0, sys.argv[4])  # _ext: the harness's short polls, not the student's
import kernel_messages
kernel_messages.patch()
nb = nbformat.read(path, as_version=4)
nb.cells.append(nbformat.v4.new_code_cell(
    "import dropout_lab, sys; print('PROBE', dropout_lab.__file__, sys.executable)"))
client = NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=allow_errors,
                        resources={"metadata": {"path": folder}})
client.execute()
nbformat.write(nb, path)
"""


def committed():
    return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="session")
def colab_venv():
    key = hashlib.sha256(json.dumps([sys.version_info[:2], COLAB_PACKAGES]).encode())
    cache = Path(os.environ.get("COLAB_VENV_CACHE")
                 or Path.home() / ".cache" / "dropout-chapter")
    venv = cache / f"colab-venv-{key.hexdigest()[:12]}"
    python = venv / "bin" / "python"
    frozen = venv / "colab-packages.txt"
    if not frozen.is_file():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *COLAB_PACKAGES],
                       check=True)
        freeze = subprocess.run([str(python), "-m", "pip", "freeze"], check=True,
                                capture_output=True, text=True).stdout
        frozen.write_text(freeze)
    # Colab's pip is recent; the one venv ships may reject git+file:/// URLs
    pip = subprocess.run([str(python), "-m", "pip", "--version"], check=True,
                         capture_output=True, text=True).stdout.split()[1]
    if int(pip.split(".")[0]) < 24:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "pip>=24"], check=True)
    return python


def reset(python):
    """Uninstall what earlier setup cells installed into the cached environment."""
    names = lambda text: {line.split("==")[0].split(" @ ")[0].lower()  # noqa: E731
                          for line in text.splitlines() if line.strip()}
    now = subprocess.run([str(python), "-m", "pip", "freeze"], check=True,
                         capture_output=True, text=True).stdout
    extra = names(now) - names((python.parents[1] / "colab-packages.txt").read_text())
    if extra:
        subprocess.run([str(python), "-m", "pip", "uninstall", "-q", "-y", *extra], check=True)


def colab_home(tmp_path):
    """A home folder as Colab's: FashionMNIST where torchvision's download puts it."""
    home = tmp_path / "home"
    raw = home / "dropout_lab_data" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for path in dl.data.locate(allow_download=False).values():
        shutil.copy(path, raw / Path(path).name)  # the real files, copied
    stub = tmp_path / "stub" / "google" / "colab"
    stub.mkdir(parents=True)
    (stub.parent / "__init__.py").write_text("")
    (stub / "__init__.py").write_text('"""Stands in for Colab\'s module: the setup cell '
                                      'only asks whether it is imported."""\n')
    # Colab's kernel has imported google.colab before the first cell runs
    startup = home / ".ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab.py").write_text("import google.colab\n")
    return home, tmp_path / "stub"


def outputs_of(cell):
    text = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            text.append(out.text)
        elif out.output_type == "error":
            text.append(f"ERROR {out.ename}: {out.evalue}")
        elif "text/plain" in out.get("data", {}):
            text.append(out.data["text/plain"])
    return "".join(text)


def test_plain_install_from_git_imports_every_module_the_notebooks_import(
        tmp_path, colab_venv):
    # what the setup cell does, non-editable from git, without the dependencies
    # (only tqdm, which Colab has, is added), imported in the Colab-like
    # environment: this project's own venv has an editable install that would hide
    # a missing subpackage
    target = tmp_path / "site"
    for spec in (f"git+file://{ROOT}@{committed()}", "tqdm"):
        subprocess.run([str(colab_venv), "-m", "pip", "install", "-q", "--no-deps",
                        "--target", str(target), spec], check=True, capture_output=True)
    sys.path.insert(0, str(ROOT / "scripts"))
    import notebooks
    statements = sorted({line.strip() for md in notebooks.notebooks()
                         for cell in nbformat.read(md.with_suffix(".ipynb"), 4).cells
                         if cell.cell_type == "code"
                         for line in cell.source.splitlines()
                         if line.strip().startswith(("import dropout_lab",
                                                     "from dropout_lab"))})
    assert "from dropout_lab import checks" in statements
    probe = "\n".join(statements + [
        "import importlib, pkgutil, sys, dropout_lab",
        "mods = [m.name for m in pkgutil.walk_packages(dropout_lab.__path__, 'dropout_lab.')",
        "        if not m.name.endswith('__main__')]  # a command line: runs when imported",
        "[importlib.import_module(m) for m in mods]",
        "print(len(mods))",
        "print(*{m.__file__ for n, m in sys.modules.items() if n.startswith('dropout_lab')})"])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)
    done = subprocess.run([str(colab_venv), "-c", probe], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    count, *files = done.stdout.split()
    assert files and all(Path(f).is_relative_to(target) for f in files), files
    assert any(f.endswith("checks/__init__.py") for f in files)
    modules = [p for p in (ROOT / "dropout_lab").rglob("*.py") if p.name != "__main__.py"]
    assert int(count) == len(modules) - 1  # every module but the top __init__


@pytest.mark.parametrize("name", RUNS)
def test_notebook_runs_in_a_simulated_colab(name, colab_venv, tmp_path):
    reset(colab_venv)
    home, stub = colab_home(tmp_path)
    content = tmp_path / "content"  # Colab's working folder, outside any checkout
    content.mkdir()
    notebook = content / Path(name).name
    shutil.copy(ROOT / name, notebook)
    (tmp_path / "driver.py").write_text(DRIVER)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "JUPYTER_PATH", "DROPOUT_LAB_DATA")}
    env.update(HOME=str(home), PYTHONPATH=str(stub), OMP_NUM_THREADS="1",
               PIP_CACHE_DIR=str(Path.home() / ".cache" / "pip"),
               DROPOUT_LAB_URL=f"git+file://{ROOT}@{committed()}")
    kind = RUNS[name]
    done = subprocess.run([str(colab_venv), str(tmp_path / "driver.py"), str(notebook),
                           str(content), "1" if kind == "exercise" else "0",
                           str(ROOT / "_ext")],
                          cwd=content, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    keep = ROOT / "_build" / "colab-run"  # the executed notebooks, for a look
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copy(notebook, keep / name.replace("/", "_"))
    cells = [c for c in nbformat.read(notebook, 4).cells if c.cell_type == "code"]
    setup, probe = outputs_of(cells[0]), outputs_of(cells[-1])
    assert setup.startswith(f"Installed dropout-lab from git+file://{ROOT}"), setup
    assert "Change runtime type" in setup  # no GPU here
    assert str(colab_venv.parents[1]) in probe.split()[1]  # the installed copy, not ROOT
    assert (home / "dropout_lab_data" / "fashion_mnist_uint8.pt").is_file()  # data from there
    checks = [(c, outputs_of(c)) for c in cells if c.source.lstrip().startswith("checks.")]
    if kind == "chapter":
        assert not any("ERROR" in outputs_of(c) for c in cells)
    elif kind == "solution":
        assert checks and all(out.startswith("[PASS]") and "[FAIL]" not in out
                              for _, out in checks), [out for _, out in checks]
    else:
        # a TODO raises NotImplementedError saying what to write; nothing else may fail
        todo = [c for c in cells if "NotImplementedError: TODO" in outputs_of(c)]
        errors = [outputs_of(c) for c in cells
                  if "ERROR" in outputs_of(c) and c not in todo]
        assert checks and all(out.startswith("[FAIL]") for _, out in checks), \
            [out for _, out in checks]   # every check says FAIL, none crashes
        assert all(cascade(e, None, cells, todo) for e in errors), errors


def cascade(out, cell, cells, todo):
    """True if out is a NameError for a name that only a failed TODO cell above
    would have defined: the student sees the TODO's error first, then this."""
    match = re.fullmatch(r"ERROR NameError: name '(\w+)' is not defined", out.strip())
    return bool(match) and any(
        re.search(rf"^{match[1]}\s*=", c.source, re.M) for c in todo
        if cell is None or cells.index(c) < cells.index(cell))
