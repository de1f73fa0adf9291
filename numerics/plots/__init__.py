"""Figures of a verification run: the training history and the probe against the predicted limit.

Every function takes plain data (arrays, lists, dicts as in ``report.json``), returns a
:class:`matplotlib.figure.Figure` built without ``pyplot`` (no global figure state, no window,
no backend switch: ``savefig`` renders PNG with the Agg canvas) and, given ``path``, saves it.

``training``: :func:`plot_selector`, :func:`plot_copier`, :func:`plot_temperature`,
:func:`plot_losses` (a TF history against its reduced dynamics and the reference predictors).
``probe``: :func:`plot_distances` (the distance to every reference predictor over training),
:func:`plot_first_layer` (attention by offset). ``report``: :func:`report_figures` and
:func:`save_report_figures`, the figures of a ``report.json`` for the model it trained.
``reproduction``: :func:`plot_reproduction` (a paper run against the authors' facts) and
:func:`plot_parameter_heatmaps` (the copier's parameters over training). ``joint``:
:func:`plot_joint_selection` (a joint run's selector and temperature against theory's path, and
the GIH losses over ``a`` with the switch temperatures).

Conventions: the history is logged at log-spaced steps, so step axes are log-scaled on
``step + 1``; stage boundaries are dashed lines named on top; every loss names its sample
(reference predictors: docs/theory.md §3.5; the loss floor: §6.2), and a predictor that does
not apply is listed as absent with the reason, never dropped silently.
"""

from numerics.plots.joint import SHOWN_WEIGHT, plot_joint_selection
from numerics.plots.probe import KL_AXIS_FLOOR, plot_distances, plot_first_layer
from numerics.plots.report import (
    ALL_FIGURE_NAMES,
    FIGURE_KEYS,
    FIGURE_NAMES,
    PROBED_FIGURE_KEYS,
    figure_keys,
    report_figures,
    save_report_figures,
)
from numerics.plots.reproduction import (
    PANELS,
    heatmap_steps,
    plot_parameter_heatmaps,
    plot_reproduction,
)
from numerics.plots.training import (
    ABSENT_REASONS,
    OFF_SCALE,
    REFERENCE_LABELS,
    plot_copier,
    plot_losses,
    plot_selector,
    plot_temperature,
    set_colors,
    stage_spans,
)

__all__ = ["FIGURE_KEYS", "FIGURE_NAMES", "PROBED_FIGURE_KEYS", "ALL_FIGURE_NAMES",
           "REFERENCE_LABELS", "ABSENT_REASONS", "OFF_SCALE", "KL_AXIS_FLOOR", "figure_keys",
           "set_colors", "stage_spans", "plot_selector", "plot_copier", "plot_temperature",
           "plot_losses", "plot_distances", "plot_first_layer", "report_figures",
           "save_report_figures", "PANELS", "plot_reproduction", "heatmap_steps",
           "plot_parameter_heatmaps", "SHOWN_WEIGHT", "plot_joint_selection"]
