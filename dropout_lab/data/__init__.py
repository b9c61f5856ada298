"""FashionMNIST as whole tensors, from real files only.

Where the files come from, first match wins:
  1. an explicit `root` argument, or the DROPOUT_LAB_DATA environment variable;
  2. this repository's data folder (`<repo>/data`; `~/dropout_lab_data` when the
     package is installed outside a checkout, e.g. in Colab);
  3. Debian's `dataset-fashion-mnist` package (/usr/share/datasets/fashion-mnist);
  4. torchvision's download into the data folder.
The decoded tensors are cached (uint8, ~55 MB) in the data folder, so the
second load takes a fraction of a second.
"""
import gzip
import os
from collections import namedtuple
from pathlib import Path

import numpy as np
import torch

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FILES = {"X_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
         "X_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
CACHE_NAME = "fashion_mnist_uint8.pt"

FashionMNIST = namedtuple("FashionMNIST", ["X_train", "y_train", "X_test", "y_test"])
FashionMNIST.__doc__ = """Images as float32 rows of 784 pixels in [0, 1] (not normalized),
labels as int64 class indices 0-9 (names in CLASS_NAMES)."""


class DataNotFoundError(RuntimeError):
    pass


def default_data_dir():
    """`<repo>/data` inside a checkout, else ~/dropout_lab_data."""
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").exists() and os.access(repo, os.W_OK):
        return repo / "data"
    return Path.home() / "dropout_lab_data"


def read_idx(path):
    """Decode one IDX file (gzipped or not) into a uint8 numpy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def find_files(folder):
    """The four IDX files in `folder` (or its FashionMNIST/raw), or None."""
    for base in (Path(folder), Path(folder) / "FashionMNIST" / "raw"):
        found = {}
        for key, name in FILES.items():
            for candidate in (base / name, base / (name + ".gz")):
                if candidate.is_file():
                    found[key] = candidate
                    break
        if len(found) == 4:
            return found
    return None


def download(folder):
    """Download with torchvision into folder/FashionMNIST/raw; None on failure."""
    try:
        import torchvision
        torchvision.datasets.FashionMNIST(str(folder), train=True, download=True)
        torchvision.datasets.FashionMNIST(str(folder), train=False, download=True)
    except Exception as error:  # no network, a proxy, a full disk ...
        return f"{type(error).__name__}: {error}"
    return None


def not_found_message(root, data_dir, download_error):
    where = f"{root}" if root else "(none given; DROPOUT_LAB_DATA is not set)"
    return (
        "FashionMNIST was not found. Tried, in order:\n"
        f"  1. an explicit path or DROPOUT_LAB_DATA: {where}\n"
        f"  2. the data folder: {data_dir}\n"
        f"  3. Debian's package: {DEBIAN_DIR} (sudo apt-get install dataset-fashion-mnist)\n"
        f"  4. torchvision's download: {download_error or 'not tried (download=False)'}\n"
        "Do one of: install the Debian package; connect to the internet and run again; "
        "or put the four *-ubyte(.gz) files in a folder and pass "
        "load_fashion_mnist(root=FOLDER) or set DROPOUT_LAB_DATA=FOLDER.")


def locate(root=None, data_dir=None, allow_download=True):
    """Return {name: path} of the four files, searching the sources in order."""
    root = root or os.environ.get("DROPOUT_LAB_DATA")
    data_dir = Path(data_dir or default_data_dir())
    for folder in ([root] if root else []) + [data_dir, DEBIAN_DIR]:
        found = find_files(folder)
        if found:
            return found
    download_error = None
    if allow_download:
        download_error = download(data_dir)
        found = find_files(data_dir)
        if found:
            return found
        download_error = download_error or "downloaded files not found"
    raise DataNotFoundError(not_found_message(root, data_dir, download_error))


def load_uint8(root=None, data_dir=None, allow_download=True):
    """The four arrays as uint8 tensors, read from the cache when possible."""
    data_dir = Path(data_dir or default_data_dir())
    explicit = root or os.environ.get("DROPOUT_LAB_DATA")
    cache = Path(explicit or data_dir) / CACHE_NAME
    if cache.is_file():
        return torch.load(cache)
    files = locate(root, data_dir, allow_download)
    arrays = {key: torch.from_numpy(read_idx(path).copy()) for key, path in files.items()}
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(arrays, cache)
    except OSError:
        pass  # a read-only folder only costs us the cache
    return arrays


def load_fashion_mnist(root=None, device="cpu", data_dir=None, allow_download=True):
    """FashionMNIST, all 60,000 training and 10,000 test images, on `device`.

    Returns a FashionMNIST tuple (X_train, y_train, X_test, y_test): X as
    float32 (N, 784) with pixels scaled to [0, 1], y as int64 (N,).
    Raises DataNotFoundError, naming every source tried, when no source works.
    """
    arrays = load_uint8(root, data_dir, allow_download)
    X_train, X_test = (arrays[k].reshape(len(arrays[k]), -1) for k in ("X_train", "X_test"))
    return FashionMNIST(
        X_train.to(device=device, dtype=torch.float32) / 255,
        arrays["y_train"].to(device=device, dtype=torch.int64),
        X_test.to(device=device, dtype=torch.float32) / 255,
        arrays["y_test"].to(device=device, dtype=torch.int64))


def main(argv=None):
    """python -m dropout_lab.data [--no-download]: find (or fetch) the data, cache it."""
    import argparse
    import sys
    parser = argparse.ArgumentParser(prog="python -m dropout_lab.data",
                                     description="Find FashionMNIST and cache it as tensors.")
    parser.add_argument("--root", default=None, help="a folder with the four files")
    parser.add_argument("--no-download", action="store_true", help="do not try torchvision")
    args = parser.parse_args(argv)
    try:
        data = load_fashion_mnist(args.root, allow_download=not args.no_download)
    except DataNotFoundError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"FashionMNIST ready: {len(data.X_train)} training and {len(data.X_test)} test "
          f"images, cached in {Path(args.root or os.environ.get('DROPOUT_LAB_DATA') or default_data_dir())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
