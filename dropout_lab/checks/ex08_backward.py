"""Exercise 8 (dropout's backward pass by hand): its checks, references and known mistakes.

A wrong answer is named by the first known mistake (MISTAKES) that gives the same
result on the same input and seed; properties (shape, dtype, device, the edges of
p, the statistics of the mask) catch the variants. Statistical bounds are 8
standard errors wide: a right answer fails one with probability below 1e-14.
"""
import math

import torch
from torch.overrides import TorchFunctionMode

from .. import noise as library_noise
from .engine import (Fail, Mistake, answer_hint, check, known_mistake,
                     library_dropout_used, report, same, seeded as _seeded)

__all__ = ["rel_error", "check_dropout_layer", "check_dropout_forward",
           "check_dropout_backward", "check_numerical_gradient", "check_gradient_errors",
           "check_mlp_backward", "check_mlp_backward_other_sizes"]

SIGMAS = 8  # width of every statistical bound, in standard errors
ROWS_ALIKE = ("every row of the batch has the same units dropped: draw one mask per "
              "element, not one per feature shared across the batch (torch.rand_like(X), "
              "not torch.rand(X.shape[1:]))")
DEVICE_HINT = ("make the mask on X's device: torch.rand_like(X), or torch.rand(X.shape, "
               "device=X.device, dtype=X.dtype); a CPU mask fails once X lives on a GPU")


def rel_error(x, y):
    """CS231n's relative error: max |x - y| / max(1e-8, |x| + |y|), as a float."""
    x = torch.as_tensor(x, dtype=torch.float64)
    y = torch.as_tensor(y, dtype=torch.float64, device=x.device)
    return ((x - y).abs() / (x.abs() + y.abs()).clamp_min(1e-8)).max().item()


def _like(out, X, what, dtype=True):
    """Fail unless out is a tensor with X's shape (and dtype)."""
    if not isinstance(out, torch.Tensor):
        raise Fail(f"{what} is a {type(out).__name__}, not a tensor")
    if out.shape != X.shape:
        raise Fail(f"{what} has shape {tuple(out.shape)}, the input {tuple(X.shape)}")
    if dtype and out.dtype != X.dtype:
        raise Fail(f"{what} has dtype {out.dtype}, the input {X.dtype}: keep the dtype")


# --- dropout_layer(X, p) --------------------------------------------------------------

def _mask_problem(out, X, p):
    """None if out holds 0 or X/(1-p), with zeros at the rate p and in no row or column
    pattern (so the mean of X is kept); else a hint. X has no zeros."""
    ratio = out / X
    if not bool(torch.isfinite(ratio).all()):
        return "the output contains NaN or inf"
    kept = ratio[out != 0]
    if kept.numel() and not torch.allclose(kept, kept[0].expand_as(kept), rtol=1e-5):
        return (f"the output has values other than 0 and X/(1-p) (= {1 / (1 - p):.3g}*X "
                "here): a mask must be 0/1 — torch.rand, not torch.randn")
    if kept.numel() and abs(kept[0].item() * (1 - p) - 1) > 1e-5:
        return (f"the kept values are {kept[0].item():.3g}*X, not X/(1-p): scale the "
                "survivors by 1/(1-p), once (not by (1-p), and not twice)")
    zeros = (out == 0).double().mean().item()
    bound = SIGMAS * math.sqrt(p * (1 - p) / out.numel())
    if abs(zeros - p) > bound:
        return (f"with p = {p} a fraction {zeros:.3f} of the outputs is zero, not {p} ± "
                f"{bound:.3f}: drop each element with probability p (keep where rand >= p)")
    dropped = out == 0
    if bool((dropped == dropped[0:1]).all()):
        return ROWS_ALIKE
    if bool((dropped == dropped[:, 0:1]).all()):
        return ("every feature of an example is dropped or kept together: draw one mask "
                "per element, not one per example (torch.rand_like(X))")
    return None


class _FactoryWatch(TorchFunctionMode):
    """Record the tensor factories called without device=: they make CPU tensors
    (the *_like versions follow their input, so they are not watched)."""
    FACTORIES = {"rand", "randn", "randint", "zeros", "ones", "empty", "full", "tensor",
                 "as_tensor", "arange"}

    def __init__(self):
        super().__init__()
        self.cpu_made = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", "")
        if (name in self.FACTORIES and "device" not in (kwargs or {})
                and isinstance(out, torch.Tensor) and out.numel() > 1):
            self.cpu_made.append(f"torch.{name}")
        return out


def _device_note(fn):
    """How fn was seen to make its mask on X's device; fails if it does not. Asked of an
    X on the 'meta' device (a device, no data); if meta cannot run the code (e.g.
    .item()), the tensor factories it calls are watched instead."""
    try:
        out = fn(torch.empty(64, 32, device="meta"), 0.5)
    except Exception as error:  # noqa: BLE001 - a device error is evidence
        out = error
    if isinstance(out, torch.Tensor) and out.device.type != "meta":
        raise Fail(f"an input on the 'meta' device gave an output on {out.device.type}: "
                   + DEVICE_HINT)
    if isinstance(out, torch.Tensor):
        return "mask on the input's device (tested with a 'meta' tensor)"
    if "device" in str(out).lower():
        raise Fail(f"on a non-CPU input it raised {type(out).__name__}: {str(out)[:80]} — "
                   + DEVICE_HINT)
    with _FactoryWatch() as watch:
        fn(torch.rand(64, 32) + 0.5, 0.5)
    if watch.cpu_made:
        raise Fail(f"it calls {watch.cpu_made[0]}(...) without device=: that tensor is "
                   f"made on the CPU whatever X's device — {DEVICE_HINT}")
    return ("no tensor made on the CPU by default (your code does not run on meta "
            "tensors, so its tensor factories were watched instead)")


def _any_shape_and_seeded(fn):
    """Fail unless fn works on any shape and draws its mask from torch's generator."""
    for shape in ((1000,), (10, 20, 30)):
        X = torch.rand(shape) + 0.5
        try:
            out = fn(X, 0.5)
        except Exception as error:  # noqa: BLE001 - the shape is the hint
            raise Fail(f"an input of shape {shape} made your code raise "
                       f"{type(error).__name__}: {error}: dropout works elementwise on a "
                       "tensor of any shape (torch.rand_like(X))") from None
        bound = SIGMAS * math.sqrt(0.25 / X.numel())
        if not (isinstance(out, torch.Tensor) and out.shape == X.shape
                and abs((out == 0).double().mean().item() - 0.5) <= bound):
            raise Fail(f"an input of shape {shape} did not give half zeros in that shape: "
                       "dropout works elementwise on a tensor of any shape")
    X = torch.rand(50, 40) + 0.5
    masks = []
    for seed in (11, 12, 11):
        torch.manual_seed(seed)
        masks.append(fn(X, 0.5) == 0)
    if not torch.equal(masks[0], masks[2]) or torch.equal(masks[0], masks[1]):
        raise Fail("the zeros do not follow torch's random generator (the same seed must "
                   "give the same mask, another seed another): draw the mask with "
                   "torch.rand_like(X), not from a fixed pattern")


@check
def check_dropout_layer(fn, name="dropout_layer"):
    """Check the student's dropout_layer(X, p): inverted dropout, p = drop probability."""
    with _seeded(0):
        used = library_dropout_used(fn, torch.rand(8, 4) + 0.5, 0.3)
        if used:
            raise Fail(f"it calls {used}: that is the library's dropout, not yours; write "
                       "it yourself with a mask from torch.rand_like(X)")
        X = torch.rand(400, 100) + 0.5  # in [0.5, 1.5): no zeros, mean 1
        original = X.clone()
        for seed, p in ((10, 0.2), (11, 0.7)):  # 0.5 would hide swapped keep and drop
            def rerun(wrong):
                torch.manual_seed(seed)
                return wrong(X.clone(), p)
            torch.manual_seed(seed)
            out = fn(X, p)
            if not torch.equal(X, original):
                raise Fail("X was changed in place: leave the input alone and return a "
                           "new tensor (X * mask / (1 - p), not X *= mask)")
            _like(out, X, "the output")
            hint = None if same(out, rerun(dropout_layer)) else known_mistake(
                out, LAYER_MISTAKES, rerun)
            hint = hint or _mask_problem(out, X, p)
            if hint:
                raise Fail(hint)
            if torch.equal(out, fn(X, p)):
                raise Fail("two calls gave the same mask: draw a new mask on every call")
        out = fn(X, 0.0)
        if not (isinstance(out, torch.Tensor) and torch.equal(out, X)):
            raise Fail("p = 0 must return X unchanged (nothing is dropped)")
        out = fn(X, 1.0)
        if isinstance(out, torch.Tensor) and bool(torch.isnan(out).any()):
            raise Fail("p = 1 gave NaN: X * mask / (1 - p) is 0/0 when everything is "
                       "dropped; return torch.zeros_like(X) for p = 1")
        if not (isinstance(out, torch.Tensor) and out.shape == X.shape and (out == 0).all()):
            raise Fail("p = 1 must return zeros shaped like X: every unit is dropped")
        out = fn(X[:100].double(), 0.5)
        if not (isinstance(out, torch.Tensor) and out.dtype == torch.float64):
            raise Fail("a float64 input gave no float64 output: make the mask in X's dtype")
        notes = [_device_note(fn)]
        _any_shape_and_seeded(fn)
        for bad in (1.5, -0.1):
            try:
                fn(X, bad)
            except ValueError:
                continue
            except Exception:  # noqa: BLE001 - any other reaction earns the tip
                pass
            notes.append(f"tip: p = {bad} should raise ValueError (p is a probability)")
            break
    return report(name, True, "; ".join([
        "zeros with probability p, survivors scaled by 1/(1-p), mean kept, one mask per "
        "element from torch's generator, any shape, p = 0 and p = 1 right, dtype kept",
        *notes]))


def _mask(X, p, draw=torch.rand_like):
    return (draw(X) >= p).to(X.dtype)


def _cpu_mask(X, p):
    return X * 0 if p == 1 else X * (torch.rand(X.shape) >= p).float() / (1 - p)


def _not_implemented(X, p):
    raise NotImplementedError("TODO: draw a 0/1 mask")


NOT_SCALED = ("the kept values are X itself, so the mean is (1-p)*mean(X): did you scale "
              "by 1/(1-p)? (once: no (1-p) on top of it, that is the test-time rule)")
LAYER_MISTAKES = [
    Mistake(lambda X, p: X * torch.randn_like(X) / (1 - p),
            "the mask is torch.randn itself: a mask must be 0/1 — torch.rand, not randn"),
    Mistake(lambda X, p: X * _mask(X, p, torch.randn_like) / (1 - p),
            "the mask compares torch.randn with p, which drops P(randn < p) of the units: "
            "draw it from torch.rand (uniform on [0, 1)), not torch.randn"),
    Mistake(lambda X, p: X * _mask(X, p), NOT_SCALED),
    Mistake(lambda X, p: X * (torch.rand_like(X) < p).to(X.dtype) / (1 - p),
            "p is the probability of DROPPING, so keep where rand >= p "
            "(keep and drop probabilities are swapped)"),
    Mistake(lambda X, p: X * (torch.rand(X.shape[1:], dtype=X.dtype) >= p) / (1 - p),
            ROWS_ALIKE),
    Mistake(lambda X, p: X * _mask(X, p) / (1 - p) * (1 - p), NOT_SCALED),
    Mistake(lambda X, p: X * _mask(X, p) * (1 - p),
            "the kept values are (1-p)*X, not X/(1-p): the mean is off by a factor (1-p)² "
            "(0.64 at p = 0.2): divide by (1-p), do not multiply"),
    Mistake(lambda X, p: X, "no element was set to zero: drop each with probability p"),
    Mistake(lambda X, p: X * 0 if p == 1 else X * (
        (torch.arange(X.numel(), dtype=X.dtype, device=X.device) * 0.618 + X.sum()) % 1
        >= p).view_as(X) / (1 - p), "the zeros do not follow torch's random generator "
            "(the same seed must give the same mask): not from a fixed pattern"),
    # the ones that give the right values on the CPU, found by the properties
    Mistake(_cpu_mask, "make the mask on X's device"),
    # meta tensors cannot run .item(): the factory watch must see this one
    Mistake(lambda X, p: X * 0 if X.sum().item() == 0 else _cpu_mask(X, p), "without device="),
    Mistake(lambda X, p: X * _mask(X, p) / (1 - p), "p = 1 gave NaN"),
    Mistake(lambda X, p: X * 0 if p == 1 else (X * _mask(X, p) / (1 - p)).float(),
            "make the mask in X's dtype"),
    Mistake(lambda X, p: X.mul_(_mask(X, p) / (1 - p)), "X was changed in place"),
    Mistake(_not_implemented, "not implemented yet (TODO: draw a 0/1 mask)"),
    Mistake(lambda X, p: torch.nn.functional.dropout(X, p), "torch.nn.functional.dropout"),
    Mistake(lambda X, p: torch.nn.Dropout(p)(X), "that is the library's dropout"),
    Mistake(lambda X, p: library_noise.dropout_layer(X, p), "dropout_lab.dropout_layer"),
    Mistake(lambda X, p: X * 0 if p == 1 else X * (
        torch.rand(X.shape[0], X.shape[1], dtype=X.dtype, device=X.device) >= p) / (1 - p),
        "dropout works elementwise on a tensor of any shape"),
]


# --- dropout_forward(X, p) -> (out, mask), dropout_backward(dout, mask, p) -------------

@check
def check_dropout_forward(fn, name="dropout_forward"):
    """Check dropout_forward(X, p) -> (out, mask): mask 0/1, out = X * mask / (1-p)."""
    with _seeded(1):
        X = torch.rand(50, 40, dtype=torch.float64) + 0.5
        result = fn(X, 0.3)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise Fail("return a pair (out, mask): the backward pass needs the mask")
    out, mask = result
    _like(out, X, "out", dtype=False)
    _like(mask, X, "mask", dtype=False)
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise Fail("the mask must hold only 0 and 1 (the unscaled keep indicator); keep "
                   "the 1/(1-p) in the formula, not in the mask")
    if not torch.allclose(out, X * mask / 0.7, rtol=1e-5, atol=1e-12):
        raise Fail("out must equal X * mask / (1 - p) for the mask returned")
    return check_dropout_layer(lambda X, p: fn(X, p)[0], name=name)


@check
def check_dropout_backward(fn, name="dropout_backward"):
    """Check dropout_backward(dout, mask, p) against autograd and a numerical gradient."""
    p = 0.3
    with _seeded(2):
        X = torch.randn(6, 7, dtype=torch.float64, requires_grad=True)
        mask = (torch.rand(6, 7) >= p).double()
        # dout entries of size 0.5 to 1.5, either sign: no tiny gradients
        dout = (torch.rand(6, 7, dtype=torch.float64) + 0.5) * torch.randn(6, 7).sign()
        (X * mask / (1 - p)).backward(dout)
        dX = fn(dout.clone(), mask.clone(), p)
        _like(dX, X, "the gradient")
        error = rel_error(dX, X.grad)
        if error > 1e-10:
            hint = known_mistake(dX, BACKWARD_MISTAKES,
                                 lambda wrong: wrong(dout.clone(), mask.clone(), p))
            raise Fail(hint or f"relative error {error:.1e} against autograd"
                       + answer_hint(": dX = dout * mask / (1-p)"))
        # f is linear: a centered difference is exact but for rounding, ~1e-16 * |f| / h
        numeric = numerical_gradient(lambda Z: Z * mask / (1 - p), X.detach(), dout, 1e-4)
        numeric_error = rel_error(dX, numeric)
        if numeric_error > 1e-8:
            raise Fail(f"relative error {numeric_error:.1e} against a numerical gradient")
        for p_edge, want in ((0.0, dout), (1.0, torch.zeros_like(dout))):
            got = fn(dout.clone(), torch.full_like(dout, 1 - p_edge), p_edge)
            if not isinstance(got, torch.Tensor) or torch.isnan(got).any():
                raise Fail(f"p = {p_edge:g} gave NaN or no tensor: at p = 1 every unit is "
                           "dropped and the gradient is 0 (not 0/0)")
            if rel_error(got, want) > 1e-12:
                raise Fail(f"p = {p_edge:g} gave a wrong gradient, not "
                           + ("dout" if p_edge == 0 else "zeros"))
    return report(name, True, f"relative error {error:.1e} against autograd, "
                  f"{numeric_error:.1e} against a centered numerical gradient; p = 0, 1 right")


BACKWARD_MISTAKES = [
    Mistake(lambda dout, mask, p: dout * mask, "you return dout * mask: the gradient lacks "
            "the factor 1/(1-p): the backward pass scales exactly like the forward pass"),
    Mistake(lambda dout, mask, p: dout * mask * (1 - p),
            "you return dout * mask * (1 - p): divide by (1-p), do not multiply"),
    Mistake(lambda dout, mask, p: dout / (1 - p), "you return dout / (1 - p): dropped units "
            "must get zero gradient: multiply by the mask"),
    Mistake(lambda dout, mask, p: dout,
            "you return dout: multiply dout by the mask and by 1/(1-p)"),
    Mistake(lambda dout, mask, p: mask / (1 - p), "you return mask / (1 - p): multiply by "
            "the upstream gradient dout (chain rule): mask / (1-p) is the gradient of "
            "out.sum()"),
    # found by the properties
    Mistake(lambda dout, mask, p: (dout * mask / (1 - p)).float(), "keep the dtype"),
    Mistake(lambda dout, mask, p: dout * mask / (1 - p), "p = 1 gave NaN"),
    Mistake(lambda dout, mask, p: dout.T, "shape"),
]


# --- numerical_gradient(f, X, dout, h) -> d sum(f(X) * dout) / dX, and its errors -----

@check
def check_numerical_gradient(fn, name="numerical_gradient"):
    """Check a centered-difference gradient of sum(f(X) * dout) with respect to X."""
    with _seeded(3):
        # entries of size 0.5 to 1.5, either sign: no tiny gradients
        X = (torch.rand(4, 5, dtype=torch.float64) + 0.5) * torch.randn(4, 5).sign()
        dout = (torch.rand(4, 5, dtype=torch.float64) + 0.5) * torch.randn(4, 5).sign()
        X_before = X.clone()
        result = fn(lambda Z: Z ** 3, X, dout, 1e-5)
        if not torch.equal(X, X_before):
            raise Fail("X was changed: put X[i] back after perturbing it")
        _like(result, X, "the gradient", dtype=False)
        error = rel_error(result, 3 * X ** 2 * dout)  # the exact gradient
        if error < 1e-8:
            return report(name, True, f"relative error {error:.1e} for f(X) = X**3 (a "
                          "centered difference is exact up to h**2)")
        hint = known_mistake(result, NUMERICAL_MISTAKES,
                             lambda wrong: wrong(lambda Z: Z ** 3, X.clone(), dout, 1e-5))
    if hint is None and error < 1e-3:  # any one-sided difference is off by about h
        hint = NUMERICAL_MISTAKES[0].hint
    raise Fail(f"relative error {error:.1e}: " + (hint or "perturb one element at a time "
               "by ±h; compared with the exact gradient of sum(X**3 * dout)"))


@check
def check_gradient_errors(errors, name="gradient_check", tol=1e-7):
    """Check relative errors of a hand-written gradient, e.g. {"autograd": 1e-16, ...}.

    In float64 they are ~1e-16 against autograd and ~1e-10 against a centered numerical
    gradient (h = 1e-5): above `tol` the gradient, the comparison, float32 or a mask
    that changes between evaluations is wrong."""
    if not isinstance(errors, dict) or not errors:
        raise Fail("pass a dict of relative errors, e.g. "
                   "{'autograd': rel_error(dX, dX_autograd), 'numerical': ...}")
    values = {}
    for key, value in errors.items():
        try:
            values[key] = float(value)
        except (TypeError, ValueError, RuntimeError):
            raise Fail(f"errors[{key!r}] is {type(value).__name__}, not a number") from None
    table = ", ".join(f"{k} {v:.1e}" for k, v in values.items())
    bad = {k: v for k, v in values.items() if not v <= tol}  # NaN is bad too
    if not bad:
        return report(name, True, f"relative errors {table} (all below {tol:g})")
    only_numerical = all("num" in k.lower() for k in bad)
    if only_numerical and max(bad.values()) > 1e-3:
        raise Fail(f"relative errors {table}: the numerical gradient is far off: is the "
                   "mask the SAME in every evaluation of f? A new mask changes f by O(1), "
                   "and dividing by 2h blows that up")
    if only_numerical:
        raise Fail(f"relative errors {table}: use float64, a centered difference and h "
                   "about 1e-5")
    raise Fail(f"relative errors {table}: your backward pass and autograd disagree (did "
               "check_dropout_backward pass?), or autograd saw another mask than it did")


# --- mlp_loss_and_grads(X, y, params, mask, p) -> (loss, grads) ------------------------

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
        return _check_mlp_backward(fn, name, _mlp_case())


@check
def check_mlp_backward_other_sizes(fn, name="mlp_backward_other_sizes"):
    """The grader's hidden case: another batch size, width and p (nothing hard-coded)."""
    with _seeded(5):
        return _check_mlp_backward(fn, name, _mlp_case(N=4, D=7, H=6, C=3, p=0.3))


def _check_mlp_backward(fn, name, case):
    """Compare fn's loss and gradients with autograd's."""
    X, y, params, mask, p = case

    def run(answer):  # on copies: nothing the answer changes reaches the next run
        return answer(X.clone(), y.clone(), {k: v.clone() for k, v in params.items()},
                      mask.clone(), p)
    result = run(fn)
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)
            and all(isinstance(result[1].get(k), torch.Tensor) for k in params)):
        raise Fail("return (loss, grads), grads a dict of tensors for W1, b1, W2, b2")
    loss, grads = result
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    h = torch.relu(X @ leaves["W1"] + leaves["b1"]) * mask / (1 - p)
    ref_loss = torch.nn.functional.cross_entropy(h @ leaves["W2"] + leaves["b2"], y)
    ref_loss.backward()
    ref_loss = ref_loss.item()
    try:
        loss = float(loss)
    except (TypeError, ValueError, RuntimeError):
        raise Fail("loss must be a number (or a one-element tensor)") from None
    if rel_error(loss, ref_loss) > 1e-10:
        if rel_error(loss, ref_loss * len(y)) < 1e-10:
            raise Fail("the loss is the sum over the batch: take the mean")
        raise Fail(f"the loss is {loss:.6f}, autograd's {ref_loss:.6f}: check the "
                   "forward pass (ReLU, dropout with the given mask and 1/(1-p), softmax "
                   "cross-entropy)")
    for key, leaf in leaves.items():
        if grads[key].shape != leaf.shape:
            raise Fail(f"grads['{key}'] has shape {tuple(grads[key].shape)}, "
                       f"{key} has {tuple(leaf.shape)}")
    errors = {k: rel_error(grads[k], leaf.grad) for k, leaf in leaves.items()}
    table = ", ".join(f"{k} {e:.1e}" for k, e in errors.items())
    bad = [k for k, e in errors.items() if e > 1e-7]
    if not bad:
        return report(name, True, f"relative errors against autograd: {table}")
    hint = known_mistake(grads, MLP_MISTAKES, lambda wrong: run(wrong)[1])
    if hint is None and "b2" in bad:
        hint = "start from dscores = (softmax(scores) - onehot(y)) / N; db2 is its column sum"
    if hint is None and "W2" in bad:
        hint = "dW2 = h.T @ dscores, with h the activations AFTER dropout (mask and 1/(1-p))"
    raise Fail(f"relative errors {table}: " + (hint or "the gradient goes wrong between "
               "the layers: dh = dscores @ W2.T, times mask / (1-p), times (z1 > 0)"))


# --- The references (the grader's stand-ins for a failed function) and the tables ----

def dropout_layer(X, p):
    """Inverted dropout: drop each element with probability p, scale the rest by 1/(1-p)."""
    if not 0 <= p <= 1:
        raise ValueError(f"p is a probability, got {p}")
    return torch.zeros_like(X) if p == 1 else X * _mask(X, p) / (1 - p)


def dropout_forward(X, p):
    """Inverted dropout that also returns its 0/1 mask."""
    mask = _mask(X, p)
    return (torch.zeros_like(X) if p == 1 else X * mask / (1 - p)), mask


def dropout_backward(dout, mask, p):
    """dL/dX of inverted dropout for the mask of the forward pass."""
    return torch.zeros_like(dout) if p == 1 else dout * mask / (1 - p)


def numerical_gradient(f, X, dout, h=1e-5):
    """Centered differences of sum(f(X) * dout) with respect to X (X is put back)."""
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


# Found by their properties (the check's relations), listed here for the tests.
FORWARD_MISTAKES = [
    Mistake(lambda X, p: (dropout_forward(X, p)[0], dropout_forward(X, p)[1] / (1 - p)),
            "only 0 and 1"),
    Mistake(lambda X, p: dropout_forward(X, p)[0], "return a pair (out, mask)"),
]
NUMERICAL_MISTAKES = [
    Mistake(_one_sided, "about h: a one-sided difference; use the centered "
            "(f(X+h) - f(X-h)) / (2h)"),
    Mistake(lambda f, X, dout, h=1e-5: 2 * numerical_gradient(f, X, dout, h),
            "off by a factor 2: a centered difference divides f(X+h) - f(X-h) by 2h"),
    # moves all of X by h first, and never puts it back
    Mistake(lambda f, X, dout, h=1e-5: numerical_gradient(f, X.add_(h), dout, h),
            "put X[i] back"),
    Mistake(lambda f, X, dout, h=1e-5: numerical_gradient(f, X, torch.ones_like(dout), h),
            "weight by dout: the gradient of sum(f(X) * dout)"),
]

# check name -> its known mistakes (tests/test_checks_tables.py walks them all)
MISTAKES = {"dropout_layer": LAYER_MISTAKES, "dropout_forward": FORWARD_MISTAKES,
            "dropout_backward": BACKWARD_MISTAKES, "numerical_gradient": NUMERICAL_MISTAKES,
            "mlp_backward": MLP_MISTAKES, "mlp_backward_other_sizes": MLP_MISTAKES}
# check name -> the function that replaces the student's when that check fails
REFERENCES = {"dropout_layer": dropout_layer, "dropout_forward": dropout_forward,
              "dropout_backward": dropout_backward, "numerical_gradient": numerical_gradient,
              "mlp_backward": mlp_by_hand, "mlp_backward_other_sizes": mlp_by_hand}
