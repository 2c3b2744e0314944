"""``python -m flcourse``: the command line of :mod:`flcourse.cli`."""
import sys

from flcourse.cli import Recorder, main

__all__ = ["Recorder", "main"]

if __name__ == "__main__":
    sys.exit(main())
