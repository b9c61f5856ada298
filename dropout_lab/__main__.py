"""python -m dropout_lab data|train [ARGUMENTS] (see dropout_lab.cli)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
