"""``python -m numerics``: see :mod:`numerics.cli.main`."""

import sys

from numerics.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
