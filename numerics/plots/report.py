"""The figures of a verification report, chosen by the model kind it trained.

A kind with TF's selector (:attr:`numerics.training.ModelKind.has_selector`; TF and its full
variant, :data:`FIGURE_KEYS`): the selector, the copier, the temperature and the losses of
:mod:`numerics.plots.training`, and the distance to every reference over training
(:func:`numerics.plots.probe.plot_distances`). A kind without one (the standard transformer,
:data:`PROBED_FIGURE_KEYS`) has no selector, copier or temperature to plot: its losses (the
logged last-position loss on its evaluation batch against the references on that batch), the
distances, and its first layer's attention by offset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from numerics.plots.probe import plot_distances, plot_first_layer
from numerics.plots.training import (
    a_stage_start,
    finish,
    plot_copier,
    plot_losses,
    plot_selector,
    plot_temperature,
    stage_spans,
)
from numerics.training.kinds import get_kind
from numerics.training.reports import settled_step
from theory.validation import is_int

__all__ = ["FIGURE_KEYS", "FIGURE_NAMES", "PROBED_FIGURE_KEYS", "ALL_FIGURE_NAMES",
           "figure_keys", "report_figures", "save_report_figures"]

FIGURE_KEYS = ("selector", "copier", "temperature", "losses", "distances")
"""Keys of :func:`report_figures` for a kind with a selector, in order."""
FIGURE_NAMES = tuple(f"{key}.png" for key in FIGURE_KEYS)
"""File names :func:`save_report_figures` writes for them, in order."""
PROBED_FIGURE_KEYS = ("losses", "distances", "first_layer")
"""Keys of :func:`report_figures` for a kind read through the probe only, in order."""
ALL_FIGURE_NAMES = tuple(dict.fromkeys(FIGURE_NAMES + tuple(
    f"{key}.png" for key in PROBED_FIGURE_KEYS)))
"""Every figure a report of any model can write (what marks a directory as a run's)."""

def figure_keys(kind: str) -> tuple[str, ...]:
    """The figure keys of a report of model kind ``kind`` (a name in the registry)."""
    return FIGURE_KEYS if get_kind(kind).has_selector else PROBED_FIGURE_KEYS


def _distances(data: Mapping[str, Any], stages: Any) -> Figure:
    hist, predicted = data["history"], data["predicted"]
    reports = hist.get("reports") or [None] * len(hist["steps"])
    return plot_distances(hist["steps"], reports, selected_set=predicted["selected_set"],
                          parents=data["config"]["source"]["parents"],
                          settled_step=settled_step(hist["steps"], reports), stages=stages,
                          sequences=data["config"].get("probe_sequences"))


def report_figures(data: Mapping[str, Any], *,
                   temperature_overlays: Sequence[Mapping[str, Any]] = ()) -> dict[str, Figure]:
    """The figures of a report, keyed by :func:`figure_keys` of its model (nothing written).

    Args:
        data: a ``report.json`` dict (:meth:`numerics.VerifyReport.to_dict`); a report without
            ``losses_train`` shows the training-sample references as not recorded.
        temperature_overlays: extra predicted ``a`` curves for :func:`plot_temperature`.
    """
    hist, curves, losses = data["history"], data.get("curves") or {}, data["losses"]
    train, predicted = data["config"]["train"], data["predicted"]
    kind = get_kind(data["config"].get("model_kind", "simplified"))
    if not kind.has_selector:
        probe = data.get("probe") or {}
        return {
            "losses": plot_losses(hist["steps"], hist["eval_last_loss"],
                                  training=data.get("losses_train"), heldout=losses,
                                  sample="evaluation batch",
                                  reasons={"gih_trained_a": "the model has no temperature a"}),
            "distances": _distances(data, None),
            "first_layer": plot_first_layer(probe.get("offsets", []),
                                            selected_set=predicted["selected_set"],
                                            entry=kind.first_layer_tap),
        }
    stages = stage_spans(train["stages"])
    copier = [o if is_int(o) else None
              for o in predicted["copier"]]
    joint = train.get("mode") == "joint"
    why = {name: ("joint training has no reduced dynamics" if joint
                  else f"the reduced dynamics are TF's; model kind {kind.name!r} has none"
                  if not kind.stage1_replicator
                  else f"no stage trains {param} alone") for name, param in
           (("selector", "C"), ("temperature", "a"))}
    return {
        "selector": plot_selector(hist["steps"], hist["selector"], hist["sets"],
                                  selected_set=predicted["selected_set"],
                                  predicted=curves.get("selector"), missing=why["selector"],
                                  stages=stages),
        "copier": plot_copier(hist["copier"][0], hist["copier"][-1], predicted_offsets=copier),
        "temperature": plot_temperature(hist["steps"], hist["a"],
                                        predicted=curves.get("temperature"),
                                        a_star=losses.get("a_star"),
                                        overlays=temperature_overlays,
                                        missing=why["temperature"], stages=stages,
                                        origin=a_stage_start(train["stages"])),
        "losses": plot_losses(hist["steps"], hist["loss"], training=data.get("losses_train"),
                              heldout=losses, loss_kind=train.get("loss", "nll"), stages=stages),
        "distances": _distances(data, stages),
    }


def save_report_figures(data: Mapping[str, Any], out_dir: str | Path) -> list[Path]:
    """Write the report's figures (``KEY.png``) into ``out_dir``; returns the paths in order."""
    figures = report_figures(data)
    paths = [Path(out_dir) / f"{key}.png" for key in figures]
    for fig, path in zip(figures.values(), paths):
        finish(fig, path)
    return paths
