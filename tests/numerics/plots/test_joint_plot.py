"""numerics.plots.plot_joint_selection: labelled axes with units, the switches named in the
legends, the leading sets drawn and the others left off, and a PNG on request.

Synthetic data stand in for a run (the experiment's own test draws a real one): two sets trade
the lead at step 20 in the run and at step 22 on theory's path, with one switch temperature.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from numerics import plots

SETS = ((), (1,), (2,), (1, 2))
T = 40
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _selector(switch: int) -> np.ndarray:
    """(T, |𝒮|): (1,) leads until ``switch``, then (1, 2); (2,) keeps a small share."""
    out = np.zeros((T, len(SETS)))
    out[:, 2] = 0.05
    out[:switch, 1], out[switch:, 3] = 0.95, 0.95
    return out


def _figure(**extra) -> Figure:
    steps = np.arange(T)
    grid = np.linspace(0.5, 6.0, 12)
    mean = np.stack([np.full(grid.size, 1.1), 1.0 - 0.02 * grid, 1.1 - 0.02 * grid,
                     1.06 - 0.04 * grid])  # (|𝒮|, A): (1,) and (1, 2) cross at a = 3
    return plots.plot_joint_selection(
        SETS, steps, _selector(20), np.log1p(steps / 4.0),
        predicted_selector=_selector(22), predicted_a=np.log1p(steps / 4.2),
        measured_switch=20, predicted_switch=22, predicted_switch_se=3.0, temperatures=grid,
        loss_mean=mean, loss_se=np.full(mean.shape, 0.01),
        switches=[{"before": [1], "after": [1, 2], "temperature": 3.0, "stderr": 0.2}],
        loss_name="official_ce", heldout=500, sequences=300, **extra)


def _legend(ax) -> list[str]:
    legend = ax.get_legend()
    return [] if legend is None else [t.get_text() for t in legend.get_texts()]


def test_joint_selection_figure_is_labelled_with_units() -> None:
    fig = _figure()
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    selector, temperature, loss = fig.axes
    assert selector.get_ylabel() == "selector weight c̃_S"
    assert temperature.get_xlabel() == "step" and temperature.get_ylabel() == "temperature a"
    assert loss.get_xlabel() == "temperature a" and loss.get_ylabel() == "loss (nats)"
    assert fig.get_suptitle() and all(ax.get_title() for ax in fig.axes)


def test_switches_are_marked_in_the_legends() -> None:
    selector, temperature, loss = _figure().axes
    texts = _legend(selector)
    assert "switch step, run: 20" in texts and "switch step, theory: 22 ± 3" in texts, texts
    texts = _legend(loss)
    assert any(t.startswith("switch temperature (1) → (1, 2): 3.00 ± 0.20") for t in texts), texts
    assert any(t.startswith("trained a at the run's switch step") for t in texts), texts
    assert any(t.startswith("theory's a at its switch step") for t in texts), texts
    assert any(t.startswith("switch temperature") for t in _legend(temperature))


def test_only_the_leading_sets_are_drawn() -> None:
    selector, _, loss = _figure().axes
    drawn = [t for t in _legend(selector) if t.startswith("c̃")]
    assert drawn == ["c̃(1), run", "c̃(1), theory (exact copier)", "c̃(1, 2), run",
                     "c̃(1, 2), theory (exact copier)"], drawn
    assert [t for t in _legend(loss) if t.startswith("GIH")] == ["GIH(1)", "GIH(1, 2)"]


def test_no_switch_draws_no_switch_lines_and_saves_a_png(tmp_path) -> None:
    fig = plots.plot_joint_selection(
        SETS, np.arange(T), _selector(T), np.zeros(T), predicted_selector=_selector(T),
        predicted_a=np.zeros(T), measured_switch=None, predicted_switch=None,
        predicted_switch_se=math.nan, temperatures=[1.0, 2.0], loss_mean=np.ones((4, 2)),
        loss_se=np.zeros((4, 2)), switches=[], loss_name="nll", heldout=10, sequences=10,
        path=tmp_path / "joint.png")
    assert not any("switch" in t for ax in fig.axes for t in _legend(ax))
    assert (tmp_path / "joint.png").read_bytes()[:8] == PNG_MAGIC
