"""python -m dropout_lab.train [ARGUMENTS]: train the chapter's MLP (see dropout_lab.cli).

Run it, do not import it: importing dropout_lab.train would replace the function
dl.train by this module."""
import sys

from .cli import train_main

if __name__ == "__main__":
    sys.exit(train_main())
