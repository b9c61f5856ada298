"""The trainer learns, is reproducible, and its command line fails politely."""
import json
import subprocess
import sys

import pytest
import torch

import dropout_lab as dl


def test_trainer_learns_far_above_chance(small_data):
    history = dl.train(dl.make_mlp(), small_data, epochs=3, seed=0, device="cpu", progress=False)
    assert list(history.columns) == ["epoch", "train_loss", "train_acc", "test_loss",
                                     "test_acc", "seconds"]
    assert history.test_acc.iloc[-1] > 0.4   # chance is 0.1; 3 epochs on 5k images reach ~0.55
    assert history.train_loss.iloc[-1] < history.train_loss.iloc[0]


def test_seeded_runs_are_reproducible_on_the_cpu(small_data):
    runs = [dl.train(dl.make_mlp(seed=3), small_data, epochs=1, seed=3, device="cpu",
                     progress=False) for _ in range(2)]
    assert runs[0].drop(columns="seconds").equals(runs[1].drop(columns="seconds"))


def test_make_mlp_shape_and_errors():
    model = dl.make_mlp((0.2, 0.5), (64, 32))
    assert model(torch.zeros(3, 784)).shape == (3, 10)
    with pytest.raises(ValueError, match="one dropout rate per hidden layer"):
        dl.make_mlp((0.5,), (256, 256))
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        dl.make_mlp((1.5, 0.5))


def cli(*args):
    return subprocess.run([sys.executable, "-m", "dropout_lab.train", *args],
                          capture_output=True, text=True)


@pytest.mark.parametrize("args, message", [
    (["--dropout", "1.5"], "got 1.5"),
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--hidden", "10", "10", "10"], "give one rate per hidden layer"),
])
def test_cli_bad_arguments_one_line_exit_2(args, message):
    result = cli(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cli_cuda_asked_for_but_absent():
    result = cli("--device", "cuda")
    assert result.returncode == 2 and "no CUDA GPU is available" in result.stderr


def test_cli_trains_and_writes_json(tmp_path):
    out = tmp_path / "history.json"
    result = cli("--epochs", "1", "--hidden", "32", "--dropout", "0.2", "--quiet",
                 "--device", "cpu", "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "device: cpu" in result.stdout and "final test accuracy" in result.stdout
    history = json.loads(out.read_text())["history"]
    assert history["epoch"] == [1] and history["test_acc"][0] > 0.5
