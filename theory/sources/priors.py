"""Kernel priors of a source (docs/theory.md §1): Dirichlet, Fixed and Mixture, and their validation.

A kernel for parents ``P = (p_1 < ... < p_k)`` over ``[d]`` is an array of shape ``(d,)*k + (d,)``,
indexed by the parent tokens in the order of P, then by the next token; every row (last axis) sums
to 1. A prior says how the kernel of each sequence is drawn:

    Dirichlet(alpha): every row ``π(·|z)`` i.i.d. ``Dirichlet(alpha · 1_d)`` (the paper's prior).
    Fixed(kernel): one kernel for every sequence.
    Mixture(components): ``π(·|z) = Σ_j w_j π_j(· | z restricted to P_j)``, rows of ``π_j``
        i.i.d. ``Dirichlet(alpha_j)``: every sequence blends all components.
    Switching(components): each sequence draws one parent set ``P_j ⊆ P`` with probability
        ``w_j``, then its kernel on ``P_j``: rows i.i.d. ``Dirichlet(alpha_j)`` or one fixed kernel.
    FiniteMixture(kernels, weights): each sequence uses one of ``N`` fixed kernels on ``P``,
        kernel ``i`` with probability ``w_i`` (the kernels given, or drawn once with a seed).

Switching and FiniteMixture priors have a per-sequence *structure*: the index of the parent set or
of the chain a sequence drew. The other priors have one structure, index 0.

:class:`theory.sources.spec.Source` combines a prior with ``d`` and ``P`` (and re-exports these classes);
its JSON format is described in :mod:`theory.sources.spec`. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from theory.errors import require
from theory.validation import as_float, as_float_array, as_int, as_offsets, check_keys

__all__ = [
    "Dirichlet",
    "Fixed",
    "MixtureComponent",
    "Mixture",
    "Prior",
    "STOCHASTIC_ATOL",
    "COMPONENT_KEYS",
    "MIN_ALPHA",
    "check_parents",
    "SwitchingComponent",
    "Switching",
    "FiniteMixture",
    "SWITCHING_COMPONENT_KEYS",
    "structure_weights",
    "structure_parents",
    "dirichlet_rows",
]


STOCHASTIC_ATOL = 1e-8
"""How far a kernel row (or mixture weights) may sum from 1: float round-off of JSON decimals."""

MIN_ALPHA = 1e-300
"""Smallest Dirichlet concentration: the sampler draws ``log U / alpha`` with ``log U >= -37``,
which overflows float64 below about 2e-307; rows at 1e-300 are already one-hot in float64."""


def check_parents(parents: Any, what: str = "parents") -> tuple[int, ...]:
    """Parent offsets ``P``: a non-empty, strictly increasing tuple of positive ints."""
    return as_offsets(parents, what)


def _check_alpha(alpha: Any, what: str = "alpha") -> float:
    value = as_float(alpha, what, positive=True)
    require(value >= MIN_ALPHA, what,
            f"a number >= MIN_ALPHA = {MIN_ALPHA:g} (smaller concentrations overflow the "
            "log-space sampler)", alpha)
    return value


@dataclass(frozen=True)
class Dirichlet:
    """Every kernel row ``π(·|z)`` i.i.d. ``Dirichlet(alpha · 1_d)`` (the paper's prior).

    Attributes:
        alpha: concentration, > 0. Small alpha gives near-deterministic rows.
    """

    alpha: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha", _check_alpha(self.alpha))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "dirichlet", "alpha": self.alpha}


@dataclass(frozen=True, eq=False)
class Fixed:
    """One kernel for every sequence (the classic, non-in-context case).

    Attributes:
        kernel: float64 array of shape ``(d,)*k + (d,)``, rows summing to 1 (read-only).
    """

    kernel: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "kernel", _stochastic(self.kernel, "kernel"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fixed) and np.array_equal(self.kernel, other.kernel)

    def __hash__(self) -> int:
        return hash((self.kernel.shape, self.kernel.tobytes()))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "fixed", "kernel": self.kernel.tolist()}


@dataclass(frozen=True)
class MixtureComponent:
    """One component ``w_j · π_j(· | z restricted to P_j)``, rows of ``π_j`` i.i.d. Dirichlet(alpha_j).

    Attributes:
        parents: ``P_j``, a subset of the source's parents.
        weight: ``w_j`` in (0, 1].
        alpha: ``alpha_j`` > 0.
    """

    parents: tuple[int, ...]
    weight: float
    alpha: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "parents", check_parents(self.parents, "component parents"))
        w = as_float(self.weight, "component weight")
        require(0 < w <= 1, "component weight", "a number in (0, 1]", self.weight)
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "alpha", _check_alpha(self.alpha, "component alpha"))

    def to_dict(self) -> dict[str, Any]:
        return {"parents": list(self.parents), "weight": self.weight, "alpha": self.alpha}


COMPONENT_KEYS = ("parents", "weight", "alpha")
"""The keys of a mixture component's dict (JSON format in :mod:`theory.sources.spec`)."""


def _component(entry: Any, index: int) -> MixtureComponent:
    """A :class:`MixtureComponent` from itself or from a dict with exactly :data:`COMPONENT_KEYS`."""
    if isinstance(entry, MixtureComponent):
        return entry
    require(isinstance(entry, dict), f"mixture component {index}",
            "a MixtureComponent or a dict with keys parents, weight, alpha", entry)
    check_keys(entry, f"mixture component {index}", COMPONENT_KEYS)
    return MixtureComponent(entry["parents"], entry["weight"], entry["alpha"])


def _weighted_components(raw: Any, build: Any, kind: str, wanted: str) -> tuple[Any, ...]:
    """A prior's components built entry by entry (``build(entry, index)``), at least one, with
    weights summing to 1; ``kind`` names the prior in the messages."""
    require(isinstance(raw, (list, tuple)), f"{kind} components", wanted, raw)
    comps = tuple(build(c, i) for i, c in enumerate(raw))
    require(len(comps) >= 1, f"{kind} components", "at least one component", comps)
    total = sum(c.weight for c in comps)
    require(abs(total - 1.0) <= STOCHASTIC_ATOL, f"{kind} weights", "weights summing to 1",
            total)
    return comps


@dataclass(frozen=True)
class Mixture:
    """``π(·|z) = Σ_j w_j π_j(· | z restricted to P_j)``: parents of unequal strength (docs/theory.md §1).

    Attributes:
        components: the components; weights sum to 1.
    """

    components: tuple[MixtureComponent, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "components", _weighted_components(
            self.components, _component, "mixture",
            "a list or tuple of MixtureComponent (or dicts with keys parents, weight, alpha)"))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "mixture", "components": [c.to_dict() for c in self.components]}


def dirichlet_rows(rng: np.random.Generator, alpha: float, shape: tuple[int, ...], d: int
                   ) -> np.ndarray:
    """Rows i.i.d. ``Dirichlet(alpha·1_d)``, float64 of shape ``shape + (d,)``.

    Drawn in log space, ``Gamma(alpha) = Gamma(alpha + 1) · U^(1/alpha)``, so rows stay
    representable for ``alpha << 1`` (down to :data:`MIN_ALPHA`). In-place ufuncs keep two
    batch-sized arrays alive at a time.
    """
    log_g = rng.standard_gamma(alpha + 1.0, size=shape + (d,))  # shape + (d,)
    np.log(log_g, out=log_g)
    u = rng.random(size=shape + (d,))  # shape + (d,)
    np.negative(u, out=u)
    np.log1p(u, out=u)  # log(U), U = 1 - uniform in (0, 1]
    u /= alpha
    log_g += u
    del u
    log_g -= log_g.max(axis=-1, keepdims=True)
    np.exp(log_g, out=log_g)
    log_g /= log_g.sum(axis=-1, keepdims=True)
    return log_g


def _stochastic(value: Any, what: str, *, batch: int = 0) -> np.ndarray:
    """A read-only float64 copy of kernel(s) of shape ``batch axes + (d,)*k + (d,)``, rows summing to 1."""
    arr = np.array(as_float_array(value, what))  # an own, writable copy
    require(arr.ndim >= batch + 2, what, f"an array with at least {batch + 2} axes", arr.shape)
    require(len(set(arr.shape[batch:])) == 1, what,
            f"shape {'(N,) + ' if batch else ''}(d,)*k + (d,) with one d", arr.shape)
    require(bool(np.all(np.isfinite(arr))), what, "finite entries", "a non-finite entry")
    require(bool(np.all(arr >= 0)), what, "entries >= 0", f"an entry {float(arr.min())!r}")
    sums = arr.sum(axis=-1)
    worst = np.abs(sums - 1.0)
    require(float(worst.max()) <= STOCHASTIC_ATOL, what, "rows summing to 1 (stochastic)",
            f"a row summing to {float(sums.flat[np.argmax(worst)])!r}")
    arr.setflags(write=False)
    return arr


def _weights(value: Any, count: int, what: str) -> tuple[float, ...]:
    """``count`` positive weights summing to 1 (None: uniform)."""
    if value is None:
        return (1.0 / count,) * count
    require(isinstance(value, (list, tuple, np.ndarray)) and len(value) == count, what,
            f"{count} weights", value)
    out = tuple(as_float(w, what) for w in value)
    require(all(w > 0 for w in out), what, "weights > 0", value)
    require(abs(sum(out) - 1.0) <= STOCHASTIC_ATOL, what, "weights summing to 1", sum(out))
    return out


SWITCHING_COMPONENT_KEYS = ("parents", "weight", "alpha", "kernel")
"""The keys of a switching component's dict: parents, weight, and exactly one of alpha, kernel."""


@dataclass(frozen=True, eq=False)
class SwitchingComponent:
    """One parent set of a :class:`Switching` prior, drawn by a sequence with probability ``weight``.

    Attributes:
        parents: ``P_j``, a subset of the source's parents.
        weight: ``w_j`` in (0, 1].
        alpha: rows of the sequence's kernel on ``P_j`` i.i.d. ``Dirichlet(alpha)``; or None
            when ``kernel`` is given.
        kernel: one fixed kernel on ``P_j``, shape ``(d,)*k_j + (d,)`` (read-only); or None
            when ``alpha`` is given.
    """

    parents: tuple[int, ...]
    weight: float
    alpha: float | None = None
    kernel: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "parents", check_parents(self.parents, "component parents"))
        w = as_float(self.weight, "component weight")
        require(0 < w <= 1, "component weight", "a number in (0, 1]", self.weight)
        object.__setattr__(self, "weight", w)
        require((self.alpha is None) != (self.kernel is None), "switching component",
                "exactly one of alpha (Dirichlet rows) and kernel (a fixed kernel)",
                f"alpha={self.alpha!r}, kernel={'None' if self.kernel is None else 'given'}")
        if self.alpha is not None:
            object.__setattr__(self, "alpha", _check_alpha(self.alpha, "component alpha"))
        else:
            kernel = _stochastic(self.kernel, "component kernel")
            require(kernel.ndim == len(self.parents) + 1, "component kernel",
                    f"{len(self.parents) + 1} axes for parents {self.parents}", kernel.shape)
            object.__setattr__(self, "kernel", kernel)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, SwitchingComponent) and self.parents == other.parents
                and self.weight == other.weight and self.alpha == other.alpha
                and (self.kernel is None) == (other.kernel is None)
                and (self.kernel is None or np.array_equal(self.kernel, other.kernel)))

    def __hash__(self) -> int:
        table = None if self.kernel is None else self.kernel.tobytes()
        return hash((self.parents, self.weight, self.alpha, table))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"parents": list(self.parents), "weight": self.weight}
        if self.alpha is not None:
            out["alpha"] = self.alpha
        else:
            out["kernel"] = self.kernel.tolist()
        return out


def _switching_component(entry: Any, index: int) -> SwitchingComponent:
    """A :class:`SwitchingComponent` from itself or from a dict (:data:`SWITCHING_COMPONENT_KEYS`)."""
    if isinstance(entry, SwitchingComponent):
        return entry
    wanted = "a SwitchingComponent or a dict with keys parents, weight and one of alpha, kernel"
    require(isinstance(entry, dict), f"switching component {index}", wanted, entry)
    check_keys(entry, f"switching component {index}", SWITCHING_COMPONENT_KEYS[:2],
               SWITCHING_COMPONENT_KEYS[2:])
    return SwitchingComponent(entry["parents"], entry["weight"], entry.get("alpha"),
                              entry.get("kernel"))


@dataclass(frozen=True)
class Switching:
    """Each sequence draws one parent set ``P_j`` (probability ``w_j``), then its kernel on ``P_j``.

    The structure itself varies across sequences: lags {1}, {2}, {3} with equal weights give the
    interleaved chains of a *selective* induction head. Within a sequence the kernel depends on
    the tokens at ``P_j`` only; as an array on the source's parents ``P`` it is constant along
    the other axes.

    Attributes:
        components: the parent sets with their weights (summing to 1) and kernel laws.
    """

    components: tuple[SwitchingComponent, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "components", _weighted_components(
            self.components, _switching_component, "switching",
            "a list or tuple of SwitchingComponent (or dicts)"))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "switching", "components": [c.to_dict() for c in self.components]}


@dataclass(frozen=True, eq=False)
class FiniteMixture:
    """Each sequence uses one of ``N`` fixed kernels on the source's parents, kernel ``i`` w.p. ``w_i``.

    Attributes:
        kernels: float64 ``(N,) + (d,)*k + (d,)``, rows summing to 1 (read-only).
        weights: ``N`` positive weights summing to 1; None (the default) gives uniform weights.
        drawn: ``(alpha, seed)`` when the kernels were drawn by :meth:`draw` (so the JSON form
            stays short), else None.
    """

    kernels: np.ndarray
    weights: tuple[float, ...] | None = None
    drawn: tuple[float, int] | None = None

    def __post_init__(self) -> None:
        kernels = _stochastic(self.kernels, "finite-mixture kernels", batch=1)
        object.__setattr__(self, "kernels", kernels)
        object.__setattr__(self, "weights", _weights(self.weights, kernels.shape[0],
                                                     "finite-mixture weights"))
        if self.drawn is not None:
            require(isinstance(self.drawn, tuple) and len(self.drawn) == 2, "drawn",
                    "None or (alpha, seed)", self.drawn)

    @classmethod
    def draw(cls, count: int, alpha: float, *, seed: int, vocab_size: int, order: int,
             weights: Any = None) -> FiniteMixture:
        """``count`` kernels with rows i.i.d. ``Dirichlet(alpha)``, drawn once from ``seed``.

        The same ``(count, alpha, seed, vocab_size, order)`` gives the same kernels on every
        machine (``numpy.random.default_rng(seed)``, float64).
        """
        count = as_int(count, "count", minimum=1, symbol="N")
        alpha = _check_alpha(alpha)
        seed = as_int(seed, "seed", minimum=0)
        d = as_int(vocab_size, "vocab_size", minimum=2, symbol="d")
        k = as_int(order, "order", minimum=1)
        rows = dirichlet_rows(np.random.default_rng(seed), alpha, (count,) + (d,) * k, d)
        return cls(rows, weights, (alpha, seed))

    @property
    def count(self) -> int:
        """``N``, the number of chains."""
        return int(self.kernels.shape[0])

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, FiniteMixture) and self.weights == other.weights
                and np.array_equal(self.kernels, other.kernels))

    def __hash__(self) -> int:
        return hash((self.kernels.shape, self.kernels.tobytes(), self.weights))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": "finite_mixture"}
        if self.drawn is not None:
            out.update(count=self.count, alpha=self.drawn[0], seed=self.drawn[1])
        else:
            out["kernels"] = self.kernels.tolist()
        out["weights"] = list(self.weights)
        return out


Prior = Dirichlet | Fixed | Mixture | Switching | FiniteMixture


def structure_weights(prior: Prior) -> np.ndarray:
    """float64 ``(J,)``: the probability of each per-sequence structure (``(1.0,)`` for one)."""
    if isinstance(prior, Switching):
        return np.array([c.weight for c in prior.components])
    if isinstance(prior, FiniteMixture):
        return np.array(prior.weights)
    return np.ones(1)


def structure_parents(prior: Prior, parents: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """The parent set each structure's kernel depends on: ``P_j`` for Switching, else ``P``."""
    if isinstance(prior, Switching):
        return tuple(c.parents for c in prior.components)
    return (tuple(parents),) * len(structure_weights(prior))
