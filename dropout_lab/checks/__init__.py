"""Automatic checks that the exercise notebooks call after each TODO.

Each check prints one line, `[PASS] name: ...` or `[FAIL] name: specific hint`,
and returns a Result(name, passed, message); none raises on a wrong answer.
scripts/grade.py collects the Results through engine.publish, not the printed
lines. All checks are re-exported here; REFERENCES maps a check's name to the
reference function that the grader uses in place of a student's failed one.
"""
from .engine import Result, call_student, report
from .ex08_backward import *
from .rates import *         # exercises 1 and 2: rate grids, epochs
from .variance import *      # exercises 3 and 4: activation variance, weight decay
from .dropconnect import *   # exercise 5
from .noise import *         # exercise 6
from .experiments import *   # exercises 7, 9, 10
from . import ex08_backward

# check name -> known mistakes; -> reference function
MISTAKES = {**ex08_backward.MISTAKES}
REFERENCES = {**ex08_backward.REFERENCES}
