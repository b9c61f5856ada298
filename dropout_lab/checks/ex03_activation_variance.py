"""Exercise 3 (activation variance): its checks.

`check_variance_prediction(fn)` for fn(h, p) = Var[h] + p/(1-p)·E[h²] per unit, and
`check_collect_activations(fn)` for the forward-hook function
fn(model, X, train) -> [(h, h_dropped), ...], one pair per hidden layer. The
reference implementations (`reference_*`) are used by the checks and tests.

Every check prints one line, `[PASS] name: ...` or `[FAIL] name: hint`, and
returns a Result (engine.py).
"""
import math

import torch

from ..training import make_mlp
from .engine import call_student, report, check

__all__ = ["check_variance_prediction", "check_collect_activations"]


# ------------------------------------------------------------------ exercise 3


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


def _prediction_mistakes(h, p):
    """The classic wrong formulas, each with its hint."""
    var, msq, mean = h.var(0, unbiased=False), (h ** 2).mean(0), h.mean(0)
    r = p / (1 - p)
    inv = (1 - p) / p if p > 0 else math.inf
    return [
        (var + r * var, "you used p/(1-p)·Var[h]; the added term is p/(1-p)·E[h²], the mean "
                        "of the SQUARES (the mask multiplies h, not h - E[h])"),
        (var + p * msq, "the factor is p/(1-p), not p: the survivors are scaled by 1/(1-p), "
                        "which is where the 1/(1-p) comes from"),
        (var + inv * msq, "the factor is p/(1-p), not (1-p)/p: with p the DROP probability, "
                          "more dropping must mean more variance"),
        (var + r * mean ** 2, "you used E[h]²; the added term is p/(1-p)·E[h²] (the mean of "
                              "the squares, not the square of the mean)"),
        (r * msq, "you returned only the noise term p/(1-p)·E[h²]: add Var[h]"),
        (msq / (1 - p), "that is E[h'²] = E[h²]/(1-p), the second moment; subtract E[h']² = "
                        "E[h]² to get the variance"),
        (var, "you returned Var[h]: the prediction must grow with p"),
        (var.sqrt() + r * msq, "you used the standard deviation of h where its variance "
                               "belongs"),
    ]


@check
def check_variance_prediction(fn):
    """fn(h, p) -> a (units,) tensor: Var[h] + p/(1-p)·E[h²] per unit, over examples."""
    name = "check_variance_prediction"
    h = _activations()
    first, failed = call_student(name, fn, h.clone(), 0.5)
    if failed is not None:
        return failed
    again, _ = call_student(name, fn, h.clone(), 0.5)
    if isinstance(first, torch.Tensor) and isinstance(again, torch.Tensor) and \
            first.shape == again.shape and not torch.equal(first, again):
        return report(name, False, "two calls with the same h gave different results: "
                      "compute the formula from h, not a Monte Carlo estimate with random masks")
    for p in (0.2, 0.5, 0.8, 0.0):
        out, failed = call_student(name, fn, h.clone(), p)
        if failed is not None:
            return failed
        try:
            out = torch.as_tensor(out, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            return report(name, False, f"return a tensor, got {type(out).__name__}")
        right = reference_variance_prediction(h, p)
        if out.numel() == 1:
            pooled = h.var(unbiased=False) + p / (1 - p) * (h ** 2).mean()
            if torch.isclose(out.reshape(()), pooled, rtol=1e-3) or \
                    torch.isclose(out.reshape(()), right.mean(), rtol=1e-3):
                return report(name, False, "you returned one number; return one value per "
                              "unit, shape (units,), with the variance over examples (dim 0); "
                              "average over units afterwards")
            return report(name, False, f"return one value per unit, shape {tuple(right.shape)}, "
                          "not a single number")
        if out.shape == (h.shape[0],):
            return report(name, False, f"shape {tuple(out.shape)}: you computed over units "
                          "(dim 1); compute over examples (dim 0), one value per unit")
        if out.shape != right.shape:
            return report(name, False, f"shape {tuple(out.shape)}, expected {tuple(right.shape)}"
                          " (one value per unit)")
        if torch.allclose(out, right, rtol=1e-3, atol=1e-9):
            continue
        for wrong, hint in _prediction_mistakes(h, p):
            if torch.allclose(out, wrong, rtol=1e-3, atol=1e-9):
                return report(name, False, f"at p = {p}: {hint}")
        return report(name, False, f"at p = {p}: expected {right[:3].tolist()} ... for the "
                      f"first units, got {out[:3].tolist()} ...; the formula is "
                      "Var[h] + p/(1-p)·E[h²], per unit, over examples")
    return report(name, True, "Var[h] + p/(1-p)·E[h²] per unit, right for p = 0, 0.2, 0.5, 0.8")


def reference_collect_activations(model, X, train):
    """Run X through the model in train mode (train=True) or eval mode and return, per
    hidden layer, the pair (h, h_dropped): the ReLU's output and the Dropout's output.
    The model's mode is restored and the hooks removed afterwards."""
    captured, handles = [], []

    def keep(module, inputs, output):
        captured.append(output.detach())

    for module in model.modules():
        if isinstance(module, (torch.nn.ReLU, torch.nn.Dropout)):
            handles.append(module.register_forward_hook(keep))
    was_training = model.training
    model.train(train)
    try:
        with torch.no_grad():
            model(X)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return list(zip(captured[0::2], captured[1::2]))


def _tiny_model_and_data():
    """A 10-32-16-10 MLP with dropout 0.5 then 0.25, and 3000 random inputs."""
    model = make_mlp(dropout=(0.5, 0.25), hidden=(32, 16), seed=0, num_inputs=10)
    X = torch.randn(3000, 10, generator=torch.Generator().manual_seed(1))
    return model, X


def _has_hooks(model):
    return any(len(m._forward_hooks) or len(m._forward_pre_hooks) for m in model.modules())


def _check_pairs(name, pairs, n_layers, X):
    """Format: a list of n_layers (h, h_dropped) pairs of (n, units) tensors."""
    if not isinstance(pairs, (list, tuple)):
        return report(name, False, "return a list with one (h, h_dropped) pair per hidden "
                      f"layer, got {type(pairs).__name__}")
    if len(pairs) != n_layers:
        return report(name, False, f"{len(pairs)} entries for a net with {n_layers} hidden "
                      "layers: return one (h, h_dropped) pair per hidden layer (hook each ReLU"
                      " and each Dropout once; clear what you collected between calls)")
    for i, pair in enumerate(pairs):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2 or \
                not all(isinstance(t, torch.Tensor) for t in pair):
            return report(name, False, f"entry {i} is not a pair of tensors (h, h_dropped)")
        if pair[0].shape != pair[1].shape or pair[0].shape[0] != len(X):
            return report(name, False, f"layer {i + 1}: shapes {tuple(pair[0].shape)} and "
                          f"{tuple(pair[1].shape)}; expected (examples, units) for both")
    return None


@check
def check_collect_activations(fn):
    """fn(model, X, train) -> [(h, h_dropped), ...] per hidden layer, via forward hooks."""
    name = "check_collect_activations"
    model, X = _tiny_model_and_data()
    ref_eval = reference_collect_activations(model, X, train=False)
    rates = [m.p for m in model if isinstance(m, torch.nn.Dropout)]
    for start_mode, train in ((True, False), (False, True), (True, True), (False, False)):
        model.train(start_mode)
        torch.manual_seed(0)
        pairs, failed = call_student(name, fn, model, X, train)
        if failed is not None:
            return failed
        bad = _check_pairs(name, pairs, len(rates), X)
        if bad is not None:
            return bad
        if _has_hooks(model):
            return report(name, False, "hooks are still attached after your function returned:"
                          " keep the handles of register_forward_hook and call "
                          "handle.remove() (in a finally: block)")
        if model.training != start_mode:
            return report(name, False, f"the model came in {'train' if start_mode else 'eval'}"
                          f" mode and left in {'train' if model.training else 'eval'} mode: "
                          "remember model.training and restore it at the end")
        if any(t.requires_grad for pair in pairs for t in pair):
            return report(name, False, "the tensors still carry the autograd graph: run the "
                          "forward pass under torch.no_grad() (or .detach() in the hook)")
        h1, h1_out = pairs[0]
        if not torch.allclose(h1, ref_eval[0][0], atol=1e-5):
            if (h1 < 0).any():
                return report(name, False, "h has negative values: hook the ReLU's output "
                              "(after the activation), not the Linear layer's")
            if torch.allclose(h1_out, ref_eval[0][0], atol=1e-5):
                return report(name, False, "the pair looks swapped: return (h, h_dropped), "
                              "the ReLU's output first")
            return report(name, False, "layer 1's h is not the ReLU output of the first "
                          "Linear layer: hook each ReLU and each Dropout, in network order")
        if not train:
            for i, ((h, out), (h_ref, _)) in enumerate(zip(pairs, ref_eval)):
                if not torch.equal(h, out):
                    return report(name, False, f"train=False, layer {i + 1}: the dropout "
                                  "output differs from its input, so dropout was active: "
                                  "call model.eval() (model.train(False)) before the forward")
                if not torch.allclose(h, h_ref, atol=1e-5):
                    return report(name, False, f"train=False, layer {i + 1}: h differs from "
                                  "the eval-mode activations")
            continue
        for i, ((h, out), p) in enumerate(zip(pairs, rates)):
            if torch.equal(h, out):
                return report(name, False, f"train=True, layer {i + 1}: the dropout output "
                              "equals its input: call model.train() before the forward, and "
                              "hook the Dropout's OUTPUT (the hook's third argument)")
            kept = out != 0
            scale = (out[kept] / h[kept]).mean().item()
            dropped = ((out == 0) & (h != 0)).sum().item() / max(1, (h != 0).sum().item())
            if abs(scale - 1 / (1 - p)) > 1e-3 or abs(dropped - p) > 0.05:
                return report(name, False, f"train=True, layer {i + 1} (p = {p}): the second "
                              "tensor is not the dropout output of the first (survivors "
                              f"scaled by {scale:.3f}, {dropped:.1%} of units dropped); "
                              "pair each ReLU with the Dropout that follows it")
    return report(name, True, "one (h, h_dropped) pair per hidden layer, right in train and "
                  "eval mode; mode restored and hooks removed")
