"""The baseline the engine is measured against: a plain float32 stacked trainer.

K MLPs in (K, in, out) tensors, torch.baddbmm, autograd for the gradients, masks
from 16-bit random integers, SGD: about what dl.sweep did before it had its own
forward and backward passes. Kept only for the benchmark.
"""
import math
import time

import torch
from torch.nn import functional as F


def init(K, sizes, seed=0):
    generator = torch.Generator().manual_seed(seed)
    Ws, bs = [], []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        bound = 1 / math.sqrt(n_in)
        Ws.append(((torch.rand(K, n_in, n_out, generator=generator) * 2 - 1) * bound)
                  .requires_grad_())
        bs.append(((torch.rand(K, 1, n_out, generator=generator) * 2 - 1) * bound)
                  .requires_grad_())
    return Ws, bs


def masked(H, p):
    """Inverted dropout from 16-bit integers, four per 64-bit draw."""
    n = H.numel()
    bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-2**63, None)
    keep = bits.view(torch.int16)[:n].view(H.shape) >= round(p * 2**16) - 2**15
    return H * keep.to(H.dtype) * (1 / (1 - p))


def forward(Ws, bs, X, p=None):
    H = X
    for layer, (W, b) in enumerate(zip(Ws, bs)):
        H = torch.baddbmm(b, H, W) if H.ndim == 3 else torch.matmul(H, W) + b
        if layer < len(Ws) - 1:
            H = torch.relu(H)
            if p is not None:
                H = masked(H, p)
    return H


def train(K, data, epochs=2, p=0.5, lr=0.1, batch_size=256, seed=0):
    """Seconds per epoch per model, and each model's final test accuracy."""
    X_train, y_train, X_test, y_test = data
    torch.manual_seed(seed)
    Ws, bs = init(K, (784, 256, 256, 10), seed)
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.stack([torch.randperm(len(X_train)) for _ in range(K)])
        for i in range(0, len(X_train), batch_size):
            idx = order[:, i:i + batch_size]
            X = X_train.index_select(0, idx.flatten()).view(*idx.shape, -1)
            logits = forward(Ws, bs, X, p)
            loss = F.cross_entropy(logits.transpose(1, 2), y_train[idx], reduction="none")
            grads = torch.autograd.grad(loss.mean(1).sum(), Ws + bs)
            with torch.no_grad():
                for param, grad in zip(Ws + bs, grads):
                    param.sub_(lr * grad)
        seconds.append((time.perf_counter() - start) / K)
    with torch.no_grad():
        logits = forward(Ws, bs, X_test)
        accuracy = (logits.argmax(-1) == y_test).float().mean(1)
    return seconds, accuracy.tolist()
