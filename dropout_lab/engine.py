"""The one training engine for the chapter's MLPs: K models at once, by hand.

Models that share a shape (hidden widths, epochs, batch size, training-set
size, noise scheme) are stacked: their weights live in (K, in, out) tensors and
one batched matmul runs them all. Dropout rate per layer, weight decay and
learning rate may differ per model inside a stack. `dl.train` on a model from
`dl.make_mlp` is the K = 1 case, so the pages and the sweeps share one path.

The forward and backward passes are written out (no autograd): for a hidden
layer, A = H_in @ W + b, then H = relu(A) * M, so the backward pass is
dA = dH * G with the gate G = (A > 0) * M (for a 0/1 mask, simply H > 0). The noise's
scale s (1/(1-p) for dropout) is folded into the next layer's weights.

A model's history depends only on its own setting and seed: each model draws
its initialization and data order from generators seeded with its seed, as
`make_mlp` and the plain loop do, and its noise from a generator of its own.
So the same model comes out alone, in any stack, in any chunk (on one device
type and precision). Models with the same seed get the same initialization
and data order whatever their setting (common random numbers): differences
between settings are then not blurred by differences in luck.

Precision: matmuls in bfloat16 with float32 master weights, float32 loss and
updates, where the hardware runs bfloat16 fast (probed, never assumed);
float32 elsewhere (TF32 matmuls on a CUDA GPU without bfloat16).
"""
import functools
import math
import time

import torch

from .noise import SCHEMES

PRECISIONS = ("auto", "fp32", "bf16")
MASK_STREAM = 0x6D61736B << 32   # "mask": model `seed` draws noise from seed + MASK_STREAM


FAST_BF16_SPEEDUP = 1.5  # bf16 matmuls must beat fp32 ones by this factor to be used


@functools.lru_cache(maxsize=None)
def cpu_has_fast_bf16():
    """True when this CPU multiplies bfloat16 matrices clearly faster than float32 ones
    (natively: AVX512-BF16, AMX). oneDNN's own check is not enough: it says yes on any
    AVX-512 CPU, where bfloat16 is emulated, measured 4x slower than float32 on an
    Ice Lake Xeon. So a timed probe of about 0.1 s decides, once per process."""
    try:
        supported = bool(torch.backends.mkldnn.is_available()
                         and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
    if not supported:
        return False
    fp32, bf16 = matmul_seconds()
    return fp32 > FAST_BF16_SPEEDUP * bf16


def matmul_seconds(n=512, repeats=5):
    """The best time of an n x n matmul in float32 and in bfloat16 on the CPU, the two
    timed in turn (so that a busy machine slows both); draws no global random numbers."""
    a = torch.rand(n, n, generator=torch.Generator().manual_seed(0))
    pairs = [(a, a.T.contiguous()), (a.bfloat16(), a.T.contiguous().bfloat16())]
    best = [math.inf, math.inf]
    for _ in range(repeats + 1):  # the first round warms up
        for i, (x, y) in enumerate(pairs):
            start = time.perf_counter()
            x @ y
            best[i] = min(best[i], time.perf_counter() - start)
    return tuple(best)


def resolve_precision(precision, device):
    """'fp32', 'bf16' or 'tf32' (CUDA without bf16), from 'auto' | 'fp32' | 'bf16'."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if device.type == "cuda":
        has_bf16 = torch.cuda.is_bf16_supported()
        if precision == "auto":
            return "bf16" if has_bf16 else "tf32"
        if precision == "bf16" and not has_bf16:
            raise ValueError("precision='bf16' was asked for, but this GPU has no bfloat16; "
                             "use precision='auto' or 'fp32'")
        return precision
    if precision == "auto":
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    return precision


def describe_precision(precision, device):
    """A phrase for pages and summary lines: how the models were trained."""
    if precision == "bf16":
        fast = device.type == "cuda" or cpu_has_fast_bf16()
        return ("bfloat16 mixed precision" + ("" if fast else
                " (emulated on this CPU: slow)")) + f" on {device.type}"
    if precision == "tf32":
        return f"float32 with TF32 matmuls on {device.type}"
    reason = "" if device.type == "cuda" else (
        "" if cpu_has_fast_bf16() else " (this CPU has no fast bfloat16)")
    return f"float32{reason} on {device.type}"


def compute_dtype(precision):
    return torch.bfloat16 if precision == "bf16" else torch.float32


def init_weights(seeds, sizes):
    """Stacked float32 weights (K, in, out) and biases (K, 1, out) on the CPU, each model
    drawn exactly as make_mlp draws it: PyTorch's default Linear init from a generator
    seeded with the model's seed."""
    Ws = [[] for _ in sizes[1:]]
    bs = [[] for _ in sizes[1:]]
    for seed in seeds:
        generator = torch.Generator().manual_seed(seed)
        for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            bound = 1 / math.sqrt(n_in)
            Ws[layer].append(((torch.rand((n_out, n_in), generator=generator) * 2 - 1)
                              * bound).T)
            bs[layer].append((torch.rand((n_out,), generator=generator) * 2 - 1) * bound)
    return [torch.stack(w) for w in Ws], [torch.stack(b)[:, None, :] for b in bs]


def hidden_layer(A, M):
    """H = relu(A) * M, computed in A's storage, and the gate G = (A > 0) * M that the
    backward pass multiplies by. For a 0/1 mask (or none) G is not stored: it is
    H > 0 then, rebuilt in the backward pass, which saves passes over the activations."""
    H = A.relu_()
    if M is None:
        return H, None
    if M.dtype == torch.bool:
        return H.mul_(M), None
    G = (A > 0).to(A.dtype).mul_(M.to(A.dtype))
    return H.mul_(M.to(A.dtype)), G


def forward(Ws, bs, X, noises=None):
    """Logits (K, B, out) and what the backward pass needs: the inputs of each layer
    and the gates of the hidden layers (None where H > 0 is the gate). Ws/bs in the
    compute dtype, the noise scale already folded into Ws. X is (K, B, in), or (B, in)
    shared by all models."""
    inputs, gate_list, H = [], [], X
    for layer, (W, b) in enumerate(zip(Ws, bs)):
        inputs.append(H)
        A = torch.baddbmm(b, H, W) if H.ndim == 3 else torch.matmul(H, W).add_(b)
        if layer == len(Ws) - 1:
            return A, inputs, gate_list
        H, G = hidden_layer(A, None if noises is None else noises[layer])
        gate_list.append(G)


def cross_entropy(logits, y):
    """Per-model mean loss (K,), correct counts (K,) and dlogits = (softmax - onehot)/B,
    in float32 (float64 for float64 logits). Overwrites logits."""
    Z = logits.to(torch.promote_types(logits.dtype, torch.float32))
    lse = torch.logsumexp(Z, -1, keepdim=True)
    picked = Z.gather(-1, y[..., None])
    loss = (lse - picked).mean((1, 2))
    correct = (Z.argmax(-1) == y).sum(1)
    dZ = torch.exp_(Z.sub_(lse))
    dZ.scatter_add_(-1, y[..., None], torch.full_like(picked, -1.0))
    return loss, correct, dZ.div_(y.shape[1])


def backward(Ws, inputs, gate_list, dZ):
    """Gradients of the mean loss for every weight and bias (no input gradient)."""
    dWs, dbs, dA = [], [], dZ
    for layer in range(len(Ws) - 1, -1, -1):
        dWs.append(torch.bmm(inputs[layer].transpose(1, 2), dA))
        dbs.append(dA.sum(1, keepdim=True))
        if layer > 0:
            G = gate_list[layer - 1]
            dA = torch.bmm(dA, Ws[layer].transpose(1, 2))
            dA = dA.mul_(inputs[layer] > 0) if G is None else dA.mul_(G)
    return dWs[::-1], dbs[::-1]


@torch.no_grad()
def evaluate_stack(Ws, bs, X, y, dtype, chunk=2000):
    """Accuracy and mean cross-entropy of every model on (X, y), noise off: two (K,)
    tensors. Ws, bs are the float32 master weights; the matmuls run in `dtype`."""
    Wc, bc = [W.to(dtype) for W in Ws], [b.to(dtype) for b in bs]
    correct = torch.zeros(len(Ws[0]), device=X.device)
    loss = torch.zeros(len(Ws[0]), device=X.device)
    for i in range(0, len(X), chunk):
        logits, _, _ = forward(Wc, bc, X[i:i + chunk].to(dtype))
        target = y[i:i + chunk].expand(len(logits), -1)
        step_loss, step_correct, _ = cross_entropy(logits, target)
        loss += step_loss * target.shape[1]
        correct += step_correct
    return correct / len(X), loss / len(X)


def epoch_batches(X_train, y_train, order_generators, n, batch_size, subsets, device):
    """One epoch's minibatches for K stacked models: (X (K, B, d), y (K, B)) per step.
    Model k visits its n images in the order of a fresh permutation from its own
    generator, order_generators[k] (the same order dl.train's plain loop draws
    for that seed); subsets (K, n) maps each model's positions to its own
    training images, or None when every model trains on all of X_train."""
    order = torch.stack([torch.randperm(n, generator=g) for g in order_generators])
    order = order.to(device)
    if subsets is not None:
        order = torch.gather(subsets, 1, order)
    for i in range(0, n, batch_size):
        idx = order[:, i:i + batch_size]
        yield X_train.index_select(0, idx.flatten()).view(*idx.shape, -1), y_train[idx]


def train_stack(Ws, bs, models, data, epochs, batch_size, scheme, precision,
                subsets=None, on_epoch=None):
    """Train K stacked MLPs in place (Ws, bs: float32 master weights on the data's device).

    models: one dict per model with its seed, dropout (one p per hidden layer), lr and
    weight_decay. scheme: a name in noise.SCHEMES. subsets: (K, n) training indices per
    model, or None for all. on_epoch(epoch, metrics, seconds) is called after each epoch
    with metrics a dict of (K,) CPU tensors: train_loss, train_acc, heldout_loss,
    heldout_acc."""
    X_train, y_train, X_held, y_held = data
    device, dtype = X_train.device, compute_dtype(precision)
    K, n = len(models), (len(X_train) if subsets is None else subsets.shape[1])
    p = torch.tensor([m["dropout"] for m in models], device=device).T[:, :, None, None]
    noisy = [bool((p_l > 0).any()) for p_l in p]
    lr = torch.tensor([float(m["lr"]) for m in models], device=device)[:, None, None]
    decay = 1 - lr * torch.tensor([float(m["weight_decay"]) for m in models],
                                  device=device)[:, None, None]
    decay = decay if bool((decay != 1).any()) else None    # W <- W - lr*(grad + wd*W)
    order_generators = [torch.Generator().manual_seed(m["seed"]) for m in models]
    noise_generators = [torch.Generator(device).manual_seed(m["seed"] + MASK_STREAM)
                        for m in models]
    X_train = X_train.to(dtype)   # a no-op when dl.sweep has cast it already
    widths = [W.shape[2] for W in Ws[:-1]]
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        loss_sum = torch.zeros(K, device=device)
        correct = torch.zeros(K, device=device)
        for X, y in epoch_batches(X_train, y_train, order_generators, n, batch_size,
                                  subsets, device):
            B = X.shape[1]
            noises, scales = [], []
            for layer, width in enumerate(widths):
                if noisy[layer]:
                    M, s = SCHEMES[scheme](p[layer], (B, width), noise_generators)
                else:
                    M, s = None, None
                noises.append(M)
                scales.append(s)
            Wc = [W.to(dtype) for W in Ws]
            for layer, s in enumerate(scales):   # relu(A)*M*s @ W == relu(A)*M @ (s*W)
                if s is not None:
                    Wc[layer + 1] = Wc[layer + 1] * s.to(dtype)
            logits, inputs, gate_list = forward(Wc, [b.to(dtype) for b in bs], X, noises)
            loss, step_correct, dZ = cross_entropy(logits, y)
            dWs, dbs = backward(Wc, inputs, gate_list, dZ.to(dtype))
            for layer, (W, b, dW, db) in enumerate(zip(Ws, bs, dWs, dbs)):
                s = scales[layer - 1] if layer > 0 else None
                step = lr if s is None else lr * s   # d(s*W) = s * dW
                if decay is not None:
                    W.mul_(decay)
                W.addcmul_(step, dW.to(W.dtype), value=-1)
                b.addcmul_(lr, db.to(b.dtype), value=-1)
            loss_sum += loss * B
            correct += step_correct
        held_acc, held_loss = evaluate_stack(Ws, bs, X_held, y_held, dtype)
        metrics = {"train_loss": loss_sum / n, "train_acc": correct / n,
                   "heldout_loss": held_loss, "heldout_acc": held_acc}
        if on_epoch:
            on_epoch(epoch, {k: v.cpu() for k, v in metrics.items()},
                     time.perf_counter() - start)
