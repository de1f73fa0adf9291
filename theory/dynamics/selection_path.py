"""Which head set the selector favours at each classifier temperature ``a`` (docs/theory.md §3).

On a grid of temperatures, one draw of sequences shared by every set and every ``a``
(:mod:`theory.dynamics.finite_temperature` gives the exact per-sequence values), two views:

- **Lowest loss.** The set whose GIH has the lowest loss at ``a``, with its margin over the
  runner-up in paired standard errors; decided at ``DECIDABLE_Z`` of them. At ``a → 0`` every
  set has the same loss and the ranking is that of ``G_L`` (the first-order term), so the grid
  should start above 0.
- **Invasion.** With the selector at the vertex ``c̃ = e_S``, ``T`` invades when its fitness
  ``f_T = -∂ℓ/∂c̃_T`` exceeds ``f_S``: the replicator then moves mass from ``S`` to ``T``. A vertex
  is ``stable`` at ``a`` when every other non-empty set's fitness gap is decidably negative,
  ``unstable`` when one is decidably positive, else undecided. The empty set is left out: it
  adds the same to every ``s_l``, so ``f_∅ = 0`` and moving mass to it only lowers the
  effective temperature (it invades exactly where ``∂ℓ/∂a > 0`` at the vertex, past ``a*(L)``),
  which is the temperature's own dynamics. ``followed`` starts at the lowest-loss set of the
  first grid point; at each ``a`` a vertex stays unless a set invades decidably, and then the
  state moves to the strongest invader ``T`` (largest mean gap), or to the edge ``(S, T)`` when
  ``S`` decidably invades ``T``'s vertex too: two mutually invading vertices have a stable
  mixture between them on that edge, a selector split between the two sets. An edge stays
  until one of its vertices is no longer decidably invaded by the other.

**Switch temperatures.** Where the lowest-loss set changes from ``S`` to ``T`` between grid
points ``a_i < a_{i+1}``, the paired difference ``Δ = ℓ_T - ℓ_S`` is interpolated linearly,
``a* = a_i + h Δ_i/(Δ_i - Δ_{i+1})``, with a standard error by the delta method from the
per-sequence covariance of ``(Δ_i, Δ_{i+1})``. The switch is decidable when the nearest grid
points on either side whose difference is at least ``DECIDABLE_Z`` standard errors from 0 have
``S`` ahead below and ``T`` ahead above (points next to the crossing never decide). Given a
trained temperature (measured, or :func:`theory.predict_trained_temperature`'s), a switch is
``reached`` when the trained ``a`` lies ``DECIDABLE_Z`` standard errors above ``a*``, not
reached when that far below, and undecided between.

**Adaptive Monte Carlo.** With ``max_samples`` above ``samples``, further draws of ``samples``
sequences are pooled while a grid point's lowest-loss ranking is undecided, up to the budget.
A grid point at a crossing never decides, so a grid through a switch spends the whole budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from theory.criterion.estimates import DECIDABLE_Z
from theory.dynamics.finite_temperature import (
    TEMPERATURE_LOSS_KINDS,
    TemperatureLosses,
    check_temperatures,
    losses_from_counts,
    set_counts,
    vertex_fitness,
)
from theory.errors import require
from theory.notation import head_set_label
from theory.sizes import FLOAT_BYTES, require_memory
from theory.sources.sequences import sample_sequences_np
from theory.sources.spec import ModelSpec, Source
from theory.validation import as_int, is_real
from theory.work import SIGNAL_UNIT_S, require_time

__all__ = ["PATH_CHUNK", "PATH_UNIT_S", "Switch", "SelectionPath", "selection_path"]

PATH_CHUNK = 4096
"""Sequences per block of the vertex fitness, whose (n, |𝒮|, |𝒮|, A, d) intermediate is the
largest array: 4096 · 16 · 40 · 3 floats is 63 MB."""

PATH_UNIT_S = 3 * SIGNAL_UNIT_S
"""Seconds per sequence, |𝒮|², grid point and token of the vertex fitness (a few float64
passes over the (n, |𝒮|, |𝒮|, A, d) block)."""


@dataclass(frozen=True)
class Switch:
    """A change of the lowest-loss set between two grid points.

    Attributes:
        before, after: the sets below and above the switch.
        temperature: ``a*`` by linear interpolation of the paired difference.
        stderr: its standard error by the delta method.
        decidable: both bracketing differences at least ``DECIDABLE_Z`` SE from 0.
        reached: whether the trained temperature passes ``a*`` (None: no trained temperature,
            or within ``DECIDABLE_Z`` SE of it).
    """

    before: tuple[int, ...]
    after: tuple[int, ...]
    temperature: float
    stderr: float
    decidable: bool
    reached: bool | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"before": list(self.before), "after": list(self.after),
                "temperature": self.temperature, "stderr": self.stderr,
                "decidable": self.decidable, "reached": self.reached}


@dataclass(frozen=True, eq=False)
class SelectionPath:
    """The favoured set along a temperature grid (module docstring).

    Attributes:
        losses: per-sequence GIH losses (:class:`TemperatureLosses`).
        lowest: the lowest-loss set at each ``a`` (A entries).
        lowest_margin_se: its margin over the runner-up in paired SE (A,).
        fitness_gap: mean ``f_T - f_S`` at the vertex ``S`` (|𝒮|_S, |𝒮|_T, A).
        fitness_gap_se: its paired standard error (|𝒮|_S, |𝒮|_T, A).
        followed: where the replicator sits at each ``a``: a vertex ``(S,)`` or an edge
            ``(S, T)`` of two mutually invading sets (A entries, tuples of sets).
        switches: the changes of the lowest-loss set.
        trained_temperature: the ``a`` a training reaches, or None.
        max_samples: the adaptive budget.
    """

    losses: TemperatureLosses
    lowest: tuple[tuple[int, ...], ...]
    lowest_margin_se: np.ndarray
    fitness_gap: np.ndarray
    fitness_gap_se: np.ndarray
    followed: tuple[tuple[tuple[int, ...], ...], ...]
    switches: tuple[Switch, ...]
    trained_temperature: float | None
    max_samples: int

    @property
    def sets(self) -> tuple[tuple[int, ...], ...]:
        """The head sets, ``spec.sets`` order."""
        return self.losses.sets

    @property
    def temperatures(self) -> np.ndarray:
        """The grid (A,)."""
        return self.losses.temperatures

    @property
    def samples(self) -> int:
        """Sequences behind every estimate."""
        return self.losses.samples

    @property
    def lowest_decided(self) -> np.ndarray:
        """Whether each grid point's lowest-loss set leads by ``DECIDABLE_Z`` SE (A,)."""
        return self.lowest_margin_se >= DECIDABLE_Z

    def stability(self, head_set: Sequence[int]) -> tuple[bool | None, ...]:
        """Per grid point: True when no set can invade the vertex ``head_set`` (every gap
        decidably negative), False when one decidably can, None otherwise."""
        i = self.sets.index(tuple(head_set))
        out = []
        for k in range(self.temperatures.size):
            z = _z_scores(self.fitness_gap[i, :, k], self.fitness_gap_se[i, :, k])
            z = np.delete(z, [i] + [j for j, s in enumerate(self.sets) if not s])
            out.append(False if bool(np.any(z >= DECIDABLE_Z)) else
                       True if bool(np.all(z <= -DECIDABLE_Z)) else None)
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (sets as labels)."""
        labels = [head_set_label(s) for s in self.sets]
        return {"sets": labels, "temperatures": self.temperatures.tolist(),
                "loss": self.losses.loss, "samples": self.samples,
                "max_samples": self.max_samples,
                "mean_loss": {lab: self.losses.values[j].tolist()
                              for j, lab in enumerate(labels)},
                "lowest": [head_set_label(s) for s in self.lowest],
                "lowest_margin_se": [_json(v) for v in self.lowest_margin_se],
                "decidable_threshold": DECIDABLE_Z,
                "followed": [[head_set_label(s) for s in state] for state in self.followed],
                "switches": [s.to_dict() for s in self.switches],
                "trained_temperature": self.trained_temperature}


def _json(value: float) -> float | str:
    return float(value) if math.isfinite(value) else str(value)


def _z_scores(mean: np.ndarray, se: np.ndarray) -> np.ndarray:
    """``mean / se`` with ``±inf`` where ``se = 0`` and the mean is not 0 (0 where both are)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, mean / np.where(se > 0, se, 1.0),
                     np.sign(mean) * np.inf)
    return np.nan_to_num(z, nan=0.0)


def _lowest(losses: TemperatureLosses) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index of the lowest-loss set (A,), of the runner-up (A,), and the margin in SE (A,)."""
    values = losses.values  # (S, A)
    order = np.argsort(values, axis=0, kind="stable")
    best, second = order[0], order[1] if values.shape[0] > 1 else order[0]
    per = losses.per_sequence
    cols = np.arange(values.shape[1])
    diff = per[:, second, cols] - per[:, best, cols]  # (n, A)
    se = diff.std(axis=0, ddof=1) / math.sqrt(losses.samples)
    return best, second, _z_scores(diff.mean(axis=0), se)


def _switch(losses: TemperatureLosses, k: int, before: int, after: int,
            trained: float | None) -> Switch:
    """The switch from ``before`` to ``after`` between grid points ``k`` and ``k + 1``."""
    grid = losses.temperatures
    diff = (losses.per_sequence[:, after, k:k + 2]
            - losses.per_sequence[:, before, k:k + 2])  # (n, 2): Δ = ℓ_T - ℓ_S
    d0, d1 = diff.mean(axis=0)
    cov = np.cov(diff, rowvar=False, ddof=1) / losses.samples  # (2, 2)
    h = grid[k + 1] - grid[k]
    span = d0 - d1
    a_star = float(grid[k] + h * d0 / span)
    grad = np.array([-h * d1 / span**2, h * d0 / span**2])
    stderr = float(math.sqrt(max(float(grad @ cov @ grad), 0.0)))
    full = losses.per_sequence[:, after] - losses.per_sequence[:, before]  # (n, A)
    z = _z_scores(full.mean(axis=0), full.std(axis=0, ddof=1) / math.sqrt(losses.samples))
    below = [v for v in z[:k + 1] if abs(v) >= DECIDABLE_Z]
    above = [v for v in z[k + 1:] if abs(v) >= DECIDABLE_Z]
    decidable = bool(below and above and below[-1] > 0 and above[0] < 0)
    reached = None
    if trained is not None:
        gap = trained - a_star
        if gap >= DECIDABLE_Z * stderr:
            reached = True
        elif gap <= -DECIDABLE_Z * stderr:
            reached = False
    return Switch(losses.sets[before], losses.sets[after], a_star, stderr, decidable, reached)


def _invaders(sets: tuple[tuple[int, ...], ...], gap: np.ndarray, gap_se: np.ndarray,
              vertex: int, k: int) -> np.ndarray:
    """Mean gaps ``f_T - f_S`` at the vertex (|𝒮|,), -inf where ``T`` does not decidably invade
    (``T = S`` and the empty set never do)."""
    z = _z_scores(gap[vertex, :, k], gap_se[vertex, :, k])
    keep = (z >= DECIDABLE_Z) & np.array([bool(s) for s in sets])
    keep[vertex] = False
    return np.where(keep, gap[vertex, :, k], -np.inf)


def _follow(sets: tuple[tuple[int, ...], ...], gap: np.ndarray, gap_se: np.ndarray, start: int
            ) -> tuple[tuple[tuple[int, ...], ...], ...]:
    """The replicator's state along the grid (module docstring): vertex or mutual-invasion edge."""
    state: tuple[int, ...] = (start,)
    out = []
    for k in range(gap.shape[2]):
        if len(state) == 2:
            s, t = state
            if not np.isfinite(_invaders(sets, gap, gap_se, s, k)[t]):
                state = (s,)
            elif not np.isfinite(_invaders(sets, gap, gap_se, t, k)[s]):
                state = (t,)
        if len(state) == 1:
            invaders = _invaders(sets, gap, gap_se, state[0], k)
            if bool(np.any(np.isfinite(invaders))):
                t = int(np.argmax(invaders))
                back = _invaders(sets, gap, gap_se, t, k)[state[0]]
                state = (state[0], t) if np.isfinite(back) else (t,)
        out.append(tuple(sets[i] for i in state))
    return tuple(out)


def _fitness_moments(counts: Any, grid: np.ndarray, loss: str) -> tuple[np.ndarray, ...]:
    """Sum, sum of squares of ``f_T - f_S`` at each vertex (S, T, A) and the count, blockwise."""
    n = counts.targets.shape[0]
    total = square = None
    for lo in range(0, n, PATH_CHUNK):
        block = type(counts)(counts.sets, counts.joint[lo:lo + PATH_CHUNK],
                             counts.tokens[lo:lo + PATH_CHUNK], counts.targets[lo:lo + PATH_CHUNK])
        fit = vertex_fitness(block, grid, loss=loss)  # (b, S, T, A)
        own = np.einsum("nssa->nsa", fit)  # (b, S, A)
        gap = fit - own[:, :, None, :]  # (b, S, T, A)
        s1, s2 = gap.sum(axis=0), (gap * gap).sum(axis=0)
        total = s1 if total is None else total + s1
        square = s2 if square is None else square + s2
    return total, square, np.asarray(n)


def selection_path(source: Source, spec: ModelSpec, seq_len: int, *, temperatures: Any,
                   samples: int = 4000, max_samples: int | None = None,
                   rng: np.random.Generator, loss: str = "nll",
                   trained_temperature: float | None = None,
                   time_limit_s: float | None = None) -> SelectionPath:
    """The set the selector favours at each ``a`` of a grid, and where it switches.

    Args:
        source: the source.
        spec: the model's spec; its head sets ``spec.sets`` are ranked, head ``h`` copying
            offset ``h`` (the exact copier).
        seq_len: ``L > max(H, max P)``.
        temperatures: increasing grid of finite ``a >= 0`` (A,), at least two points.
        samples: sequences of each draw, >= 2.
        max_samples: adaptive budget (module docstring); None for ``samples``.
        rng: numpy generator, the only randomness.
        loss: one of :data:`TEMPERATURE_LOSS_KINDS`.
        trained_temperature: the ``a`` a training reaches (finite, >= 0), or None.
        time_limit_s: the most estimated seconds accepted (:mod:`theory.work`).

    Returns:
        The :class:`SelectionPath`.

    Raises:
        InductionHeadsError: on bad arguments, or a request over the memory or time limit
            (checked before any sampling).
    """
    require(isinstance(source, Source), "source", "a theory.Source", type(source).__name__)
    require(isinstance(spec, ModelSpec), "spec", "a theory.ModelSpec", type(spec).__name__)
    require(isinstance(rng, np.random.Generator), "rng", "a numpy.random.Generator",
            type(rng).__name__)
    require(loss in TEMPERATURE_LOSS_KINDS, "loss", f"one of {TEMPERATURE_LOSS_KINDS}", loss)
    grid = check_temperatures(temperatures)
    require(grid.size >= 2, "temperatures", "at least two grid points", temperatures)
    if trained_temperature is not None:
        require(is_real(trained_temperature) and math.isfinite(trained_temperature)
                and trained_temperature >= 0, "trained_temperature",
                "None or a finite number >= 0", trained_temperature)
        trained_temperature = float(trained_temperature)
    seq_len = as_int(seq_len, "seq_len", minimum=max(spec.heads, source.max_parent) + 1,
                     symbol="L")
    samples = as_int(samples, "samples", minimum=2)
    max_samples = samples if max_samples is None else as_int(
        max_samples, f"max_samples (at least samples = {samples})", minimum=samples)
    sets = spec.sets
    S, A, d = len(sets), grid.size, source.vocab_size
    request = (f"selection path for d={d}, {S} head sets, {A} temperatures at L={seq_len} "
               f"over {samples} sequences a draw (budget {max_samples})")
    # the pooled per-sequence losses, one draw's products and counts, one fitness block
    held = (max_samples * S * A + samples * S * (2 * seq_len + S * d)
            + min(samples, PATH_CHUNK) * S * S * A * d * 3)
    require_memory(held * FLOAT_BYTES, request, "pass fewer samples or temperatures")
    require_time(PATH_UNIT_S * max_samples * (S * S * A * d + S * S * seq_len), request,
                 "pass fewer samples, a smaller max_samples or fewer temperatures",
                 limit_s=time_limit_s)

    def draw(count: int) -> tuple[TemperatureLosses, tuple[np.ndarray, ...]]:
        tokens = sample_sequences_np(source, count, seq_len + 1, rng=rng)  # (n, L+1)
        counts = set_counts(tokens, sets, vocab_size=d)
        losses = TemperatureLosses(sets, grid, loss, losses_from_counts(counts, grid, loss=loss))
        return losses, _fitness_moments(counts, grid, loss)

    losses, (total, square, count) = draw(samples)
    while losses.samples < max_samples:
        _, _, margin = _lowest(losses)
        if bool(np.all(margin >= DECIDABLE_Z)):
            break
        more = min(samples, max_samples - losses.samples)
        if more < 2:
            break
        extra, (t2, q2, c2) = draw(more)
        losses, total, square, count = (losses.extended(extra), total + t2, square + q2,
                                         count + c2)
    n = float(count)
    gap = total / n
    var = np.maximum(square / n - gap * gap, 0.0) * n / (n - 1)
    gap_se = np.sqrt(var / n)
    best, _, margin = _lowest(losses)
    lowest = tuple(sets[int(b)] for b in best)
    switches = tuple(_switch(losses, k, int(best[k]), int(best[k + 1]), trained_temperature)
                     for k in range(A - 1) if best[k] != best[k + 1])
    followed = _follow(sets, gap, gap_se, int(best[0]))
    for arr in (margin, gap, gap_se):
        arr.setflags(write=False)
    return SelectionPath(losses, lowest, margin, gap, gap_se, tuple(followed), switches,
                         trained_temperature, max_samples)
