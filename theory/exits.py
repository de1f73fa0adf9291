"""How both command lines (``python -m theory``, ``python -m numerics``) end: statuses and the
handling of Ctrl-C and a closed stdout, shared so that both end alike.

    0    success;
    2    bad input, after one ``error: ...`` line on stderr;
    130  interrupted (Ctrl-C), after one ``interrupted: ...`` line, startup included;
    141  stdout closed early by its reader (``| head``), silently.

``theory``'s ``__init__`` calls :func:`install_startup_interrupts` before its slow imports, and
``numerics`` imports ``theory`` first, so both commands end a Ctrl-C during their imports with
one line; :func:`restore_interrupts` puts Python's handler back once a command's ``main`` runs,
and :func:`end_process` ends the process with the status the command told.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import NoReturn

__all__ = ["EXIT_OK", "EXIT_BAD_INPUT", "EXIT_INTERRUPTED", "EXIT_BROKEN_PIPE", "COMMANDS",
           "interrupted", "quiet_broken_pipe", "install_startup_interrupts",
           "restore_interrupts", "end_process"]

EXIT_OK = 0
"""Success."""
EXIT_BAD_INPUT = 2
"""Bad input: one ``error: ...`` line on stderr."""
EXIT_INTERRUPTED = 130
"""Interrupted by Ctrl-C (128 + SIGINT, the shells' convention)."""
EXIT_BROKEN_PIPE = 141
"""stdout closed early (``| head``): 128 + SIGPIPE, what a program killed by the signal reports;
nothing is printed."""


COMMANDS = ("theory", "numerics")
"""The packages run as ``python -m NAME``."""


def _interrupted_while_starting(signum: int, frame: object) -> None:
    """Ctrl-C while a command imports: one line, status 130, no traceback. The process ends at
    once (``os._exit``): nothing has been written yet, and an exception raised here could be
    swallowed by the module being imported and leave it half made."""
    sys.stderr.write("interrupted: stopped by Ctrl-C\n")
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)


def install_startup_interrupts() -> None:
    """While ``python -m theory`` or ``python -m numerics`` imports (``sys.argv[0]`` is still
    ``-m`` then; the imports take seconds), end a Ctrl-C with one line and status 130; leave
    any other process and any handler but Python's own alone."""
    argv = getattr(sys, "orig_argv", ())
    if (sys.argv[:1] == ["-m"] and "-m" in argv
            and argv[argv.index("-m") + 1:][:1] in ([name] for name in COMMANDS)
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
        signal.signal(signal.SIGINT, _interrupted_while_starting)


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
    """Put Python's Ctrl-C handler back in place of the one :func:`install_startup_interrupts`
    installed, so that Ctrl-C raises ``KeyboardInterrupt`` again and the commands clean up
    after it; any other handler is left alone."""
    if signal.getsignal(signal.SIGINT) is _interrupted_while_starting:
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
