"""``python -m proofs [NAME ...]``: check the lemmas, print a table, exit 1 if any fails.

Columns: the lemma's number, its name, whether it holds, the sizes it was checked over, and how
it was checked with the wall time. A lemma's number is its position in :data:`proofs.LEMMAS`: the
project's own ordering of the derivation steps (docs/theory.md §5), not the paper's numbering;
the table ends with that note (:data:`proofs.NUMBERING_NOTE`). Without names every lemma runs;
``--list`` prints ``number name`` per line. Exit status: 0 when every selected lemma holds, 1
otherwise (2 for bad usage).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from proofs import LEMMAS, NUMBERING_NOTE, LemmaResult

__all__ = ["main", "format_table"]

_HOW_WIDTH = 60
"""Characters of ``LemmaResult.detail`` shown in the table (the full text is in the result)."""

_SIZES_WIDTH = 36
"""Characters of the joined ``sizes_checked`` shown before it is abbreviated with a count."""


def _sizes(sizes: Sequence[str]) -> str:
    text = ", ".join(sizes) or "symbolic"
    if len(text) <= _SIZES_WIDTH:
        return text
    return text[: _SIZES_WIDTH - 12].rsplit(", ", 1)[0] + f", … ({len(sizes)} sizes)"


def _number(name: str) -> str:
    """The project's lemma number of ``name`` (1-based position in ``LEMMAS``), "-" if unknown."""
    names = tuple(LEMMAS)
    return str(names.index(name) + 1) if name in names else "-"


def format_table(rows: Sequence[tuple[LemmaResult, float]]) -> str:
    """A plain-text table ``# | lemma | holds | sizes | how (time)`` of ``(result, seconds)`` rows.

    ``#`` is the lemma's number in :data:`proofs.LEMMAS`; the table is followed by
    :data:`proofs.NUMBERING_NOTE` and, for every lemma that fails, its residual and detail.
    """
    header = ("#", "lemma", "holds", "sizes", "how / time")
    lines = []
    for result, seconds in rows:
        how = result.detail if len(result.detail) <= _HOW_WIDTH else (
            result.detail[: _HOW_WIDTH - 1] + "…")
        lines.append((_number(result.name), result.name, "yes" if result.holds else "NO",
                      _sizes(result.sizes_checked),
                      f"{how} ({seconds:.1f} s)"))
    fixed = len(header) - 1  # every column but the last is padded
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(fixed)]
    out = [" | ".join(h.ljust(w) for h, w in zip(header[:fixed], widths)) + " | " + header[-1]]
    out.append("-+-".join("-" * w for w in widths) + "-+-" + "-" * len(header[-1]))
    for row in lines:
        out.append(" | ".join(c.ljust(w) for c, w in zip(row[:fixed], widths)) + " | " + row[-1])
    out.append(f"({NUMBERING_NOTE})")
    for result, _ in rows:
        if not result.holds:
            out.append(f"\n{result.name} FAILS: residual = {result.residual}\n  {result.detail}")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected lemmas, print the table to stdout; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m proofs", description=__doc__.splitlines()[0],
                                     epilog=NUMBERING_NOTE)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"lemmas to check (default: all): {', '.join(LEMMAS)}")
    parser.add_argument("--list", action="store_true",
                        help="print 'number name' of every lemma and exit")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in LEMMAS]
    if unknown:
        parser.error(f"unknown lemma {', '.join(unknown)}; expected one of {', '.join(LEMMAS)}")
    if args.list:
        print("\n".join(f"{i} {name}" for i, name in enumerate(LEMMAS, start=1)))
        print(NUMBERING_NOTE)
        return 0
    rows = []
    for name in args.names or list(LEMMAS):
        start = time.perf_counter()
        result = LEMMAS[name]()
        rows.append((result, time.perf_counter() - start))
    print(format_table(rows))
    total = sum(seconds for _, seconds in rows)
    n_fail = sum(not r.holds for r, _ in rows)
    print(f"\n{len(rows) - n_fail}/{len(rows)} lemmas hold ({total:.1f} s)")
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main())
