"""dl.sweep: settings, stacks, subsets, errors, the cache."""
import importlib
import math

import pytest
import torch

import dropout_lab as dl
from dropout_lab import cache as disk
from dropout_lab import noise

sweep_module = importlib.import_module("dropout_lab.sweep")  # dl.sweep is the function

QUICK = {"hidden": (16, 16), "epochs": 1, "n_train": 600}


def test_training_subset_is_what_a_sweep_trains_on(small_data):
    # dl.training_subset must give the images a sweep drew for a seed: trained on
    # them with dl.train, a model follows its twin in the sweep exactly.
    _, models = dl.sweep([{"dropout": (0.3, 0.0), "epochs": 1, "n_train": 700}], [3],
                         small_data, progress=False, return_models=True, precision="fp32")
    subset = dl.training_subset(small_data, 700, seed=3)
    assert subset[0].shape == (700, 784) and subset[2] is small_data[2]
    single = dl.make_mlp((0.3, 0.0), seed=3)
    dl.train(single, subset, epochs=1, seed=3, progress=False, precision="fp32")
    for a, b in zip(single.state_dict().values(), models[0, 3].state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5)


def test_per_model_settings_differ_inside_one_stack(small_data):
    settings = [{"dropout": (0.0, 0.0), "epochs": 1}, {"dropout": (0.9, 0.9), "epochs": 1},
                {"dropout": (0.5, 0.5), "noise": "gaussian", "epochs": 1},
                {"dropout": (0.0, 0.0), "weight_decay": 0.5, "epochs": 1}]
    table = dl.sweep(settings, 2, small_data, progress=False)
    assert len(table) == 4 * 2
    assert set(table.columns) >= {"setting", "seed", "epoch", "p1", "p2", "noise",
                                  "weight_decay", "train_loss", "train_acc", "test_acc"}
    loss = table.groupby("setting").train_loss.mean()
    assert loss[1] > loss[0]          # heavy dropout slows training
    assert loss[3] > loss[0]          # so does heavy weight decay


def test_stacks_of_different_shapes_and_subsets(small_data):
    settings = [{"hidden": (32,), "dropout": (0.2,), "epochs": 1},
                {"hidden": (64, 64), "epochs": 2, "n_train": 1000}]
    table = dl.sweep(settings, 1, small_data, progress=False, max_models=1)
    assert sorted(table.groupby("setting").epoch.max().tolist()) == [1, 2]


@pytest.mark.parametrize("settings, seeds, message", [
    ([{"dropuot": (0.5, 0.5)}], 2, "unknown setting name"),
    ([{"dropout": (0.5, 1.5)}], 2, "in \\[0, 1\\]"),
    ([{"dropout": 0.5}], 2, "must be a tuple with one entry per hidden layer"),
    ([{"hidden": (0, 256)}], 1, "each hidden width must be a whole number >= 1"),
    ([{"epochs": 1.5}], 1, "epochs must be a whole number >= 1, got 1.5"),
    ([{"batch_size": -3}], 1, "batch_size must be a whole number >= 1, got -3"),
    ([{"lr": float("nan")}], 1, "lr must be a finite number > 0, got nan"),
    ([{"lr": 0}], 1, "lr must be a finite number > 0, got 0"),
    ([{"weight_decay": -1}], 1, "weight_decay must be a finite number >= 0, got -1"),
    ([{"weight_decay": float("inf")}], 1, "weight_decay must be a finite number >= 0, got inf"),
    ([{}], 0, "seeds \\(a number of seeds\\) must be a whole number >= 1"),
    ([{}], [], "seeds is empty"),
    ([{}], [0, 1, 0], "seeds must be distinct, but these repeat: 0 \\(2 times\\)"),
    ([{}], [-1], "seeds\\[0\\] must be a whole number in \\[0, 2\\*\\*32\\)"),
    ([{}], 1.5, "seeds \\(a number of seeds\\) must be a whole number"),
    ([], 2, "settings is empty"),
    ([{"noise": "salt"}], 1, "unknown noise"),
    ([{"noise": "gaussian", "dropout": (1.0, 0.5)}], 1, "needs p < 1"),
    ([{"dropout": (0.5,), "hidden": (10, 10)}], 1, "one rate per layer"),
    ([{"n_train": 10**6}], 1, "n_train must be a whole number in \\[1, 5000\\]"),
])
def test_bad_input_is_refused_before_training(small_data, settings, seeds, message):
    with pytest.raises(ValueError, match=message):
        dl.sweep(settings, seeds, small_data, progress=False)


@pytest.mark.parametrize("settings", [None, {"dropout": (0.5, 0.5)}])
def test_settings_that_are_not_a_list_are_refused(small_data, settings):
    with pytest.raises(TypeError, match="settings must be a list of dicts"):
        dl.sweep(settings, 1, small_data, progress=False)


def test_a_model_that_cannot_fit_is_refused_before_training(small_data, monkeypatch):
    monkeypatch.setattr(sweep_module, "memory_budget", lambda device: 10**6)
    with pytest.raises(MemoryError, match="use a smaller batch_size"):
        dl.sweep([{"hidden": (4096, 4096)}], 1, small_data, progress=False)


def test_chunks_follow_the_memory_budget(small_data, monkeypatch):
    need = sweep_module.bytes_per_model(sweep_module.complete_setting(QUICK, 5000), 784,
                                        "fp32")
    monkeypatch.setattr(sweep_module, "memory_budget", lambda device: int(2.5 * need))
    chunks = list(sweep_module.stacks([sweep_module.complete_setting(QUICK, 5000)],
                                      list(range(5)), small_data, "fp32", None))
    assert [len(c) for c in chunks] == [2, 2, 1]


def test_cache_returns_the_same_results(small_data, tmp_path):
    kwargs = dict(progress=False, cache=tmp_path, return_models=True)
    first, models = dl.sweep([QUICK], 2, small_data, **kwargs)
    again, cached = dl.sweep([QUICK], 2, small_data, **kwargs)
    assert first.drop(columns="seconds_per_model").equals(again.drop(columns="seconds_per_model"))
    assert torch.equal(models[0, 1][0].weight, cached[0, 1][0].weight)
    assert again.attrs == first.attrs
    assert len(list(tmp_path.glob("*.pt"))) == 1 and not list(tmp_path.glob("*.tmp"))


def test_the_cache_key_covers_all_of_the_data(small_data, tmp_path):
    # Old key: only X_train[:512] and y_train. Any byte of the data must count.
    first = dl.sweep([QUICK], 1, small_data, progress=False, cache=tmp_path)
    noisy_test = (small_data[0], small_data[1], torch.rand_like(small_data[2]), small_data[3])
    again = dl.sweep([QUICK], 1, noisy_test, progress=False, cache=tmp_path)
    assert len(list(tmp_path.glob("*.pt"))) == 2
    assert again.test_acc.iloc[-1] != first.test_acc.iloc[-1]
    X_late = small_data[0].clone()
    X_late[4000:] = 0
    dl.sweep([QUICK], 1, (X_late, *small_data[1:]), progress=False, cache=tmp_path)
    assert len(list(tmp_path.glob("*.pt"))) == 3


def test_a_broken_cache_is_rebuilt_with_a_warning(small_data, tmp_path):
    first = dl.sweep([QUICK], 1, small_data, progress=False, cache=tmp_path)
    path, = tmp_path.glob("*.pt")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(UserWarning, match=str(path.name)):
        again = dl.sweep([QUICK], 1, small_data, progress=False, cache=tmp_path)
    assert again.test_acc.tolist() == first.test_acc.tolist()
    assert disk.load(path) is not None


def test_an_unwritable_cache_still_returns_the_table(small_data, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError("read-only file system")
    monkeypatch.setattr(disk.tempfile, "mkstemp", refuse)
    with pytest.warns(UserWarning, match="could not write the cache"):
        table = dl.sweep([QUICK], 1, small_data, progress=False, cache=tmp_path)
    assert len(table) == 1 and not list(tmp_path.glob("*"))


def test_bernoulli_masks_drop_at_the_asked_rate_and_keep_the_mean():
    # Masks come from 16-bit random integers: the drop rate per model against p and the
    # mean multiplier against 1, within 5 standard errors.
    p = torch.tensor([0.0, 0.2, 0.5, 0.7, 0.9, 1.0])[:, None, None]
    generators = [torch.Generator().manual_seed(k) for k in range(len(p))]
    M, s = noise.bernoulli(p, (400, 500), generators)
    out = M * s
    for k, rate in enumerate(p.flatten().tolist()):
        n = out[k].numel()
        dropped = (out[k] == 0).double().mean().item()
        assert abs(dropped - rate) <= 5 * math.sqrt(rate * (1 - rate) / n) + 1e-5
        if rate < 1:
            se = math.sqrt(rate / (1 - rate) / n)
            assert abs(out[k].double().mean().item() - 1) <= 5 * se + 1e-6
        else:
            assert (out[k] == 0).all()


@pytest.mark.parametrize("scheme", ["gaussian", "uniform"])
def test_other_schemes_have_dropouts_mean_and_variance(scheme):
    p = torch.tensor([0.2, 0.5])[:, None, None]
    generators = [torch.Generator().manual_seed(k) for k in (0, 1)]
    M, s = noise.SCHEMES[scheme](p, (1000, 400), generators)
    out = (M * s).double()
    for k, rate in enumerate((0.2, 0.5)):
        var = rate / (1 - rate)
        n = out[k].numel()
        assert abs(out[k].mean().item() - 1) < 5 * math.sqrt(var / n)
        assert abs(out[k].var().item() / var - 1) < 0.02


def test_no_folder_for_the_cache_is_a_warning_not_an_error(small_data, monkeypatch):
    def no_folder():
        raise ValueError("there is no data folder for the sweep cache")
    monkeypatch.setattr(disk, "default_folder", no_folder)
    with pytest.warns(disk.CacheWarning, match="runs without its cache"):
        table = dl.sweep([QUICK], 1, small_data, progress=False, cache=True)
    assert len(table) == 1
