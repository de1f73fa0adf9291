"""Kernel priors of a source (docs/theory.md §1): Dirichlet, Fixed and Mixture, and their validation.

A kernel for parents ``P = (p_1 < ... < p_k)`` over ``[d]`` is an array of shape ``(d,)*k + (d,)``,
indexed by the parent tokens in the order of P, then by the next token; every row (last axis) sums
to 1. A prior says how the kernel of each sequence is drawn:

    Dirichlet(alpha): every row ``π(·|z)`` i.i.d. ``Dirichlet(alpha · 1_d)`` (the paper's prior).
    Fixed(kernel): one kernel for every sequence.
    Mixture(components): ``π(·|z) = Σ_j w_j π_j(· | z restricted to P_j)``, rows of ``π_j``
        i.i.d. ``Dirichlet(alpha_j)``.

:class:`theory.sources.spec.Source` combines a prior with ``d`` and ``P`` (and re-exports these classes);
its JSON format is described in :mod:`theory.sources.spec`. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from theory.errors import require
from theory.validation import as_float, as_float_array, as_offsets, check_keys

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
        arr = np.array(as_float_array(self.kernel, "kernel"))  # an own, writable copy
        require(arr.ndim >= 2, "kernel", "an array with at least 2 axes", arr.shape)
        require(
            len(set(arr.shape)) == 1, "kernel", "shape (d,)*k + (d,) with one d", arr.shape
        )
        require(bool(np.all(np.isfinite(arr))), "kernel", "finite entries",
                "a non-finite entry")
        require(bool(np.all(arr >= 0)), "kernel", "entries >= 0",
                f"an entry {float(arr.min())!r}")
        sums = arr.sum(axis=-1)
        worst = float(np.max(np.abs(sums - 1.0)))
        require(worst <= STOCHASTIC_ATOL, "kernel", "rows summing to 1 (stochastic)",
                f"a row summing to {float(sums.flat[np.argmax(np.abs(sums - 1.0))])!r}")
        arr.setflags(write=False)
        object.__setattr__(self, "kernel", arr)

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


@dataclass(frozen=True)
class Mixture:
    """``π(·|z) = Σ_j w_j π_j(· | z restricted to P_j)``: parents of unequal strength (docs/theory.md §1).

    Attributes:
        components: the components; weights sum to 1.
    """

    components: tuple[MixtureComponent, ...]

    def __post_init__(self) -> None:
        raw = self.components
        require(isinstance(raw, (list, tuple)), "mixture components",
                "a list or tuple of MixtureComponent (or dicts with keys parents, weight, alpha)",
                raw)
        comps = tuple(_component(c, i) for i, c in enumerate(raw))
        require(len(comps) >= 1, "mixture components", "at least one component", comps)
        total = sum(c.weight for c in comps)
        require(abs(total - 1.0) <= STOCHASTIC_ATOL, "mixture weights",
                "weights summing to 1", total)
        object.__setattr__(self, "components", comps)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "mixture", "components": [c.to_dict() for c in self.components]}


Prior = Dirichlet | Fixed | Mixture
