"""python -m dropout_lab.data [--root FOLDER] [--no-download]: find (or fetch) the data
and cache it. (A package's __main__ is run without importing it twice, so this
prints no runpy warning although dropout_lab imports dropout_lab.data.)"""
import argparse
import sys

from . import DataError, cache_file, load_fashion_mnist


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dropout_lab.data",
                                     description="Find FashionMNIST and cache it as tensors.")
    parser.add_argument("--root", default=None, help="a folder with the four files")
    parser.add_argument("--no-download", action="store_true", help="do not try torchvision")
    args = parser.parse_args(argv)
    try:
        data = load_fashion_mnist(args.root, allow_download=not args.no_download)
    except DataError as error:
        print(error, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    path = cache_file(args.root, None)
    where = f"cached in {path}" if path and path.is_file() else "not cached"
    print(f"FashionMNIST ready: {len(data.X_train)} training and {len(data.X_test)} test "
          f"images, {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
