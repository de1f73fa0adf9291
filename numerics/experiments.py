"""Experiment settings the notebooks share: size switch, the mixture family and the official run.

- **Size switch.** The environment variable :data:`SIZE_ENV` (``INDUCTION_HEADS_NOTEBOOK_SIZE``)
  is ``"small"`` (seconds; what the test suite runs), ``"default"`` (minutes on 2 CPU cores) or
  ``"full"`` (research scale); :func:`notebook_size` reads it, :func:`by_size` picks a value.
- **Mixture family** (SPEC §1): ``π(·|z) = (1-w)·π_1(·|x_{l-1}) + w·π_12(·|x_{l-1}, x_{l-2})`` with
  both components' rows i.i.d. Dirichlet(α), so ``P = (1, 2)`` always but the second parent carries
  weight ``w``: :func:`mixture_family`. :func:`predicted_selection_map` ranks the head sets by
  ``G`` (or ``G_L``) on a ``(w, α)`` grid.
- **Official code (SPEC §4).** :data:`OFFICIAL_MODEL` and the ``official_ce`` loss. Its reduced
  temperature dynamics (copier exact, selector one-hot): with ``ŷ_e(a) = Σ_l softmax_l(a s_l)
  1{x_l = e}`` the official loss is ``ℓ = mean[-ŷ_y + log Σ_e exp ŷ_e]`` (cross entropy applied to
  ŷ as logits) and, with ``q = softmax(ŷ)`` and ``∂ŷ_e/∂a = Σ_l p_l (s_l - E_p s) 1{x_l = e}``,

      ∂ℓ/∂a = mean[-∂ŷ_y/∂a + Σ_e q_e ∂ŷ_e/∂a]         (:func:`official_gih_loss_and_grad`).

  :func:`official_temperature_trajectory` integrates ``da/dt = -∂ℓ/∂a`` (``t`` = lr × steps).
- **Device switch** for research-scale runs: :func:`pick_device`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.integrate import solve_ivp

from theory.criterion_estimates import expected_criterion, finite_length_criterion
from theory.errors import InductionHeadsError, require
from theory.predictors import context_similarity
from theory.spec import Mixture, MixtureComponent, ModelSpec, Source, head_sets

__all__ = [
    "SIZE_ENV",
    "SIZES",
    "notebook_size",
    "by_size",
    "pick_device",
    "mixture_family",
    "SelectionMap",
    "predicted_selection_map",
    "OFFICIAL_MODEL",
    "OFFICIAL_REPORTED",
    "official_gih_loss_and_grad",
    "official_temperature_trajectory",
]

SIZE_ENV = "INDUCTION_HEADS_NOTEBOOK_SIZE"
"""Environment variable that sets the notebooks' size."""

SIZES = ("small", "default", "full")
"""``small``: well under a minute per notebook (tests); ``default``: a few minutes on 2 cores;
``full``: research scale (a GPU)."""

OFFICIAL_MODEL = ModelSpec(heads=3, window=3, degree=2, w_plus=3.0, w_minus=0.1, c_init=0.01,
                           a_init=0.01)
"""SPEC §4's main-figure initialisation in our window convention (head h starts on offset h of
the shared window 1..M, M = H = 3; the official head h sees offsets h+1..h+H instead)."""

OFFICIAL_REPORTED = {"lr": 1.0, "steps": 50_000, "sequences": 10_000, "train_sequences": 9_000,
                     "seq_len": 100, "selected": (1, 2), "c_tilde_099_by_step": 9,
                     "final_a": 11.35}
"""The official main-figure run as SPEC §4 reports it (for comparison, not used in training)."""

_ODE_RTOL = 1e-8
"""solve_ivp relative tolerance for the 1-D temperature ODE (cheap, so tight)."""


def notebook_size(environ: Mapping[str, str] | None = None) -> str:
    """The notebook size from :data:`SIZE_ENV`, one of :data:`SIZES` (unset: ``"default"``).

    Args:
        environ: mapping to read (``os.environ`` when None).

    Raises:
        InductionHeadsError: when the variable holds anything else.
    """
    env = os.environ if environ is None else environ
    size = env.get(SIZE_ENV, "default").strip().lower() or "default"
    require(size in SIZES, SIZE_ENV, f"one of {SIZES}", size)
    return size


def by_size(size: str, *, small: Any, default: Any, full: Any = None) -> Any:
    """The value for ``size`` (one of :data:`SIZES`); ``full`` falls back to ``default``."""
    require(size in SIZES, "size", f"one of {SIZES}", size)
    if size == "full" and full is not None:
        return full
    return small if size == "small" else default


def pick_device(prefer: str = "auto") -> torch.device:
    """``cuda`` when available and wanted, else ``cpu``.

    Args:
        prefer: ``"auto"`` (CUDA if available), ``"cpu"``, or ``"cuda"`` (raises without CUDA).
    """
    require(prefer in ("auto", "cpu", "cuda"), "prefer", "'auto', 'cpu' or 'cuda'", prefer)
    if prefer == "cuda":
        require(torch.cuda.is_available(), "prefer", "'cuda' only where CUDA is available",
                prefer)
    if prefer == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def mixture_family(weight: float, alpha: float, *, vocab_size: int = 3) -> Source:
    """``(1-w)·Dir(α) over parent {1} + w·Dir(α) over parents {1, 2}`` on ``P = (1, 2)``.

    ``w = 1`` is the paper's Dirichlet trigram source (a single component); ``w`` near 0 makes
    ``x_{l-2}`` almost irrelevant.

    Args:
        weight: ``w`` in (0, 1], the weight of the component that uses both parents.
        alpha: the components' concentration ``α > 0``.
        vocab_size: ``d``.
    """
    require(isinstance(weight, (int, float)) and not isinstance(weight, bool)
            and 0 < weight <= 1, "weight", "a number w in (0, 1]", weight)
    comps = [MixtureComponent((1, 2), float(weight), alpha)]
    if weight < 1:
        comps.insert(0, MixtureComponent((1,), 1.0 - float(weight), alpha))
    return Source(vocab_size, (1, 2), Mixture(tuple(comps)))


@dataclass(frozen=True, eq=False)
class SelectionMap:
    """Predicted S* on a grid of mixture priors (:func:`mixture_family`).

    Attributes:
        weights: ``(n_w,)`` second-parent weights ``w``.
        alphas: ``(n_a,)`` concentrations ``α``.
        sets: the ranked head sets (:func:`theory.spec.head_sets` order).
        criterion: ``(n_w, n_a, n_sets)`` values of ``G`` (or ``G_L``).
        stderr: ``(n_w, n_a, n_sets)`` their Monte Carlo standard errors.
        kind: ``"G"`` or ``"G_L"``.
        seq_len: ``L`` for ``G_L``, None for ``G``.
    """

    weights: np.ndarray
    alphas: np.ndarray
    sets: tuple[tuple[int, ...], ...]
    criterion: np.ndarray
    stderr: np.ndarray
    kind: str
    seq_len: int | None

    @property
    def selected(self) -> np.ndarray:
        """``(n_w, n_a)`` index into ``sets`` of ``argmax`` of the criterion."""
        return np.argmax(self.criterion, axis=-1)

    def selected_set(self, i: int, j: int) -> tuple[int, ...]:
        """S* at grid point ``(weights[i], alphas[j])``."""
        return self.sets[int(self.selected[i, j])]

    def margin_in_se(self) -> np.ndarray:
        """``(n_w, n_a)``: best minus runner-up, in units of their combined standard error."""
        top2 = np.sort(self.criterion, axis=-1)[..., -2:]  # (n_w, n_a, 2)
        order = np.argsort(self.criterion, axis=-1)[..., -2:]  # (n_w, n_a, 2)
        se = np.take_along_axis(self.stderr, order, axis=-1)  # (n_w, n_a, 2)
        unit = np.hypot(se[..., 0], se[..., 1])  # (n_w, n_a)
        gap = top2[..., 1] - top2[..., 0]
        return np.divide(gap, unit, out=np.full(gap.shape, np.inf), where=unit > 0)


def predicted_selection_map(weights: Sequence[float], alphas: Sequence[float], *,
                            heads: int = 3, degree: int = 2, vocab_size: int = 3,
                            seq_len: int | None = None, samples: int = 1000,
                            rng: np.random.Generator) -> SelectionMap:
    """Rank the head sets of TF(M, H, d, D) by ``G`` (or ``G_L``) at every ``(w, α)``.

    Args:
        weights: second-parent weights ``w`` in (0, 1].
        alphas: concentrations ``α > 0``.
        heads: ``H``; the sets are :func:`theory.spec.head_sets` ``(H, D)``.
        degree: ``D``.
        vocab_size: ``d``.
        seq_len: ``L`` to rank by the finite-length ``G_L`` (what a training sample of length L
            sees); None for the ``L → ∞`` criterion ``G``.
        samples: kernels (``G``) or sequences (``G_L``) per grid point.
        rng: numpy generator, the only randomness (grid points in row-major order).

    Returns:
        The :class:`SelectionMap`.
    """
    require(len(weights) >= 1 and len(alphas) >= 1, "grid",
            "at least one weight and one alpha", (weights, alphas))
    sets = head_sets(heads, degree)
    shape = (len(weights), len(alphas), len(sets))
    values, errors = np.zeros(shape), np.zeros(shape)  # (n_w, n_a, n_sets)
    for i, w in enumerate(weights):
        for j, a in enumerate(alphas):
            src = mixture_family(w, a, vocab_size=vocab_size)
            if seq_len is None:
                est = expected_criterion(src, sets, samples=samples, rng=rng)
            else:
                est = finite_length_criterion(src, sets, seq_len, samples=samples, rng=rng)
            values[i, j], errors[i, j] = est.values, est.stderr
    return SelectionMap(np.asarray(weights, float), np.asarray(alphas, float), sets, values,
                        errors, "G" if seq_len is None else "G_L", seq_len)


def _official_parts(context: Any, targets: Any, parents: Sequence[int], vocab_size: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ctx = np.asarray(context)
    y = np.asarray(targets)
    require(y.shape == (ctx.shape[0],) and np.issubdtype(y.dtype, np.integer), "targets",
            f"integer array of shape ({ctx.shape[0]},)", (y.shape, str(y.dtype)))
    sim = context_similarity(ctx, parents)  # (n, L)
    onehot = (ctx[:, :, None] == np.arange(vocab_size)).astype(np.float64)  # (n, L, d)
    target = (y[:, None] == np.arange(vocab_size)).astype(np.float64)  # (n, d)
    return sim, onehot, target


def official_gih_loss_and_grad(context: Any, targets: Any, parents: Sequence[int], a: float, *,
                               vocab_size: int) -> tuple[float, float]:
    """``(ℓ(a), ∂ℓ/∂a)`` of the GIH under the official loss (CE applied to ŷ as logits).

    Args:
        context: integer ``(n, L)``.
        targets: integer ``(n,)``.
        parents: offsets ``S`` of the exact copier similarity.
        a: temperature (finite).
        vocab_size: ``d``.
    """
    return _official_objective(*_official_parts(context, targets, parents, vocab_size), a)


def _official_objective(sim: np.ndarray, onehot: np.ndarray, target: np.ndarray, a: float
                        ) -> tuple[float, float]:
    require(isinstance(a, (int, float, np.floating)) and math.isfinite(a), "a",
            "a finite number", a)
    logits = a * (sim - sim.max(axis=1, keepdims=True))  # (n, L)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)  # (n, L)
    centred = sim - np.sum(p * sim, axis=1, keepdims=True)  # (n, L): s_l - E_p s
    y_hat = np.einsum("nl,nld->nd", p, onehot)  # (n, d)
    dy_hat = np.einsum("nl,nld->nd", p * centred, onehot)  # (n, d)
    q = np.exp(y_hat - y_hat.max(axis=1, keepdims=True))
    q /= q.sum(axis=1, keepdims=True)  # (n, d) softmax(ŷ)
    lse = np.log(np.sum(np.exp(y_hat - y_hat.max(axis=1, keepdims=True)), axis=1)) + \
        y_hat.max(axis=1)  # (n,)
    loss = lse - np.sum(target * y_hat, axis=1)  # (n,)
    grad = np.sum((q - target) * dy_hat, axis=1)  # (n,)
    return float(loss.mean()), float(grad.mean())


def official_temperature_trajectory(context: Any, targets: Any, parents: Sequence[int], *,
                                    vocab_size: int, a0: float, times: Any) -> np.ndarray:
    """Integrate ``da/dt = -∂ℓ/∂a`` of the official loss of the GIH from ``a(0) = a0``.

    The reduced stage-3 dynamics of SPEC §4's run (copier exact on ``parents``, selector one-hot);
    ``t`` is learning rate × steps, so with lr 1 ``a(t)`` approximates ``a`` after ``t`` steps.

    Args:
        context: integer ``(n, L)``; targets: integer ``(n,)``.
        parents: offsets of the exact copier similarity.
        vocab_size: ``d``.
        a0: initial temperature.
        times: ``(T,)`` non-decreasing times ``>= 0``.

    Returns:
        float64 ``(T,)``.
    """
    parts = _official_parts(context, targets, parents, vocab_size)
    t = np.asarray(times, dtype=np.float64)
    require(t.ndim == 1 and t.size >= 1 and bool(np.all(np.diff(t) >= 0)) and t[0] >= 0,
            "times", "a 1-D non-decreasing array of times >= 0", t[:5])
    if t[-1] == 0:
        return np.full(t.size, float(a0))
    sol = solve_ivp(lambda _, a: [-_official_objective(*parts, float(a[0]))[1]],
                    (0.0, float(t[-1])), [float(a0)], method="LSODA", t_eval=t,
                    rtol=_ODE_RTOL, atol=1e-10)
    if not sol.success:
        raise InductionHeadsError(f"official temperature ODE: expected a successful solve, "
                                  f"received {sol.message!r}")
    return sol.y[0]
