"""The notebooks that Colab opens: up to date, free of raw MyST, and a setup cell
that installs only what Colab lacks, from the one repository URL in _config.yml."""
import ast
import re
import statistics
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import notebooks  # noqa: E402

NOTEBOOKS = notebooks.notebooks()
ids = lambda p: str(p.relative_to(ROOT))  # noqa: E731


def colab_notebook(md):
    return nbformat.read(md.with_suffix(".ipynb"), as_version=4)


def test_setup_cells_and_colab_notebooks_are_up_to_date():
    # converts every page again with sphinx-tojupyter and compares (about 30 s)
    problems = notebooks.problems()
    assert not problems, "\n".join(problems + ["run: python scripts/notebooks.py sync"])


def test_every_chapter_exercise_and_solution_has_a_colab_notebook():
    names = {p.relative_to(ROOT).as_posix() for p in NOTEBOOKS}
    assert {n.split("/")[0] for n in names} == set(notebooks.NOTEBOOK_DIRS)
    assert len([n for n in names if n.startswith("exercises/")]) == 10
    assert all(p.with_suffix(".ipynb").is_file() for p in NOTEBOOKS)


def test_the_fragment_counter_finds_each_kind_of_raw_myst():
    text = ("(sec-x)=\n# Title\n\n```{exercise-start} A task\n:label: ex-1\n"
            ":nonumber:\n```\nSee {ref}`sec-x` and {cite:p}`xiao2017fashion`.\n"
            ":::{note}\nplain\n:::\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text)])
    assert notebooks.count_fragments(nb) == {
        "directive fence": 2, "option line": 2, "role": 2, "label line": 1}
    # code is code: a dict literal or a slice is no fragment
    nb.cells = [nbformat.v4.new_code_cell("d = {'a': 1}\n:x: = 2")]
    assert sum(notebooks.count_fragments(nb).values()) == 0


def test_the_myst_sources_are_full_of_what_the_colab_notebooks_must_not_show():
    # what the launch buttons opened before the conversion: the jupytext twin
    raw = sum(sum(notebooks.count_fragments(jupytext.read(p)).values()) for p in NOTEBOOKS)
    assert raw > 200


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_colab_notebook_has_no_raw_myst(path):
    counts = notebooks.count_fragments(colab_notebook(path))
    assert sum(counts.values()) == 0, counts


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_colab_notebook_has_the_sources_code_cells_unchanged(path):
    # the grader and the student see the same code cells in the .md and the .ipynb
    source = [c.source for c in jupytext.read(path).cells if c.cell_type == "code"
              and "remove-cell" not in c.metadata.get("tags", [])]   # hidden checks
    colab = [c for c in colab_notebook(path).cells if c.cell_type == "code"]
    assert [c.source for c in colab] == source
    assert all(not c.outputs for c in colab)
    assert colab_notebook(path).metadata.kernelspec.name == "python3"


def test_exercises_read_as_headings_and_links_go_to_the_site():
    site = notebooks.site_url()
    nb = colab_notebook(ROOT / "solutions" / "08_backward.md")
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "## Exercise (Dropout’s backward pass by hand)" in text
    assert re.search(r"^## Solution to \[Exercise", text, re.M)
    # a citation in parentheses, linked to the site's bibliography
    assert re.search(r"\(\[Xiao \*et al\.\*, 2017\]\(" + re.escape(site)
                     + r"references\.html#id\d+\)\)", text)
    for link in re.findall(r"\]\((http[^)\s]+)\)", text):
        assert link.startswith(site) and "/../" not in link, link


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_first_code_cell_is_the_setup_cell(path):
    for nb in (jupytext.read(path), colab_notebook(path)):
        first = next(c for c in nb.cells if c.cell_type == "code")
        assert first.source == notebooks.setup_source(jupytext.read(path))
    first = next(c for c in colab_notebook(path).cells if c.cell_type == "code")
    assert first.metadata.get("cellView") == "form"  # collapsed in Colab
    assert first.source.startswith("#@title ")


def test_the_repository_url_is_set_once_and_used_by_every_setup_cell():
    url = notebooks.install_url()
    assert url == f"git+{notebooks.repository_url()}@{notebooks.branch()}"
    for path in NOTEBOOKS:
        for nb in (jupytext.read(path), colab_notebook(path)):
            text = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
            assert set(re.findall(r"git\+\S+?(?=[\"'\s])", text)) == {url}, path
    # no other file names a repository: the launch buttons read _config.yml too
    for path in [*ROOT.glob("scripts/*.py"), *ROOT.glob("dropout_lab/**/*.py")]:
        assert "github.com/dropout-book" not in path.read_text(), path


def test_every_import_is_colab_preinstalled_or_installed_by_the_setup_cell():
    for path in NOTEBOOKS:
        nb = jupytext.read(path)
        for module in notebooks.imported_modules(nb):
            assert (module in sys.stdlib_module_names or module in notebooks.COLAB_HAS
                    or module in notebooks.INSTALLS), f"{path}: imports {module}"
        # and nothing is installed that the notebook does not import
        assert "d2l" not in notebooks.setup_source(nb) or "d2l" in notebooks.imported_modules(nb)


def run_setup_cell(monkeypatch, source, in_colab=True, has_gpu=False, returncode=0,
                   stderr=""):
    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, returncode, "", stderr)

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.delenv("DROPOUT_LAB_URL", raising=False)
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: has_gpu)
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(source, {})
    return calls


def setup_of(name):
    return notebooks.setup_source(jupytext.read(ROOT / name))


def test_setup_cell_in_colab_installs_only_the_library(monkeypatch, capsys):
    calls = run_setup_cell(monkeypatch, setup_of("exercises/08_backward.md"))
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    assert calls == [pip + [f"dropout-lab @ {notebooks.install_url()}"]]
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"Installed dropout-lab from {notebooks.install_url()}"
    assert "Runtime > Change runtime type" in out[1] and len(out) == 2


def test_setup_cell_with_a_gpu_says_nothing_about_it(monkeypatch, capsys):
    run_setup_cell(monkeypatch, setup_of("exercises/08_backward.md"), has_gpu=True)
    assert "GPU" not in capsys.readouterr().out


def test_setup_cell_outside_colab_does_nothing(monkeypatch, capsys):
    assert run_setup_cell(monkeypatch, setup_of("chapters/from_scratch.md"),
                          in_colab=False) == []
    assert capsys.readouterr().out == ""


def test_setup_cell_that_cannot_install_says_why_in_one_line(monkeypatch):
    stderr = ("  Running command git clone --filter=blob:none --quiet https://x /tmp/y\n"
              "  fatal: repository 'https://github.com/nobody/nothing/' not found\n"
              "  error: subprocess-exited-with-error\n"
              "ERROR: Failed to build installable wheels for some pyproject.toml based "
              "projects\n")
    with pytest.raises(Exception) as failed:
        run_setup_cell(monkeypatch, setup_of("exercises/08_backward.md"),
                       returncode=1, stderr=stderr)
    lines = failed.value._render_traceback_()  # what IPython shows instead of a traceback
    assert len(lines) == 1 and lines[0].startswith("Setup failed: pip could not install")
    assert "fatal: repository 'https://github.com/nobody/nothing/' not found" in lines[0]
    assert "online" in lines[0]


def test_setup_cell_installs_d2l_without_its_pins_only_where_it_is_imported(monkeypatch):
    nb = jupytext.read(ROOT / "exercises" / "08_backward.md")
    nb.cells.append(nbformat.v4.new_code_cell("from d2l import torch as d2l"))
    calls = run_setup_cell(monkeypatch, notebooks.setup_source(nb))
    assert calls[1][-2:] == ["--no-deps", "d2l==1.0.3"] and len(calls) == 2
    nb.cells = [c for c in nb.cells if "import" not in c.source]
    assert run_setup_cell(monkeypatch, notebooks.setup_source(nb)) == []


def test_the_package_declares_what_it_imports_except_torch():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = {re.split(r"[<>=!~ ;\[]", d)[0].lower() for d in meta["project"]["dependencies"]}
    assert not {"torch", "torchvision"} & declared  # keep Colab's CUDA build
    imported = set()
    for path in (ROOT / "dropout_lab").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):  # real imports, not docstrings
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported if m not in sys.stdlib_module_names} - {
        "dropout_lab", "torch", "torchvision"}
    assert {m.lower() for m in third_party} <= declared
    assert meta["tool"]["setuptools"]["packages"]["find"]["include"] == [
        "dropout_lab", "dropout_lab.*"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_code_fits_the_page_column(path):
    """The theme shows 79 characters of code; a longer line hides behind a scroll
    bar. Cells a reader sees carry one idea: their median length is at most 8
    lines (detail goes into hide-input cells or the plot helpers)."""
    cells = [c for c in jupytext.read(path).cells if c.cell_type == "code"]
    long = [line for c in cells for line in c.source.split("\n") if len(line) > 79]
    assert not long, f"{len(long)} code lines over 79 characters, e.g. {long[0]!r}"
    hidden = {"hide-input", "hide-cell", "remove-input", "remove-cell"}
    shown = sorted(len(c.source.split("\n")) for c in cells[1:]
                   if not hidden & set(c.metadata.get("tags", [])))
    median = statistics.median(shown or [0])
    assert median <= 8, f"visible code cells have a median of {median} lines"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_no_heading_inside_an_exercise_block(path):
    """sphinx-exercise cannot hold a section: a heading between exercise-start
    and exercise-end makes the HTML writer crash ("unknown node type:
    exercise_end_node") at the end of the build."""
    inside, headings = False, []
    for cell in jupytext.read(path).cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.split("\n"):
            if re.match(r"^\s*`{3,}\s*\{exercise-start\}", line):
                inside = True
            elif re.match(r"^\s*`{3,}\s*\{exercise-end\}", line):
                inside = False
            elif inside and re.match(r"^#{1,6}\s", line):
                headings.append(line)
    assert not headings, f"headings inside an exercise block: {headings}"

