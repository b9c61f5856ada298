"""The sweep engine: equivalence with the single-model trainer, per-model settings, errors."""
import math

import pytest
import torch

import dropout_lab as dl


def test_one_model_of_a_sweep_equals_the_single_trainer_without_noise(small_data):
    # With no dropout masks to draw, a model in a stack of four must follow exactly
    # the path of train() with the same seed: same init, same data order.
    table, models = dl.sweep([{"dropout": (0.0, 0.0), "epochs": 2}], [0, 1, 2, 3], small_data,
                             device="cpu", progress=False, return_models=True)
    single = dl.make_mlp((0.0, 0.0), seed=2)
    history = dl.train(single, small_data, epochs=2, seed=2, device="cpu", progress=False)
    swept = table[table.seed == 2].reset_index()
    for column in ("train_loss", "test_loss"):
        assert swept[column].tolist() == pytest.approx(history[column].tolist(), rel=1e-4)
    assert swept.test_acc.tolist() == pytest.approx(history.test_acc.tolist(), abs=2e-3)
    for a, b in zip(single.state_dict().values(), models[0, 2].state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5)


def test_training_subset_is_what_a_sweep_trains_on(small_data):
    # dl.training_subset must give the images a sweep drew for a seed: trained on
    # them with dl.train (no noise), a model follows its twin in the sweep exactly.
    _, models = dl.sweep([{"dropout": (0.0, 0.0), "epochs": 1, "n_train": 700}], [3],
                         small_data, device="cpu", progress=False, return_models=True)
    subset = dl.training_subset(small_data, 700, seed=3)
    assert subset.X_train.shape == (700, 784) and subset.X_test is small_data[2]
    single = dl.make_mlp((0.0, 0.0), seed=3)
    dl.train(single, subset, epochs=1, seed=3, device="cpu", progress=False)
    for a, b in zip(single.state_dict().values(), models[0, 3].state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5)


def test_with_dropout_the_sweep_matches_the_trainer_in_distribution(small_data):
    # Masks are drawn differently, so compare over seeds: the means must agree within
    # their combined standard error (times 4), and both must have learned.
    seeds = range(6)
    swept = dl.sweep([{"dropout": (0.5, 0.5), "epochs": 2}], seeds, small_data, device="cpu",
                     progress=False)
    swept = swept[swept.epoch == 2].test_acc
    single = torch.tensor([dl.train(dl.make_mlp(seed=s), small_data, epochs=2, seed=s,
                                    device="cpu", progress=False).test_acc.iloc[-1]
                           for s in seeds])
    se = math.sqrt(swept.var() / len(swept) + single.var().item() / len(single))
    assert abs(swept.mean() - single.mean().item()) < 4 * se + 0.01
    assert swept.mean() > 0.5 and single.mean() > 0.5


def test_per_model_settings_differ_inside_one_stack(small_data):
    settings = [{"dropout": (0.0, 0.0), "epochs": 1}, {"dropout": (0.9, 0.9), "epochs": 1},
                {"dropout": (0.5, 0.5), "noise": "gaussian", "epochs": 1},
                {"dropout": (0.0, 0.0), "weight_decay": 0.5, "epochs": 1}]
    table = dl.sweep(settings, 2, small_data, device="cpu", progress=False)
    assert len(table) == 4 * 2
    assert set(table.columns) >= {"setting", "seed", "epoch", "p1", "p2", "noise",
                                  "weight_decay", "train_loss", "train_acc", "test_acc"}
    loss = table.groupby("setting").train_loss.mean()
    assert loss[1] > loss[0]          # heavy dropout slows training
    assert loss[3] > loss[0]          # so does heavy weight decay


def test_stacks_of_different_shapes_and_subsets(small_data):
    settings = [{"hidden": (32,), "dropout": (0.2,), "epochs": 1},
                {"hidden": (64, 64), "epochs": 2, "n_train": 1000}]
    table = dl.sweep(settings, 1, small_data, device="cpu", progress=False, max_floats=1e5)
    assert sorted(table.groupby("setting").epoch.max().tolist()) == [1, 2]


@pytest.mark.parametrize("settings, seeds, message", [
    ([{"dropuot": (0.5, 0.5)}], 2, "unknown setting name"),
    ([{"dropout": (0.5, 1.5)}], 2, "in \\[0, 1\\]"),
    ([{}], 0, "seeds must be"),
    ([{}], [], "seeds must be"),
    ([], 2, "settings is empty"),
    ([{"noise": "salt"}], 1, "unknown noise"),
    ([{"dropout": (0.5,), "hidden": (10, 10)}], 1, "one rate per layer"),
    ([{"n_train": 10**6}], 1, "n_train must be between"),
])
def test_bad_input_is_refused_before_training(small_data, settings, seeds, message):
    with pytest.raises(ValueError, match=message):
        dl.sweep(settings, seeds, small_data, device="cpu", progress=False)


@pytest.mark.parametrize("settings", [None, {"dropout": (0.5, 0.5)}])
def test_settings_that_are_not_a_list_are_refused(small_data, settings):
    with pytest.raises(TypeError, match="settings must be a list of dicts"):
        dl.sweep(settings, 1, small_data, device="cpu", progress=False)


def test_cache_returns_the_same_results(small_data, tmp_path):
    kwargs = dict(device="cpu", progress=False, cache=tmp_path, return_models=True)
    first, models = dl.sweep([{"epochs": 1, "hidden": (16, 16)}], 2, small_data, **kwargs)
    again, cached = dl.sweep([{"epochs": 1, "hidden": (16, 16)}], 2, small_data, **kwargs)
    assert first.drop(columns="seconds_per_model").equals(again.drop(columns="seconds_per_model"))
    assert torch.equal(models[0, 1][0].weight, cached[0, 1][0].weight)
    assert len(list(tmp_path.glob("*.pt"))) == 1


def test_sweep_masks_drop_at_the_asked_rate_and_keep_the_mean():
    # The sweep's masks come from 16-bit random integers (sweep.keep_mask): check the
    # drop rate per model against p and the mean multiplier against 1, within 5 SE.
    from dropout_lab.sweep import noise, noise_params
    p = torch.tensor([[0.0, 0.2], [0.5, 0.7], [0.9, 1.0]])
    H = torch.ones(3, 400, 500)
    gaussian = torch.zeros(3, dtype=torch.bool)
    for layer, params in enumerate(noise_params(p, gaussian)):
        out = noise(H, *params)
        for k in range(3):
            rate, n = p[k, layer].item(), out[k].numel()
            dropped = (out[k] == 0).double().mean().item()
            assert abs(dropped - rate) <= 5 * math.sqrt(rate * (1 - rate) / n) + 1e-5
            if rate < 1:
                se = math.sqrt(rate / (1 - rate) / n)
                assert abs(out[k].double().mean().item() - 1) <= 5 * se + 1e-6
            else:
                assert (out[k] == 0).all()
