"""The text and JSON of ``python -m theory references``: a preset's reference losses.

``python -m theory references PRESET`` draws held-out sequences of a named preset
(:data:`theory.sources.presets.PRESETS`) and prints the cross-entropy of every reference
predictor of ``x_{L+1}`` (:func:`theory.predictors.reference_losses.reference_losses`) as an
aligned table of name, loss and standard error; ``--json OUT`` writes :func:`references_document`;
``--list`` prints :func:`format_presets`. This module builds the strings and the dict;
:mod:`theory.__main__` prints them.
"""

from __future__ import annotations

from typing import Any

from theory.notation import head_set_label
from theory.predictors.reference_losses import ReferenceLosses
from theory.sources.presets import PRESETS, Preset
from theory.sources.spec import Source

__all__ = ["DEFAULT_REFERENCE_SEQUENCES", "describe_source", "format_references",
           "format_presets", "references_document"]

DEFAULT_REFERENCE_SEQUENCES = 10_000
"""Held-out sequences of ``references`` by default: standard errors near 0.01 nats."""


def describe_source(source: Source) -> str:
    """One line: ``d``, ``P`` and the prior, e.g. ``d=3, parents P=(1, 2), Dirichlet(alpha=0.1)``."""
    prior = source.prior.to_dict()
    kind = prior.pop("kind")
    if kind == "fixed":
        detail = "fixed kernel"
    elif kind == "dirichlet":
        detail = f"Dirichlet(alpha={prior['alpha']:g})"
    elif kind == "mixture":
        detail = "mixture " + " + ".join(
            f"{c['weight']:g}*Dir({c['alpha']:g}) on {head_set_label(c['parents'])}"
            for c in prior["components"])
    elif kind == "switching":
        detail = "switching " + " | ".join(
            f"{c['weight']:.4g}: " + (f"Dir({c['alpha']:g})" if "alpha" in c else "fixed kernel")
            + f" on {head_set_label(c['parents'])}" for c in prior["components"])
    else:
        weights = prior["weights"]
        equal = all(w == weights[0] for w in weights)
        drawn = (f", rows Dir({prior['alpha']:g}) drawn with seed {prior['seed']}"
                 if "seed" in prior else "")
        detail = (f"finite mixture of {len(weights)} chains{drawn}, "
                  f"{'equal' if equal else 'unequal'} weights")
    return f"d={source.vocab_size}, parents P={head_set_label(source.parents)}, {detail}"


def format_references(preset: Preset, table: ReferenceLosses, seed: int) -> str:
    """The table ``references`` prints: a header, then one aligned row per reference."""
    width = max(len("name"), *(len(name) for name in table.losses))
    lines = [f"preset: {preset.name}",
             f"source: {describe_source(table.source)}",
             f"L={table.seq_len}, {table.start} start; {table.sequences} held-out sequences, "
             f"seed {seed}; smoothing alpha={table.smoothing:g}",
             "cross-entropy of x_(L+1) in nats", "",
             f"{'name':<{width}}  {'loss':>9}  {'SE':>8}"]
    lines += [f"{name:<{width}}  {ref.loss:>9.5f}  {ref.se:>8.5f}"
              for name, ref in table.losses.items()]
    return "\n".join(lines)


def format_presets() -> str:
    """``references --list``: every preset's name, setting and citation."""
    blocks = []
    for p in PRESETS.values():
        blocks.append(f"{p.name}\n  {describe_source(p.source)}; L={p.seq_len}, {p.start} "
                      f"start\n  {p.citation}")
    return "\n\n".join(blocks)


def references_document(preset: Preset, table: ReferenceLosses, seed: int) -> dict[str, Any]:
    """The ``--json`` document: ``preset``, ``source``, ``seq_len``, ``start``, ``sequences``,
    ``seed``, ``smoothing`` and ``references`` (name -> ``{"loss", "se"}``)."""
    data = table.to_dict()
    return {"preset": preset.name, "source": data["source"], "seq_len": data["seq_len"],
            "start": data["start"], "sequences": data["sequences"], "seed": seed,
            "smoothing": data["smoothing"], "references": data["references"]}
