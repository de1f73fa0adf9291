"""`numerics.plots`: the verification figures say what each line is computed on, and render."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from numerics import plots
from numerics.experiments import support
from numerics.verify import VerifyReport, verify_case
from numerics.verify.evaluation import LOSS_KEYS
from theory import PAPER_MODEL, PAPER_SOURCE, head_set_label

TINY = {"seq_len": 40, "sequences": 300, "heldout": 200, "prediction_samples": 300,
        "device": "cpu"}
"""A real stage-wise run on the paper's source small enough for a few seconds."""
STAGES = ("selector", "copier", "classifier")
"""Stage names of the default stage-wise schedule."""
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def data() -> dict:
    return verify_case(PAPER_SOURCE, PAPER_MODEL, seed=0, **TINY).to_dict()


@pytest.fixture(scope="module")
def figures(data: dict) -> dict[str, Figure]:
    return plots.report_figures(data)


def _legend_texts(fig: Figure) -> list[str]:
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    return [t.get_text() for legend in legends for t in legend.get_texts()]


def _texts(ax) -> list[str]:
    return [t.get_text().strip() for t in ax.texts]


def _flat_lines(ax) -> dict[float, object]:
    """Horizontal lines of an axes (constant ydata with more than one point), by their value."""
    out = {}
    for line in ax.get_lines():
        y = np.asarray(line.get_ydata(), dtype=float)
        if len(y) > 1 and np.all(y == y[0]):
            out[float(y[0])] = line
    return out


def test_report_figures_are_labelled_figures(figures: dict[str, Figure]) -> None:
    assert tuple(figures) == plots.FIGURE_KEYS
    for name, fig in figures.items():
        assert isinstance(fig, Figure), name
        main = fig.axes[0]
        assert main.get_xlabel() and main.get_ylabel(), (name, main.get_xlabel(),
                                                         main.get_ylabel())
    assert "nats" in figures["losses"].axes[0].get_ylabel()
    assert "step" in figures["losses"].axes[0].get_xlabel()


def test_loss_lines_are_scored_on_the_training_sample(data: dict,
                                                      figures: dict[str, Figure]) -> None:
    left, right = figures["losses"].axes[:2]
    train, held = data["losses_train"], data["losses"]
    lines = _flat_lines(left)
    for key in ("gih_trained_a", "gih_a_star", "gih_inf", "bayes"):
        assert train[key] in lines, (f"{key}: training-sample value {train[key]} not drawn; "
                                     f"lines at {sorted(lines)}")
        if held[key] != train[key]:
            assert held[key] not in lines, f"{key}: held-out value {held[key]} on the left panel"
    texts = _legend_texts(figures["losses"])
    for key in ("gih_trained_a", "gih_a_star", "gih_inf", "bayes"):
        label = plots.REFERENCE_LABELS[key]
        assert any(t.startswith(f"{label}, training sample: {train[key]:.4f}") for t in texts), (
            label, texts)
    assert any("model, training sample: logged loss" in t for t in texts), texts
    assert any("oracle" in t and "training sample" in t and "absent" in t for t in texts), texts
    assert any("held-out" in t for t in texts), texts
    assert right.get_title().startswith("final losses")
    assert [t.get_text() for t in right.get_yticklabels()] == [
        plots.REFERENCE_LABELS[k] for k in LOSS_KEYS]


def test_distinct_styles_for_reference_lines(figures: dict[str, Figure]) -> None:
    lines = _flat_lines(figures["losses"].axes[0]).values()
    styles = {(line.get_linestyle(), line.get_marker()) for line in lines}
    assert len(styles) == len(lines), [(ln.get_label(), ln.get_linestyle()) for ln in lines]


def test_absent_baselines_are_in_the_legend_with_the_reason() -> None:
    steps, loss = np.arange(5), np.linspace(1.0, 0.3, 5)
    training = {"model": 0.3, "gih_trained_a": 0.31, "bayes": None, "oracle": None,
                "sequences": 10}
    heldout = {"model": 0.32, "gih_trained_a": 0.33, "bayes": None, "oracle": 0.2,
               "sequences": 20}
    fig = plots.plot_losses(steps, loss, training=training, heldout=heldout)
    texts = _legend_texts(fig)
    bayes = [t for t in texts if t.startswith("Bayes predictive")]
    assert bayes == ["Bayes predictive, training sample (and held-out): absent — "
                     f"{plots.ABSENT_REASONS['bayes']}"], texts
    assert any(t.startswith("oracle (own kernel), training sample: absent") for t in texts)
    assert "held-out: absent — " + plots.ABSENT_REASONS["bayes"] in _texts(fig.axes[1])
    assert any("(n = 10)" in t for t in texts) and any("(n = 20)" in t for t in texts), texts
    unrecorded = plots.plot_losses(steps, loss, training=None, heldout=heldout)
    assert any("not recorded" in t for t in _legend_texts(unrecorded))


def test_off_scale_reference_is_named_not_drawn_in_range() -> None:
    steps, loss = np.arange(5), np.linspace(1.0, 0.3, 5)
    fig = plots.plot_losses(steps, loss, training={"model": 0.3, "gih_inf": 9.0})
    ax = fig.axes[0]
    assert ax.get_ylim()[1] < 9.0, ax.get_ylim()
    assert any("9.0000 (above the plotted range)" in t for t in _legend_texts(fig))


def test_selector_axis_is_log_with_labelled_stages(data: dict,
                                                   figures: dict[str, Figure]) -> None:
    ax = figures["selector"].axes[0]
    assert ax.get_xscale() == "log" and "step + 1" in ax.get_xlabel()
    assert [t for t in _texts(ax) if t in STAGES] == list(STAGES), _texts(ax)
    bounds = sorted(float(ln.get_xdata()[0]) for ln in ax.get_lines()
                    if len(ln.get_xdata()) == 2 and ln.get_xdata()[0] == ln.get_xdata()[1])
    ends = np.cumsum([s["steps"] for s in data["config"]["train"]["stages"]])[:-1] + 1
    assert bounds == ends.tolist(), (bounds, ends)
    texts = _legend_texts(figures["selector"])
    star = head_set_label(data["predicted"]["selected_set"])
    assert f"{star}  = S* (predicted)" in texts, texts
    assert any(t.startswith("replicator prediction, exact-copier") for t in texts), texts
    title = ax.get_title()
    assert "c̃_S = C_S² / Σ_T C_T²" in title and "softmax" not in title, (
        f"predicted the library's selector weights C_S² / Σ_T C_T² in the title, measured {title!r}")


def test_selector_colours_distinct_and_predictions_match(data: dict,
                                                         figures: dict[str, Figure]) -> None:
    ax, sets = figures["selector"].axes[0], data["history"]["sets"]
    labels = {head_set_label(s) for s in sets}
    trained = [ln for ln in ax.get_lines() if ln.get_label().split("  =")[0] in labels]
    colours = [ln.get_color() for ln in trained]
    assert len(trained) == len(sets) and len(set(map(tuple, colours))) == len(sets), colours
    dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--" and len(ln.get_xdata()) > 2]
    assert [ln.get_color() for ln in dashed] == colours
    thick = max(trained, key=lambda ln: ln.get_linewidth())
    assert thick.get_label().endswith("S* (predicted)")
    assert len(set(plots.set_colors(20))) == 20 and len(set(plots.set_colors(7))) == 7


def test_missing_predictions_are_named() -> None:
    steps, sel = np.arange(4), np.full((4, 2), 0.5)
    fig = plots.plot_selector(steps, sel, [(), (1,)], selected_set=(1,), missing="no stage")
    assert any("replicator prediction: absent" in t and "no stage" in t
               for t in _legend_texts(fig))
    fig = plots.plot_temperature(steps, steps * 0.1, a_star=1.0, missing="joint")
    assert "predicted gradient flow: absent — joint" in _legend_texts(fig)


def test_temperature_marks_a_star_and_the_predicted_flow(data: dict,
                                                         figures: dict[str, Figure]) -> None:
    ax = figures["temperature"].axes[0]
    assert ax.get_xscale() == "log" and "start of 'classifier'" in ax.get_xlabel()
    texts = _legend_texts(figures["temperature"])
    assert any(t.startswith(f"a*(L) = {data['losses']['a_star']:.3f}") for t in texts), texts
    assert any(t.startswith("predicted: GIH(S*) gradient flow") for t in texts), texts
    trained = next(ln for ln in ax.get_lines() if ln.get_label().startswith("a, trained"))
    assert trained.get_xdata()[0] == 1.0
    assert trained.get_ydata()[-1] == pytest.approx(data["learned"]["temperature"])


def test_copier_heatmaps_are_labelled_and_annotated(data: dict,
                                                    figures: dict[str, Figure]) -> None:
    H, M = PAPER_MODEL.heads, PAPER_MODEL.window
    init, trained = figures["copier"].axes[:2]
    for ax in (init, trained):
        assert ax.get_xlabel() == f"offset i (1..{M})"
        assert [t.get_text() for t in ax.get_xticklabels()] == [str(i) for i in range(1, M + 1)]
        assert len(ax.texts) == H * M
        boxes = [p for p in ax.patches if isinstance(p, Rectangle)]
        assert len(boxes) == len(data["predicted"]["selected_set"])
    assert init.get_ylabel() == f"head h (1..{H})"
    ticks = [t.get_text() for t in init.get_yticklabels()]
    assert ticks == ["head 1", "head 2", "head 3 (untouched)"], ticks
    assert [t.get_text() for t in trained.texts][0] == f"{data['history']['copier'][-1][0][0]:.2f}"


def test_support_adds_only_the_growth_law(data: dict, figures: dict[str, Figure]) -> None:
    report = VerifyReport.from_dict(data)
    plain, grown = support.report_figures(report), support.report_figures(report, kappa=2.0)
    assert tuple(grown) == plots.FIGURE_KEYS
    for key in plots.FIGURE_KEYS:
        assert _legend_texts(plain[key]) == _legend_texts(figures[key]), key
    extra = set(_legend_texts(grown["temperature"])) - set(_legend_texts(plain["temperature"]))
    assert extra == {"growth law log(e^a0 + κt), κ = 2.000"}, extra


def test_report_without_training_sample_scores_still_plots(data: dict) -> None:
    old = copy.deepcopy(data)
    del old["losses_train"]
    texts = _legend_texts(plots.report_figures(old)["losses"])
    assert any("references on the training sample: absent" in t for t in texts), texts


def test_save_report_figures_renders_pngs(data: dict, tmp_path: Path) -> None:
    paths = plots.save_report_figures(data, tmp_path)
    assert [p.name for p in paths] == list(plots.FIGURE_NAMES)
    for p in paths:
        assert p.is_file() and p.read_bytes()[:8] == PNG_MAGIC, p


def test_reference_labels_cover_the_scored_losses() -> None:
    assert tuple(plots.REFERENCE_LABELS) == LOSS_KEYS
