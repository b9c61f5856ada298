"""Argument checks that name the argument, the range it must lie in, and what was given.

dl.train, dl.sweep and the command line call these before any work starts, so a
bad value fails at once with a sentence, not after an hour of training with a
traceback (or, worse, with NaN weights and exit status 0).
"""
import math
import numbers
import operator
from collections import Counter

SEED_LIMIT = 2**32  # torch.manual_seed takes more, but numpy's seed stops here


class InvalidArgument(ValueError, TypeError):
    """A bad argument. Both a ValueError and a TypeError, so that callers catching
    either (a wrong value, or a float where a whole number belongs) see it."""


def scalar(value):
    """A 0-dimensional tensor or numpy array as a Python number; anything else as is."""
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        return value.item()
    return value


def describe(value):
    """How a value is shown in an error: its repr, and its type when that helps."""
    if isinstance(value, (bool, str)) or not isinstance(value, numbers.Number):
        return f"{value!r} (a {type(value).__name__})"
    return repr(value)


def int_range(minimum, maximum):
    if maximum is None:
        return f">= {minimum}" if minimum is not None else ""
    if maximum == SEED_LIMIT - 1:
        return f"in [{minimum}, 2**32)"
    return f"in [{minimum}, {maximum}]"


def check_int(name, value, minimum=None, maximum=None):
    """Return `value` as an int; raise InvalidArgument unless it is a whole number
    (not a bool, not a float such as 1.5 or 10.0) in [minimum, maximum]."""
    value = scalar(value)
    wanted = f"{name} must be a whole number {int_range(minimum, maximum)}".rstrip()
    if isinstance(value, (bool, float)) or getattr(value, "ndim", 0) != 0:
        raise InvalidArgument(f"{wanted}, got {describe(value)}")
    try:
        number = operator.index(value)
    except TypeError:
        raise InvalidArgument(f"{wanted}, got {describe(value)}") from None
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise InvalidArgument(f"{wanted}, got {number}")
    return number


def float_range(minimum, maximum, strict_minimum):
    if minimum is None and maximum is None:
        return ""
    if maximum is None:
        return f"{'>' if strict_minimum else '>='} {minimum}"
    if minimum is None:
        return f"<= {maximum}"
    return f"in {'(' if strict_minimum else '['}{minimum}, {maximum}]"


def check_float(name, value, minimum=None, maximum=None, strict_minimum=False):
    """Return `value` as a float; raise InvalidArgument unless it is a finite real
    number (not NaN, not inf, not a bool) in the range: [minimum, maximum], or
    (minimum, maximum] with strict_minimum=True (e.g. a learning rate > 0)."""
    value = scalar(value)
    wanted = f"{name} must be a finite number {float_range(minimum, maximum, strict_minimum)}"
    wanted = wanted.rstrip()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidArgument(f"{wanted}, got {describe(value)}")
    number = float(value)
    too_small = minimum is not None and (number <= minimum if strict_minimum
                                         else number < minimum)
    too_large = maximum is not None and number > maximum
    if not math.isfinite(number) or too_small or too_large:
        raise InvalidArgument(f"{wanted}, got {value!r}")
    return number


def check_seeds(seeds):
    """The list of seeds to run: a count n gives [0, 1, ..., n-1]; a list must hold
    distinct whole numbers in [0, 2**32). Duplicates are an error: two runs of the
    same seed are one run counted twice, which would shrink every error bar."""
    seeds = scalar(seeds)
    if isinstance(seeds, numbers.Number):
        return list(range(check_int("seeds (a number of seeds)", seeds, minimum=1)))
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise InvalidArgument(f"seeds must be a number of seeds (e.g. 5) or a list of "
                              f"distinct seeds (e.g. [0, 1, 2]), got {describe(seeds)}")
    seeds = [check_int(f"seeds[{i}]", seed, 0, SEED_LIMIT - 1) for i, seed in enumerate(seeds)]
    if not seeds:
        raise InvalidArgument("seeds is empty: pass a number of seeds (e.g. 5) or a list "
                              "of distinct seeds (e.g. [0, 1, 2])")
    repeated = {seed: n for seed, n in Counter(seeds).items() if n > 1}
    if repeated:
        listed = ", ".join(f"{seed} ({n} times)" for seed, n in repeated.items())
        raise InvalidArgument(f"seeds must be distinct, but these repeat: {listed}; "
                              "pass each seed once (e.g. list(range(5)))")
    return seeds
