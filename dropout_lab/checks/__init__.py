"""Automatic checks that the exercise notebooks call after each TODO.

Each check prints one line, `[PASS] name: ...` or `[FAIL] name: specific hint`,
and returns a Result(name, passed, message); none raises on a wrong answer.
scripts/grade.py collects the Results through engine.publish, not the printed
lines. One module per exercise, exNN_name.py, named after its notebook; all
checks are re-exported here. MISTAKES maps a check's name to its table of known
mistakes, PASSES to other answers it must accept (tests/test_checks_tables.py
walks both), REFERENCES a check's name to the reference function that the
grader uses in place of a student's failed one.
"""
from . import (ex01_swap_rates, ex02_more_epochs, ex03_activation_variance,
               ex04_weight_decay, ex05_dropconnect, ex06_noise_schemes,
               ex07_test_time_dropout, ex08_backward, ex09_training_set_size, ex10_width)
from .engine import Fail, Result, report  # noqa: F401
from .ex01_swap_rates import *          # noqa: F401,F403
from .ex02_more_epochs import *         # noqa: F401,F403
from .ex03_activation_variance import *  # noqa: F401,F403
from .ex04_weight_decay import *        # noqa: F401,F403
from .ex05_dropconnect import *         # noqa: F401,F403
from .ex06_noise_schemes import *       # noqa: F401,F403
from .ex07_test_time_dropout import *   # noqa: F401,F403
from .ex08_backward import *            # noqa: F401,F403
from .ex09_training_set_size import *   # noqa: F401,F403
from .ex10_width import *               # noqa: F401,F403

EXERCISES = [ex01_swap_rates, ex02_more_epochs, ex03_activation_variance, ex04_weight_decay,
             ex05_dropconnect, ex06_noise_schemes, ex07_test_time_dropout, ex08_backward,
             ex09_training_set_size, ex10_width]
# check name -> known mistakes; -> other accepted arguments; -> reference function
MISTAKES = {k: v for m in EXERCISES for k, v in getattr(m, "MISTAKES", {}).items()}
PASSES = {k: v for m in EXERCISES for k, v in getattr(m, "PASSES", {}).items()}
REFERENCES = {k: v for m in EXERCISES for k, v in getattr(m, "REFERENCES", {}).items()}
