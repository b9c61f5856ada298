"""Exercise 3 (activation variance): the predicted variance of a unit after dropout,
Var[h] + p/(1-p)·E[h²], and the forward hooks that collect (h, h_dropped) per hidden
layer. A wrong formula is named by the first known mistake that gives the student's
answer on the same activations; p is the DROP probability.
"""
import torch

from ..training import make_mlp
from .engine import Fail, Mistake, answer_hint, check, known_mistake, report, seeded

__all__ = ["check_variance_prediction", "check_collect_activations"]


def reference_variance_prediction(h, p):
    """Var[h'] predicted per unit: Var[h] + p/(1-p)·E[h²], both over examples (dim 0)."""
    return h.var(0, unbiased=False) + p / (1 - p) * (h ** 2).mean(0)


def _activations(n=4000, units=6, seed=0):
    """ReLU-like test activations whose units differ in mean and spread (float64),
    so that E[h²] and Var[h] differ clearly, and per unit from pooled."""
    g = torch.Generator().manual_seed(seed)
    shift = torch.linspace(-0.5, 2.0, units, dtype=torch.float64)
    scale = torch.linspace(0.5, 2.0, units, dtype=torch.float64)
    return torch.relu(torch.randn(n, units, generator=g, dtype=torch.float64) * scale + shift)


def _as_float64(out):
    try:
        return torch.as_tensor(out, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise Fail(f"return a tensor, got {type(out).__name__}") from None


@check
def check_variance_prediction(fn):
    """fn(h, p) -> a (units,) tensor: Var[h] + p/(1-p)·E[h²] per unit, over examples."""
    h = _activations()
    with seeded(0):
        first, again = fn(h.clone(), 0.5), fn(h.clone(), 0.5)
        if isinstance(first, torch.Tensor) and isinstance(again, torch.Tensor) and \
                first.shape == again.shape and not torch.equal(first, again):
            raise Fail("two calls with the same h gave different results: compute the "
                       "formula from h, not a Monte Carlo estimate with random masks")
        for p in (0.2, 0.5, 0.8, 0.0):
            out, right = _as_float64(fn(h.clone(), p)), reference_variance_prediction(h, p)
            if out.numel() == 1:
                raise Fail("you returned one number; return one value per unit, shape "
                           "(units,), with the variance over examples (dim 0)")
            if out.shape == (h.shape[0],):
                raise Fail(f"shape {tuple(out.shape)}: you computed over units (dim 1); "
                           "compute over examples (dim 0), one value per unit")
            if out.shape != right.shape:
                raise Fail(f"shape {tuple(out.shape)}, expected {tuple(right.shape)} (one "
                           "value per unit)")
            if torch.allclose(out, right, rtol=1e-3, atol=1e-9):
                continue
            hint = known_mistake(out, PREDICTION_MISTAKES, lambda wrong: wrong(h, p),
                                 rtol=1e-3)
            if hint is None:
                formula = "; the formula is Var[h] + p/(1-p)·E[h²], per unit, over examples"
                hint = (f"expected {right[:3].tolist()} ... for the first units, got "
                        f"{out[:3].tolist()} ..." + answer_hint(formula))
            raise Fail(f"at p = {p}: {hint}")
    return report("variance_prediction", True, "Var[h] + p/(1-p)·E[h²] per unit, right for "
                  "p = 0, 0.2, 0.5, 0.8")


def reference_collect_activations(model, X, train):
    """Run X through the model in train mode (train=True) or eval mode and return, per
    hidden layer, the pair (h, h_dropped): the ReLU's output and the Dropout's output.
    The model's mode is restored and the hooks removed afterwards."""
    return _collect(model, X, train)


def _collect(model, X, train, kinds=(torch.nn.ReLU, torch.nn.Dropout), use_input=False,
             set_mode=True, restore=True, remove=True, no_grad=True, store=None):
    """The reference's work. Each keyword set to other than its default does one thing
    wrong, for the known mistakes (use_input: hook the Dropout's input; store: a list
    that outlives the call)."""
    captured = [] if store is None else store
    handles = []

    def keep(module, inputs, output):
        value = inputs[0] if use_input and isinstance(module, torch.nn.Dropout) else output
        captured.append(value.detach() if no_grad else value)

    for module in model.modules():
        if isinstance(module, kinds):
            handles.append(module.register_forward_hook(keep))
    was_training = model.training
    if set_mode:
        model.train(train)
    try:
        with torch.set_grad_enabled(not no_grad):
            model(X)
    finally:
        if restore:
            model.train(was_training)
        for handle in handles if remove else []:
            handle.remove()
    return list(zip(captured[0::2], captured[1::2]))


def _check_pairs(pairs, n_layers, X):
    """Fail unless pairs is a list of n_layers (h, h_dropped) pairs of (n, units) tensors."""
    if not isinstance(pairs, (list, tuple)):
        raise Fail("return a list with one (h, h_dropped) pair per hidden layer, got "
                   f"{type(pairs).__name__}")
    if len(pairs) != n_layers:
        raise Fail(f"{len(pairs)} entries for a net with {n_layers} hidden layers: return one "
                   "(h, h_dropped) pair per hidden layer (hook each ReLU and each Dropout "
                   "once; clear what you collected between calls)")
    for i, pair in enumerate(pairs):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2 or \
                not all(isinstance(t, torch.Tensor) for t in pair):
            raise Fail(f"entry {i} is not a pair of tensors (h, h_dropped)")
        if pair[0].shape != pair[1].shape or pair[0].shape[0] != len(X):
            raise Fail(f"layer {i + 1}: shapes {tuple(pair[0].shape)} and "
                       f"{tuple(pair[1].shape)}; expected (examples, units) for both")


def _check_layer(i, h, out, h_eval, p, train):
    """Fail unless (h, out) is layer i's (ReLU output, Dropout output) in the mode asked
    for: h_eval is the ReLU's output in eval mode, p the Dropout's rate."""
    if (i == 1 or not train) and not torch.allclose(h, h_eval, atol=1e-5):
        if (h < 0).any():
            raise Fail("h has negative values: hook the ReLU's output (after the "
                       "activation), not the Linear layer's")
        if torch.allclose(out, h_eval, atol=1e-5):
            raise Fail("the pair looks swapped: return (h, h_dropped), the ReLU's output "
                       "first")
        raise Fail(f"layer {i}'s h is not the ReLU output of its Linear layer: hook each "
                   "ReLU and each Dropout, in network order")
    if not train and not torch.equal(h, out):
        raise Fail(f"train=False, layer {i}: the dropout output differs from its input, so "
                   "dropout was active: call model.eval() (model.train(False)) before the "
                   "forward")
    if train and torch.equal(h, out):
        raise Fail(f"train=True, layer {i}: the dropout output equals its input: call "
                   "model.train() before the forward, and hook the Dropout's OUTPUT (the "
                   "hook's third argument)")
    kept = out != 0
    scale = (out[kept] / h[kept]).mean().item()
    dropped = ((out == 0) & (h != 0)).sum().item() / max(1, (h != 0).sum().item())
    if train and (abs(scale - 1 / (1 - p)) > 1e-3 or abs(dropped - p) > 0.05):
        raise Fail(f"train=True, layer {i} (p = {p}): the second tensor is not the dropout "
                   f"output of the first (survivors scaled by {scale:.3f}, {dropped:.1%} of "
                   "units dropped); pair each ReLU with the Dropout that follows it")


@check
def check_collect_activations(fn):
    """fn(model, X, train) -> [(h, h_dropped), ...] per hidden layer, via forward hooks."""
    with seeded(0):  # nn.Linear draws its first weights from the global generator
        model = make_mlp(dropout=(0.5, 0.25), hidden=(32, 16), seed=0, num_inputs=10)
    X = torch.randn(3000, 10, generator=torch.Generator().manual_seed(1))
    ref_eval = reference_collect_activations(model, X, train=False)
    rates = [m.p for m in model if isinstance(m, torch.nn.Dropout)]
    for start_mode, train in ((True, False), (False, True), (True, True), (False, False)):
        model.train(start_mode)
        with seeded(0):
            pairs = fn(model, X, train)
        _check_pairs(pairs, len(rates), X)
        if any(m._forward_hooks or m._forward_pre_hooks for m in model.modules()):
            raise Fail("hooks are still attached after your function returned: keep the "
                       "handles of register_forward_hook and call handle.remove() (in a "
                       "finally: block)")
        if model.training != start_mode:
            modes = ["train" if mode else "eval" for mode in (start_mode, model.training)]
            raise Fail(f"the model came in {modes[0]} mode and left in {modes[1]} mode: "
                       "remember model.training and restore it at the end")
        if any(t.requires_grad for pair in pairs for t in pair):
            raise Fail("the tensors still carry the autograd graph: run the forward pass "
                       "under torch.no_grad() (or .detach() in the hook)")
        for i, ((h, out), (h_eval, _), p) in enumerate(zip(pairs, ref_eval, rates), start=1):
            _check_layer(i, h, out, h_eval, p, train)
    return report("collect_activations", True, "one (h, h_dropped) pair per hidden layer, "
                  "right in train and eval mode; mode restored and hooks removed")


# The known mistakes (tests/test_checks_tables.py walks the tables)

def _todo(*args):
    raise NotImplementedError("TODO")


def _var(h):
    return h.var(0, unbiased=False)


def _msq(h):
    return (h ** 2).mean(0)


PREDICTION_MISTAKES = [
    Mistake(lambda h, p: _var(h) + p / (1 - p) * _var(h), "you used p/(1-p)·Var[h]; the "
            "added term is p/(1-p)·E[h²], the mean of the SQUARES (the mask multiplies h, "
            "not h - E[h])"),
    Mistake(lambda h, p: _var(h) + p * _msq(h), "the factor is p/(1-p), not p: the "
            "survivors are scaled by 1/(1-p), which is where the 1/(1-p) comes from"),
    Mistake(lambda h, p: _var(h) + (1 - p) / max(p, 1e-12) * _msq(h), "the factor is "
            "p/(1-p), not (1-p)/p: with p the DROP probability, more dropping must mean "
            "more variance"),
    Mistake(lambda h, p: _var(h) + p / (1 - p) * h.mean(0) ** 2, "you used E[h]²; the "
            "added term is p/(1-p)·E[h²] (the mean of the squares, not the square of the "
            "mean)"),
    Mistake(lambda h, p: p / (1 - p) * _msq(h), "you returned only the noise term "
            "p/(1-p)·E[h²]: add Var[h]"),
    Mistake(lambda h, p: _msq(h) / (1 - p), "that is E[h'²] = E[h²]/(1-p), the second "
            "moment; subtract E[h']² = E[h]² to get the variance"),
    Mistake(lambda h, p: _var(h), "you returned Var[h]: the prediction must grow with p"),
    Mistake(lambda h, p: _var(h).sqrt() + p / (1 - p) * _msq(h), "you used the standard "
            "deviation of h where its variance belongs"),
    Mistake(lambda h, p: h.var(1) + p / (1 - p) * (h ** 2).mean(1), "over units"),
    Mistake(lambda h, p: h.var() + p / (1 - p) * (h ** 2).mean(), "one number"),
    Mistake(lambda h, p: (h * (torch.rand_like(h) >= p) / (1 - p)).var(0), "Monte Carlo"),
    Mistake(lambda h, p: h.var(1) + p, "over units"),
    Mistake(_todo, "not implemented yet"),
]

COLLECT_MISTAKES = [Mistake(lambda m, X, t, kw=kw: _collect(m, X, t, **kw), hint)
                    for kw, hint in [
    ({"set_mode": False}, "model.eval()"),
    ({"restore": False}, "restore"),
    ({"remove": False}, "handle.remove()"),
    ({"kinds": (torch.nn.Linear, torch.nn.Dropout)}, "not the Linear"),
    ({"use_input": True}, "OUTPUT"),
    ({"store": []}, "between calls"),
    ({"no_grad": False}, "autograd graph")]] + [
    Mistake(lambda m, X, t: _collect(m, X, t, set_mode=not t), "model.train()"),
    Mistake(lambda m, X, t: [(b, a) for a, b in _collect(m, X, t)], "swapped"),
    Mistake(_todo, "not implemented yet"),
]

MISTAKES = {"variance_prediction": PREDICTION_MISTAKES,
            "collect_activations": COLLECT_MISTAKES}
REFERENCES = {"variance_prediction": reference_variance_prediction,
              "collect_activations": reference_collect_activations}
PASSES = {"variance_prediction": [(lambda h, p: h.var(0) + p / (1 - p) * _msq(h),)]}
