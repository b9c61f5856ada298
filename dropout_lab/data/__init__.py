"""FashionMNIST as whole tensors, from real files only, checked every time they are read.

Where the files come from, first match wins:
  1. an explicit `root` argument, or the DROPOUT_LAB_DATA environment variable:
     then there only (a folder without the files is an error, never a fallback);
  2. the data folder (`<repo>/data` in a checkout; `~/dropout_lab_data` when the
     package is installed outside one, e.g. in Colab);
  3. Debian's `dataset-fashion-mnist` package (/usr/share/datasets/fashion-mnist);
  4. torchvision's download into the data folder.
Each file's header, size, shape and labels are checked. The decoded tensors are
cached (uint8, ~55 MB) in the explicit folder or the data folder, under a key made
from the four files' bytes: a cache made from other files is never used. The cache
is written atomically (dropout_lab.cache) and skipped, with a warning, where it
cannot be written. No folder is made except the data folder itself.
"""
import gzip
import hashlib
import os
import warnings
import zlib
from collections import namedtuple
from pathlib import Path

import numpy as np
import torch

from .. import cache
from ..device import pick_device
from ..validate import check_int

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FILES = {"X_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
         "X_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
SHAPES = {"X_train": (60000, 28, 28), "y_train": (60000,),
          "X_test": (10000, 28, 28), "y_test": (10000,)}
MAGIC = {"images": 2051, "labels": 2049}  # 0x0803 / 0x0801: unsigned bytes, 3 or 1 dims
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
CACHE_NAME = "fashion_mnist_uint8.pt"
CACHE_VERSION = 2
SPLIT_SEED = 2017  # the validation split's own seed (the year of Fashion-MNIST); never change

FashionMNIST = namedtuple("FashionMNIST", ["X_train", "y_train", "X_test", "y_test"])
FashionMNIST.__doc__ = """Images as float32 rows of 784 pixels in [0, 1] (not normalized),
labels as int64 class indices 0-9 (names in CLASS_NAMES)."""
TrainValid = namedtuple("TrainValid", ["X_train", "y_train", "X_valid", "y_valid"])
TrainValid.__doc__ = """The training images split in two by validation_split: models
train on (X_train, y_train) and are compared on (X_valid, y_valid); the test set
stays untouched until the end."""


class DataError(RuntimeError):
    """FashionMNIST could not be loaded; the message says why and what to do."""


class DataNotFoundError(DataError):
    """No source holds the four files."""


class DataFileError(DataError):
    """A data file is there but broken: truncated, corrupt, or not FashionMNIST."""


def default_data_dir():
    """`<repo>/data` inside a writable checkout, else ~/dropout_lab_data; None when
    HOME is set but empty or relative, rather than a folder at the filesystem root."""
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").exists() and os.access(repo, os.W_OK):
        return repo / "data"
    home = os.environ.get("HOME")
    if home is not None and not os.path.isabs(home):
        return None
    return Path.home() / "dropout_lab_data"


def explicit_root(root=None):
    """The folder the user named (argument first, then DROPOUT_LAB_DATA), or None."""
    chosen = root if root is not None and str(root) != "" else os.environ.get("DROPOUT_LAB_DATA")
    return Path(chosen) if chosen else None


def what_to_do(path):
    if Path(path).resolve().is_relative_to(DEBIAN_DIR.resolve()):
        return "reinstall Debian's copy: sudo apt-get install --reinstall dataset-fashion-mnist"
    return ("delete it and fetch the files again (python -m dropout_lab.data), "
            "or point DROPOUT_LAB_DATA at a folder with good copies")


def bad_file(path, problem):
    return DataFileError(f"{path} {problem}: {what_to_do(path)}")


def read_idx(path, kind):
    """Decode one IDX file (gzipped or not) into a uint8 numpy array, checking it:
    kind "images" must have magic number 2051 and shape (N, 28, 28), kind "labels"
    magic number 2049, shape (N,) and values 0-9; the header's sizes must match
    the bytes that follow. Raise DataFileError, naming the file, otherwise."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as error:  # BadGzipFile is an OSError
        raise bad_file(path, f"cannot be read ({type(error).__name__}: {error}); "
                             "it is probably truncated or corrupt") from None
    if len(raw) < 4:
        raise bad_file(path, f"is {len(raw)} bytes long, too short for an IDX file")
    magic, ndim = int.from_bytes(raw[:4], "big"), raw[3]
    if magic != MAGIC[kind]:
        raise bad_file(path, f"starts with the magic number {magic}, but a file of {kind} "
                             f"starts with {MAGIC[kind]}: it is not a FashionMNIST {kind} file")
    offset = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if len(raw) - offset != int(np.prod(shape)):
        raise bad_file(path, f"has a header for {shape} = {int(np.prod(shape))} values but "
                             f"holds {len(raw) - offset}: it is truncated or corrupt")
    array = np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(shape)
    if kind == "images" and shape[1:] != (28, 28):
        raise bad_file(path, f"holds images of {shape[1:]} pixels, not 28 x 28")
    if kind == "labels" and array.size and array.max() > 9:
        wrong = np.unique(array[array > 9])
        raise bad_file(path, f"holds labels outside 0-9 (e.g. {wrong[:5].tolist()})")
    return array


def check_counts(arrays, files):
    """Images and labels must agree, and there must be FashionMNIST's 60,000 + 10,000."""
    for split in ("train", "test"):
        images, labels = arrays[f"X_{split}"], arrays[f"y_{split}"]
        if len(images) != len(labels):
            raise bad_file(files[f"y_{split}"], f"holds {len(labels)} labels but "
                           f"{files[f'X_{split}']} holds {len(images)} images: they must match")
    for key, shape in SHAPES.items():
        if arrays[key].shape != shape:
            raise bad_file(files[key], f"holds {arrays[key].shape[0]} entries; "
                                       f"FashionMNIST's file holds {shape[0]}")


def read_files(files):
    """The four files decoded and checked, as uint8 tensors."""
    arrays = {key: read_idx(path, "images" if key.startswith("X") else "labels")
              for key, path in files.items()}
    check_counts(arrays, files)
    return {key: torch.from_numpy(array.copy()) for key, array in arrays.items()}


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
    """Download with torchvision into folder/FashionMNIST/raw; None, or why it failed."""
    try:
        import torchvision
        torchvision.datasets.FashionMNIST(str(folder), train=True, download=True)
        torchvision.datasets.FashionMNIST(str(folder), train=False, download=True)
    except Exception as error:  # no network, a proxy, a full disk ...
        return f"{type(error).__name__}: {error}"
    return None


def explicit_message(root):
    state = "does not exist" if not root.exists() else (
        "is not a folder" if not root.is_dir() else "does not hold the four files")
    names = ", ".join(FILES.values())
    return (f"FashionMNIST was asked for in {root} (the root argument or DROPOUT_LAB_DATA), "
            f"but that path {state}. Put the files {names} (each may end in .gz) there, "
            "or pass another folder, or unset DROPOUT_LAB_DATA to use the other sources.")


def not_found_message(data_dir, download_error):
    return (
        "FashionMNIST was not found. Tried, in order:\n"
        "  1. an explicit path or DROPOUT_LAB_DATA: none given\n"
        f"  2. the data folder: {data_dir or 'none (HOME is empty)'}\n"
        f"  3. Debian's package: {DEBIAN_DIR} (sudo apt-get install dataset-fashion-mnist)\n"
        f"  4. torchvision's download: {download_error or 'not tried (download=False)'}\n"
        "Do one of: install the Debian package; connect to the internet and run again; "
        "or put the four *-ubyte(.gz) files in a folder and pass "
        "load_fashion_mnist(root=FOLDER) or set DROPOUT_LAB_DATA=FOLDER.")


def locate(root=None, data_dir=None, allow_download=True):
    """Return {name: path} of the four files, searching the sources in order."""
    explicit = explicit_root(root)
    if explicit:
        found = find_files(explicit)
        if not found:
            raise DataNotFoundError(explicit_message(explicit))
        return found
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    for folder in [data_dir, DEBIAN_DIR]:
        found = folder and find_files(folder)
        if found:
            return found
    download_error = None
    if allow_download:
        if data_dir is None:
            download_error = "no data folder to download into: set HOME or DROPOUT_LAB_DATA"
        else:
            download_error = download(data_dir) or "downloaded files not found"
            found = find_files(data_dir)
            if found:
                return found
    raise DataNotFoundError(not_found_message(data_dir, download_error))


def sources_key(files):
    """What the cache is valid for: a hash of each source file's bytes."""
    key = {"version": CACHE_VERSION}
    for name, path in files.items():
        with open(path, "rb") as f:
            key[name] = hashlib.sha256(f.read()).hexdigest()
    return key


def cache_file(root, data_dir):
    """Where the decoded tensors are cached, or None when there is no place to."""
    folder = explicit_root(root) or (Path(data_dir) if data_dir else default_data_dir())
    return folder / CACHE_NAME if folder else None


def save_cache(path, arrays, key):
    """Write the cache; the data folder is the one folder made when missing."""
    try:
        path.parent.mkdir(exist_ok=True)  # no parents: never a tree in an unexpected place
    except OSError as error:
        warnings.warn(f"could not make the data folder {path.parent} ({error}); "
                      "going on without a cache", cache.CacheWarning, stacklevel=4)
        return False
    return cache.atomic_save({"key": key, **arrays}, path)


def is_cache_of(cached, key):
    """Whether a loaded cache was made from the files with this key, and is whole."""
    return (isinstance(cached, dict) and cached.get("key") == key
            and all(isinstance(cached.get(name), torch.Tensor) and cached[name].dtype
                    == torch.uint8 and tuple(cached[name].shape) == shape
                    for name, shape in SHAPES.items()))


def load_uint8(root=None, data_dir=None, allow_download=True):
    """The four arrays as uint8 tensors, from the cache when it was made from these files."""
    files = locate(root, data_dir, allow_download)
    key = sources_key(files)
    path = cache_file(root, data_dir)
    cached = cache.load(path) if path else None
    if is_cache_of(cached, key):
        return {name: cached[name] for name in FILES}
    if cached is not None:
        warnings.warn(f"the cache {path} was made from other files than those in "
                      f"{files['X_train'].parent} (or by an older dropout_lab); rebuilding it",
                      cache.CacheWarning, stacklevel=3)
    arrays = read_files(files)
    if path:
        save_cache(path, arrays, key)
    return arrays


def load_fashion_mnist(root=None, device="cpu", data_dir=None, allow_download=True):
    """FashionMNIST, all 60,000 training and 10,000 test images, on `device`
    ("auto" picks CUDA when there is a GPU, as train and sweep do).

    Returns a FashionMNIST tuple (X_train, y_train, X_test, y_test): X as
    float32 (N, 784) with pixels scaled to [0, 1], y as int64 (N,).
    Raises DataNotFoundError, naming every source tried, when no source works,
    and DataFileError, naming the file, when a file is broken.
    """
    device = pick_device(device)
    arrays = load_uint8(root, data_dir, allow_download)
    X_train, X_test = (arrays[k].reshape(len(arrays[k]), -1) for k in ("X_train", "X_test"))
    return FashionMNIST(
        X_train.to(device=device, dtype=torch.float32) / 255,
        arrays["y_train"].to(device=device, dtype=torch.int64),
        X_test.to(device=device, dtype=torch.float32) / 255,
        arrays["y_test"].to(device=device, dtype=torch.int64))


def data_fingerprint(data):
    """A hex digest of everything in `data` (any tuple of tensors, e.g. FashionMNIST
    or TrainValid): every byte, shape and dtype of each tensor, and the field names.
    Changing one pixel of any image changes it. SHA-256, which CPUs with SHA
    extensions compute at over 1 GB/s (the 220 MB of FashionMNIST in about 0.2 s)."""
    digest = hashlib.sha256(repr(getattr(type(data), "_fields", len(data))).encode())
    for tensor in data:
        tensor = torch.as_tensor(tensor).detach().cpu().contiguous()
        digest.update(f"{tuple(tensor.shape)} {tensor.dtype};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def validation_split(data, n_valid=10_000):
    """Split the training images of `data` into TrainValid(X_train, y_train, X_valid,
    y_valid): n_valid images drawn at random for validation, the rest for training.
    The test images are not used. The split is fixed: the same images for every
    caller, seed and machine, whatever torch's random state (numpy's legacy
    RandomState(SPLIT_SEED), whose stream numpy keeps stable across versions).
    Both parts keep the images' original order."""
    X, y = data[0], data[1]
    n_valid = check_int("n_valid", n_valid, minimum=1, maximum=len(X) - 1)
    order = np.random.RandomState(SPLIT_SEED).permutation(len(X))
    valid = torch.from_numpy(np.sort(order[:n_valid])).to(X.device)
    train = torch.from_numpy(np.sort(order[n_valid:])).to(X.device)
    return TrainValid(X[train], y[train], X[valid], y[valid])
