"""Grade a notebook: execute it and count the [PASS]/[FAIL] lines of its checks.

    python scripts/grade.py exercises/08_backward.md            # or a .ipynb
    python scripts/grade.py NB --timeout 600 --json grade.json

The notebook runs top to bottom in a fresh kernel, in its own folder, cell by
cell: a cell that raises does not stop the run. Every line of output that
starts with "[PASS] name: message" or "[FAIL] name: message" is one check.
A check cell (a code cell that calls `checks.check_...`) that raised, timed
out, never ran, or printed no such line counts as one FAIL. The report lists
every check and ends with "k/n checks passed (xx %)".

Exit status: 0 whenever the notebook could be read and executed, whatever the
score (the score is the result); 2 when it could not be read or no kernel started.
"""
import argparse
import json
import re
import sys
import time
from pathlib import Path

import jupytext
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

CHECK_CALL = re.compile(r"\bchecks\.(check_\w+)\s*\(")
RESULT = re.compile(r"^\[(?P<verdict>PASS|FAIL)\] (?P<name>[^:]+?):\s?(?P<message>.*)$")


def output_text(cell):
    """The text a code cell printed or displayed (streams and text/plain results)."""
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif output.get("output_type") in ("execute_result", "display_data"):
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def error_of(cell):
    """'ExcName: message' if the cell raised, else None."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            if output.get("ename") == "KeyboardInterrupt":
                return "KeyboardInterrupt (it ran past --timeout and was interrupted)"
            return f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".strip()
    return None


def execute(nb, folder, timeout, kernel_name):
    """Run every code cell in order, continuing after errors; return notes on problems."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name, allow_errors=True,
                            interrupt_on_timeout=True, record_timing=False,
                            resources={"metadata": {"path": str(folder)}})
    stopped = None
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, index)
            except CellTimeoutError:
                cell.outputs.append({"output_type": "error", "ename": "Timeout",
                                     "evalue": f"the cell ran longer than {timeout} s",
                                     "traceback": []})
            except DeadKernelError as error:
                stopped = f"the kernel died in cell {index + 1} ({error}); later cells did not run"
                break
    return stopped


def collect(nb):
    """The list of checks: dicts with name, passed, message, cell (1-based)."""
    results = []
    for index, cell in enumerate(nb.cells, 1):
        if cell.cell_type != "code":
            continue
        found = []
        for line in output_text(cell).splitlines():
            match = RESULT.match(line.strip())
            if match:
                found.append({"name": match["name"].strip(), "passed": match["verdict"] == "PASS",
                              "message": match["message"].strip(), "cell": index})
        results.extend(found)
        called = CHECK_CALL.findall(cell.source)
        if not called:
            continue
        name = ", ".join(dict.fromkeys(called))
        error = error_of(cell)
        if error:
            results.append({"name": name, "passed": False, "cell": index,
                            "message": f"the check cell raised {error}"})
        elif not found:
            ran = cell.get("execution_count") is not None or cell.get("outputs")
            results.append({"name": name, "passed": False, "cell": index,
                            "message": "the check cell printed no [PASS]/[FAIL] line"
                            if ran else "the check cell did not run"})
    return results


def other_errors(nb):
    """Cells outside the checks that raised (shown to help, not counted)."""
    return [(index, error_of(cell)) for index, cell in enumerate(nb.cells, 1)
            if cell.cell_type == "code" and error_of(cell)
            and not CHECK_CALL.search(cell.source)]


def grade(path, timeout=600):
    """Execute the notebook at path; return the report as a dict."""
    path = Path(path)
    nb = jupytext.read(path)
    kernel = nb.metadata.get("kernelspec", {}).get("name", "python3")
    start = time.perf_counter()
    stopped = execute(nb, path.resolve().parent, timeout, kernel)
    results = collect(nb)
    passed = sum(r["passed"] for r in results)
    return {"notebook": str(path), "seconds": round(time.perf_counter() - start, 1),
            "checks": results, "passed": passed, "total": len(results),
            "percent": round(100 * passed / len(results), 1) if results else 0.0,
            "errors": [{"cell": i, "error": e} for i, e in other_errors(nb)],
            "stopped": stopped}


def print_report(result):
    print(f"Graded {result['notebook']} (executed in {result['seconds']} s)")
    for r in result["checks"]:
        verdict = "PASS" if r["passed"] else "FAIL"
        print(f"  {verdict}  {r['name']}: {r['message']}  [cell {r['cell']}]")
    if not result["checks"]:
        print("  (no checks found: no cell calls checks.check_... and no [PASS]/[FAIL] line)")
    for e in result["errors"]:
        print(f"  note: cell {e['cell']} raised {e['error']}")
    if result["stopped"]:
        print(f"  note: {result['stopped']}")
    print(f"{result['passed']}/{result['total']} checks passed ({result['percent']:.0f} %)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", help="a notebook, .md (MyST, jupytext) or .ipynb")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell (600)")
    parser.add_argument("--json", metavar="OUT", help="also write the result as JSON here")
    args = parser.parse_args(argv)
    try:
        result = grade(args.notebook, args.timeout)
    except Exception as error:  # unreadable notebook, no kernel ...
        print(f"error: cannot grade {args.notebook}: {type(error).__name__}: {error}",
              file=sys.stderr)
        return 2
    print_report(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
