"""One line per property case: the same text in the live log and in the session summary."""

from __future__ import annotations

import logging
import sys

from theory.notation import head_set_label

__all__ = ["case_line", "report_case"]

logger = logging.getLogger("induction_heads.property_tier")


def case_line(row: dict) -> str:
    """``mode: d=… P=… prior H=… M=… D=…: predicted …, target …, learned …, failed checks …``."""
    failed = [name for name, ok in row["checks"].items() if not ok]
    prior = row["source"]["prior"]
    target = (f", target {head_set_label(row['target'])} ({row['basis']})"
              if "target" in row else "")
    return (f"{row['mode']}: d={row['source']['vocab_size']} P={tuple(row['source']['parents'])} "
            f"{prior['kind']} H={row['model']['heads']} M={row['model']['window']} "
            f"D={row['model']['degree']}: predicted {head_set_label(row['predicted'])}"
            f"{'' if row['decidable'] else ' (undecidable)'}{target} learned "
            f"{head_set_label(row['learned'])}, failed checks {failed or 'none'}, "
            f"{row['seconds']:.1f} s")


def report_case(row: dict) -> None:
    """Write the case's line as it finishes: to stderr (shown with ``-s``, and kept in the log of
    a run that is killed before its summary) and to the ``induction_heads.property_tier`` logger."""
    line = f"[property case] {row['outcome']}: {case_line(row)}"
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
    logger.info(line)
