"""Every known mistake of every check fails that check with its own hint.

The mistakes are written once, in the tables of dropout_lab.checks (one module
per exercise, MISTAKES: check name -> [Mistake(wrong, hint)]); this test walks them.
"""
import pytest

from dropout_lab import checks

CASES = [(name, mistake) for name, table in checks.MISTAKES.items() for mistake in table]


@pytest.mark.parametrize("name, mistake", CASES,
                         ids=[f"{name}-{i}" for i, (name, _) in enumerate(CASES)])
def test_each_mistake_fails_with_its_hint(name, mistake, verdict):
    passed, line = verdict(getattr(checks, f"check_{name}"), mistake.wrong)
    assert not passed and mistake.hint in line, line


@pytest.mark.parametrize("name", sorted(checks.REFERENCES))
def test_each_reference_passes(name, verdict):
    passed, line = verdict(getattr(checks, f"check_{name}"), checks.REFERENCES[name])
    assert passed, line
