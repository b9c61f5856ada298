"""Stacked (dl.train_stacked, torch.func) against one at a time (dl.train's plain
loop) for the models of solutions 05 (DropConnect) and 06 (a noise module), per
model-epoch, in the pages' setting: 10,000 training images, minibatches of 64,
the 10,000 test images evaluated each epoch.

The paths alternate within one run, so that a busy machine slows them alike;
the ratios are the result. Run: PYTHONPATH=. python bench/stacked_modules.py
"""
import json
import math
import sys
import time
from functools import partial

import torch
from torch import nn
from torch.nn import functional as F

import dropout_lab as dl

P, N_TRAIN, BATCH, ROUNDS = 0.5, 10_000, 64, int(sys.argv[1]) if len(sys.argv) > 1 else 2


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
    if path == "plain":
        start = time.perf_counter()
        for seed in range(2):
            dl.train(make(seed), dl.training_subset(data, N_TRAIN, seed), epochs=1,
                     batch_size=BATCH, seed=seed, progress=False)
        return (time.perf_counter() - start) / 2
    K = int(path[1:])
    start = time.perf_counter()
    dl.train_stacked([make(s) for s in range(K)], data, list(range(K)), epochs=1,
                     batch_size=BATCH, n_train=N_TRAIN, progress=False)
    return (time.perf_counter() - start) / K


if __name__ == "__main__":
    data = dl.load_fashion_mnist()
    print("threads", torch.get_num_threads())
    times = {}
    for r in range(ROUNDS):
        for name, make in (("dropconnect", dropconnect), ("noise", noise)):
            for path in ("plain", "K5", "K15"):
                t = per_model_epoch(make, path, data)
                times.setdefault(f"{name} {path}", []).append(t)
                print(f"round {r} {name:12s} {path:6s} {t:.3f} s per model-epoch",
                      flush=True)
    for key, ts in times.items():
        name = key.split()[0]
        plain = times[f"{name} plain"]
        ratio = [a / b for a, b in zip(plain, ts)]
        print(f"{key:18s} {[round(t, 3) for t in ts]}  plain/this {[round(x, 2) for x in ratio]}")
    print(json.dumps(times))
