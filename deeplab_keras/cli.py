"""The ``deeplab-keras`` command line. Each subcommand lives in ``deeplab_keras/commands/<name>.py``
with ``add_parser(subparsers)`` (returning its parser) and ``run(args) -> int``.

Building the parser imports no TensorFlow (``add_parser`` functions import nothing heavy; each
``run`` imports what it needs), so ``--help``, ``zoo list`` and ``zoo show`` answer quickly.
TensorFlow's and the converter's log chatter is hidden unless ``--verbose``."""
import argparse
import importlib
import logging
import sys

from deeplab_keras.utils.quiet import filtered_stderr, quiet_tensorflow
from deeplab_keras.version import __version__

#: commands whose converters write native log lines (filtered unless --verbose)
NOISY = ("export", "convert", "demo", "benchmark")
#: subcommand modules, in help order
COMMANDS = ("demo", "predict", "live", "zoo", "train", "evaluate", "export", "serve", "benchmark",
            "convert")


def build_parser():
    parser = argparse.ArgumentParser(prog="deeplab-keras",
                                     description="DeepLab v1/v2/v3/v3+ for Keras 3 / TensorFlow")
    parser.add_argument("--version", action="version", version=f"deeplab-keras {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show TensorFlow's and the converters' log messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"deeplab_keras.commands.{name}")
        module.add_parser(sub).set_defaults(_run=module.run)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    _set_verbosity(args.verbose)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        # the converters log natively (absl) whatever TF_CPP_MIN_LOG_LEVEL says: filter them
        with filtered_stderr(args.command in NOISY and not args.verbose):
            return int(args._run(args) or 0)
    except BrokenPipeError:  # `deeplab-keras zoo list | head`: the reader left, not an error
        return 0
    except (ValueError, FileNotFoundError, OSError) as err:
        print(f"deeplab-keras {args.command}: error: {err}", file=sys.stderr)
        return 1


def _set_verbosity(verbose):
    """Before TensorFlow loads (it reads its C++ log level once); Python-side loggers any time."""
    quiet_tensorflow(verbose)
    level = logging.INFO if verbose else logging.ERROR
    for name in ("absl", "tensorflow", "tf2onnx", "h5py"):
        logging.getLogger(name).setLevel(level)
    if not verbose:
        import warnings
        # the converters' and TensorFlow's own deprecation notices, not about the user's input
        for module in ("tensorflow", "tf_keras", "tf2onnx", "keras", "absl", "onnx"):
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=module)
            warnings.filterwarnings("ignore", category=FutureWarning, module=module)


if __name__ == "__main__":
    sys.exit(main())
