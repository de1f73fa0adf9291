"""``python -m numerics``: see :mod:`numerics.cli.main`."""

import os
import signal
import sys

from numerics.cli.main import main
from numerics.cli.status import EXIT_INTERRUPTED

if __name__ == "__main__":
    status = main()
    # The command has finished and said so: a Ctrl-C while the interpreter shuts down changes
    # nothing, so it no longer turns the status into a death by SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if status == EXIT_INTERRUPTED:
        # A Ctrl-C that went through C code calling back into Python leaves the interpreter
        # set to die by SIGINT at exit, whatever caught it: end here with the status told.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(status)
    sys.exit(status)
