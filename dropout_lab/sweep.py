"""dl.sweep: train every setting with every seed, so that every conclusion can rest
on several seeds. The numerics are in engine.py; this file turns settings into
stacks of models, stacks into chunks that fit in memory, and results into a table.
"""
import hashlib
import os
import time
import warnings
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from . import cache as disk
from .device import pick_device
from .engine import (compute_dtype, describe_precision, init_weights, resolve_precision,
                     train_stack)
from .noise import NEEDS_P_BELOW_1, SCHEMES, check_p
from .data import data_fingerprint
from .training import check_sgd, heldout_name, make_mlp
from .validate import check_int, check_seeds

DEFAULTS = {"dropout": (0.5, 0.5), "hidden": (256, 256), "weight_decay": 0.0, "lr": 0.1,
            "noise": "bernoulli", "epochs": 10, "batch_size": 256, "n_train": None}
SHAPE_KEYS = ("hidden", "epochs", "batch_size", "n_train", "noise")  # what must match to stack


def complete_setting(setting, n_available):
    """Fill in defaults and check one setting; raise ValueError before any training."""
    if not isinstance(setting, dict):
        raise ValueError(f"each setting must be a dict, got {setting!r}")
    unknown = set(setting) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown setting name(s) {sorted(unknown)}; "
                         f"known names: {sorted(DEFAULTS)}")
    s = {**DEFAULTS, **setting}
    for key in ("dropout", "hidden"):
        if not isinstance(s[key], (list, tuple)):
            raise ValueError(f"setting {setting}: {key} must be a tuple with one entry per "
                             f"hidden layer, e.g. {DEFAULTS[key]}, got {s[key]!r}")
    s["dropout"] = tuple(check_p(p) for p in s["dropout"])
    s["hidden"] = tuple(check_int("each hidden width", h, 1) for h in s["hidden"])
    if "hidden" not in setting and len(s["dropout"]) != len(s["hidden"]):
        s["hidden"] = (256,) * len(s["dropout"])
    if not s["hidden"] or len(s["dropout"]) != len(s["hidden"]):
        raise ValueError(f"setting {setting}: {len(s['dropout'])} dropout rates for "
                         f"{len(s['hidden'])} hidden layers; give one rate per layer")
    if s["noise"] not in SCHEMES:
        raise ValueError(f"unknown noise {s['noise']!r}; choose one of {tuple(SCHEMES)}")
    if s["noise"] in NEEDS_P_BELOW_1 and max(s["dropout"]) >= 1:
        raise ValueError(f"{s['noise']} noise needs p < 1 (its variance p/(1-p) is "
                         "infinite at 1)")
    s["epochs"], s["batch_size"], s["lr"], s["weight_decay"] = check_sgd(
        s["epochs"], s["batch_size"], s["lr"], s["weight_decay"])
    if s["n_train"] is not None:
        s["n_train"] = check_int("n_train", s["n_train"], 1, n_available)
    return s


def subset_index(n_available, n_train, seed):
    """Indices of the n_train training images a sweep gives to `seed`. The generator
    is seeded apart from the one for the data order (10**6 + seed), so that the
    subset does not change with the number of epochs or the batch size."""
    generator = torch.Generator().manual_seed(10**6 + seed)
    return torch.randperm(n_available, generator=generator)[:n_train]


def training_subset(data, n_train, seed):
    """The data a sweep trains `seed` on when the setting has n_train: the same
    random training images, with the full held-out set. Use it to train a model with
    dl.train on exactly what its twin in a sweep saw, or to measure its train accuracy."""
    index = subset_index(len(data[0]), n_train, seed).to(data[0].device)
    kind = type(data) if hasattr(data, "_fields") else tuple
    parts = (data[0][index], data[1][index], data[2], data[3])
    return kind(*parts) if kind is not tuple else parts


def bytes_per_model(setting, n_inputs, precision):
    """What one model of a stack needs at its peak, in bytes: master weights, their
    compute copies, gradients and the update's temporaries; the activations of a step
    (the gathered batch; A, G, H, dA per hidden layer; the logits); an evaluation chunk."""
    sizes = (n_inputs, *setting["hidden"], 10)
    params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    elem = 2 if precision == "bf16" else 4
    batch = setting["batch_size"]
    units = sum(setting["hidden"])
    step = batch * (n_inputs * elem + units * 4 * 4 + 10 * 4 * 4)
    evaluation = 2000 * (units * 2 + 10) * 4
    return params * (4 + elem + 4 + 4) + step + evaluation


def memory_budget(device):
    """Bytes a sweep may use on `device`: half of what is free now."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0] // 2
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024 // 2
    except (OSError, KeyError, ValueError):
        return 4 * 2**30


def stacks(full, seeds, data, precision, max_models):
    """Lists of (setting, seed) that train together: same shape, and few enough to fit."""
    groups = {}
    for index, setting in enumerate(full):
        key = tuple(setting[k] for k in SHAPE_KEYS)
        groups.setdefault(key, []).extend(({**setting, "setting": index}, s) for s in seeds)
    budget = memory_budget(data[0].device)
    for jobs in groups.values():
        need = bytes_per_model(jobs[0][0], data[0].shape[1], precision)
        fit = budget // need
        if fit < 1:
            raise MemoryError(
                f"one model of setting {jobs[0][0]} needs about {need / 2**30:.1f} GiB, "
                f"more than the {budget / 2**30:.1f} GiB available to a sweep on "
                f"{data[0].device}: use a smaller batch_size or narrower hidden layers")
        per_chunk = int(min(fit, max_models or fit))
        for i in range(0, len(jobs), per_chunk):
            yield jobs[i:i + per_chunk]


def to_module(setting, Ws, bs, k):
    """An nn.Sequential MLP (eval mode) holding model k's weights, on their device."""
    model = make_mlp(setting["dropout"], setting["hidden"]).to(Ws[0].device)
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for linear, W, b in zip(linears, Ws, bs):
            linear.weight.copy_(W[k].T)
            linear.bias.copy_(b[k, 0])
    return model.eval()


def run_stack(jobs, data, precision, held, bar):
    """Train one stack; return its rows and its trained weights."""
    first = jobs[0][0]
    device = data[0].device
    seeds = [seed for _, seed in jobs]
    Ws, bs = init_weights(seeds, (data[0].shape[1], *first["hidden"], 10))
    Ws = [W.to(device) for W in Ws]
    bs = [b.to(device) for b in bs]
    subsets = None
    if first["n_train"] is not None:  # each seed its own random subset
        subsets = torch.stack([subset_index(len(data[0]), first["n_train"], seed)
                               for seed in seeds]).to(device)
    rows = []

    def record(epoch, metrics, seconds):
        for k, (setting, seed) in enumerate(jobs):
            rows.append({**setting, "seed": seed, "epoch": epoch,
                         "train_loss": metrics["train_loss"][k].item(),
                         "train_acc": metrics["train_acc"][k].item(),
                         f"{held}_loss": metrics["heldout_loss"][k].item(),
                         f"{held}_acc": metrics["heldout_acc"][k].item(),
                         "seconds_per_model": seconds / len(jobs)})
        bar.update(len(jobs))

    models = [{**setting, "seed": seed} for setting, seed in jobs]
    train_stack(Ws, bs, models, data, first["epochs"], first["batch_size"], first["noise"],
                precision, subsets, on_epoch=record)
    return rows, Ws, bs


def cache_key(full, seeds, data, device, precision):
    """Everything that decides a sweep's results: the settings, the seeds, every byte
    of the data, the device type, the precision, the engine's code, torch's version."""
    here = Path(__file__).parent
    code = "".join((here / name).read_text() for name in ("sweep.py", "engine.py", "noise.py"))
    key = repr((full, seeds, data_fingerprint(data), device.type, precision, code,
                torch.__version__))
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def cache_file(cache, full, seeds, data, device, precision):
    """Where this sweep's results are kept, or None: no cache asked for, or no folder
    for it (then a warning, and the sweep runs without it)."""
    if not cache:
        return None
    try:
        folder = Path(cache) if isinstance(cache, (str, os.PathLike)) else disk.default_folder()
    except ValueError as error:
        warnings.warn(f"{error}; this sweep runs without its cache", disk.CacheWarning)
        return None
    return folder / f"sweep-{cache_key(full, seeds, data, device, precision)}.pt"


def sweep(settings, seeds, data, device=None, precision="auto", max_models=None,
          progress=True, return_models=False, cache=False):
    """Train every setting with every seed, stacking models that share a shape.

    settings: list of dicts with keys from DEFAULTS (missing keys take the
    defaults), e.g. [{"dropout": (0, 0)}, {"dropout": (0.5, 0.5)}].
    seeds: a number of seeds (0, 1, ...) or a list of distinct seeds.
    data: a FashionMNIST tuple (evaluated on its test set, columns test_*) or a
    validation split from dl.validation_split (columns valid_*).
    device: where to train; None trains where the data is (the data is moved
    once if another device is named). precision: "auto" (bfloat16 mixed precision
    where the hardware runs it fast, else float32), "fp32" or "bf16".
    max_models: at most this many models in one stack (None: as many as fit in
    half of the free memory); it changes speed only, never the results.
    Returns a DataFrame with one row per model per epoch: the setting's values
    (dropout and hidden as tuples, plus p1, p2, ... per layer), setting (its
    index in `settings`), seed, epoch, train_loss, train_acc (running averages,
    noise on), test_loss and test_acc (noise off), seconds_per_model; its
    .attrs say the device and precision. With return_models=True, also a dict
    {(setting index, seed): nn.Sequential in eval mode, on the training device}.
    cache=True (or a folder) keeps the results on disk and returns them the next
    time the same sweep is asked for; the key covers everything that decides them.
    """
    if isinstance(settings, dict) or not isinstance(settings, (list, tuple)):
        raise TypeError(f"settings must be a list of dicts, one per setting, got "
                        f"{type(settings).__name__}: e.g. [{{'dropout': (0.5, 0.5)}}]")
    if not settings:
        raise ValueError("settings is empty: give at least one dict, e.g. [{}] for the defaults")
    seeds = check_seeds(seeds)
    if max_models is not None:
        max_models = check_int("max_models", max_models, 1)
    device = data[0].device if device is None else pick_device(device)
    precision = resolve_precision(precision, device)
    full = [complete_setting(s, len(data[0])) for s in settings]
    held = heldout_name(data)
    path = cache_file(cache, full, seeds, data, device, precision)
    if path:
        saved = disk.load(path)
        if saved is not None:
            if progress:
                print(f"sweep: {len(full) * len(seeds)} models loaded from the cache {path}")
            return unpack(saved, full, device, return_models)
    # on the device, the images in the compute dtype: cast once here, not per stack
    dtype = compute_dtype(precision)
    parts = [t.to(device, dtype) if i in (0, 2) else t.to(device)
             for i, t in enumerate(data)]
    data = type(data)(*parts) if hasattr(data, "_fields") else tuple(parts)
    rows, weights = [], {}
    total = sum(s["epochs"] for s in full) * len(seeds)
    bar = tqdm(total=total, disable=not progress, leave=False, desc="model-epochs")
    start = time.perf_counter()
    for jobs in stacks(full, seeds, data, precision, max_models):
        chunk_rows, Ws, bs = run_stack(jobs, data, precision, held, bar)
        rows += chunk_rows
        for k, (setting, seed) in enumerate(jobs):
            weights[setting["setting"], seed] = ([W[k] for W in Ws], [b[k, 0] for b in bs])
    bar.close()
    seconds = time.perf_counter() - start
    how = describe_precision(precision, device)
    if progress:
        print(f"sweep: {len(full)} settings x {len(seeds)} seeds = {len(full) * len(seeds)} "
              f"models, {total} model-epochs in {seconds:.1f} s "
              f"({seconds / total:.3f} s per model-epoch), {how}")
    table = make_table(rows, full, str(device), precision)
    saved = {"table": table.to_dict(orient="list"), "device": str(device),
             "precision": precision,
             "weights": {f"{i},{seed}": {"W": [W.cpu() for W in Ws], "b": [b.cpu() for b in bs]}
                         for (i, seed), (Ws, bs) in weights.items()}}
    if path:
        disk.atomic_save(saved, path)
    return unpack(saved, full, device, return_models, table)


def make_table(rows, full, device, precision):
    table = pd.DataFrame(rows)
    for layer in range(max(len(s["dropout"]) for s in full)):
        table[f"p{layer + 1}"] = table["dropout"].map(
            lambda d, layer=layer: d[layer] if layer < len(d) else float("nan"))
    table = table.sort_values(["setting", "seed", "epoch"], ignore_index=True)
    table.attrs.update(device=device, precision=precision,
                       trained=describe_precision(precision, torch.device(device)))
    return table


def unpack(saved, full, device, return_models, table=None):
    """The table (and the models, rebuilt on `device`) from what sweep saves."""
    if table is None:
        table = pd.DataFrame(saved["table"])
        for column in ("dropout", "hidden"):
            table[column] = table[column].map(tuple)
        table.attrs.update(device=saved["device"], precision=saved["precision"],
                           trained=describe_precision(saved["precision"],
                                                      torch.device(saved["device"])))
    if not return_models:
        return table
    models = {}
    for key, w in saved["weights"].items():
        index, seed = (int(part) for part in key.split(","))
        Ws = [W.to(device)[None] for W in w["W"]]
        bs = [b.to(device)[None, None] for b in w["b"]]
        models[index, seed] = to_module(full[index], Ws, bs, 0)
    return table, models
