"""Caches on disk: written atomically, loaded without pickles, rebuilt when broken."""
import hashlib
import os
import tempfile
import warnings
from pathlib import Path

import torch


def default_folder():
    from .data import default_data_dir
    return default_data_dir() / "sweeps"


def fingerprint(data):
    """A digest of every byte, shape and dtype of the four tensors of `data`."""
    digest = hashlib.blake2b(digest_size=16)
    for tensor in data:
        tensor = tensor.detach().cpu().contiguous()
        digest.update(repr((tuple(tensor.shape), str(tensor.dtype))).encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def atomic_save(obj, path):
    """torch.save to a temporary file beside `path`, then rename; False (with a
    warning) when the folder cannot be written."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
        os.replace(tmp, path)
        return True
    except (OSError, RuntimeError) as error:
        warnings.warn(f"could not write the cache {path} ({error}); continuing without it")
        return False


def load(path):
    """The object saved at `path`, or None if there is none or it cannot be read."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return torch.load(path, weights_only=True)
    except Exception as error:  # truncated, garbage, from an incompatible version
        warnings.warn(f"the cache {path} could not be read ({type(error).__name__}); "
                      "rebuilding it")
        return None
