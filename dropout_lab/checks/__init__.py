"""Automatic checks that the exercise notebooks call after each TODO.

Each check prints one line, `[PASS] name: ...` or `[FAIL] name: specific hint`,
and returns True or False; none raises on a wrong answer. scripts/grade.py
counts these lines. One module per exercise topic; all are re-exported here.
"""
from .report import call_student, report
from .layers import *        # exercises 3 and 8: dropout_layer, forward/backward
from .rates import *         # exercises 1 and 2: rate grids, epochs
from .variance import *      # exercises 3 and 4: activation variance, weight decay
from .dropconnect import *   # exercise 5
from .noise import *         # exercise 6
from .experiments import *   # exercises 7, 9, 10
