"""How every check speaks: one line, [PASS] or [FAIL], that the grader can count."""
import torch


def report(name, passed, message):
    """Print '[PASS] name: message' or '[FAIL] name: message' and return passed."""
    print(f"[{'PASS' if passed else 'FAIL'}] {name}: {message}")
    return bool(passed)


def call_student(name, fn, *args, **kwargs):
    """Call the student's fn; return (value, None), or (None, a [FAIL] already printed)."""
    try:
        return fn(*args, **kwargs), None
    except NotImplementedError as error:
        return None, report(name, False, f"not implemented yet ({error})")
    except Exception as error:  # a wrong answer must give a hint, not a traceback
        return None, report(name, False, f"your code raised {type(error).__name__}: {error}")


def call_tensor(name, fn, *args):
    """call_student, and also fail unless the student's fn returned a tensor."""
    out, failed = call_student(name, fn, *args)
    if failed is not None:
        return None, failed
    if not isinstance(out, torch.Tensor):
        return None, report(name, False, f"return a torch.Tensor, got {type(out).__name__}")
    return out, None
