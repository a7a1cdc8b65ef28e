"""The ``deeplab-keras`` command line. Each subcommand lives in ``deeplab_keras/commands/<name>.py``
with ``add_parser(subparsers)`` (returning its parser) and ``run(args) -> int``."""
import argparse
import importlib
import sys

from deeplab_keras.version import __version__

#: subcommand modules, in help order
COMMANDS = ("demo", "predict", "zoo", "train", "evaluate", "export", "benchmark", "convert")


def build_parser():
    parser = argparse.ArgumentParser(prog="deeplab-keras",
                                     description="DeepLab v1/v2/v3/v3+ for Keras 3 / TensorFlow")
    parser.add_argument("--version", action="version", version=f"deeplab-keras {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"deeplab_keras.commands.{name}")
        module.add_parser(sub).set_defaults(_run=module.run)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except (ValueError, FileNotFoundError, OSError) as err:
        print(f"deeplab-keras {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
