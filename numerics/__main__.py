"""``python -m numerics``: see :mod:`numerics.cli.main`."""

from numerics.cli.main import main
from theory.exits import end_process

if __name__ == "__main__":
    end_process(main())
