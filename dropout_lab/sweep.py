"""Train many small MLPs at once, so that every conclusion can rest on several seeds.

Models that share a shape (hidden widths, epochs, batch size, training-set
size) are stacked: their weights live in (models, in, out) tensors and one
batched matmul (`torch.baddbmm`) runs them all. Everything else may differ
per model inside a stack: dropout rate per layer, noise scheme, weight decay,
learning rate. Each model draws its own initialization and data order from a
generator seeded with its seed, exactly as `train.make_mlp` and `train.train`
do, and its own dropout masks.

Models with the same seed get the same initialization and data order whatever
their setting (common random numbers): differences between settings are then
not blurred by differences in luck.
"""
import hashlib
import math
import time
from pathlib import Path

import pandas as pd
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from .data import FashionMNIST, default_data_dir
from .device import pick_device, set_seed
from .layers import check_p
from .training import make_mlp

DEFAULTS = {"dropout": (0.5, 0.5), "hidden": (256, 256), "weight_decay": 0.0, "lr": 0.1,
            "noise": "bernoulli", "epochs": 10, "batch_size": 256, "n_train": None}
NOISES = ("bernoulli", "gaussian")
SHAPE_KEYS = ("hidden", "epochs", "batch_size", "n_train")  # what must match to stack


def complete_setting(setting, n_available):
    """Fill in defaults and check one setting; raise ValueError before any training."""
    if not isinstance(setting, dict):
        raise ValueError(f"each setting must be a dict, got {setting!r}")
    unknown = set(setting) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown setting name(s) {sorted(unknown)}; "
                         f"known names: {sorted(DEFAULTS)}")
    s = {**DEFAULTS, **setting}
    s["dropout"] = tuple(float(check_p(p)) for p in s["dropout"])
    s["hidden"] = tuple(int(h) for h in s["hidden"])
    if "hidden" not in setting and len(s["dropout"]) != len(s["hidden"]):
        s["hidden"] = (256,) * len(s["dropout"])
    if len(s["dropout"]) != len(s["hidden"]):
        raise ValueError(f"setting {setting}: {len(s['dropout'])} dropout rates for "
                         f"{len(s['hidden'])} hidden layers; give one rate per layer")
    if s["noise"] not in NOISES:
        raise ValueError(f"unknown noise {s['noise']!r}; choose one of {NOISES}")
    if s["noise"] == "gaussian" and max(s["dropout"]) >= 1:
        raise ValueError("gaussian noise needs p < 1 (its variance p/(1-p) is infinite at 1)")
    if int(s["epochs"]) < 1 or int(s["batch_size"]) < 1:
        raise ValueError(f"setting {setting}: epochs and batch_size must be at least 1")
    if s["lr"] <= 0 or s["weight_decay"] < 0:
        raise ValueError(f"setting {setting}: lr must be > 0 and weight_decay >= 0")
    if s["n_train"] is not None and not 1 <= int(s["n_train"]) <= n_available:
        raise ValueError(f"n_train must be between 1 and {n_available}, got {s['n_train']}")
    return s


def init_stack(seeds, sizes, device):
    """Stacked weights (K, in, out) and biases (K, 1, out), each model drawn like make_mlp."""
    Ws = [[] for _ in sizes[1:]]
    bs = [[] for _ in sizes[1:]]
    for seed in seeds:
        generator = torch.Generator().manual_seed(seed)
        for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            bound = 1 / math.sqrt(n_in)
            Ws[layer].append(((torch.rand((n_out, n_in), generator=generator) * 2 - 1) * bound).T)
            bs[layer].append((torch.rand((n_out,), generator=generator) * 2 - 1) * bound)
    Ws = [torch.stack(w).to(device).requires_grad_() for w in Ws]
    bs = [torch.stack(b)[:, None, :].to(device).requires_grad_() for b in bs]
    return Ws, bs


def noise_params(p, gaussian):
    """Per layer, per model: (keep threshold, 1/(1-p) or 0 at p = 1, Gaussian std,
    is Gaussian), each shaped (K, 1, 1) to broadcast over (K, batch, units).

    The threshold is for 16-bit random integers (see keep_mask): p is rounded to a
    multiple of 2**-16, and the scale uses the rounded p, so that the mean of the
    noise stays exactly 1. The drop rate moves by less than 8e-6."""
    p = p.T[:, :, None, None]
    ticks = torch.round(p * 2**16)
    threshold = (ticks - 2**15).clamp(max=2**15 - 1).to(torch.int16)
    keep = 1 - ticks / 2**16
    scale = torch.where(keep > 0, 1 / keep.clamp_min(2**-16), torch.zeros_like(p))
    std = torch.where(p < 1, torch.sqrt(p / (1 - p).clamp_min(1e-12)), torch.zeros_like(p))
    return [(threshold[l], scale[l], std[l], gaussian[:, None, None]) for l in range(len(p))]


def keep_mask(shape, threshold, device):
    """Keep (True) with probability 1 - (threshold + 2**15) / 2**16, per element.

    A float from torch.rand costs one call of the CPU's serial generator per
    element, and masks were 40 % of a sweep's time. Here one 64-bit draw gives
    four 16-bit integers, a quarter of the calls; on a GPU it makes no difference."""
    n = math.prod(shape)
    bits = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-2**63, None)
    return bits.view(torch.int16)[:n].view(shape) >= threshold


def noise(H, threshold, scale, std, gaussian):
    """Per-model multiplicative noise on H (K, B, units).

    Bernoulli: inverted dropout, keep with probability 1-p and scale by 1/(1-p).
    Gaussian: multiplier 1 + sqrt(p/(1-p))·eps, with the same mean (1) and
    variance (p/(1-p)) as the Bernoulli one (Srivastava et al., 2014, sec. 10).
    """
    multiplier = keep_mask(H.shape, threshold, H.device).to(H.dtype).mul_(scale)
    if gaussian.any():
        multiplier = torch.where(gaussian, 1 + std * torch.randn_like(H), multiplier)
    return H * multiplier


def forward(Ws, bs, X, noises=None):
    """Logits (K, B, 10) of all models; noise after each hidden layer when `noises`
    (from noise_params) is given. X is (K, B, 784), each model its own batch,
    or (B, 784), one batch shared by all."""
    H = X
    for layer, (W, b) in enumerate(zip(Ws, bs)):
        H = torch.baddbmm(b, H, W) if H.ndim == 3 else torch.matmul(H, W) + b
        if layer < len(Ws) - 1:
            H = torch.relu(H)
            if noises is not None:
                H = noise(H, *noises[layer])
    return H


@torch.no_grad()
def evaluate_stack(Ws, bs, X, y, chunk=2000):
    """Test accuracy and mean cross-entropy of every model: two (K,) tensors."""
    correct = torch.zeros(Ws[0].shape[0], device=X.device)
    loss = torch.zeros(Ws[0].shape[0], device=X.device)
    for i in range(0, len(X), chunk):
        logits = forward(Ws, bs, X[i:i + chunk])
        target = y[i:i + chunk].expand(len(logits), -1)
        correct += (logits.argmax(-1) == target).sum(1)
        loss += F.cross_entropy(logits.transpose(1, 2), target, reduction="none").sum(1)
    return correct / len(X), loss / len(X)


def subset_index(n_available, n_train, seed):
    """Indices of the n_train training images a sweep gives to `seed`. The generator
    is seeded apart from the one for the data order (10**6 + seed), so that the
    subset does not change with the number of epochs or the batch size."""
    generator = torch.Generator().manual_seed(10**6 + seed)
    return torch.randperm(n_available, generator=generator)[:n_train]


def training_subset(data, n_train, seed):
    """The data a sweep trains `seed` on when the setting has n_train: the same
    random training images, with the full test set. Use it to train a model with
    dl.train on exactly what its twin in a sweep saw, or to measure its train accuracy."""
    X_train, y_train, X_test, y_test = data
    index = subset_index(len(X_train), n_train, seed).to(X_train.device)
    return FashionMNIST(X_train[index], y_train[index], X_test, y_test)


def train_stack(jobs, data, device, bar):
    """Train one stack of models (settings that share SHAPE_KEYS); return rows and params."""
    first = jobs[0][0]
    epochs, batch_size, n_train = first["epochs"], first["batch_size"], first["n_train"]
    X_train, y_train, X_test, y_test = data
    seeds = [seed for _, seed in jobs]
    K = len(jobs)
    # dropout masks come from the global generator: seed it from the stack's seeds
    # so that a sweep (and a cached result) is reproducible on the CPU
    set_seed(hash((tuple(seeds), first["hidden"], first["epochs"])) % 2**31)
    Ws, bs = init_stack(seeds, (X_train.shape[1], *first["hidden"], 10), device)
    p = torch.tensor([s["dropout"] for s, _ in jobs], device=device)
    gaussian = torch.tensor([s["noise"] == "gaussian" for s, _ in jobs], device=device)
    noises = noise_params(p, gaussian)
    lr = torch.tensor([s["lr"] for s, _ in jobs], device=device)[:, None, None]
    wd = torch.tensor([s["weight_decay"] for s, _ in jobs], device=device)[:, None, None]
    decay = 1 - lr * wd if wd.any() else None  # W <- W - lr*(grad + wd*W)
    order_generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    if n_train is None:
        subsets = None
        n = len(X_train)
    else:  # each seed its own random subset, drawn apart from the data order
        subsets = torch.stack([subset_index(len(X_train), n_train, seed)
                               for seed in seeds]).to(device)
        n = n_train
    rows = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        order = torch.stack([torch.randperm(n, generator=g) for g in order_generators]).to(device)
        if subsets is not None:
            order = torch.gather(subsets, 1, order)
        loss_sum = torch.zeros(K, device=device)
        correct = torch.zeros(K, device=device)
        for i in range(0, n, batch_size):
            idx = order[:, i:i + batch_size]
            X = X_train.index_select(0, idx.flatten()).view(*idx.shape, -1)  # = X_train[idx], faster
            logits = forward(Ws, bs, X, noises)
            target = y_train[idx]
            losses = F.cross_entropy(logits.transpose(1, 2), target, reduction="none").mean(1)
            grads = torch.autograd.grad(losses.sum(), Ws + bs)
            with torch.no_grad():  # SGD; weight decay on the weights only, as in train()
                if decay is not None:
                    for W in Ws:
                        W.mul_(decay)
                for param, grad in zip(Ws + bs, grads):
                    param.addcmul_(lr, grad, value=-1)
                loss_sum += losses * idx.shape[1]
                correct += (logits.argmax(-1) == target).sum(1)
        test_acc, test_loss = evaluate_stack(Ws, bs, X_test, y_test)
        seconds = time.perf_counter() - start
        for k, (setting, seed) in enumerate(jobs):
            rows.append({**setting, "seed": seed, "epoch": epoch,
                         "train_loss": loss_sum[k].item() / n,
                         "train_acc": correct[k].item() / n,
                         "test_loss": test_loss[k].item(), "test_acc": test_acc[k].item(),
                         "seconds_per_model": seconds / K})
        bar.update(K)
    return rows, [[W.detach()[k] for W in Ws] + [b.detach()[k, 0] for b in bs]
                  for k in range(K)]


def to_module(setting, params):
    """An nn.Sequential MLP (eval mode, CPU) holding one model's trained weights."""
    model = make_mlp(setting["dropout"], setting["hidden"])
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    n = len(linears)
    with torch.no_grad():
        for layer, linear in enumerate(linears):
            linear.weight.copy_(params[layer].T)
            linear.bias.copy_(params[n + layer])
    return model.eval()


def cache_path(full, seeds, data, device, cache):
    """Where a sweep's results are kept: a file named by a hash of everything that
    decides them (settings, seeds, data, device type, and this file's code)."""
    folder = Path(cache) if isinstance(cache, (str, Path)) else default_data_dir() / "sweeps"
    X_train, y_train, X_test, _ = data
    key = repr((full, seeds, device.type, tuple(X_train.shape), tuple(X_test.shape),
                hashlib.sha256(X_train[:512].cpu().numpy().tobytes()).hexdigest(),
                hashlib.sha256(y_train.cpu().numpy().tobytes()).hexdigest(),
                Path(__file__).read_text()))
    return folder / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt"


def sweep(settings, seeds, data, device="auto", max_floats=1.5e8, progress=True,
          return_models=False, cache=False):
    """Train every setting with every seed, stacking models that share a shape.

    settings: list of dicts with keys from DEFAULTS (missing keys take the
    defaults), e.g. [{"dropout": (0, 0)}, {"dropout": (0.5, 0.5)}].
    seeds: a number of seeds (0, 1, ...) or a list of seeds.
    Returns a DataFrame with one row per model per epoch: the setting's values
    (dropout and hidden as tuples, plus p1, p2, ... per layer), setting (its
    index in `settings`), seed, epoch, train_loss, train_acc (running averages,
    noise on), test_loss, test_acc (noise off), seconds_per_model.
    With return_models=True, also a dict {(setting index, seed): nn.Sequential}.
    cache=True (or a folder) keeps the results on disk and returns them the next
    time the same sweep is asked for, so notebooks that share an experiment train
    it once. The key covers settings, seeds, data, device type and this code.
    """
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seeds:
        raise ValueError("seeds must be a positive number or a non-empty list of seeds")
    if isinstance(settings, dict) or not isinstance(settings, (list, tuple)):
        raise TypeError(f"settings must be a list of dicts, one per setting, got "
                        f"{type(settings).__name__}: e.g. [{{'dropout': (0.5, 0.5)}}]")
    if not settings:
        raise ValueError("settings is empty: give at least one dict, e.g. [{}] for the defaults")
    device = pick_device(device)
    full = [complete_setting(s, len(data[0])) for s in settings]
    path = cache_path(full, seeds, data, device, cache) if cache else None
    if path and path.is_file():
        saved = torch.load(path, weights_only=False)
        if progress:
            print(f"sweep: {len(full) * len(seeds)} models loaded from the cache {path}")
        table = pd.DataFrame(saved["table"])
        return (table, saved["models"]) if return_models else table
    data = [t.to(device) for t in data]
    groups = {}
    for index, setting in enumerate(full):
        key = tuple(setting[k] for k in SHAPE_KEYS)
        groups.setdefault(key, []).extend(({**setting, "setting": index}, seed) for seed in seeds)
    rows, models = [], {}
    total = sum(s["epochs"] for s in full) * len(seeds)
    bar = tqdm(total=total, disable=not progress, leave=False, desc="model-epochs")
    start = time.perf_counter()
    for jobs in groups.values():
        hidden = jobs[0][0]["hidden"]
        sizes = (data[0].shape[1], *hidden, 10)
        floats = 4 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:])) + 2000 * sum(hidden)
        per_chunk = max(1, int(max_floats // floats))
        for i in range(0, len(jobs), per_chunk):
            chunk = jobs[i:i + per_chunk]
            chunk_rows, params = train_stack(chunk, data, device, bar)
            rows += chunk_rows
            if return_models or cache:
                for (setting, seed), p in zip(chunk, params):
                    models[setting["setting"], seed] = to_module(setting, [t.cpu() for t in p])
    bar.close()
    seconds = time.perf_counter() - start
    if progress:
        print(f"sweep: {len(full)} settings x {len(seeds)} seeds = {len(full) * len(seeds)} "
              f"models, {total} model-epochs in {seconds:.1f} s "
              f"({seconds / total:.3f} s per model-epoch) on {device}")
    table = pd.DataFrame(rows)
    for layer in range(max(len(s["dropout"]) for s in full)):
        table[f"p{layer + 1}"] = table["dropout"].map(
            lambda d, layer=layer: d[layer] if layer < len(d) else float("nan"))
    table = table.sort_values(["setting", "seed", "epoch"], ignore_index=True)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"table": table.to_dict(orient="list"), "models": models}, path)
    return (table, models) if return_models else table
