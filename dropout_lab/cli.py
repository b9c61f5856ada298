"""The command line: python -m dropout_lab data|train [ARGUMENTS], or the same as
python -m dropout_lab.data and python -m dropout_lab.train:

    python -m dropout_lab.data [--root FOLDER] [--no-download]
    python -m dropout_lab.train --epochs 10 --dropout 0.5 0.5 --seed 0 [--device cpu|cuda|auto]
        [--precision auto|fp32|bf16] [--json FILE]

Every argument is checked before any work starts, including that --json can be
written: a bad one prints one line and exits with status 2. Missing or broken
data exits with 1 and one message; Ctrl-C prints one line and exits with 130.

The code lives here, not in train.py, because importing the module
dropout_lab.train would replace the function dl.train by that module.
"""
import argparse
import inspect
import json
import sys
import tempfile
from pathlib import Path

from .cache import write_atomically
from .data import DataError, cache_file, load_fashion_mnist
from .device import pick_device
from .engine import PRECISIONS, resolve_precision
from .noise import check_p
from .training import make_mlp, train
from .validate import SEED_LIMIT, check_float, check_int

INTERRUPTED = "interrupted (Ctrl-C); no results were written"


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def train_has_precision():
    """Whether dl.train takes a precision (the stacked engine does; the plain loop not)."""
    return "precision" in inspect.signature(train).parameters


def check_writable(path):
    """Fail now rather than after training: path must name a file in an existing
    folder where a new file can be made."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"--json {path} is a folder: give a file name, e.g. {path}/run.json")
    if not path.parent.is_dir():
        raise ValueError(f"--json {path}: the folder {path.parent} does not exist; "
                         "create it or choose another path")
    try:
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"):
            pass
    except OSError as error:
        raise ValueError(f"--json {path}: cannot write in {path.parent} ({error.strerror}); "
                         "choose another path") from None


def check_args(args):
    """Check every argument; raise ValueError with one sentence naming the bad one."""
    check_int("--epochs", args.epochs, minimum=1)
    check_int("--batch-size", args.batch_size, minimum=1)
    check_int("--seed", args.seed, 0, SEED_LIMIT - 1)
    for width in args.hidden:
        check_int("--hidden (each width)", width, minimum=1)
    check_float("--lr", args.lr, minimum=0, strict_minimum=True)
    check_float("--weight-decay", args.weight_decay, minimum=0)
    for p in args.dropout:
        check_p(p)
    if len(args.hidden) != len(args.dropout):
        raise ValueError(f"--hidden has {len(args.hidden)} widths but --dropout has "
                         f"{len(args.dropout)} rates: give one rate per hidden layer")
    if args.precision == "bf16" and not train_has_precision():
        raise ValueError("--precision bf16: this version of dl.train trains in float32 only; "
                         "use --precision fp32 or auto")
    if args.json:
        check_writable(args.json)


def parse_args(argv):
    parser = OneLineParser(
        prog="python -m dropout_lab.train",
        description="Train the chapter's MLP (784-256-256-10) on FashionMNIST.")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--dropout", type=float, nargs="+", default=[0.5, 0.5],
                        help="drop probability after each hidden layer")
    parser.add_argument("--hidden", type=int, nargs="+", default=None,
                        help="hidden widths (default: 256 per dropout rate)")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0, help="a whole number in [0, 2**32)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="bf16 matmuls where the trainer and the hardware support them")
    parser.add_argument("--data", default=None, help="folder with the FashionMNIST files")
    parser.add_argument("--json", default=None, help="write the history to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    args.hidden = args.hidden or [256] * len(args.dropout)
    try:
        check_args(args)
        args.device = pick_device(args.device)
        # what "auto" means here; bf16 on a GPU without it is refused now
        args.precision_used = (resolve_precision(args.precision, args.device)
                               if train_has_precision() else "fp32")
    except ValueError as error:
        parser.error(str(error))
    return args


def print_epoch(row):
    print(f"epoch {row['epoch']:3d}  train loss {row['train_loss']:.4f}  "
          f"train acc {row['train_acc']:.4f}  test acc {row['test_acc']:.4f}  "
          f"{row['seconds']:.2f} s", flush=True)


def run(args):
    options = {"precision": args.precision} if train_has_precision() else {}
    print(f"device: {args.device}, precision: {args.precision_used}", flush=True)
    try:
        data = load_fashion_mnist(args.data, device=args.device)
    except DataError as error:
        print(error, file=sys.stderr)
        return 1
    model = make_mlp(args.dropout, args.hidden, seed=args.seed)
    history = train(model, data, args.epochs, args.lr, args.batch_size, args.weight_decay,
                    args.seed, args.device, progress=not args.quiet, on_epoch=print_epoch,
                    **options)
    print(f"final test accuracy: {history.test_acc.iloc[-1]:.4f}")
    if args.json:
        settings = {k: str(v) if k == "device" else v for k, v in vars(args).items()}
        text = json.dumps({"settings": settings, "history": history.to_dict(orient="list")},
                          indent=1)
        try:
            write_atomically(args.json, lambda f: f.write(text.encode()))
        except OSError as error:
            print(f"could not write {args.json} ({error}); the results are printed above",
                  file=sys.stderr)
            return 1
    return 0


def train_main(argv=None):
    """python -m dropout_lab.train ...; returns the exit status."""
    try:
        return run(parse_args(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130


def data_main(argv=None):
    """python -m dropout_lab.data ...: find (or fetch) the data and cache it."""
    parser = OneLineParser(prog="python -m dropout_lab.data",
                           description="Find FashionMNIST and cache it as tensors.")
    parser.add_argument("--root", default=None, help="a folder with the four files")
    parser.add_argument("--no-download", action="store_true", help="do not try torchvision")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        data = load_fashion_mnist(args.root, allow_download=not args.no_download)
    except DataError as error:
        print(error, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130
    path = cache_file(args.root, None)
    where = f"cached in {path}" if path and path.is_file() else "not cached"
    print(f"FashionMNIST ready: {len(data.X_train)} training and {len(data.X_test)} test "
          f"images, {where}")
    return 0


COMMANDS = {"data": (data_main, "find (or fetch) FashionMNIST and cache it"),
            "train": (train_main, "train the chapter's MLP and print its history")}


def usage():
    lines = [f"  {name:6s} {what}" for name, (_, what) in COMMANDS.items()]
    return "usage: python -m dropout_lab {data,train} [ARGUMENTS]\n" + "\n".join(lines)


def main(argv=None):
    """python -m dropout_lab data|train ...: the two commands in one place."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] not in COMMANDS:
        print(f"python -m dropout_lab: unknown command {argv[0]!r}; use one of: "
              f"{', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    return COMMANDS[argv[0]][0](argv[1:])
