"""Pick where to compute, and make runs repeatable."""
import random

import numpy as np
import torch


def pick_device(device="auto"):
    """Return a torch.device: CUDA when available for "auto", else the one asked for.

    Asking for "cuda" on a machine without a GPU is an error, not a silent
    fallback, so a benchmark never reports CPU numbers as GPU numbers.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
        raise ValueError(f"unknown device {device!r}: use 'auto', 'cpu' or 'cuda'")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            "device 'cuda' was asked for but no CUDA GPU is available here; "
            "use --device cpu or auto (in Colab: Runtime > Change runtime type > GPU)")
    return torch.device(device)


def set_seed(seed):
    """Seed Python, NumPy and torch (CPU and every GPU) in one call."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds all CUDA devices
