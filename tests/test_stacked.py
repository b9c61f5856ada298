"""dl.train_stacked: any nn.Module, K copies at once, each as dl.train trains it alone
with its seed; its noise and data order depend on its seed only, not on the stack."""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import dropout_lab as dl
from dropout_lab.stacked import StackError

HIDDEN = (32, 32)
SGD = {"epochs": 2, "batch_size": 100, "lr": 0.1, "weight_decay": 1e-3}


class DropConnect(nn.Linear):
    """Solution 05's layer: one weight mask per call, from torch.rand_like."""

    def __init__(self, linear, p):
        super().__init__(linear.in_features, linear.out_features)
        self.load_state_dict(linear.state_dict())
        self.p = p

    def forward(self, X):
        if self.training:
            mask = (torch.rand_like(self.weight) >= self.p).to(X.dtype)
            return F.linear(X, self.weight * mask / (1 - self.p), self.bias)
        return super().forward(X)


class Noise(nn.Module):
    """Solution 06's layer: noise(h) in training, h in evaluation."""

    def __init__(self, noise):
        super().__init__()
        self.noise = noise

    def forward(self, h):
        return self.noise(h) if self.training else h


def gaussian_and_dropout(h):   # randn_like, and torch.rand through dl.dropout_layer
    return dl.dropout_layer(h * (1 + 0.5 * torch.randn_like(h)), 0.3)


def dropconnect(seed, p=0.5, hidden=HIDDEN):
    model = dl.make_mlp(dropout=(0.0,) * len(hidden), hidden=hidden, seed=seed)
    model[2], model[5] = nn.Identity(), nn.Identity()
    model[3], model[6] = DropConnect(model[3], p), DropConnect(model[6], p)
    return model


def noisy(seed, noise=gaussian_and_dropout):
    model = dl.make_mlp(dropout=(0.0, 0.0), hidden=HIDDEN, seed=seed)
    model[2], model[5] = Noise(noise), Noise(noise)
    return model


@pytest.fixture(scope="module")
def tiny(data):
    return (data.X_train[:3000], data.y_train[:3000], data.X_test[:500], data.y_test[:500])


def params(model):
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("make", [dropconnect, noisy])
def test_a_model_in_a_stack_is_the_model_dl_train_gives(tiny, make):
    models = [make(seed) for seed in (4, 7, 9)]
    # fp32 in both: on a CPU with fast bfloat16, "auto" means bf16, whose rounding in a
    # stacked matmul differs from a single one by far more than the 1e-5 below
    table = dl.train_stacked(models, tiny, [4, 7, 9], n_train=1000, progress=False,
                             precision="fp32", **SGD)
    alone = make(7)
    history = dl.train(alone, dl.training_subset(tiny, 1000, 7), seed=7, progress=False,
                       precision="fp32", **SGD)
    assert history.attrs["path"] == "plain loop"
    # the same data order and the same noise: equal up to float rounding (a stacked
    # matmul may round differently from a single one)
    for a, b in zip(params(alone), params(models[1])):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    ours = table[table.seed == 7].reset_index(drop=True)
    for column in ("train_loss", "train_acc", "test_loss", "test_acc"):
        assert ours[column].tolist() == pytest.approx(history[column].tolist(), abs=2e-5)
    assert list(table.columns) == ["model", "seed", "epoch", "train_loss", "train_acc",
                                   "test_loss", "test_acc", "seconds_per_model"]


def test_a_models_result_does_not_depend_on_the_stack(tiny):
    alone = [dropconnect(7)]
    dl.train_stacked(alone, tiny, [7], n_train=1000, progress=False, **SGD)
    stack = [dropconnect(s) for s in (9, 7, 3, 1)]
    dl.train_stacked(stack, tiny, [9, 7, 3, 1], n_train=1000, progress=False, **SGD)
    # equal up to float rounding: on an Ice Lake Xeon a stack of one runs another
    # matmul kernel than a stack of four (2e-8 apart after these 2 epochs, measured)
    for a, b in zip(params(alone[0]), params(stack[1])):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    for a, b in zip(params(stack[0]), params(stack[1])):   # other seeds, other models
        assert (a - b).abs().max() > 1e-3


def test_models_train_and_end_in_training_mode(tiny):
    models = [dropconnect(s) for s in range(2)]
    table = dl.train_stacked(models, tiny, [0, 1], epochs=3, progress=False)
    assert (table[table.epoch == 3].test_acc > 0.4).all()   # chance is 0.1
    assert all(m.training for m in models)
    assert table.attrs["path"] == "stacked torch.func"


def test_validation_split_gives_valid_columns(data):
    split = dl.validation_split((data.X_train[:2000], data.y_train[:2000],
                                 data.X_test[:10], data.y_test[:10]), n_valid=500)
    table = dl.train_stacked([noisy(0)], split, [0], epochs=1, progress=False)
    assert {"valid_loss", "valid_acc"} <= set(table.columns)


@pytest.mark.parametrize("other, message", [
    (lambda: dropconnect(1, hidden=(32, 16)), "in its parameters"),
    (lambda: dropconnect(1, p=0.2), r"attribute 3\.p \(0\.2 vs 0\.5\)"),
    (lambda: noisy(1), "in its modules"),
])
def test_models_of_different_architectures_are_refused(tiny, other, message):
    with pytest.raises(StackError, match=message):
        dl.train_stacked([dropconnect(0), other()], tiny, [0, 1], progress=False)


def test_other_random_operations_and_buffers_are_refused(tiny):
    with_dropout = dl.make_mlp(dropout=(0.5, 0.5), hidden=HIDDEN)
    with pytest.raises(StackError, match="rand_like"):
        dl.train_stacked([with_dropout], tiny, [0], epochs=1, progress=False)
    with_buffers = nn.Sequential(nn.Linear(784, 8), nn.BatchNorm1d(8), nn.Linear(8, 10))
    with pytest.raises(StackError, match="buffers"):
        dl.train_stacked([with_buffers], tiny, [0], epochs=1, progress=False)
    with pytest.raises(ValueError, match="one seed per model"):
        dl.train_stacked([dropconnect(0)], tiny, [0, 1], progress=False)
