"""Every known mistake of every check fails that check with its own hint; every
reference and every other right answer passes.

The mistakes are written once, in the tables of dropout_lab.checks (one module
per exercise, MISTAKES: check name -> [Mistake(wrong, hint, args)]); this test
walks them.
"""
import importlib
import re
from pathlib import Path

import pytest

from dropout_lab import checks

CASES = [(name, mistake) for name, table in checks.MISTAKES.items() for mistake in table]
RIGHT = [(name, (ref,)) for name, ref in checks.REFERENCES.items()] + [
    (name, args) for name, table in checks.PASSES.items() for args in table]


@pytest.mark.parametrize("name, mistake", CASES,
                         ids=[f"{name}-{i}" for i, (name, _) in enumerate(CASES)])
def test_each_mistake_fails_with_its_hint(name, mistake, verdict):
    passed, line = verdict(getattr(checks, f"check_{name}"), mistake.wrong, *mistake.args)
    assert not passed and mistake.hint in line, line


@pytest.mark.parametrize("name, args", RIGHT,
                         ids=[f"{name}-{i}" for i, (name, _) in enumerate(RIGHT)])
def test_each_right_answer_passes(name, args, verdict):
    passed, line = verdict(getattr(checks, f"check_{name}"), *args)
    assert passed, line


def test_every_check_that_a_solution_calls_is_exported_and_stably_named():
    """The grader expects check_NAME(...) to report as NAME: each check is an @check."""
    root = Path(__file__).resolve().parents[1]
    for solution in sorted((root / "solutions").glob("[0-9][0-9]_*.md")):
        module = importlib.import_module(f"dropout_lab.checks.ex{solution.stem}")
        called = re.findall(r"\bchecks\.(check_\w+)\(", solution.read_text())
        assert called and set(called) <= set(module.__all__), solution.name
        for name in module.__all__:
            if name.startswith("check_"):
                assert getattr(checks, name) is getattr(module, name)
                assert getattr(checks, name).check_name == name.removeprefix("check_")
