"""dl.train_stacked: K copies of one architecture, any nn.Module, trained at once.

dl.sweep stacks the chapter's MLP with its own forward and backward passes;
modules of other kinds (a DropConnect layer, a noise layer of one's own) train
with dl.train's plain loop, one model at a time. This file stacks those too,
with torch.func: the K models' parameters become (K, ...) tensors
(stack_module_state), one call of the first model's code runs them all
(functional_call under vmap), and autograd gives each model the gradient of its
own mean loss. The step is dl.train's: SGD with the weight decay on the weights
(parameters with more than one dimension), not on the biases.

A model's result depends only on itself and its seed, never on the stack: its
data order comes from a generator seeded with its seed (as in dl.train), and
so does its noise. vmap's own randomness would draw one tensor for the whole
stack, so a model's noise would depend on its place in it. Instead, every call
of torch.rand, rand_like, randn or randn_like in the model's code is answered
with K draws made outside vmap, model k's from its own generator seeded with
its seed: the same numbers, in the same order, that dl.train's plain loop
draws from the global generator after seeding it with that seed. Any other
random operation (nn.Dropout, torch.bernoulli, ...) stops with an error.
"""
import copy
import functools
import time

import pandas as pd
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode
from tqdm.auto import tqdm

from .device import pick_device
from .engine import describe_precision, epoch_batches, resolve_precision
from .sweep import subset_index
from .training import check_sgd, heldout_name
from .validate import check_int, check_seeds

DRAWS = {torch.rand: torch.rand, torch.rand_like: torch.rand,
         torch.randn: torch.randn, torch.randn_like: torch.randn}


class StackError(ValueError):
    """The models cannot train in one stack."""


def config(module):
    """What a module's code reads besides its tensors: its public attributes
    (nn.Module keeps its own bookkeeping in attributes that start with _)."""
    return {k: v for k, v in vars(module).items()
            if not k.startswith("_") and k != "training"}


def same_value(a, b):
    if isinstance(a, functools.partial) and isinstance(b, functools.partial):
        return (a.func is b.func and len(a.args) == len(b.args)
                and all(map(same_value, a.args, b.args))
                and a.keywords.keys() == b.keywords.keys()
                and all(same_value(a.keywords[k], b.keywords[k]) for k in a.keywords))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return (type(a) is type(b) and len(a) == len(b)
                and all(map(same_value, a, b)))
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return a is b
    try:
        return a is b or bool(a == b)
    except Exception:   # a comparison that fails or is ambiguous: not the same
        return False


def check_same_architecture(models):
    """Raise StackError unless every model is a copy of models[0]'s architecture:
    the same submodules, parameter names and shapes, and attributes. Only the
    weights may differ, since one call of models[0]'s code runs them all."""
    if not models or not all(isinstance(m, nn.Module) for m in models):
        raise StackError("models must be a non-empty list of nn.Module")
    first = models[0]
    if any(True for _ in first.buffers()):
        raise StackError("models with buffers (e.g. BatchNorm's running statistics) "
                         "are not supported by the stacked trainer; use dl.train")
    shapes = [(n, p.shape, p.dtype) for n, p in first.named_parameters()]
    mods = dict(first.named_modules())
    for i, model in enumerate(models[1:], start=1):
        where = f"models[{i}] differs from models[0]"
        other = dict(model.named_modules())
        if [(n, type(m)) for n, m in other.items()] != [(n, type(m))
                                                       for n, m in mods.items()]:
            raise StackError(f"{where} in its modules: {model} vs {first}")
        theirs = [(n, p.shape, p.dtype) for n, p in model.named_parameters()]
        if theirs != shapes:
            diff = [a for a, b in zip(theirs, shapes) if a != b] or theirs
            raise StackError(f"{where} in its parameters: {diff[0]}; a stack needs "
                             "the same parameter names, shapes and dtypes")
        for name, module in other.items():
            a, b = config(module), config(mods[name])
            for key in sorted(set(a) | set(b)):
                if key not in a or key not in b or not same_value(a[key], b[key]):
                    raise StackError(
                        f"{where} in the attribute {name + '.' if name else ''}{key} "
                        f"({a.get(key)!r} vs {b.get(key)!r}): one call of models[0]'s "
                        "code runs the whole stack, so the models may differ only in "
                        "their weights; train the others in a stack of their own")


def size_of(args):
    if len(args) == 1 and isinstance(args[0], (tuple, list, torch.Size)):
        return tuple(args[0])
    return tuple(args)


class Noise(TorchFunctionMode):
    """Answers the random draws of the model's code with per-model draws: under
    vmap, noise[i] (K, ...) holds model k's i-th draw in row k. With noise None,
    `plan` (a list) records what the draws are (function, shape, dtype, device);
    with plan None (evaluation), any draw is an error."""

    def __init__(self, plan, noise=None):
        super().__init__()
        self.plan, self.noise, self.calls = plan, noise, 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func not in DRAWS:
            return func(*args, **kwargs)
        if kwargs.get("generator") is not None:
            raise StackError(f"{func.__name__} with a generator of the model's own: the "
                             "stacked trainer gives each model its own generator")
        if func in (torch.rand_like, torch.randn_like):
            like = args[0]
            shape = tuple(like.shape)
            dtype = kwargs.get("dtype") or like.dtype
            device = kwargs.get("device") or like.device
        else:
            shape = size_of(args)
            dtype = kwargs.get("dtype") or torch.get_default_dtype()
            device = torch.device(kwargs.get("device") or "cpu")
        draw = (DRAWS[func], shape, dtype, torch.device(device))
        i, self.calls = self.calls, self.calls + 1
        if self.plan is None:
            raise StackError(f"{func.__name__} in evaluation mode: the stacked trainer "
                             "evaluates the models with their noise off")
        if self.noise is None:
            self.plan.append(draw)
            return torch.full(shape, 0.5, dtype=dtype, device=device)
        if i >= len(self.plan) or self.plan[i] != draw:
            raise StackError("the model's random draws changed from one step to the "
                             f"next (draw {i}: {draw[0].__name__}{shape}); the stacked "
                             "trainer needs the same draws, in the same order, every step")
        return self.noise[i]


def draw_noise(plan, generators):
    """(K, *shape) per planned draw, row k from generators[k]."""
    return [torch.stack([fn(shape, generator=g, dtype=dtype, device=device)
                         for g in generators]) for fn, shape, dtype, device in plan]


def random_op_error(error):
    return StackError(
        f"{error}\nThe stacked trainer draws each model's noise itself for torch.rand, "
        "rand_like, randn and randn_like only; write the noise with those (e.g. "
        "torch.rand_like(h) >= p instead of nn.Dropout or torch.bernoulli), or train "
        "the model with dl.train")


@torch.no_grad()
def evaluate_stacked(run, params, X, y, batch_size=5000):
    """Accuracy and mean cross-entropy (two (K,) tensors) of every model, eval mode."""
    K = len(next(iter(params.values())))
    correct = torch.zeros(K, device=X.device)
    loss = torch.zeros(K, device=X.device)
    for i in range(0, len(X), batch_size):
        logits = run(params, X[i:i + batch_size])
        target = y[i:i + batch_size]
        loss += F.cross_entropy(logits.transpose(1, 2), target.expand(K, -1),
                                reduction="none").sum(1)
        correct += (logits.argmax(2) == target).sum(1)
    return correct / len(X), loss / len(X)


def train_stacked(models, data, seeds, epochs=10, lr=0.1, batch_size=256,
                  weight_decay=0.0, n_train=None, device=None, progress=True,
                  precision="auto"):
    """Train K models of one architecture at once, in place, each as dl.train
    would train it alone with its seed.

    models: a list of nn.Module copies of one architecture (the same submodules,
    parameter shapes and attributes; only the weights differ), e.g. one per seed.
    seeds: one distinct seed per model; it fixes the model's data order and its
    noise. n_train: if given, model k trains on the n_train random images that
    dl.sweep (and dl.training_subset(data, n_train, seed)) give its seed. The other
    arguments are dl.train's. Noise must be drawn with torch.rand, rand_like, randn
    or randn_like: each model gets its own draws, from its own seed, as dl.train's
    plain loop draws them, so a model's result does not depend on the others in
    the stack (equal up to float rounding: a stacked matmul may round differently).

    Returns a DataFrame with one row per model per epoch: model (its index in
    models), seed, epoch, train_loss, train_acc (running averages, noise on),
    test_loss and test_acc (eval mode; valid_* on a validation split),
    seconds_per_model. The models end on the training device, in training mode.
    """
    models = list(models)
    check_same_architecture(models)
    seeds = check_seeds(seeds)
    if len(seeds) != len(models):
        raise ValueError(f"one seed per model: got {len(seeds)} seeds for "
                         f"{len(models)} models")
    epochs, batch_size, lr, weight_decay = check_sgd(epochs, batch_size, lr, weight_decay)
    device = data[0].device if device is None else pick_device(device)
    precision = resolve_precision(precision, device)
    held = heldout_name(data)
    X_train, y_train, X_held, y_held = (t.to(device) for t in data)
    K, n = len(models), len(X_train)
    subsets = None
    if n_train is not None:
        n = check_int("n_train", n_train, 1, len(X_train))
        subsets = torch.stack([subset_index(len(X_train), n, s) for s in seeds]).to(device)
    for model in models:
        model.to(device)
    params, _ = stack_module_state(models)          # (K, ...) leaves, copies
    base = copy.deepcopy(models[0]).to("meta")
    decayed = {name for name, p in params.items() if p.ndim > 2}   # model's ndim > 1
    autocast = torch.autocast(device.type, dtype=torch.bfloat16,
                              enabled=precision == "bf16")

    def one(param, X, noise, plan):
        with Noise(plan, noise) as mode:
            out = functional_call(base, param, (X,))
        if noise is not None and mode.calls != len(plan):
            raise StackError(f"the model drew {mode.calls} random tensors in a step, "
                             f"{len(plan)} before; the stacked trainer needs the same "
                             "draws every step")
        return out

    def run(param, X, noise=None, plan=None):
        in_dims = (0, 0 if X.ndim == 3 else None, 0 if noise else None)
        fn = vmap(lambda p, x, z: one(p, x, z, plan), in_dims=in_dims,
                  randomness="error")
        try:
            with autocast:
                return fn(param, X, noise)
        except RuntimeError as error:
            if "random operation" in str(error):
                raise random_op_error(error) from None
            raise

    def eval_run(param, X):
        base.eval()
        try:
            return run(param, X)
        finally:
            base.train()

    order_generators = [torch.Generator().manual_seed(s) for s in seeds]
    noise_generators = [torch.Generator(device).manual_seed(s) for s in seeds]
    plans = {}
    rows = []
    bar = tqdm(total=epochs * K, disable=not progress, leave=False, desc="model-epochs")
    base.train()
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        loss_sum = torch.zeros(K, device=device)
        correct = torch.zeros(K, device=device)
        for X, y in epoch_batches(X_train, y_train, order_generators, n, batch_size,
                                  subsets, device):
            B = X.shape[1]
            if B not in plans:                  # what the model draws, once per B
                plans[B] = []
                with torch.no_grad():
                    run(params, X, plan=plans[B])
            noise = draw_noise(plans[B], noise_generators)
            logits = run(params, X, noise, plans[B])
            loss = F.cross_entropy(logits.float().transpose(1, 2), y,
                                   reduction="none").mean(1)
            grads = torch.autograd.grad(loss.sum(), list(params.values()))
            with torch.no_grad():               # torch.optim.SGD's step, per model
                for (name, p), g in zip(params.items(), grads):
                    if name in decayed and weight_decay != 0:
                        g = g.add(p, alpha=weight_decay)
                    p.add_(g, alpha=-lr)
            loss_sum += loss.detach() * B
            correct += (logits.argmax(2) == y).sum(1)
        held_acc, held_loss = evaluate_stacked(eval_run, params, X_held, y_held)
        seconds = time.perf_counter() - start
        for k in range(K):
            rows.append({"model": k, "seed": seeds[k], "epoch": epoch,
                         "train_loss": loss_sum[k].item() / n,
                         "train_acc": correct[k].item() / n,
                         f"{held}_loss": held_loss[k].item(),
                         f"{held}_acc": held_acc[k].item(),
                         "seconds_per_model": seconds / K})
        bar.update(K)
    bar.close()
    with torch.no_grad():
        for k, model in enumerate(models):
            for name, p in model.named_parameters():
                p.copy_(params[name][k])
            model.train()
    table = pd.DataFrame(rows)
    table.attrs.update(device=str(device), precision=precision, path="stacked torch.func",
                       trained=describe_precision(precision, device))
    return table
