"""How both command lines (``python -m theory``, ``python -m numerics``) end: statuses and the
handling of Ctrl-C and a closed stdout, shared so that both end alike.

    0    success;
    2    bad input, after one ``error: ...`` line on stderr;
    130  interrupted (Ctrl-C), after one ``interrupted: ...`` line, startup included;
    141  stdout closed early by its reader (``| head``), silently.

Each package's ``__init__`` installs its own Ctrl-C handler for its slow imports (it must run
before them, so it cannot live in a module imported after them); :func:`restore_interrupts`
puts Python's back once a command's ``main`` runs, and :func:`end_process` ends the process
with the status the command told.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import NoReturn

__all__ = ["EXIT_OK", "EXIT_BAD_INPUT", "EXIT_INTERRUPTED", "EXIT_BROKEN_PIPE", "interrupted",
           "quiet_broken_pipe", "restore_interrupts", "end_process"]

EXIT_OK = 0
"""Success."""
EXIT_BAD_INPUT = 2
"""Bad input: one ``error: ...`` line on stderr."""
EXIT_INTERRUPTED = 130
"""Interrupted by Ctrl-C (128 + SIGINT, the shells' convention)."""
EXIT_BROKEN_PIPE = 141
"""stdout closed early (``| head``): 128 + SIGPIPE, what a program killed by the signal reports;
nothing is printed."""


def interrupted() -> int:
    """One ``interrupted: ...`` line on stderr; returns :data:`EXIT_INTERRUPTED`."""
    print("interrupted: stopped by Ctrl-C", file=sys.stderr)
    return EXIT_INTERRUPTED


def quiet_broken_pipe() -> int:
    """After stdout was closed by its reader: point stdout at ``/dev/null`` so that the flush at
    exit raises nothing, and return :data:`EXIT_BROKEN_PIPE`."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return EXIT_BROKEN_PIPE


def restore_interrupts() -> None:
    """Put Python's Ctrl-C handler back in place of the one a package installs for its imports
    (``theory`` or ``numerics``), so that Ctrl-C raises ``KeyboardInterrupt`` again and the
    commands clean up after it; any other handler is left alone."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler) and getattr(handler, "__module__", None) in ("numerics", "theory"):
        signal.signal(signal.SIGINT, signal.default_int_handler)


def end_process(status: int) -> NoReturn:
    """End a command's process with ``status``, once the command has said what it did."""
    # A Ctrl-C while the interpreter shuts down changes nothing now, so it no longer turns the
    # status into a death by SIGINT.
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
