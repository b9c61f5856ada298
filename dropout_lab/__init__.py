"""dropout_lab: the small library that the dropout chapter's notebooks share.

Training: dl.train trains one model; dl.sweep trains the chapter's MLP for
many settings and seeds at once, stacked; dl.train_stacked stacks copies of
any other nn.Module (a DropConnect layer, a noise layer of one's own), one
per seed, each trained as dl.train would train it alone.
"""
from .data import (CLASS_NAMES, DataError, DataFileError, DataNotFoundError, TrainValid,
                   data_fingerprint, load_fashion_mnist, validation_split)
from .device import pick_device, set_seed
from .noise import dropout_layer
from .stats import compare, paired, welch
from .stacked import train_stacked
from .sweep import sweep, training_subset
from .training import evaluate, make_mlp, train

__all__ = ["CLASS_NAMES", "DataError", "DataFileError", "DataNotFoundError", "TrainValid",
           "data_fingerprint", "load_fashion_mnist", "validation_split", "pick_device",
           "set_seed", "dropout_layer", "compare", "paired", "welch", "sweep",
           "training_subset", "evaluate", "make_mlp", "train", "train_stacked"]
