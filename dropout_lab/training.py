"""The chapter's MLP, evaluation, and dl.train.

dl.train trains a model from make_mlp (Linear-ReLU-Dropout blocks, then a
Linear) with the stacked engine (engine.py), as the K = 1 case of dl.sweep;
any other nn.Module trains with `train_module`, the plain loop the pages teach:
model.train(), a minibatch, the loss, backward, a step; model.eval() to test.
"""
import math
import time

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .device import pick_device, set_seed
from .engine import describe_precision, resolve_precision, train_stack
from .noise import check_p
from .validate import SEED_LIMIT, check_float, check_int


def init_linear_(layer, generator):
    """PyTorch's default Linear init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight
    and bias, drawn from `generator` so that a sweep can reproduce it exactly."""
    bound = 1 / math.sqrt(layer.in_features)
    with torch.no_grad():
        for param in (layer.weight, layer.bias):
            param.copy_((torch.rand(param.shape, generator=generator) * 2 - 1) * bound)


def make_mlp(dropout=(0.5, 0.5), hidden=(256, 256), seed=0, num_inputs=784, num_outputs=10):
    """The chapter's MLP: Linear-ReLU-Dropout per hidden layer, then a Linear output.

    `dropout` gives the drop probability after each hidden layer. The weights are
    drawn from a generator seeded with `seed` (the sweep draws them the same way).
    """
    if len(dropout) != len(hidden):
        raise ValueError(f"one dropout rate per hidden layer: got {len(dropout)} "
                         f"rates for {len(hidden)} hidden layers")
    generator = torch.Generator().manual_seed(seed)
    layers, width = [], num_inputs
    for p, h in zip(dropout, hidden):
        layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(check_p(p))]
        width = h
    layers.append(nn.Linear(width, num_outputs))
    for layer in layers:
        if isinstance(layer, nn.Linear):
            init_linear_(layer, generator)
    return nn.Sequential(*layers)


@torch.no_grad()
def evaluate(model, X, y, batch_size=5000):
    """Accuracy and mean cross-entropy of `model` on (X, y), in eval mode."""
    was_training = model.training
    model.eval()
    correct, loss = 0, 0.0
    for i in range(0, len(X), batch_size):
        logits = model(X[i:i + batch_size])
        loss += nn.functional.cross_entropy(logits, y[i:i + batch_size], reduction="sum").item()
        correct += (logits.argmax(1) == y[i:i + batch_size]).sum().item()
    model.train(was_training)
    return correct / len(X), loss / len(X)


def mlp_dropout_rates(model):
    """The drop rates of a make_mlp model, or None if `model` has another structure."""
    if type(model) is not nn.Sequential or len(model) % 3 != 1:
        return None
    blocks = [model[i:i + 3] for i in range(0, len(model) - 1, 3)]
    if not all([type(m) for m in block] == [nn.Linear, nn.ReLU, nn.Dropout]
               for block in blocks) or type(model[-1]) is not nn.Linear:
        return None
    if any(m.bias is None for m in model if isinstance(m, nn.Linear)):
        return None
    return tuple(float(block[2].p) for block in blocks)


def check_sgd(epochs, batch_size, lr, weight_decay):
    """The SGD settings that dl.train and dl.sweep share, checked and converted:
    (epochs, batch_size, lr, weight_decay)."""
    return (check_int("epochs", epochs, 1), check_int("batch_size", batch_size, 1),
            check_float("lr", lr, 0, strict_minimum=True),
            check_float("weight_decay", weight_decay, 0))


def heldout_name(data):
    """'valid' for a validation split (fields X_valid, y_valid), else 'test': the
    prefix of the held-out columns in dl.train's and dl.sweep's results."""
    fields = getattr(type(data), "_fields", ())
    return "valid" if len(fields) > 2 and fields[2] == "X_valid" else "test"


def train(model, data, epochs=10, lr=0.1, batch_size=256, weight_decay=0.0, seed=0,
          device=None, progress=True, on_epoch=None, precision="auto"):
    """Train `model` with minibatch SGD on `data` (a FashionMNIST tuple, or a
    validation split from dl.validation_split).

    Returns a DataFrame with one row per epoch: epoch, train_loss and train_acc
    (running averages over the epoch, dropout on), test_loss and test_acc (eval
    mode; valid_loss and valid_acc on a validation split), seconds. `seed` fixes
    the data order and the dropout masks. Weight decay applies to the weights,
    not the biases. `on_epoch(row)` is called after each epoch.

    Where: on `device`, or where the data is when device is None. The model is
    MOVED there (model.to(device)) and trained in place; the result's .attrs
    say the device, the precision and which path trained it. A make_mlp model
    trains on the stacked engine in `precision` ("auto": bfloat16 mixed precision
    where the hardware runs it fast, else float32); any other module trains with
    the plain loop in float32 (or under bfloat16 autocast for precision="bf16").
    """
    check_sgd(epochs, batch_size, lr, weight_decay)
    check_int("seed", seed, 0, SEED_LIMIT - 1)
    device = data[0].device if device is None else pick_device(device)
    precision = resolve_precision(precision, device)
    held = heldout_name(data)
    data = tuple(t.to(device) for t in data)
    model.to(device)
    rates = mlp_dropout_rates(model)
    rows = []

    def record(row):
        rows.append(row)
        if on_epoch:
            on_epoch(row)
        bar.update(1)
        bar.set_postfix(train_acc=f"{row['train_acc']:.3f}", **{
            f"{held}_acc": f"{row[f'{held}_acc']:.3f}"})

    bar = tqdm(total=epochs, disable=not progress, leave=False, desc="epochs")
    if rates is None:
        path = "plain loop"
        train_module(model, data, epochs, lr, batch_size, weight_decay, seed, precision,
                     held, record)
    else:
        path = "stacked engine"
        train_mlp(model, rates, data, epochs, lr, batch_size, weight_decay, seed, precision,
                  held, record)
    bar.close()
    history = pd.DataFrame(rows)
    history.attrs.update(device=str(device), precision=precision, path=path,
                         trained=describe_precision(precision, device))
    return history


def train_mlp(model, rates, data, epochs, lr, batch_size, weight_decay, seed, precision,
              held, record):
    """A make_mlp model through the engine: its weights are copied in as a stack of one,
    trained, and copied back."""
    linears = [m for m in model if isinstance(m, nn.Linear)]
    Ws = [m.weight.detach().T.contiguous()[None].float() for m in linears]
    bs = [m.bias.detach()[None, None].float() for m in linears]
    settings = [{"seed": seed, "dropout": rates, "lr": lr, "weight_decay": weight_decay}]

    def on_epoch(epoch, metrics, seconds):
        record({"epoch": epoch, **{k.replace("heldout", held): v[0].item()
                                   for k, v in metrics.items()}, "seconds": seconds})

    train_stack(Ws, bs, settings, data, epochs, batch_size, "bernoulli", precision,
                on_epoch=on_epoch)
    with torch.no_grad():
        for m, W, b in zip(linears, Ws, bs):
            m.weight.copy_(W[0].T)
            m.bias.copy_(b[0, 0])


def train_module(model, data, epochs, lr, batch_size, weight_decay, seed, precision,
                 held, record):
    """The plain loop, for any nn.Module."""
    X_train, y_train, X_test, y_test = data
    device = X_train.device
    set_seed(seed)  # nn.Dropout draws its masks from the global generator
    order_generator = torch.Generator().manual_seed(seed)
    weights = [p for p in model.parameters() if p.ndim > 1]
    biases = [p for p in model.parameters() if p.ndim <= 1]
    optimizer = torch.optim.SGD([{"params": weights, "weight_decay": weight_decay},
                                 {"params": biases, "weight_decay": 0.0}], lr=lr)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(X_train), generator=order_generator).to(device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            # the rows X_train[idx], gathered about 6x faster on a CPU
            X, y = X_train.index_select(0, idx), y_train[idx]
            with autocast:
                logits = model(X)
            loss = nn.functional.cross_entropy(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(idx)   # stays on the device: no sync
            correct += (logits.argmax(1) == y).sum()
        with autocast:
            test_acc, test_loss = evaluate(model, X_test, y_test)
        record({"epoch": epoch, "train_loss": loss_sum.item() / len(order),
                "train_acc": correct.item() / len(order), f"{held}_loss": test_loss,
                f"{held}_acc": test_acc, "seconds": time.perf_counter() - start})
