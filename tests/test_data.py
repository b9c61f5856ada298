"""The loader on the real files, and its one clear error when no source works."""
import subprocess
import sys

import pytest
import torch

import dropout_lab as dl
from dropout_lab import data as data_module


def test_real_fashion_mnist_shapes_ranges_labels(data):
    assert data.X_train.shape == (60000, 784) and data.X_test.shape == (10000, 784)
    assert data.X_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert 0.0 == data.X_train.min() and data.X_train.max() == 1.0
    assert torch.equal(torch.bincount(data.y_train), torch.full((10,), 6000))
    assert torch.equal(torch.bincount(data.y_test), torch.full((10,), 1000))
    assert data.y_test[:5].tolist() == [9, 2, 1, 1, 6]  # the published test set's order


def test_reads_the_raw_files_from_an_explicit_folder(tmp_path, monkeypatch):
    source = data_module.find_files(data_module.DEBIAN_DIR) or data_module.find_files(
        data_module.default_data_dir())
    if source is None:
        pytest.skip("no raw IDX files on this machine (only the cache)")
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for path in source.values():
        (raw / path.name).symlink_to(path)
    loaded = dl.load_fashion_mnist(root=tmp_path, data_dir=tmp_path / "unused",
                                   allow_download=False)
    assert loaded.X_test.shape == (10000, 784)
    assert (tmp_path / data_module.CACHE_NAME).exists()  # the second load is fast


def no_source(tmp_path, monkeypatch):
    monkeypatch.setattr(data_module, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setattr(data_module, "download", lambda folder: "URLError: no network")
    monkeypatch.delenv("DROPOUT_LAB_DATA", raising=False)


def test_no_source_gives_one_message_naming_every_way(tmp_path, monkeypatch):
    no_source(tmp_path, monkeypatch)
    with pytest.raises(dl.DataNotFoundError) as error:
        dl.load_fashion_mnist(root=tmp_path / "empty", data_dir=tmp_path / "data")
    message = str(error.value)
    for expected in ("empty", str(tmp_path / "data"), "dataset-fashion-mnist",
                     "no network", "DROPOUT_LAB_DATA"):
        assert expected in message


def test_missing_data_on_the_command_line_exits_non_zero(tmp_path):
    env = {"DROPOUT_LAB_DATA": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    code = ("import dropout_lab.data as d, pathlib, sys;"
            f"d.DEBIAN_DIR = pathlib.Path({str(tmp_path / 'none')!r});"
            "d.download = lambda folder: 'URLError: no network';"
            "sys.exit(d.main(['--root', sys.argv[1]]))")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env,
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert "FashionMNIST was not found" in result.stderr
    assert "Traceback" not in result.stderr
