"""scripts/grade.py: a grader that the submitted notebook cannot fool.

The fast tests read notebooks only. The executed tests grade exercise 8 (the
quickest) in two batch runs: six submissions (the right one, a one-bug one and
the tricks of issue 15) into a CSV and feedback files, and two runaway notebooks
that must be killed at --timeout. Kernels run on one thread.
"""
import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = (ROOT / "solutions" / "08_backward.md").read_text()
STUDENT = (ROOT / "exercises" / "08_backward.md").read_text()
CHECKS = ["dropout_layer", "dropout_forward", "dropout_backward", "numerical_gradient",
          "gradient_errors", "mlp_backward", "mlp_backward_other_sizes"]  # the last: hidden

spec = importlib.util.spec_from_file_location("grade", ROOT / "scripts" / "grade.py")
grade = importlib.util.module_from_spec(spec)
spec.loader.exec_module(grade)


def cells_of(text):
    return jupytext.reads(text, fmt="md:myst").cells


def notebook(cells):
    nb = jupytext.reads(STUDENT, fmt="md:myst")
    nb.cells = cells
    return nb


def solution_cell(start):
    """The solution's code cell whose source starts with start."""
    return next(c for c in cells_of(SOLUTION) if c.cell_type == "code"
                and c.source.startswith(start))


def without_checks(cells, names=None):
    """cells without the check cells (of the given names, or all)."""
    return [c for c in cells if not (c.cell_type == "code" and "checks.check_" in c.source
            and (names is None or any(f"check_{n}(" in c.source for n in names)))]


def replace_code(cells, start, source):
    """cells with the code cell that starts with start replaced by source."""
    return [nbformat.v4.new_code_cell(source) if c.cell_type == "code"
            and c.source.startswith(start) else c for c in cells]


FORGE = '''
import sys
from IPython.display import display
from dropout_lab.checks import engine
print("\\n".join(f"[PASS] {name}: ok" for name in range(30)))
for module_name, module in list(sys.modules.items()):
    if module_name.startswith("dropout_lab.checks") and hasattr(module, "report"):
        module.report = lambda name, passed, message: print(f"[PASS] {name}: ok") or True
for name in dir(checks):
    if name.startswith("check_"):
        setattr(checks, name, lambda *args, **kwargs: print("[PASS] x: ok"))


def forged(name, token):
    display({engine.MIME: {"name": name, "passed": True, "message": "ok", "token": token}},
            raw=True)


def dropout_layer(X, p):
    """Sends PASS messages, with a guessed token and with the grader's own."""
    for name in %r:
        forged(name, "guessed")
        forged(name, sys.modules["dropout_lab.checks.engine"].GRADING.get("token"))
    return X
''' % (CHECKS,)


PLANT = """
import pathlib
startup = pathlib.Path(get_ipython().profile_dir.startup_dir)
(startup / "99_planted_by_a_submission.py").write_text(
    "try:\\n    open(%r, 'a').write('ran\\\\n')\\nexcept OSError:\\n    pass\\n")
"""


def submissions(folder, planted):
    """The batch of issue 15's table, written to folder; returns {student: expected}.
    One right submission also plants an IPython startup file that would append to the
    file planted in every kernel started after it."""
    right = SOLUTION
    one_bug = SOLUTION.replace("    return dout * mask / (1 - p)\n    # END SOLUTION",
                               "    return dout * mask\n    # END SOLUTION")
    assert one_bug != right
    student = cells_of(STUDENT)
    tricks = replace_code(without_checks(student), "def dropout_layer", FORGE)
    partial = replace_code(student, "def dropout_layer", "import torch.nn.functional as F\n\n"
                           "def dropout_layer(X, p):\n    return F.dropout(X, p)\n")
    for start in ("def dropout_forward", "def dropout_backward"):
        partial = replace_code(partial, start, solution_cell(start).source)
    partial = without_checks(partial, ["dropout_layer", "numerical_gradient",
                                       "gradient_errors", "mlp_backward"])
    (folder / "right_08_backward.md").write_text(right)
    (folder / "onebug_08_backward.md").write_text(one_bug)
    (folder / "untouched_08_backward.md").write_text(STUDENT)
    nbformat.write(notebook(tricks), folder / "tricks_08_backward.ipynb")
    nbformat.write(notebook(partial), folder / "partial_08_backward.ipynb")
    library = replace_code(cells_of(SOLUTION), "def dropout_layer",
                           "def dropout_layer(X, p):\n    return dl.dropout_layer(X, p)\n")
    nbformat.write(notebook(library), folder / "library_08_backward.ipynb")
    planter = replace_code(cells_of(SOLUTION), "def dropout_layer",
                           solution_cell("def dropout_layer").source + PLANT % str(planted))
    nbformat.write(notebook(planter), folder / "planter_08_backward.ipynb")
    passed_by = {"right": CHECKS, "onebug": [c for c in CHECKS if c != "dropout_backward"],
                 "untouched": [], "tricks": [],
                 "partial": ["dropout_forward", "dropout_backward"],
                 "library": CHECKS[1:], "planter": CHECKS}
    return passed_by


def run_grader(*args):
    return subprocess.run([sys.executable, "scripts/grade.py", "--threads", "1", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=1500)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    out = tmp_path_factory.mktemp("out")
    expected = submissions(folder, out / "planted.log")
    result = run_grader(str(folder), "--jobs", "2", "--timeout", "300",
                        "--csv", str(out / "grades.csv"), "--json", str(out / "grades.json"),
                        "--feedback", str(out / "feedback"))
    assert result.returncode == 0, result.stdout + result.stderr
    reports = {r["student"]: r for r in json.loads((out / "grades.json").read_text())}
    return expected, reports, out, result.stdout


@pytest.mark.parametrize("student", ["right", "onebug", "untouched", "tricks", "partial",
                                     "library", "planter"])
def test_each_submission_scores_exactly_its_own_work(batch, student):
    expected, reports, _, stdout = batch
    report = reports[student]
    assert [c["name"] for c in report["checks"]] == CHECKS, stdout
    passed = [c["name"] for c in report["checks"] if c["passed"]]
    assert passed == expected[student], report
    assert report["total"] == 7 and report["percent"] == round(100 * len(passed) / 7, 1)
    assert [c["name"] for c in report["checks"] if c["hidden"]] == ["mlp_backward_other_sizes"]


def test_the_tricks_are_flagged_for_review(batch):
    _, reports, _, _ = batch
    assert reports["tricks"]["review"] and not reports["right"]["review"]


def test_a_startup_file_one_submission_plants_runs_in_no_other_kernel(batch):
    expected, reports, out, _ = batch
    assert reports["planter"]["passed"] == 7
    assert [s for s in sorted(expected) if s > "planter"]  # started after it (--jobs 2)
    assert not (out / "planted.log").exists(), (out / "planted.log").read_text()


def test_a_library_dropout_is_named(batch):
    _, reports, _, _ = batch
    for student in ("library", "partial"):
        layer = reports[student]["checks"][0]
        assert not layer["passed"] and "that is the library's dropout" in layer["message"]
    assert "dropout_lab.dropout_layer" in reports["library"]["checks"][0]["message"]
    assert "torch.nn.functional.dropout" in reports["partial"]["checks"][0]["message"]


def test_graded_hints_do_not_give_the_answer(batch):
    _, reports, _, _ = batch
    backward = reports["onebug"]["checks"][2]
    assert backward["name"] == "dropout_backward" and not backward["passed"]
    assert "1/(1-p)" in backward["message"] and "dX = dout" not in backward["message"]


def test_csv_and_feedback_files(batch):
    expected, reports, out, _ = batch
    rows = list(csv.DictReader((out / "grades.csv").open()))
    assert sorted(r["student"] for r in rows) == sorted(expected)
    assert list(rows[0])[:2 + len(CHECKS)] == ["student", "exercise", *CHECKS]
    for row in rows:
        assert [c for c in CHECKS if row[c] == "1"] == expected[row["student"]]
        assert int(row["points"]) == len(expected[row["student"]]) and row["total"] == "7"
        text = (out / "feedback" / f"{row['student']}.txt").read_text()
        assert text.rstrip().endswith(f"{row['points']}/7 checks passed "
                                      f"({float(row['percent']):.0f} %)")


RUNAWAY = {
    "loop": "while True:\n    pass\n",
    "stubborn": ("import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                 "while True:\n    try:\n        time.sleep(0.1)\n"
                 "    except KeyboardInterrupt:\n        pass\n"),
}


def test_runaway_notebooks_are_killed_and_reported(tmp_path):
    """Two endless loops (one deaf to Ctrl-C) are killed; a memory hog gets a MemoryError."""
    for name, extra in {**RUNAWAY, "hog": "hog = bytearray(4 * 2 ** 30)\n"}.items():
        cells = replace_code(cells_of(SOLUTION), "def numerical_gradient",
                             solution_cell("def numerical_gradient").source + "\n\n" + extra)
        nbformat.write(notebook(cells), tmp_path / f"{name}_08_backward.ipynb")
    out = tmp_path / "grades.json"
    result = run_grader(str(tmp_path), "--jobs", "3", "--timeout", "40", "--memory", "3000",
                        "--json", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    reports = {r["student"]: r for r in json.loads(out.read_text())}
    hog = reports.pop("hog")
    assert hog["stopped"] is None and hog["passed"] == 7, hog
    assert any("MemoryError" in error for error in hog["errors"]), hog
    assert sorted(reports) == sorted(RUNAWAY)
    for report in reports.values():
        assert "ran past --timeout 40 s and was killed" in report["stopped"], report
        passed = [c["name"] for c in report["checks"] if c["passed"]]
        assert passed == CHECKS[:3], report   # the checks before the loop still count
        assert "did not run" in report["checks"][3]["message"]


# ------------------------------------------------------------------ without a kernel

def template():
    return grade.make_student.grader_template(ROOT / "solutions" / "08_backward.md")


def test_assemble_restores_the_instructors_cells():
    student = cells_of(STUDENT)
    edited = replace_code(without_checks(student), "def rel_error", "print('mine')")
    edited = replace_code(edited, "def dropout_layer", "def dropout_layer(X, p):\n    return X")
    edited.insert(next(i for i, c in enumerate(edited) if "def dropout_layer" in c.source) + 1,
                  nbformat.v4.new_code_cell("helper = 1"))
    cells = grade.assemble(template(), notebook(edited))
    ours = [c.source for c in template().cells if c.cell_type == "code"]
    checks = [s for s, kind in cells if kind == "check"]
    assert checks == [s for s in ours if "checks.check_" in s]      # deleted: restored
    assert "print('mine')" not in [s for s, _ in cells]              # edited: the instructor's
    assert any(s.startswith("def rel_error") for s, kind in cells if kind == "locked")
    answers = [s for s, kind in cells if kind == "answer"]
    assert answers[:2] == ["def dropout_layer(X, p):\n    return X", "helper = 1"]


def test_assemble_of_the_solution_runs_the_solutions_answers():
    cells = grade.assemble(template(), jupytext.reads(SOLUTION, fmt="md:myst"))
    answers = [s for s, kind in cells if kind == "answer"]
    assert len(answers) == 6 and all("TODO" not in s for s in answers)
    assert not any("fresh_mask" in s for s, _ in cells)  # solution-only demos: left out


def test_exercise_and_student_from_the_file_name(tmp_path):
    nb = jupytext.reads(STUDENT, fmt="md:myst")
    solution = grade.solution_for(tmp_path / "alice_08_backward.ipynb", nb)
    assert solution.name == "08_backward.md"
    assert grade.student_id(tmp_path / "alice_08_backward.ipynb", solution) == "alice"
    assert grade.solution_for(tmp_path / "bob.ipynb", nb).name == "08_backward.md"  # title
    assert grade.solution_for(tmp_path / "bob.ipynb", nb, "08") == solution


@pytest.mark.parametrize("args, message", [
    (["--timeout", "0"], "must be a positive whole number"),
    (["--timeout", "-1"], "must be a positive whole number"),
    (["--json", "no/such/folder/out.json"], "does not exist"),
    (["--csv", "no/such/folder/out.csv"], "does not exist"),
])
def test_bad_options_are_refused_before_running(args, message, capsys):
    with pytest.raises(SystemExit) as stop:
        grade.main(["exercises/08_backward.md", *args])
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_unreadable_notebook_exits_2(tmp_path, capsys):
    assert grade.main([str(tmp_path / "nothing.md")]) == 2
    assert "cannot grade" in capsys.readouterr().err


def test_a_kernel_that_dies_at_start_is_started_again(monkeypatch):
    """'Kernel died before replying to kernel_info' (CI, several kernels starting at
    once) is the machine's failure: the worker starts another kernel, up to 3 tries."""
    monkeypatch.setattr(grade.time, "sleep", lambda seconds: None)

    class Client:
        def __init__(self, deaths):
            self.deaths, self.started, self.km, self.kc = deaths, 0, None, None

        def create_kernel_manager(self):
            return None

        def start_new_kernel(self):
            self.started += 1

        def start_new_kernel_client(self):
            if self.started <= self.deaths:
                raise RuntimeError("Kernel died before replying to kernel_info")
            self.kc = "client"

    client = Client(deaths=2)
    grade.start_kernel(client)
    assert client.started == 3 and client.kc == "client"
    with pytest.raises(RuntimeError, match="did not start in 3 tries"):
        grade.start_kernel(Client(deaths=3))
