"""Train the chapter's MLP from the shell:

    python -m dropout_lab.train --epochs 10 --dropout 0.5 0.5 --seed 0 [--device cpu|cuda|auto] [--json FILE]

Bad arguments print one line and exit with status 2; missing data exits with 1.
"""
import argparse
import json
import sys

from .data import DataNotFoundError, load_fashion_mnist
from .device import pick_device
from .noise import check_p
from .training import make_mlp, train


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


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
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--data", default=None, help="folder with the FashionMNIST files")
    parser.add_argument("--json", default=None, help="write the history to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    args.hidden = args.hidden or [256] * len(args.dropout)
    try:
        for p in args.dropout:
            check_p(p)
        args.device = pick_device(args.device)
    except ValueError as error:
        parser.error(str(error))
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    if args.lr <= 0 or args.batch_size < 1:
        parser.error("--lr must be positive and --batch-size at least 1")
    if len(args.hidden) != len(args.dropout):
        parser.error(f"--hidden has {len(args.hidden)} widths but --dropout has "
                     f"{len(args.dropout)} rates: give one rate per hidden layer")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    print(f"device: {args.device}")
    try:
        data = load_fashion_mnist(args.data, device=args.device)
    except DataNotFoundError as error:
        print(error, file=sys.stderr)
        return 1
    model = make_mlp(args.dropout, args.hidden, seed=args.seed)
    def print_epoch(row):
        print(f"epoch {row['epoch']:3d}  train loss {row['train_loss']:.4f}  "
              f"train acc {row['train_acc']:.4f}  test acc {row['test_acc']:.4f}  "
              f"{row['seconds']:.2f} s", flush=True)

    history = train(model, data, args.epochs, args.lr, args.batch_size, args.weight_decay,
                    args.seed, args.device, progress=not args.quiet, on_epoch=print_epoch)
    print(f"final test accuracy: {history.test_acc.iloc[-1]:.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"settings": {k: str(v) if k == "device" else v
                                    for k, v in vars(args).items()},
                       "history": history.to_dict(orient="list")}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
