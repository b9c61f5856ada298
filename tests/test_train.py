"""The trainer learns, is reproducible, and its command line fails politely: every
argument checked before any data is loaded, one line and exit 2 for a bad one, exit 1
for missing data, exit 130 on Ctrl-C."""
import json
import signal
import subprocess
import sys

import pytest
import torch

import dropout_lab as dl
from dropout_lab import cli as cli_module


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


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """run_cli(*args) runs the command line in this process and returns (exit status,
    stdout, stderr). Loading data or training fails the test: bad arguments must be
    refused before either starts."""
    def refuse(*args, **kwargs):
        raise AssertionError("the command line went on to load data or train")
    monkeypatch.setattr(cli_module, "load_fashion_mnist", refuse)
    monkeypatch.setattr(cli_module, "train", refuse)

    def run(*args):
        try:
            status = cli_module.train_main([str(a) for a in args])
        except SystemExit as exit:
            status = exit.code
        out, err = capsys.readouterr()
        return status, out, err
    return run


BAD_ARGUMENTS = [
    (["--dropout", "1.5"], "got 1.5"),
    (["--dropout", "nan"], "got nan"),
    (["--epochs", "0"], "--epochs must be a whole number >= 1, got 0"),
    (["--epochs", "1.5"], "argument --epochs: invalid int value: '1.5'"),
    (["--batch-size", "0"], "--batch-size must be a whole number >= 1, got 0"),
    (["--batch-size", "-256"], "--batch-size must be a whole number >= 1, got -256"),
    (["--hidden", "0", "0"], "--hidden (each width) must be a whole number >= 1, got 0"),
    (["--hidden", "-5", "10"], "--hidden (each width) must be a whole number >= 1, got -5"),
    (["--seed", "-1"], "--seed must be a whole number in [0, 2**32), got -1"),
    (["--seed", str(2**32)], "--seed must be a whole number in [0, 2**32), got 4294967296"),
    (["--lr", "nan"], "--lr must be a finite number > 0, got nan"),
    (["--lr", "inf"], "--lr must be a finite number > 0, got inf"),
    (["--lr", "0"], "--lr must be a finite number > 0, got 0.0"),
    (["--weight-decay", "nan"], "--weight-decay must be a finite number >= 0, got nan"),
    (["--weight-decay", "-1"], "--weight-decay must be a finite number >= 0, got -1.0"),
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--hidden", "10", "10", "10"], "give one rate per hidden layer"),
    (["--precision", "fp16"], "argument --precision: invalid choice: 'fp16'"),
]


@pytest.mark.parametrize("args, message", BAD_ARGUMENTS,
                         ids=[" ".join(a) for a, _ in BAD_ARGUMENTS])
def test_cli_bad_arguments_one_line_exit_2_before_any_work(run_cli, args, message):
    """Issue 16, finding 7: some of these gave tracebacks, others trained to NaN."""
    status, out, err = run_cli(*args)
    assert status == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_cli_json_that_cannot_be_written_is_refused_before_training(run_cli, tmp_path):
    """Issue 16, finding 7: a bad --json target failed after training, losing the run."""
    for target, message in [(tmp_path / "no-such-folder" / "h.json", "does not exist"),
                            (tmp_path, "is a folder")]:
        status, out, err = run_cli("--json", target)
        assert status == 2 and message in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_cli_json_in_a_folder_that_refuses_files_is_refused(run_cli, tmp_path, monkeypatch):
    """A read-only folder, simulated (as root, chmod would not stop the write): creating
    the probe file raises PermissionError, as it does in a folder one may not write."""
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(cli_module.tempfile, "NamedTemporaryFile", refuse)
    status, out, err = run_cli("--json", tmp_path / "h.json")
    assert status == 2 and "cannot write in" in err and "Permission denied" in err


def test_cli_missing_data_exits_1_with_one_message(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(cli_module, "train", lambda *a, **k: pytest.fail("trained anyway"))
    assert cli_module.train_main(["--data", str(tmp_path / "none"), "--device", "cpu"]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("device: cpu") and "Traceback" not in err
    assert f"FashionMNIST was asked for in {tmp_path / 'none'}" in err
    assert not (tmp_path / "none").exists()


def fake_history():
    import pandas as pd
    return pd.DataFrame({"epoch": [1], "train_loss": [1.0], "train_acc": [0.5],
                         "test_loss": [1.0], "test_acc": [0.5], "seconds": [0.1]})


def test_cli_passes_precision_only_to_a_trainer_that_takes_it(monkeypatch, capsys):
    monkeypatch.setattr(cli_module, "load_fashion_mnist", lambda root, device: "the data")
    calls = []

    def train_with_precision(model, data, *args, precision="auto", **kwargs):
        calls.append(precision)
        return fake_history()
    monkeypatch.setattr(cli_module, "train", train_with_precision)
    assert cli_module.train_main(["--precision", "bf16", "--device", "cpu", "--quiet"]) == 0
    assert calls == ["bf16"]
    assert capsys.readouterr().out.splitlines()[0] == "device: cpu, precision: bf16"

    def train_without(model, data, epochs, lr, batch_size, weight_decay, seed, device,
                      progress, on_epoch):
        calls.append("fp32")
        return fake_history()
    monkeypatch.setattr(cli_module, "train", train_without)
    assert cli_module.train_main(["--device", "cpu", "--quiet"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "device: cpu, precision: fp32"
    with pytest.raises(SystemExit) as exit:
        cli_module.train_main(["--precision", "bf16", "--device", "cpu"])
    assert exit.value.code == 2 and "trains in float32 only" in capsys.readouterr().err
    assert calls == ["bf16", "fp32"]


def test_cli_bad_argument_in_a_real_process_no_traceback():
    result = subprocess.run([sys.executable, "-m", "dropout_lab", "train", "--hidden", "-5",
                             "10"], capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "python -m dropout_lab.train: error: --hidden (each width) must be a whole number "
        ">= 1, got -5"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cli_cuda_asked_for_but_absent(run_cli):
    status, out, err = run_cli("--device", "cuda")
    assert status == 2 and "no CUDA GPU is available" in err


def test_cli_ctrl_c_prints_one_line_and_exits_130(tmp_path):
    """Issue 16, finding 7: Ctrl-C printed a 19-45 line traceback and exited 1.
    SIGINT is sent once the first epoch has been printed, so it lands mid-training."""
    out = tmp_path / "history.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "dropout_lab.train", "--epochs", "1000", "--hidden", "16",
         "--dropout", "0", "--quiet", "--device", "cpu", "--json", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # as from a terminal: a job that a shell starts in the background (`cmd &`)
        # inherits SIGINT ignored, and Python then installs no KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert process.stdout.readline().startswith("device: cpu, precision: ")
        assert process.stdout.readline().startswith("epoch   1")
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130
    assert err.strip() == "interrupted (Ctrl-C); no results were written"
    assert not out.exists()


def test_cli_trains_and_writes_json(tmp_path):
    out = tmp_path / "history.json"
    result = cli("--epochs", "1", "--hidden", "32", "--dropout", "0.2", "--quiet",
                 "--device", "cpu", "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("device: cpu, precision: ")
    assert "final test accuracy" in result.stdout
    saved = json.loads(out.read_text())
    assert saved["history"]["epoch"] == [1] and saved["history"]["test_acc"][0] > 0.5
    assert saved["settings"]["precision"] == "auto"
    assert [p.name for p in tmp_path.iterdir()] == ["history.json"]  # no temporary left
