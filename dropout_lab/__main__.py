"""python -m dropout_lab data|train [ARGUMENTS]: the library's two commands in one place.

`python -m dropout_lab.data` and `python -m dropout_lab.train` do the same; `--help`
after a command lists its arguments.
"""
import sys

COMMANDS = {"data": "find (or fetch) FashionMNIST and cache it",
            "train": "train the chapter's MLP and print its history"}


def usage():
    lines = [f"  {name:6s} {what}" for name, what in COMMANDS.items()]
    return "usage: python -m dropout_lab {data,train} [ARGUMENTS]\n" + "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "data":
        from .data.__main__ import main as command_main
    elif command == "train":
        from .train import main as command_main
    else:
        print(f"python -m dropout_lab: unknown command {command!r}; use one of: "
              f"{', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    return command_main(rest)


if __name__ == "__main__":
    sys.exit(main())
