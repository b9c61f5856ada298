"""How every check speaks, calls the student's code, and draws its random numbers.

A check is a function wrapped by `@check`: whatever it does or raises, it ends in
one Result(name, passed, message), printed as "[PASS] name: message" (or [FAIL])
and named after the function (check_dropout_layer -> "dropout_layer"). So a check
calls the student's function directly and fails with a hint by raising Fail(hint),
also from the helpers here that read a result (tensor, by_seed, mean_std).

Under scripts/grade.py, GRADING holds the grader's token, and each Result also
travels as a display message of type MIME carrying it: the grader counts those,
never printed lines. In graded mode `answer_hint` drops a hint that gives the
answer away.
"""
import functools
import numbers
from contextlib import contextmanager
from typing import Any, NamedTuple

import torch

MIME = "application/vnd.dropout-lab.result+json"
GRADING = {}   # set by the grader in a fresh import: {"token": str}
_running = []  # the names of the checks being run, outermost first


class Result(NamedTuple):
    name: str
    passed: bool
    message: str

    def __bool__(self):
        return bool(self.passed)

    def __repr__(self):  # the message is printed already
        return f"Result({self.name!r}, passed={self.passed})"


def report(name, passed, message):
    """Print '[PASS] name: message' (or [FAIL]) and return the Result; inside a check,
    under that check's name."""
    name = _running[0] if _running else name
    result = Result(name, bool(passed), str(message))
    print(f"[{'PASS' if result.passed else 'FAIL'}] {name}: {result.message}")
    return result


def answer_hint(text):
    """A hint that gives the answer away: shown when practising, not when graded."""
    return "" if GRADING else text


def publish(result):
    """Send the Result to the grader (only when scripts/grade.py runs the notebook)."""
    if GRADING:
        from IPython.display import display
        display({MIME: {**result._asdict(), "token": GRADING["token"]}}, raw=True)


class Fail(Exception):
    """Raised inside a check, or a helper it calls: the check fails with this hint.
    The student's own exceptions need no wrapping: `check` reports them too."""


def check(fn):
    """Make fn a check: one Result named after it, whatever fn does or raises."""
    name = fn.__name__.removeprefix("check_")

    @functools.wraps(fn)
    def run(*args, **kwargs):
        if _running:  # called by another check: that one reports
            return fn(*args, **kwargs)
        _running.append(name)
        try:
            result = fn(*args, **kwargs)
        except Fail as failure:
            result = report(name, False, str(failure))
        except NotImplementedError as error:
            result = report(name, False, f"not implemented yet ({error})")
        except Exception as error:  # noqa: BLE001 - a wrong answer gets a hint, not a trace
            result = report(name, False, f"your code raised {type(error).__name__}: {error}")
        finally:
            _running.pop()
        if not isinstance(result, Result):
            result = report(name, bool(result), "the check gave no message")
        publish(result)
        return result
    run.check_name = name
    return run


def tensor(out):
    """out, if the student's function returned a tensor; else the check fails."""
    if not isinstance(out, torch.Tensor):
        raise Fail(f"return a torch.Tensor, got {type(out).__name__}")
    return out


ALIASES = {"wd": "weight_decay", "lambda": "weight_decay", "l2": "weight_decay",
           "p": "dropout", "p1": "dropout", "p2": "dropout", "drop": "dropout", "n": "n_train"}


def settings_problem(settings, example):
    """A hint if settings is not a non-empty list of dl.sweep dicts (known keys, a
    tuple of rates for dropout), else None. example: one setting, as text."""
    from ..sweep import DEFAULTS
    if settings is None:
        return "settings is None: build the list of dicts, one per net"
    if not isinstance(settings, (list, tuple)):
        return f"settings must be a list of dicts, one per net, got {type(settings).__name__}"
    if not settings:
        return "settings is empty"
    for s in settings:
        if not isinstance(s, dict):
            return f"each setting must be a dict for dl.sweep, e.g. {example}; got {s!r}"
        unknown = sorted(set(s) - set(DEFAULTS))
        if unknown:
            better = {k: ALIASES[k] for k in unknown if k in ALIASES}
            return (f"dl.sweep does not know the key(s) {unknown}"
                    + (f" (did you mean {better}?)" if better else "")
                    + f"; its keys are {sorted(DEFAULTS)}")
        d = s.get("dropout", DEFAULTS["dropout"])
        if isinstance(d, (numbers.Number, str)) or not hasattr(d, "__len__"):
            return f"'dropout' must be a tuple, one rate per hidden layer; got {d!r}"
    return None


def differing(settings, varying):
    """A hint naming a key outside `varying` whose value differs between the settings
    (dl.sweep's default standing in for a missing key), else None."""
    from ..sweep import DEFAULTS
    for key in sorted({k for s in settings for k in s} - set(varying)):
        values = {repr(s.get(key, DEFAULTS.get(key))) for s in settings}
        if len(values) > 1:
            return (f"the settings differ in {key!r} ({', '.join(sorted(values))}): only "
                    f"{' and '.join(varying)} may vary, or the comparison is unfair")
    return None


def repeated(points):
    """The points that occur more than once, sorted."""
    return sorted({x for x in points if points.count(x) > 1})


def pairs_text(pairs, limit=4):
    """Some of the pairs, sorted, as '(0.2, 0.5), (0.5, 0.2) and 3 more'."""
    pairs = sorted(pairs)
    text = ", ".join(f"({a:g}, {b:g})" for a, b in pairs[:limit])
    return text + (f" and {len(pairs) - limit} more" if len(pairs) > limit else "")


def grid_problem(pairs, grid, wrong_grids=()):
    """A hint if the list of pairs is not the pairs of `grid`, each once, else None.
    wrong_grids: [(the pairs of a known wrong grid, built from the same lists, hint)].
    Numbers are compared to 6 significant digits, so that 1 - 0.7 is 0.3."""
    def rounded(points):
        return [tuple(float(f"{float(x):.6g}") for x in point) for point in points]
    pairs, want = rounded(pairs), set(rounded(grid))
    for wrong, hint in wrong_grids:
        if set(pairs) == set(rounded(wrong)) != want:
            return hint
    twice = repeated(pairs)
    if twice:
        return f"some settings appear more than once (duplicates): {pairs_text(twice)}"
    missing, extra = want - set(pairs), set(pairs) - want
    problems = []
    if missing:
        problems.append(f"{len(missing)} of {len(want)} settings missing: "
                        f"{pairs_text(missing)}")
    if extra:
        problems.append(f"settings outside the grid: {pairs_text(extra)}")
    return "; ".join(problems) or None


class Mistake(NamedTuple):
    """A known wrong answer, written once: the check names it, the tests walk the table.
    wrong: a wrong function, or for a check of values (settings) the wrong value;
    args: the check's other arguments (e.g. the grid's rates)."""
    wrong: Any
    hint: str
    args: tuple = ()


def todo(*args):
    """A function not written yet, as in the exercise notebooks: for the tables."""
    raise NotImplementedError("TODO")


IGNORED_VALUE = ("with value='valid_acc' the answer is wrong: read the column you are "
                 "given (final[value]), not always test_acc")


def with_decoy(table, column="test_acc", moved="valid_acc"):
    """table with `column` copied to `moved` and `column` itself halved: a function told
    to read `moved` that reads `column` anyway gives a different answer."""
    return table.assign(**{moved: table[column], column: table[column] * 0.5})


def by_seed(out, seeds, empty=None):
    """The student's result with one number per seed, as a float Series indexed like
    seeds (a one-column DataFrame counts as its column); else the check fails.
    `empty` is the hint for a result with no values (a filter that matched no rows)."""
    import pandas as pd
    if isinstance(out, pd.DataFrame) and out.shape[1] == 1:
        out = out.iloc[:, 0]
    if not isinstance(out, pd.Series):
        raise Fail(f"return a pandas Series indexed by seed (got {type(out).__name__}), so "
                   "that each difference keeps its seed")
    if empty and (out.empty or out.isna().all()):
        raise Fail(empty)
    if sorted(out.index.tolist()) != sorted(seeds):
        raise Fail(f"the index must be the seeds {sorted(seeds)}, got {list(out.index)[:6]}: "
                   "e.g. rows.set_index('seed')['test_acc']")
    try:
        return out.astype(float).reindex(list(seeds))
    except (TypeError, ValueError):
        raise Fail("the values must be numbers (accuracy differences)") from None


def mean_std(out, index, what):
    """The columns mean and std of the student's DataFrame, one row per value of
    `index` in increasing order, as float arrays; else the check fails. what names
    a row ("rate", "size")."""
    import pandas as pd
    if not isinstance(out, pd.DataFrame) or not {"mean", "std"} <= set(out.columns):
        raise Fail(f"return a DataFrame with columns 'mean' and 'std', one row per {what} "
                   "(e.g. .groupby(...).agg(['mean', 'std']))")
    if [round(float(v), 6) for v in out.index] != [round(float(v), 6) for v in index]:
        raise Fail(f"the rows must be the {what}s {list(index)} in increasing order, got "
                   f"{list(out.index)}")
    return (out["mean"].astype(float).to_numpy(copy=True),
            out["std"].astype(float).to_numpy(copy=True))


def same(a, b, rtol=1e-6):
    """True if a and b hold the same values: tensors, arrays, pandas objects, numbers,
    and tuples or dicts of them."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], rtol) for k in a)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(same(x, y, rtol) for x, y in zip(a, b))
    a, b = (x.to_numpy(copy=True) if hasattr(x, "to_numpy") else x for x in (a, b))
    try:
        a, b = torch.as_tensor(a), torch.as_tensor(b)
        return (a.shape == b.shape and a.dtype == b.dtype
                and bool(torch.allclose(a.double(), b.double(), rtol=rtol, atol=1e-12)))
    except (TypeError, ValueError, RuntimeError):
        return False


def known_mistake(got, mistakes, run, rtol=1e-6):
    """The hint of the first mistake m whose run(m.wrong) gives got, else None."""
    for mistake in mistakes:
        try:
            value = run(mistake.wrong)
        except Exception:  # noqa: BLE001 - a mistake that cannot run here is not this one
            continue
        if same(got, value, rtol):
            return mistake.hint
    return None


@contextmanager
def seeded(seed):
    """Draw from a fixed seed without touching the caller's random state, on one CPU
    thread (on a busy machine, two threads waiting for each other made the small
    tensors of a check 100x slower)."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(threads)


def library_dropout_used(fn, *args):
    """The name of the library dropout (torch's or dropout_lab's) that fn(*args) calls
    first, or None if it calls none."""
    import sys
    from torch.nn import functional as F
    from .. import noise
    library = {noise.dropout_layer.__code__: "dropout_lab.dropout_layer"}
    for name in ("dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
                 "feature_alpha_dropout"):
        library[getattr(F, name).__code__] = f"torch.nn.functional.{name}"
    for name in ("dropout", "dropout_", "native_dropout", "alpha_dropout", "feature_dropout"):
        if hasattr(torch, name):  # builtins: seen as the function, not its code
            library[getattr(torch, name)] = f"torch.{name}"
    used = []

    def watch(frame, event, arg):
        called = frame.f_code if event == "call" else arg if event == "c_call" else None
        try:
            name = library.get(called)
        except TypeError:  # an unhashable callable
            name = None
        if name and not used:
            used.append(name)
    previous = sys.getprofile()
    sys.setprofile(watch)
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 - only the calls matter here
        pass
    finally:
        sys.setprofile(previous)
    return used[0] if used else None
