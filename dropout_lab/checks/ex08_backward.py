"""Exercise 8 (dropout's backward pass by hand): its checks, references and known mistakes.

Every check prints one line, `[PASS] name: ...` or `[FAIL] name: hint`, and
returns a Result. A check first compares the student's answer with each known
mistake of its table (MISTAKES), run on the same input and seed, and names the
first that matches; properties (shape, dtype, device, the edges of p, the
statistics of the mask) catch the rest. tests/test_checks_tables.py walks the
tables. REFERENCES are what the grader runs in place of a failed function, so
that one bug costs only the checks of that bug. The random draws happen inside
`torch.random.fork_rng` with fixed seeds, so a check gives the same verdict
every time and leaves the student's random state alone. Statistical bounds are
8 standard errors wide: a correct answer fails one of them with probability
below 1e-14 whatever the seed, while the classic wrong answers miss them by
hundreds of standard errors.
"""
import math

import torch
from torch.overrides import TorchFunctionMode

from .. import noise as library_noise
from .engine import (Mistake, answer_hint, check, known_mistake,
                     library_dropout_used, report, same, seeded as _seeded)

__all__ = ["rel_error", "check_dropout_layer", "check_dropout_forward",
           "check_dropout_backward", "check_numerical_gradient", "check_gradient_errors",
           "check_mlp_backward", "check_mlp_backward_other_sizes"]

SIGMAS = 8  # width of every statistical bound, in standard errors
# Factories that make a new tensor from a shape, on the default device (the
# CPU) unless told otherwise. The *_like versions follow their input: not here.
FACTORIES = {"rand", "randn", "randint", "zeros", "ones", "empty", "full", "tensor",
             "as_tensor", "arange"}


def rel_error(x, y):
    """CS231n's relative error: max |x - y| / max(1e-8, |x| + |y|), as a float."""
    x = torch.as_tensor(x, dtype=torch.float64)
    y = torch.as_tensor(y, dtype=torch.float64, device=x.device)
    return ((x - y).abs() / (x.abs() + y.abs()).clamp_min(1e-8)).max().item()


def _is_tensor_like(out, X):
    """None if out is a tensor shaped like X, else what is wrong with it."""
    if not isinstance(out, torch.Tensor):
        return f"it returned {type(out).__name__}, not a tensor"
    if out.shape != X.shape:
        return f"the output has shape {tuple(out.shape)}, the input {tuple(X.shape)}"
    return None


def _close(a, b, rtol=1e-5):
    return torch.isclose(a, b, rtol=rtol, atol=1e-12)


# ---------------------------------------------------------------------------
# dropout_layer(X, p)
# ---------------------------------------------------------------------------

def _values_problem(out, X, p):
    """None if every output is 0 or X/(1-p), else a hint naming the likely bug."""
    ratio = out / X  # X has no zeros, so ratio is the multiplier applied
    if torch.isnan(ratio).any() or torch.isinf(ratio).any():
        return "the output contains NaN or inf"
    zero = ratio.abs() < 1e-6
    scaled = _close(ratio, torch.full_like(ratio, 1 / (1 - p)))
    if bool((zero | scaled).all()):
        return None
    kept = ratio[~zero]
    if not bool(_close(kept, kept[0].expand_as(kept)).all()):
        return (f"the output has values other than 0 and X/(1-p) (X/(1-p) = "
                f"{1 / (1 - p):.3g}*X here): a mask must be 0/1 — torch.rand, not torch.randn")
    if not bool(zero.any()):
        return (f"with p = {p} no element was set to zero: drop each element with "
                "probability p")
    if abs(kept[0].item() - 1) < 1e-5:
        return (f"the kept values are X itself, so the mean is (1-p)*mean(X) = "
                f"{1 - p:.2f}*mean(X): did you scale by 1/(1-p)?")
    factor = kept[0].item() * (1 - p)
    return (f"the kept values are {kept[0].item():.3g}*X, not X/(1-p), so the mean is "
            f"off by a factor {factor:.3g}: scale the survivors by 1/(1-p), once "
            "(not by (1-p), and not twice)")


def _independence_problem(out):
    """None if rows and columns of a 2-D output have different zero patterns."""
    dropped = out == 0
    rows_same = bool((dropped == dropped[0:1]).all(dim=1).all())
    cols_same = bool((dropped == dropped[:, 0:1]).all(dim=0).all())
    if rows_same:
        return ("every row of the batch has the same units dropped: draw one mask per "
                "element, not one per feature shared across the batch "
                "(torch.rand_like(X), not torch.rand(X.shape[1:]))")
    if cols_same:
        return ("every feature of an example is dropped or kept together: draw one mask "
                "per element, not one per example (torch.rand_like(X))")
    return None


def _fraction_problem(out, p):
    n = out.numel()
    zeros = (out == 0).double().mean().item()
    bound = SIGMAS * math.sqrt(p * (1 - p) / n)
    if abs(zeros - p) <= bound:
        return None
    if abs(zeros - (1 - p)) <= bound:
        return (f"with p = {p} a fraction {zeros:.3f} of the outputs is zero, i.e. 1-p: "
                "p is the probability of DROPPING, so keep where rand >= p "
                "(keep and drop probabilities are swapped)")
    randn_zeros = 0.5 * (1 + math.erf(p / math.sqrt(2)))  # P(randn < p)
    if abs(zeros - randn_zeros) <= bound:
        return (f"with p = {p} a fraction {zeros:.3f} of the outputs is zero, which is "
                f"P(randn < p) = {randn_zeros:.3f}: draw the mask from torch.rand "
                "(uniform on [0, 1)), not torch.randn")
    return (f"with p = {p} a fraction {zeros:.3f} of the outputs is zero; expected "
            f"{p} ± {bound:.3f}: each element must be dropped with probability p")


def _mean_problem(out, X, p):
    n = out.numel()
    mean_x = X.double().mean().item()
    mean_out = out.double().mean().item()
    # Var(X m/(1-p) | X) = p/(1-p) X^2 per element, independent elements
    sd = math.sqrt(p / (1 - p) * X.double().pow(2).mean().item() / n)
    if abs(mean_out - mean_x) <= SIGMAS * sd:
        return None
    if abs(mean_out - (1 - p) * mean_x) <= SIGMAS * sd:
        return (f"the mean of the output is (1-p)*mean(X) = {mean_out:.3f}, not "
                f"mean(X) = {mean_x:.3f}: did you scale by 1/(1-p)?")
    return (f"the mean of the output is {mean_out:.3f}, not mean(X) = {mean_x:.3f} "
            f"(± {SIGMAS * sd:.3f}): inverted dropout must keep the mean")


class _FactoryWatch(TorchFunctionMode):
    """Record tensor factories called without a device: they make CPU tensors."""

    def __init__(self):
        super().__init__()
        self.cpu_made = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if (name in FACTORIES and "device" not in kwargs and isinstance(out, torch.Tensor)
                and out.numel() > 1):
            self.cpu_made.append(f"torch.{name}")
        return out


DEVICE_HINT = ("make the mask on X's device: torch.rand_like(X), or "
               "torch.rand(X.shape, device=X.device, dtype=X.dtype); a mask made on the "
               "CPU fails as soon as X lives on a GPU")


def _device_problem(fn, p):
    """None if fn makes its mask on X's device; (problem, how it was tested)."""
    X = torch.empty(64, 32, device="meta")  # a tensor with a device but no data
    try:
        out = fn(X, p)
    except Exception as error:  # noqa: BLE001 - a device error is evidence
        if "device" in str(error).lower():
            return (f"on a non-CPU input it raised {type(error).__name__}: "
                    f"{str(error)[:80]} — {DEVICE_HINT}"), "meta"
    else:
        if isinstance(out, torch.Tensor) and out.device.type != "meta":
            return (f"for an input on the 'meta' device it returned a tensor on "
                    f"{out.device.type}: {DEVICE_HINT}"), "meta"
        if isinstance(out, torch.Tensor):
            return None, "meta"
    # The code does something meta tensors cannot do (e.g. .item()): watch instead
    # which factories it calls on a CPU input.
    X = torch.rand(64, 32) + 0.5
    watch = _FactoryWatch()
    with watch:
        fn(X, p)
    if watch.cpu_made:
        return (f"it calls {watch.cpu_made[0]}(...) without device=: that tensor is made "
                f"on the CPU whatever X's device — {DEVICE_HINT}"), "factories"
    return None, "factories"


def _shape_and_seed_problem(fn):
    """None if fn works on any shape and draws its mask from torch's generator."""
    for shape in ((1000,), (10, 20, 30)):
        X = torch.rand(shape) + 0.5
        try:
            out = fn(X, 0.5)
        except Exception as error:  # noqa: BLE001 - the shape is the hint
            return (f"an input of shape {shape} made your code raise "
                    f"{type(error).__name__}: {error}: dropout works elementwise on a "
                    "tensor of any shape (torch.rand_like(X))")
        if not isinstance(out, torch.Tensor) or out.shape != X.shape:
            return (f"an input of shape {shape} did not give an output of that shape: "
                    "dropout works elementwise on a tensor of any shape")
        zeros = (out == 0).double().mean().item()
        if abs(zeros - 0.5) > SIGMAS * math.sqrt(0.25 / X.numel()):
            return (f"for an input of shape {shape}, a fraction {zeros:.3f} of the outputs "
                    "is zero, not p = 0.5: dropout works elementwise on any shape")
    X = torch.rand(50, 40) + 0.5
    masks = []
    for seed in (11, 12, 11):
        torch.manual_seed(seed)
        masks.append(fn(X, 0.5) == 0)
    if not torch.equal(masks[0], masks[2]) or torch.equal(masks[0], masks[1]):
        return ("the zeros do not follow torch's random generator (the same "
                "torch.manual_seed must give the same mask, another seed another "
                "mask): draw the mask with torch.rand_like(X), not from a fixed pattern")
    return None


def _library_problem(fn, X, p):
    """A hint if fn(X, p) calls a library dropout instead of drawing its own mask."""
    used = library_dropout_used(fn, X, p)
    if used:
        return (f"it calls {used}: that is the library's dropout, not yours; write it "
                "yourself with a mask from torch.rand_like(X)")
    return None


def _mask(X, p, draw=torch.rand_like):
    return (draw(X) >= p).to(X.dtype)


def _mask_on_cpu(X, p):
    return X * 0 if p == 1 else X * (torch.rand(X.shape) >= p).float() / (1 - p)


def _mask_on_cpu_with_item(X, p):  # meta cannot run .item(): the factory watch must see it
    return X * 0 if X.sum().item() == 0 or p == 1 else _mask_on_cpu(X, p)


def _in_place(X, p):
    X *= 0 if p == 1 else _mask(X, p) / (1 - p)
    return X


def _not_implemented(X, p):
    raise NotImplementedError("TODO: draw a 0/1 mask")


NOT_SCALED = ("the kept values are X itself, so the mean is (1-p)*mean(X): did you scale "
              "by 1/(1-p)? (once: no (1-p) on top of it, that is the test-time rule)")
LAYER_MISTAKES = [
    Mistake(lambda X, p: X * torch.randn_like(X) / (1 - p),
            "the mask is torch.randn itself: a mask must be 0/1 — torch.rand, not torch.randn"),
    Mistake(lambda X, p: X * _mask(X, p, torch.randn_like) / (1 - p),
            "the mask compares torch.randn with p, which drops P(randn < p) of the units: "
            "draw it from torch.rand (uniform on [0, 1)), not torch.randn"),
    Mistake(lambda X, p: X * _mask(X, p), NOT_SCALED),
    Mistake(lambda X, p: X * (torch.rand_like(X) < p).to(X.dtype) / (1 - p),
            "p is the probability of DROPPING, so keep where rand >= p "
            "(keep and drop probabilities are swapped)"),
    Mistake(lambda X, p: X * (torch.rand(X.shape[1:], dtype=X.dtype) >= p) / (1 - p),
            "every row of the batch has the same units dropped: draw one mask per element, "
            "not one per feature shared across the batch (torch.rand_like(X), not "
            "torch.rand(X.shape[1:]))"),
    Mistake(lambda X, p: X * _mask(X, p) / (1 - p) * (1 - p), NOT_SCALED),
    Mistake(lambda X, p: X * _mask(X, p) * (1 - p),
            "the kept values are (1-p)*X, not X/(1-p): the mean is off by a factor (1-p)² "
            "(off by a factor 0.64 at p = 0.2): divide by (1-p), do not multiply"),
    Mistake(lambda X, p: X, "no element was set to zero: drop each element with probability p"),
    # the ones that give the right values on the CPU: found by the properties below
    Mistake(_mask_on_cpu, "make the mask on X's device"),
    Mistake(_mask_on_cpu_with_item, "without device="),
    Mistake(lambda X, p: X * _mask(X, p) / (1 - p), "p = 1 gave NaN"),
    Mistake(lambda X, p: X * 0 if p == 1 else (X * _mask(X, p) / (1 - p)).float(),
            "make the mask in X's dtype"),
    Mistake(_in_place, "X was changed in place"),
    Mistake(_not_implemented, "not implemented yet (TODO: draw a 0/1 mask)"),
    Mistake(lambda X, p: torch.nn.functional.dropout(X, p), "torch.nn.functional.dropout"),
    Mistake(lambda X, p: torch.nn.Dropout(p)(X), "that is the library's dropout"),
    Mistake(lambda X, p: library_noise.dropout_layer(X, p), "dropout_lab.dropout_layer"),
    Mistake(lambda X, p: X * 0 if p == 1 else X * (
        torch.rand(X.shape[0], X.shape[1], dtype=X.dtype, device=X.device) >= p) / (1 - p),
        "dropout works elementwise on a tensor of any shape"),
    Mistake(lambda X, p: X * 0 if p == 1 else X * (
        (torch.arange(X.numel(), dtype=X.dtype, device=X.device) * 0.618 + X.sum()) % 1
        >= p).view_as(X) / (1 - p), "not from a fixed pattern"),
]


def _layer_verdict(fn):
    """None if fn behaves like inverted dropout, else a hint; (hint, notes)."""
    notes = []
    with _seeded(0):
        problem = _library_problem(fn, torch.rand(8, 4) + 0.5, 0.3)
        if problem:
            return problem, notes
        X = torch.rand(400, 100) + 0.5  # in [0.5, 1.5): no zeros, mean 1
        original = X.clone()
        for seed, p in ((10, 0.2), (11, 0.7)):  # 0.5 would hide swapped keep and drop
            torch.manual_seed(seed)
            out = fn(X, p)

            def rerun(wrong):
                torch.manual_seed(seed)
                return wrong(X.clone(), p)
            if not torch.equal(X, original):
                return ("X was changed in place: leave the input alone and return a new "
                        "tensor (X * mask / (1 - p), not X *= mask)"), notes
            problem = _is_tensor_like(out, X)
            if problem is None and out.dtype != X.dtype:
                problem = f"the output has dtype {out.dtype}, the input {X.dtype}"
            if problem is None and torch.isnan(out).any():
                problem = "the output contains NaN"
            if problem is None and not same(out, rerun(dropout_layer)):
                problem = known_mistake(out, LAYER_MISTAKES, rerun)
            for test in (lambda: _values_problem(out, X, p),
                         lambda: _independence_problem(out),
                         lambda: _fraction_problem(out, p),
                         lambda: _mean_problem(out, X, p)):
                if problem is None:
                    problem = test()
            if problem:
                return problem, notes
            if torch.equal(out, fn(X, p)):
                return "two calls gave the same mask: draw a new mask on every call", notes
        out = fn(X, 0.0)
        if not (isinstance(out, torch.Tensor) and torch.equal(out, X)):
            return "p = 0 must return X unchanged (nothing is dropped)", notes
        out = fn(X, 1.0)
        if not isinstance(out, torch.Tensor) or out.shape != X.shape:
            return "p = 1 must return zeros shaped like X", notes
        if torch.isnan(out).any():
            return ("p = 1 gave NaN: X * mask / (1 - p) is 0/0 when everything is "
                    "dropped; return torch.zeros_like(X) for p = 1"), notes
        if not bool((out == 0).all()):
            return "p = 1 must return zeros: every unit is dropped", notes
        X64 = X[:100].double()
        out = fn(X64, 0.5)
        if not isinstance(out, torch.Tensor) or out.dtype != torch.float64:
            got = out.dtype if isinstance(out, torch.Tensor) else type(out).__name__
            return (f"a float64 input gave a {got} output: make the mask in X's dtype "
                    "(torch.rand_like(X))"), notes
        problem, how = _device_problem(fn, 0.5)
        if problem is None:
            problem = _shape_and_seed_problem(fn)
        if problem:
            return problem, notes
        notes.append("mask on the input's device (tested with a 'meta' tensor)"
                     if how == "meta" else
                     "no tensor made on the CPU by default (meta tensors not supported "
                     "by your code, so its tensor factories were watched instead)")
        if torch.cuda.is_available():
            out = fn(X.cuda(), 0.5)
            if not isinstance(out, torch.Tensor) or out.device.type != "cuda":
                return f"a CUDA input gave an output on the CPU: {DEVICE_HINT}", notes
            notes.append("and on CUDA")
        for bad in (1.5, -0.1):
            try:
                fn(X, bad)
            except ValueError:
                continue
            except Exception:  # noqa: BLE001 - any other reaction is the tip below
                pass
            notes.append(f"tip: p = {bad} should raise ValueError (p is a probability)")
            break
    return None, notes


@check
def check_dropout_layer(fn, name="dropout_layer"):
    """Check the student's dropout_layer(X, p): inverted dropout, p = drop probability."""
    problem, notes = _layer_verdict(fn)
    if problem:
        return report(name, False, problem)
    message = ("zeros with probability p, survivors scaled by 1/(1-p), mean kept, "
               "one mask per element from torch's generator, any shape, p = 0 and p = 1 "
               "right, dtype kept")
    return report(name, True, "; ".join([message] + notes))


# ---------------------------------------------------------------------------
# dropout_forward(X, p) -> (out, mask)   and   dropout_backward(dout, mask, p)
# ---------------------------------------------------------------------------

@check
def check_dropout_forward(fn, name="dropout_forward"):
    """Check dropout_forward(X, p) -> (out, mask): mask 0/1, out = X * mask / (1-p)."""
    with _seeded(1):
        X = torch.rand(50, 40, dtype=torch.float64) + 0.5
        result = fn(X, 0.3)
    if not (isinstance(result, tuple) and len(result) == 2):
        return report(name, False, "return a pair (out, mask): the backward pass needs the mask")
    out, mask = result
    for what, tensor in (("out", out), ("mask", mask)):
        problem = _is_tensor_like(tensor, X)
        if problem:
            return report(name, False, f"{what}: {problem}")
    if not bool(((mask == 0) | (mask == 1)).all()):
        return report(name, False, "the mask must hold only 0 and 1 (the unscaled keep "
                      "indicator); keep the 1/(1-p) in the formula, not in the mask")
    if not bool(_close(out, X * mask / 0.7).all()):
        return report(name, False, "out must equal X * mask / (1 - p) for the mask returned")
    return check_dropout_layer(lambda X, p: fn(X, p)[0], name=name)


BACKWARD_MISTAKES = [
    Mistake(lambda dout, mask, p: dout * mask, "you return dout * mask: the gradient lacks "
            "the factor 1/(1-p): the backward pass scales exactly like the forward pass"),
    Mistake(lambda dout, mask, p: dout * mask * (1 - p),
            "you return dout * mask * (1 - p): divide by (1-p), do not multiply"),
    Mistake(lambda dout, mask, p: dout / (1 - p), "you return dout / (1 - p): dropped units "
            "must get zero gradient: multiply by the mask"),
    Mistake(lambda dout, mask, p: dout, "you return dout: multiply dout by the mask and by "
            "1/(1-p)"),
    Mistake(lambda dout, mask, p: mask / (1 - p), "you return mask / (1 - p): multiply by "
            "the upstream gradient dout (chain rule): mask / (1-p) alone is the gradient of "
            "out.sum()"),
    # found by the properties
    Mistake(lambda dout, mask, p: (dout * mask / (1 - p)).float(), "keep the dtype"),
    Mistake(lambda dout, mask, p: dout * mask / (1 - p), "p = 1 gave NaN"),
    Mistake(lambda dout, mask, p: dout.T, "shape"),
]


def _dropout_backward_verdict(fn):
    """(hint, None) for a wrong backward, (None, errors) for a right one (call in _seeded)."""
    p = 0.3
    X = torch.randn(6, 7, dtype=torch.float64, requires_grad=True)
    mask = (torch.rand(6, 7) >= p).double()
    # dout entries of size 0.5 to 1.5, either sign: no tiny gradients
    dout = (torch.rand(6, 7, dtype=torch.float64) + 0.5) * torch.randn(6, 7).sign()
    (X * mask / (1 - p)).backward(dout)
    expected = X.grad
    dX = fn(dout.clone(), mask.clone(), p)
    problem = _is_tensor_like(dX, expected)
    if problem:
        return problem, None
    if dX.dtype != torch.float64:
        return f"float64 inputs gave a {dX.dtype} gradient: keep the dtype", None
    error = rel_error(dX, expected)
    if error > 1e-10:
        hint = known_mistake(dX, BACKWARD_MISTAKES,
                             lambda wrong: wrong(dout.clone(), mask.clone(), p))
        if hint:
            return hint, None
        return (f"relative error {error:.1e} against autograd"
                + answer_hint(": dX = dout * mask / (1-p)")), None
    # against a centered numerical gradient of f(X) = sum(X * mask / (1-p) * dout):
    # f is linear, so the difference is exact but for rounding, ~1e-16 * |f| / h
    h, Xd = 1e-4, X.detach()
    numeric = torch.zeros_like(Xd)
    for i in range(Xd.numel()):
        e = torch.zeros_like(Xd).view(-1)
        e[i] = h
        e = e.view_as(Xd)
        plus = ((Xd + e) * mask / (1 - p) * dout).sum()
        minus = ((Xd - e) * mask / (1 - p) * dout).sum()
        numeric.view(-1)[i] = (plus - minus) / (2 * h)
    numeric_error = rel_error(dX, numeric)
    if numeric_error > 1e-8:
        return f"relative error {numeric_error:.1e} against a numerical gradient", None
    for p_edge, m, want in ((0.0, torch.ones(6, 7, dtype=torch.float64), dout),
                            (1.0, torch.zeros(6, 7, dtype=torch.float64), 0 * dout)):
        got = fn(dout.clone(), m, p_edge)
        if not isinstance(got, torch.Tensor) or torch.isnan(got).any():
            return (f"p = {p_edge:g} gave NaN or no tensor: at p = 1 every unit is dropped "
                    "and the gradient is 0 (not 0/0)"), None
        if rel_error(got, want) > 1e-12:
            want_text = "dout" if p_edge == 0 else "zeros"
            return f"p = {p_edge:g} gave a wrong gradient (expected {want_text})", None
    return None, (error, numeric_error)


@check
def check_dropout_backward(fn, name="dropout_backward"):
    """Check dropout_backward(dout, mask, p) against autograd and a numerical gradient."""
    with _seeded(2):
        problem, errors = _dropout_backward_verdict(fn)
    if problem:
        return report(name, False, problem)
    return report(name, True, f"relative error {errors[0]:.1e} against autograd, "
                  f"{errors[1]:.1e} against a centered numerical gradient; p = 0 and 1 right")


# ---------------------------------------------------------------------------
# numerical_gradient(f, X, dout, h) -> d sum(f(X) * dout) / dX
# ---------------------------------------------------------------------------

@check
def check_numerical_gradient(fn, name="numerical_gradient"):
    """Check a centered-difference gradient of sum(f(X) * dout) with respect to X."""
    with _seeded(3):
        return _check_numerical_gradient(fn, name)


def _check_numerical_gradient(fn, name):
    # entries of size 0.5 to 1.5, either sign: no tiny gradients
    X = (torch.rand(4, 5, dtype=torch.float64) + 0.5) * torch.randn(4, 5).sign()
    dout = (torch.rand(4, 5, dtype=torch.float64) + 0.5) * torch.randn(4, 5).sign()
    X_before = X.clone()
    exact = 3 * X ** 2 * dout  # f(X) = X**3, elementwise
    result = fn(lambda Z: Z ** 3, X, dout, 1e-5)
    if not torch.equal(X, X_before):
        return report(name, False, "X was changed: put X[i] back after perturbing it")
    problem = _is_tensor_like(result, X)
    if problem:
        return report(name, False, problem)
    error = rel_error(result, exact)
    if error < 1e-8:
        return report(name, True, f"relative error {error:.1e} for f(X) = X**3 (a centered "
                      "difference is exact up to h**2)")
    if rel_error(result, 2 * exact) < 1e-6 or rel_error(result, exact / 2) < 1e-6:
        return report(name, False, "off by a factor 2: a centered difference divides "
                      "f(X+h) - f(X-h) by 2h")
    if rel_error(result, 3 * X ** 2) < 1e-6:
        return report(name, False, "weight by dout: the gradient of sum(f(X) * dout)")
    if error < 1e-3:
        return report(name, False, f"relative error {error:.1e}, about h: a one-sided "
                      "difference; use the centered (f(X+h) - f(X-h)) / (2h)")
    return report(name, False, f"relative error {error:.1e} against the exact gradient of "
                  "sum(X**3 * dout): perturb one element at a time by ±h")


@check
def check_gradient_errors(errors, name="gradient_check", tol=1e-7):
    """Check relative errors of a hand-written gradient, e.g. {"autograd": 1e-16, ...}.

    Float64 gradients agree with autograd to ~1e-16 and with a centered numerical
    gradient to ~1e-10 (h = 1e-5); above `tol` something is wrong: the gradient, the
    comparison, float32, or a mask that changes between evaluations.
    """
    if not isinstance(errors, dict) or not errors:
        return report(name, False, "pass a dict of relative errors, e.g. "
                      "{'autograd': rel_error(dX, dX_autograd), 'numerical': ...}")
    values = {}
    for key, value in errors.items():
        try:
            values[key] = float(value)
        except (TypeError, ValueError, RuntimeError):
            return report(name, False, f"errors[{key!r}] is {type(value).__name__}, not a number")
    table = ", ".join(f"{k} {v:.1e}" for k, v in values.items())
    bad = {k: v for k, v in values.items() if not v <= tol}  # NaN is bad too
    if not bad:
        return report(name, True, f"relative errors {table} (all below {tol:g})")
    if any("num" in k.lower() for k in bad) and not any("num" not in k.lower() for k in bad):
        worst = max(bad.values())
        if worst > 1e-3:
            return report(name, False, f"relative errors {table}: the numerical gradient is "
                          "far off: is the mask the SAME in every evaluation of f? A new mask "
                          "changes f by O(1), and dividing by 2h blows that up")
        return report(name, False, f"relative errors {table}: use float64, a centered "
                      "difference and h about 1e-5")
    return report(name, False, f"relative errors {table}: your backward pass and autograd "
                  "disagree (did check_dropout_backward pass?), or autograd saw a different "
                  "mask than your backward pass")


# ---------------------------------------------------------------------------
# mlp_loss_and_grads(X, y, params, mask, p) -> (loss, grads)
# ---------------------------------------------------------------------------

def _mlp_case(N=6, D=5, H=8, C=4, p=0.5):
    """A small network in float64 (call inside _seeded)."""
    X = torch.randn(N, D, dtype=torch.float64)
    y = torch.randint(0, C, (N,))
    params = {"W1": torch.randn(D, H, dtype=torch.float64) / D ** 0.5,
              "b1": 0.1 * torch.randn(H, dtype=torch.float64),
              "W2": torch.randn(H, C, dtype=torch.float64) / H ** 0.5,
              "b2": 0.1 * torch.randn(C, dtype=torch.float64)}
    mask = (torch.rand(N, H) >= p).double()
    return X, y, params, mask, p


def _mlp_reference(X, y, params, mask, p):
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    z1 = X @ leaves["W1"] + leaves["b1"]
    h = torch.relu(z1) * mask / (1 - p)
    loss = torch.nn.functional.cross_entropy(h @ leaves["W2"] + leaves["b2"], y)
    loss.backward()
    return loss.item(), {k: v.grad for k, v in leaves.items()}, z1.detach()


def mlp_by_hand(X, y, params, mask, p, scale_back=True, mask_back=True, relu_back=True,
                mean=True):
    """Linear-ReLU-dropout-Linear + softmax cross-entropy by hand; the flags break it."""
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    z1 = X @ W1 + b1
    h = z1.clamp_min(0) * mask / (1 - p)
    log_probs = torch.log_softmax(h @ W2 + b2, dim=1)
    rows = torch.arange(X.shape[0], device=X.device)
    dscores = log_probs.exp()
    dscores[rows, y] -= 1
    dscores = dscores / X.shape[0] if mean else dscores
    dh = dscores @ W2.T * (mask if mask_back else 1) / ((1 - p) if scale_back else 1)
    dz1 = dh * (z1 > 0) if relu_back else dh
    grads = {"W1": X.T @ dz1, "b1": dz1.sum(0), "W2": h.T @ dscores, "b2": dscores.sum(0)}
    return -log_probs[rows, y].mean(), grads


MLP_MISTAKES = [
    Mistake(lambda *case: mlp_by_hand(*case, mean=False), "the gradients are N times too "
            "large: the loss is a mean, so dscores = (softmax - onehot(y)) / N"),
    Mistake(lambda *case: mlp_by_hand(*case, scale_back=False),
            "dropout's 1/(1-p) is missing in the backward pass"),
    Mistake(lambda *case: mlp_by_hand(*case, mask_back=False),
            "the dropout mask is missing in the backward pass"),
    Mistake(lambda *case: mlp_by_hand(*case, relu_back=False),
            "the ReLU's gradient is missing: zero it where the pre-activation <= 0"),
]


@check
def check_mlp_backward(fn, name="mlp_backward"):
    """Check a hand-written loss and gradients of Linear-ReLU-dropout-Linear + softmax CE."""
    with _seeded(4):
        return _check_mlp_backward(fn, name)


@check
def check_mlp_backward_other_sizes(fn, name="mlp_backward_other_sizes"):
    """The grader's hidden case: another batch size, width and p (nothing hard-coded)."""
    with _seeded(5):
        return _check_mlp_backward(fn, name, _mlp_case(N=4, D=7, H=6, C=3, p=0.3))


def _check_mlp_backward(fn, name, case=None):
    X, y, params, mask, p = case or _mlp_case()
    result = fn(X.clone(), y.clone(),
                                  {k: v.clone() for k, v in params.items()}, mask.clone(), p)
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
        return report(name, False, "return (loss, grads) with grads a dict W1, b1, W2, b2")
    loss, grads = result
    ref_loss, ref_grads, _ = _mlp_reference(X, y, params, mask, p)
    missing = [k for k in ref_grads if not isinstance(grads.get(k), torch.Tensor)]
    if missing:
        return report(name, False, f"grads has no tensor for {', '.join(missing)}")
    try:
        loss = float(loss)
    except (TypeError, ValueError, RuntimeError):
        return report(name, False, "loss must be a number (or a one-element tensor)")
    loss_error = rel_error(loss, ref_loss)
    if loss_error > 1e-10:
        if rel_error(loss, ref_loss * len(y)) < 1e-10:
            return report(name, False, "the loss is the sum over the batch: take the mean")
        return report(name, False, f"the loss is {loss:.6f}, autograd's {ref_loss:.6f}: check "
                      "the forward pass (ReLU, then dropout with the given mask scaled by "
                      "1/(1-p), then softmax cross-entropy)")
    for key in ref_grads:
        if grads[key].shape != ref_grads[key].shape:
            return report(name, False, f"grads['{key}'] has shape {tuple(grads[key].shape)}, "
                          f"{key} has {tuple(ref_grads[key].shape)}")
    errors = {k: rel_error(grads[k], ref_grads[k]) for k in ref_grads}
    bad = [k for k, e in errors.items() if e > 1e-7]
    table = ", ".join(f"{k} {e:.1e}" for k, e in errors.items())
    if not bad:
        return report(name, True, f"relative errors against autograd: {table}")
    hint = known_mistake(grads, MLP_MISTAKES, lambda wrong: wrong(
        X.clone(), y.clone(), {k: v.clone() for k, v in params.items()}, mask.clone(), p)[1])
    if hint:
        return report(name, False, f"relative errors {table}: {hint}")
    if "b2" in bad:
        return report(name, False, f"relative errors {table}: start from dscores = "
                      "(softmax(scores) - onehot(y)) / N; b2's gradient is its column sum")
    if "W2" in bad:
        return report(name, False, f"relative errors {table}: dW2 = h.T @ dscores with h "
                      "the activations AFTER dropout (mask and 1/(1-p) applied)")
    return report(name, False, f"relative errors {table}: the gradient goes wrong between "
                  "the layers: dh = dscores @ W2.T, then times mask / (1-p), then times "
                  "(z1 > 0)")


# ---------------------------------------------------------------------------
# The references (the grader's stand-ins for a failed function) and the tables
# ---------------------------------------------------------------------------

def dropout_layer(X, p):
    """Inverted dropout: drop each element with probability p, scale the rest by 1/(1-p)."""
    if not 0 <= p <= 1:
        raise ValueError(f"p is a probability, got {p}")
    return torch.zeros_like(X) if p == 1 else X * _mask(X, p) / (1 - p)


def dropout_forward(X, p):
    """Inverted dropout that also returns its 0/1 mask."""
    mask = (torch.rand_like(X) >= p).to(X.dtype)
    return (torch.zeros_like(X) if p == 1 else X * mask / (1 - p)), mask


def dropout_backward(dout, mask, p):
    """dL/dX of inverted dropout for the mask of the forward pass."""
    return torch.zeros_like(dout) if p == 1 else dout * mask / (1 - p)


def numerical_gradient(f, X, dout, h=1e-5):
    """Centered differences of sum(f(X) * dout) with respect to X."""
    grad = torch.zeros_like(X)
    for i in range(X.numel()):
        old = X.view(-1)[i].item()
        X.view(-1)[i] = old + h
        plus = (f(X) * dout).sum()
        X.view(-1)[i] = old - h
        minus = (f(X) * dout).sum()
        X.view(-1)[i] = old
        grad.view(-1)[i] = (plus - minus) / (2 * h)
    return grad


def _one_sided(f, X, dout, h=1e-5):
    grad, base = torch.zeros_like(X), (f(X) * dout).sum()
    for i in range(X.numel()):
        moved = X.clone()
        moved.view(-1)[i] += h
        grad.view(-1)[i] = ((f(moved) * dout).sum() - base) / h
    return grad


def _not_restored(f, X, dout, h=1e-5):
    grad = numerical_gradient(f, X, dout, h)
    X.view(-1)[0] += h
    return grad


# Found by their properties (the check's relations), listed here for the tests.
FORWARD_MISTAKES = [
    Mistake(lambda X, p: (dropout_forward(X, p)[0], dropout_forward(X, p)[1] / (1 - p)),
            "only 0 and 1"),
    Mistake(lambda X, p: dropout_forward(X, p)[0], "return a pair (out, mask)"),
]
NUMERICAL_MISTAKES = [
    Mistake(_one_sided, "one-sided"),
    Mistake(lambda f, X, dout, h=1e-5: 2 * numerical_gradient(f, X, dout, h), "factor 2"),
    Mistake(_not_restored, "put X[i] back"),
    Mistake(lambda f, X, dout, h=1e-5: numerical_gradient(f, X, torch.ones_like(dout), h),
            "weight by dout"),
]

# check name -> its known mistakes (tests/test_checks_tables.py walks them all)
MISTAKES = {"dropout_layer": LAYER_MISTAKES, "dropout_forward": FORWARD_MISTAKES,
            "dropout_backward": BACKWARD_MISTAKES, "numerical_gradient": NUMERICAL_MISTAKES,
            "mlp_backward": MLP_MISTAKES,
            "mlp_backward_other_sizes": MLP_MISTAKES}
# check name -> the function that replaces the student's when that check fails
REFERENCES = {"dropout_layer": dropout_layer, "dropout_forward": dropout_forward,
              "dropout_backward": dropout_backward, "numerical_gradient": numerical_gradient,
              "mlp_backward": mlp_by_hand, "mlp_backward_other_sizes": mlp_by_hand}
