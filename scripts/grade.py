"""Grade submitted notebooks against the instructor's copy of the exercise.

    python scripts/grade.py alice_08_backward.ipynb            # one submission (.ipynb or .md)
    python scripts/grade.py submissions/ --csv grades.csv --feedback feedback/
    python scripts/grade.py NB --exercise 08 --timeout 900 --memory 8000 --json NB.json

What is graded comes from the instructor, not from the submission:

* The template is the student notebook generated from solutions/NN_name.md
  (scripts/make_student.py), with the hidden check cells that only the grader
  runs. Its code cells are run in order; only the answer cells (the cells with
  a TODO) come from the submission. The submission's code cells are aligned
  with the template's by content (difflib): the student's cells that stand
  where an answer cell stands, including cells the student added after it,
  replace that answer cell; every other cell (setup, experiments, checks)
  runs as the instructor wrote it, so deleting or editing a check cell changes
  nothing. Matching by content needs no cell ids, which Colab and the .md/.ipynb
  conversions do not all keep.
* The expected checks are the template's check calls (`checks.check_NAME(...)`,
  one point each, named NAME). A check that does not report is a FAIL.
* Before each check cell the grader imports dropout_lab.checks afresh (so a
  patched check or report is gone) and hands it a secret token; a check's
  result reaches the grader as a display message of its own MIME type that
  carries the token. Printed "[PASS]" lines count for nothing. In graded mode
  the hints do not give the answer away.
* When a function fails its last check, the later cells use the reference
  function instead (dropout_lab.checks.REFERENCES): one bug costs only the
  checks of that bug.

Each submission runs in its own process and kernel, in its own temporary
folder, under a memory limit (--memory, MB of data segment) and a time limit
for the whole notebook (--timeout, s): past it the kernel is killed (SIGKILL,
whatever the cell does with SIGINT) and the report says where it stopped.

Exit status: 0 when every submission was graded (the score is the result);
2 when one could not be read or run, or the options are wrong.
"""
import argparse
import csv
import difflib
import json
import os
import re
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "_ext"))
import make_student  # noqa: E402

MIME = "application/vnd.dropout-lab.result+json"  # dropout_lab.checks.engine.MIME
CHECK_CALL = re.compile(r"\bchecks\.check_(\w+)\s*\(\s*([A-Za-z_]\w*)?")
# Code a submission has no business running: reported for the instructor to read.
SUSPICIOUS = re.compile(r"dropout_lab\.checks|\bchecks\b(?!\.check_\w+\()|sys\.modules|"
                        r"get_ipython|IPython|builtins|importlib|setprofile|settrace|"
                        r"\bsignal\b|vnd\.dropout-lab|display_pub")
NOTEBOOK_SUFFIXES = (".ipynb", ".md")
STARTUP = 30  # seconds granted on top of --timeout to start the kernel

# Run silently (no cell, no history, no pre_run_cell hooks) before each check cell.
PRELUDE = """\
import sys as _sys
_ip = get_ipython()
for _event in ("pre_execute", "pre_run_cell", "post_execute", "post_run_cell"):
    _ip.events.callbacks[_event][:] = [f for f in _ip.events.callbacks[_event]
                                       if getattr(f, "__module__", "") != "__main__"]
for _name in [n for n in _sys.modules if n.split(".")[:2] == ["dropout_lab", "checks"]]:
    del _sys.modules[_name]
import dropout_lab.checks as _checks
_checks.engine.GRADING["token"] = {token!r}
_sys.modules["dropout_lab"].checks = checks = _checks
"""
SUBSTITUTE = """\
_references = __import__("sys").modules["dropout_lab.checks"].REFERENCES
if {check!r} in _references:
    {variable} = _references[{check!r}]
"""


# ----------------------------------------------------------------------- the template

def solution_for(path, nb, exercise=None):
    """The instructor's solutions/NN_name.md for a submission."""
    solutions = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.md"))
    if exercise:
        found = [s for s in solutions if s.stem == exercise or s.stem[:2] == f"{exercise:0>2}"]
    else:
        found = [s for s in solutions if s.stem in Path(path).stem]
        if not found:
            titles = [re.search(r"^# Exercise (\d+)\b", c.source, re.M)
                      for c in nb.cells if c.cell_type == "markdown"]
            number = next((t[1] for t in titles if t), None)
            found = [s for s in solutions if number and s.stem[:2] == f"{number:0>2}"]
    if len(found) != 1:
        raise ValueError(f"cannot tell which exercise {path} is: name it NN_name "
                         "(e.g. alice_08_backward.ipynb) or pass --exercise NN")
    return found[0]


def student_id(path, solution):
    """The file name without the exercise's name: alice_08_backward.ipynb -> alice."""
    stem = Path(path).stem.replace(solution.stem, "").strip("_- .")
    return stem or Path(path).stem


def assemble(template, submission):
    """The code cells to run: the template's, with the submission's answers in place.

    Returns a list of (source, kind) with kind "locked", "answer" or "check".
    """
    ours = [c for c in template.cells if c.cell_type == "code"]
    theirs = [c.source for c in submission.cells if c.cell_type == "code"]
    key = [c.source.strip() for c in ours]
    matcher = difflib.SequenceMatcher(None, key, [s.strip() for s in theirs], autojunk=False)
    cells = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        student = theirs[j1:j2]
        if tag == "insert":  # cells the student added: kept if they follow an answer
            if i1 > 0 and ours[i1 - 1].metadata.get(make_student.ANSWER_KEY):
                cells.extend((source, "answer") for source in student)
            continue
        for cell in ours[i1:i2]:
            if cell.metadata.get(make_student.ANSWER_KEY):
                cells.extend((source, "answer") for source in
                             (student if tag != "equal" else [cell.source]))
                student = []
            else:
                kind = "check" if CHECK_CALL.search(cell.source) else "locked"
                cells.append((cell.source, kind))
    return cells


def suspicious_lines(cells):
    """Lines of the student's cells that touch the grading machinery."""
    return [line.strip() for source, kind in cells if kind == "answer"
            for line in source.splitlines() if SUSPICIOUS.search(line)]


# ----------------------------------------------------------------------- the worker

def write_json(path, data):
    """Write data as JSON atomically: a killed worker leaves the last whole progress."""
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def results_of(cell, token):
    """The Results that the checks of a cell sent with the grader's token."""
    found = {}
    for output in cell.get("outputs", []):
        data = output.get("data", {}).get(MIME) if output.get("output_type") == "display_data" \
            else None
        if isinstance(data, dict) and data.get("token") == token:
            found[data.get("name")] = (bool(data.get("passed")), str(data.get("message", "")))
    return found


def error_of(cell):
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".strip()
    return None


def start_kernel(client, tries=3):
    """Start the client's kernel and wait for its first reply. A kernel that dies before
    that reply is started again: no cell has run, so the failure is the machine's (seen
    in CI when several kernels start at once), not the submission's."""
    for attempt in range(1, tries + 1):
        try:
            client.km = client.create_kernel_manager()
            client.start_new_kernel()
            client.start_new_kernel_client()  # cleans up after itself when it fails
            return
        except RuntimeError as error:
            if attempt == tries:
                raise RuntimeError(f"the kernel did not start in {tries} tries: {error}") \
                    from None
            if client.km is not None and client.km.has_kernel:
                client.km.shutdown_kernel(now=True)
            client.km = client.kc = None
            time.sleep(attempt)


def worker(job_path):
    """Run one assembled notebook in a fresh kernel, writing progress after each check."""
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError
    import kernel_messages  # a missed wake-up must not eat the notebook's time limit
    kernel_messages.patch()
    job = json.loads(Path(job_path).read_text())
    progress = {"results": {}, "cell": 0, "kernel_pid": None, "errors": [], "done": False}
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s, _ in job["cells"]])
    client = NotebookClient(nb, timeout=job["timeout"], kernel_name=job["kernel"],
                            allow_errors=True, record_timing=False,
                            resources={"metadata": {"path": job["folder"]}})

    def silent(code):
        reply = client.wait_for_reply(client.kc.execute(code, silent=True, store_history=False))
        return reply and reply["content"]["status"] == "ok"

    start_kernel(client)
    with client.setup_kernel():
        progress["kernel_pid"] = getattr(client.km.provisioner, "pid", None)
        write_json(job["progress"], progress)
        for index, (cell, (_, kind)) in enumerate(zip(nb.cells, job["cells"])):
            progress["cell"] = index + 1
            if kind == "check" and not silent(PRELUDE.format(token=job["token"])):
                progress["errors"].append(f"cell {index + 1}: the grader could not reload "
                                          "dropout_lab.checks")
            try:
                client.execute_cell(cell, index)
            except DeadKernelError as error:
                progress["errors"].append(f"the kernel died in cell {index + 1} ({error})")
                break
            error = error_of(cell)
            if error:
                progress["errors"].append(f"cell {index + 1} ({kind}) raised {error}")
            if kind != "check":
                continue
            found = results_of(cell, job["token"])
            for check, variable in CHECK_CALL.findall(cell.source):
                passed, message = found.get(check, (False, None))
                progress["results"][check] = {"passed": passed, "message": message,
                                              "cell": index + 1, "error": error}
                checked_later = any(variable == v for source, _ in job["cells"][index + 1:]
                                    for _, v in CHECK_CALL.findall(source))
                if not passed and variable and not checked_later:
                    silent(SUBSTITUTE.format(variable=variable, check=check))
            write_json(job["progress"], progress)
    progress["done"] = True
    write_json(job["progress"], progress)


# ----------------------------------------------------------------------- grading

def limit_memory(megabytes):
    def apply():
        size = megabytes * 2 ** 20
        resource.setrlimit(resource.RLIMIT_DATA, (size, size))
    return apply


def kill_session(pid):
    """SIGKILL the process group (its own session) of pid, if it is still there."""
    if pid:
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def grade(path, exercise=None, timeout=1200, memory=8000, threads=None):
    """Grade one submission; return its report as a dict."""
    path = Path(path)
    submission = jupytext.read(path)
    solution = solution_for(path, submission, exercise)
    template = make_student.grader_template(solution)
    cells = assemble(template, submission)
    expected = [name for source, kind in cells if kind == "check"
                for name, _ in CHECK_CALL.findall(source)]
    hidden = {name for c in template.cells if make_student.HIDDEN_TAG in c.metadata.get("tags", [])
              for name, _ in CHECK_CALL.findall(c.source)}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="grade-") as folder:
        job = {"cells": cells, "folder": folder, "timeout": timeout,
               "token": secrets.token_hex(16),
               "kernel": template.metadata.get("kernelspec", {}).get("name", "python3"),
               "progress": str(Path(folder) / "progress.json")}
        Path(folder, "job.json").write_text(json.dumps(job))
        # The kernel's IPython profile lives in the temporary folder too: a startup
        # file or history that one submission writes cannot reach the next one.
        env = dict(os.environ, IPYTHONDIR=str(Path(folder, "ipython")))
        if threads:
            env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        worker_process = subprocess.Popen(
            [sys.executable, __file__, "--worker", str(Path(folder, "job.json"))], cwd=folder,
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True, preexec_fn=limit_memory(memory))
        stopped = None
        try:
            log, _ = worker_process.communicate(timeout=timeout + STARTUP)
        except subprocess.TimeoutExpired:
            log = ""
        progress = json.loads(Path(job["progress"]).read_text()) \
            if Path(job["progress"]).exists() else {"results": {}, "errors": [], "cell": 0}
        if not progress.get("done"):
            kill_session(progress.get("kernel_pid"))
            kill_session(worker_process.pid)
            worker_process.wait()
            stopped = (f"stopped in cell {progress.get('cell', 0)} of {len(cells)}: "
                       f"it ran past --timeout {timeout} s and was killed"
                       if worker_process.returncode in (-signal.SIGKILL, None)
                       or time.perf_counter() - start >= timeout
                       else f"the grader's worker failed: {log.strip()[-300:]}")
    checks = []
    for name in dict.fromkeys(expected):
        got = progress["results"].get(name)
        if got and got["message"] is not None:
            message = got["message"]
        elif got:
            message = ("the check did not report: " + (f"its cell raised {got['error']}"
                       if got["error"] else "its cell printed no result"))
        else:
            message = "the check did not run (" + (stopped or "the notebook stopped") + ")"
        checks.append({"name": name, "passed": bool(got and got["passed"]),
                       "message": message, "hidden": name in hidden})
    passed = sum(c["passed"] for c in checks)
    return {"student": student_id(path, solution), "notebook": str(path),
            "exercise": solution.stem, "seconds": round(time.perf_counter() - start, 1),
            "checks": checks, "passed": passed, "total": len(checks),
            "percent": round(100 * passed / len(checks), 1) if checks else 0.0,
            "errors": progress.get("errors", []), "stopped": stopped,
            "review": suspicious_lines(cells)}


def report_text(result):
    lines = [f"Graded {result['notebook']} as {result['exercise']} "
             f"(student {result['student']}, {result['seconds']} s)"]
    for check in result["checks"]:
        hidden = " (hidden case)" if check["hidden"] else ""
        lines.append(f"  {'PASS' if check['passed'] else 'FAIL'}  {check['name']}{hidden}: "
                     f"{check['message']}")
    lines += [f"  note: {error}" for error in result["errors"]]
    if result["stopped"]:
        lines.append(f"  note: {result['stopped']}")
    lines += [f"  review: the answer touches the grader: {line}" for line in result["review"]]
    lines.append(f"{result['passed']}/{result['total']} checks passed "
                 f"({result['percent']:.0f} %)")
    return "\n".join(lines)


def write_csv(path, results):
    """One row per submission, one column per check (1 or 0) with its stable name."""
    names = list(dict.fromkeys(c["name"] for r in results for c in r["checks"]))
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["student", "exercise", *names, "points", "total", "percent",
                         "stopped", "review"])
        for r in results:
            got = {c["name"]: int(c["passed"]) for c in r["checks"]}
            writer.writerow([r["student"], r["exercise"], *[got.get(n, "") for n in names],
                             r["passed"], r["total"], r["percent"], r["stopped"] or "",
                             len(r["review"])])


def submissions(paths):
    found = []
    for path in map(Path, paths):
        found += sorted(p for p in path.iterdir() if p.suffix in NOTEBOOK_SUFFIXES) \
            if path.is_dir() else [path]
    return found


def positive(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text} "
                                         "(there is no 'no limit' for a submission)")
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="submissions (.ipynb, .md) or folders")
    parser.add_argument("--exercise", help="NN or NN_name (default: from the file name)")
    parser.add_argument("--timeout", type=positive, default=1200,
                        help="seconds for a whole notebook (1200)")
    parser.add_argument("--memory", type=positive, default=8000, help="MB per kernel (8000)")
    parser.add_argument("--threads", type=positive, help="CPU threads per kernel")
    parser.add_argument("--jobs", type=positive, default=1,
                        help="submissions graded at the same time, each in its own "
                             "process (1); with --threads 1, up to one per CPU core")
    parser.add_argument("--json", metavar="OUT", help="write the reports as JSON here")
    parser.add_argument("--csv", metavar="OUT", help="write one row per submission here")
    parser.add_argument("--feedback", metavar="DIR", help="write STUDENT.txt per submission")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker)
    for out in (args.json, args.csv):
        if out and not Path(out).resolve().parent.is_dir():
            parser.error(f"the folder of {out} does not exist")
    paths = submissions(args.notebooks)
    if not paths:
        parser.error("no .ipynb or .md submissions found")
    def grade_one(path):
        try:
            return grade(path, args.exercise, args.timeout, args.memory, args.threads)
        except Exception as error:  # unreadable notebook, unknown exercise ...
            return error

    results, status = [], 0
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:  # each grade() is a process
        for path, result in zip(paths, pool.map(grade_one, paths)):
            if isinstance(result, Exception):
                print(f"error: cannot grade {path}: {type(result).__name__}: {result}",
                      file=sys.stderr)
                status = 2
                continue
            results.append(result)
            print(report_text(result), flush=True)
            if args.feedback:
                Path(args.feedback).mkdir(parents=True, exist_ok=True)
                Path(args.feedback, f"{result['student']}.txt").write_text(
                    report_text(result) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(results[0] if len(paths) == 1 and results
                                              else results, indent=2) + "\n")
    if args.csv:
        write_csv(args.csv, results)
    return status


if __name__ == "__main__":
    sys.exit(main())
