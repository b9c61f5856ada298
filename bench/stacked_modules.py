"""Stacked (dl.train_stacked, torch.func) against one at a time (dl.train's plain
loop) for the models of solutions 05 (DropConnect) and 06 (a noise module), per
model-epoch, in a quarter of the pages' setting: 2,500 training images per seed,
minibatches of 64, 2,500 test images evaluated each epoch; one thread.

The paths alternate within one run, so that a busy machine slows them alike;
the ratios are the result. Run: PYTHONPATH=. python bench/stacked_modules.py
"""
import json
import math
import statistics
import sys
import time
from functools import partial

import torch
from torch import nn
from torch.nn import functional as F

import dropout_lab as dl

P, N_TRAIN, N_TEST, BATCH = 0.5, 2_500, 2_500, 64
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 3


def dropconnect_linear(X, W, b, p):
    mask = (torch.rand_like(W) >= p).to(W.dtype)
    return F.linear(X, W * mask / (1 - p), b)


class DropConnectLinear(nn.Linear):
    def __init__(self, linear, p):
        super().__init__(linear.in_features, linear.out_features)
        self.load_state_dict(linear.state_dict())
        self.p = p

    def forward(self, X):
        if self.training and self.p > 0:
            return dropconnect_linear(X, self.weight, self.bias, self.p)
        return super().forward(X)


def my_noise(h, p):
    a = math.sqrt(3 * p / (1 - p))
    return h * (1 + a * (2 * torch.rand_like(h) - 1))


class Noise(nn.Module):
    def __init__(self, noise):
        super().__init__()
        self.noise = noise

    def forward(self, h):
        return self.noise(h) if self.training else h


def dropconnect(seed):
    model = dl.make_mlp(dropout=(0.0, 0.0), seed=seed)
    model[2], model[5] = nn.Identity(), nn.Identity()
    model[3], model[6] = DropConnectLinear(model[3], P), DropConnectLinear(model[6], P)
    return model


UNIFORM = partial(my_noise, p=P)


def noise(seed):
    model = dl.make_mlp(dropout=(0.0, 0.0), seed=seed)
    model[2], model[5] = Noise(UNIFORM), Noise(UNIFORM)
    return model


def per_model_epoch(make, path, data):
    """(wall, CPU) seconds per model-epoch of one run of `path`. CPU time (this
    process, one thread) is what the work costs, whatever else the machine runs."""
    wall, cpu = time.perf_counter(), time.process_time()
    if path == "plain":
        dl.train(make(0), dl.training_subset(data, N_TRAIN, 0), epochs=1,
                 batch_size=BATCH, seed=0, progress=False)
        K = 1
    else:
        K = int(path[1:])
        dl.train_stacked([make(s) for s in range(K)], data, list(range(K)), epochs=1,
                         batch_size=BATCH, n_train=N_TRAIN, progress=False)
    return (time.perf_counter() - wall) / K, (time.process_time() - cpu) / K


if __name__ == "__main__":
    torch.set_num_threads(1)
    full = dl.load_fashion_mnist()
    # a quarter of the pages' setting, same ratio of test to training images
    data = (full.X_train, full.y_train, full.X_test[:N_TEST], full.y_test[:N_TEST])
    for make in (dropconnect, noise):          # warm up: imports, first calls
        per_model_epoch(make, "plain", data[:2] + (data[2][:10], data[3][:10]))
    times = {}
    for r in range(ROUNDS):
        for name, make in (("dropconnect", dropconnect), ("noise", noise)):
            for path in ("plain", "K5", "K15"):
                wall, cpu = per_model_epoch(make, path, data)
                times.setdefault(f"{name} {path}", []).append((wall, cpu))
                print(f"round {r} {name:12s} {path:6s} wall {wall:.3f} s, "
                      f"CPU {cpu:.3f} s per model-epoch", flush=True)
    print("median over rounds; ratio = plain / stacked (above 1: stacking is faster)")
    for key, ts in times.items():
        plain = times[key.split()[0] + " plain"]
        row = []
        for i, what in enumerate(("wall", "CPU")):
            mine = statistics.median(t[i] for t in ts)
            ratios = [p[i] / t[i] for p, t in zip(plain, ts)]
            row.append(f"{what} {mine:.3f} s (ratio {statistics.median(ratios):.2f}, "
                       f"rounds {min(ratios):.2f}-{max(ratios):.2f})")
        print(f"{key:17s}", "; ".join(row))
    print(json.dumps(times))
