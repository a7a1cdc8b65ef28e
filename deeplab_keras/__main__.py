"""``python -m deeplab_keras ...``: the same command line as ``deeplab-keras``."""
import sys

from deeplab_keras.cli import main

if __name__ == "__main__":
    sys.exit(main())
