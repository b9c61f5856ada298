"""python -m dropout_lab.data [--root FOLDER] [--no-download] (see dropout_lab.cli).

A package's __main__ runs without importing the package's module twice, so this
prints no runpy warning although dropout_lab/__init__ imports dropout_lab.data."""
import sys

from ..cli import data_main

if __name__ == "__main__":
    sys.exit(data_main())
