"""Every notebook: paired .ipynb in sync, and a first code cell that sets up Colab only."""
import subprocess
import sys
import types
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import notebooks  # noqa: E402

NOTEBOOKS = notebooks.notebooks()


def test_pairs_and_setup_cells_are_in_sync():
    problems = notebooks.problems()
    assert not problems, "\n".join(problems + ["run: python scripts/notebooks.py sync"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_first_code_cell_is_the_setup_cell(path):
    nb = jupytext.read(path)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert first.source == notebooks.setup_source()
    assert nb.metadata["kernelspec"]["name"] == "python3"


def run_setup_cell(monkeypatch, in_colab, has_gpu):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append((cmd, kw)))
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: has_gpu)
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(notebooks.setup_source(), {})
    return calls


def test_setup_cell_in_colab_installs_only_what_colab_lacks(monkeypatch, capsys):
    calls = run_setup_cell(monkeypatch, in_colab=True, has_gpu=False)
    repo = notebooks.repository_url()
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    assert [cmd for cmd, _ in calls] == [pip + [f"dropout-lab @ git+{repo}"],
                                         pip + ["--no-deps", "d2l==1.0.3"]]
    assert all(kw.get("check") for _, kw in calls)
    assert not any("torch" in part for cmd, _ in calls for part in cmd)  # never reinstall torch
    assert "Change runtime type" in capsys.readouterr().out


def test_setup_cell_with_a_gpu_says_nothing_about_it(monkeypatch, capsys):
    run_setup_cell(monkeypatch, in_colab=True, has_gpu=True)
    assert "GPU" not in capsys.readouterr().out


def test_setup_cell_outside_colab_does_nothing(monkeypatch, capsys):
    assert run_setup_cell(monkeypatch, in_colab=False, has_gpu=False) == []
    assert capsys.readouterr().out == ""


def test_library_installs_from_the_repository_without_torch():
    # Colab installs the package from git: its metadata must not pull torch in.
    text = (ROOT / "pyproject.toml").read_text()
    dependencies = text.split("dependencies = [")[1].split("]")[0]
    assert "torch" not in dependencies
