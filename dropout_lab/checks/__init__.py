"""Automatic checks that the exercise notebooks call after each TODO.

Each check prints one line, `[PASS] name: ...` or `[FAIL] name: specific hint`,
and returns True or False; none raises on a wrong answer. scripts/grade.py
counts these lines. One module per exercise topic; all are re-exported here.
"""
import importlib

from .report import call_student, report

# Each topic module defines __all__; a module not written yet is skipped.
for _topic in ("layers", "rates", "variance", "dropconnect", "noise", "experiments"):
    try:
        _module = importlib.import_module(f".{_topic}", __name__)
    except ModuleNotFoundError as _error:
        if _error.name != f"{__name__}.{_topic}":
            raise
        continue
    globals().update({_name: getattr(_module, _name) for _name in _module.__all__})
