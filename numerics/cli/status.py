"""Exit statuses of ``python -m numerics`` and the one place errors become them.

Every subcommand (``train``, ``verify``, ``bench``, ``sweep``, ``reproduce``) exits with

    0    success (for ``verify``: every check passed; ``reproduce``: every fact held);
    1    a check failed (``verify``) or a fact of the authors' run did not hold (``reproduce``);
    2    bad input: flags, input files, sizes, devices or output locations, with one
         ``error: ...`` line on stderr and no traceback (the argument parser's errors included);
    130  interrupted (Ctrl-C), after one ``interrupted: ...`` line, startup included;
    141  stdout closed early by its reader (``| head``), silently.

Anything else, or a traceback, is a bug. :func:`guarded` maps every
:class:`theory.errors.InductionHeadsError` raised anywhere in a command, and running out of memory
(``MemoryError``, torch's out-of-memory errors), to status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn

import torch

from theory.errors import InductionHeadsError
from theory.exits import (
    EXIT_BAD_INPUT,
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    interrupted,
    quiet_broken_pipe,
    restore_interrupts,
)
from theory.sizes import MEMORY_LIMIT_ENV

__all__ = ["EXIT_OK", "EXIT_CHECK_FAILED", "EXIT_BAD_INPUT", "EXIT_INTERRUPTED",
           "EXIT_BROKEN_PIPE", "Parser", "error_line", "is_out_of_memory", "guarded",
           "interrupted", "quiet_broken_pipe", "restore_interrupts"]

EXIT_CHECK_FAILED = 1
"""``verify``: at least one check failed; ``reproduce``: a fact did not hold (the other
statuses: :mod:`theory.exits`)."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one ``error: ...`` line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, error_line(f"{message} (see {self.prog} --help)") + "\n")


def error_line(message: str) -> str:
    """``error: <message>`` on one line (newlines in the message become spaces)."""
    return "error: " + " ".join(str(message).split())


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` reports a failed allocation (Python, numpy, torch CPU or CUDA)."""
    if isinstance(err, MemoryError) or isinstance(err, torch.OutOfMemoryError):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and ("can't allocate memory" in text
                                              or "out of memory" in text.lower())


def guarded(call: Callable[[], int], *, sizes: str) -> int:
    """Run a subcommand; return its status, or 2 / 130 after one line on stderr.

    Args:
        call: the subcommand; returns its exit status.
        sizes: the flags that set the command's sizes, named in the out-of-memory message.
    """
    try:
        return call()
    except InductionHeadsError as err:
        print(error_line(str(err)), file=sys.stderr)
    except KeyboardInterrupt:
        return interrupted()
    except (MemoryError, RuntimeError) as err:
        if not is_out_of_memory(err):
            raise
        print(error_line(f"out of memory: expected sizes that fit this machine's memory, "
                         f"received a request that does not (pass smaller {sizes}; "
                         f"{MEMORY_LIMIT_ENV} sets the limit above which theory refuses a "
                         "request before allocating)"), file=sys.stderr)
    return EXIT_BAD_INPUT
