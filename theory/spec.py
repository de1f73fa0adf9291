"""Frozen specs shared by both sides: the Markov-chain *source* and the *model* TF(M, H, d, D).

``theory`` turns these into predictions, ``numerics`` into data, a model and training; the tests
compare the two sides. Nothing here imports torch. The kernel priors (:class:`Dirichlet`,
:class:`Fixed`, :class:`Mixture`, :class:`MixtureComponent`) live in :mod:`theory.priors` and are
re-exported here, as a source's spec is not complete without them.

Notation (SPEC §1–§2):
    d: vocabulary size, tokens are ``0 .. d-1``.
    P = (p_1 < ... < p_k): parent offsets; ``x_l`` depends on ``(x_{l-p_1}, ..., x_{l-p_k})``.
    r = max(P).
    kernel: array of shape ``(d,)*k + (d,)``, indexed by the parent tokens in the order of P, then
        by the next token; every row (last axis) sums to 1.
    H heads, window M >= H, degree D <= H: the selector mixes all head sets S ⊆ {1..H}, |S| <= D.

JSON format of a source::

    {"vocab_size": 3, "parents": [1, 2], "prior": {"kind": "dirichlet", "alpha": 0.1}}
    {"vocab_size": 2, "parents": [1], "prior": {"kind": "fixed", "kernel": [[0.9, 0.1], [0.2, 0.8]]}}
    {"vocab_size": 3, "parents": [1, 2], "prior": {"kind": "mixture", "components": [
        {"parents": [1], "weight": 0.7, "alpha": 0.1}, {"parents": [1, 2], "weight": 0.3, "alpha": 0.1}]}}
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from theory.errors import InductionHeadsError, require
from theory.priors import Dirichlet, Fixed, Mixture, MixtureComponent, Prior, _check_parents

__all__ = [
    "Dirichlet",
    "Fixed",
    "MixtureComponent",
    "Mixture",
    "Prior",
    "Source",
    "ModelSpec",
    "head_sets",
    "load_source",
    "PAPER_SOURCE",
    "PAPER_MODEL",
]


@dataclass(frozen=True)
class Source:
    """An in-context n-gram Markov source: vocabulary, parent offsets and kernel prior (SPEC §1).

    Attributes:
        vocab_size: ``d >= 2``.
        parents: ``P``, strictly increasing positive offsets.
        prior: :class:`Dirichlet`, :class:`Fixed` or :class:`Mixture`.
    """

    vocab_size: int
    parents: tuple[int, ...]
    prior: Prior

    def __post_init__(self) -> None:
        d = self.vocab_size
        require(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 2,
                "vocab_size", "an integer d >= 2", d)
        object.__setattr__(self, "vocab_size", int(d))
        parents = _check_parents(self.parents)
        object.__setattr__(self, "parents", parents)
        prior = self.prior
        require(isinstance(prior, (Dirichlet, Fixed, Mixture)), "prior",
                "a Dirichlet, Fixed or Mixture prior", prior)
        if isinstance(prior, Fixed):
            expected = (int(d),) * (len(parents) + 1)
            require(prior.kernel.shape == expected, "kernel",
                    f"shape {expected} for d={d} and parents {parents}", prior.kernel.shape)
        if isinstance(prior, Mixture):
            for comp in prior.components:
                require(set(comp.parents) <= set(parents), "component parents",
                        f"a subset of the source parents {parents}", comp.parents)

    @property
    def order(self) -> int:
        """``k = |P|``, the number of parents."""
        return len(self.parents)

    @property
    def max_parent(self) -> int:
        """``r = max(P)``: how many tokens the chain needs before its first transition."""
        return self.parents[-1]

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict of the module docstring's format."""
        return {"vocab_size": self.vocab_size, "parents": list(self.parents),
                "prior": self.prior.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Source:
        """Inverse of :meth:`to_dict`; raises :class:`InductionHeadsError` on a bad dict."""
        require(isinstance(data, dict), "source", "a dict", type(data).__name__)
        missing = {"vocab_size", "parents", "prior"} - set(data)
        require(not missing, "source", "keys vocab_size, parents, prior", sorted(data))
        prior = data["prior"]
        require(isinstance(prior, dict) and "kind" in prior, "prior",
                "a dict with a 'kind' key", prior)
        kind = prior["kind"]
        if kind == "dirichlet":
            require("alpha" in prior, "dirichlet prior", "an 'alpha' key", sorted(prior))
            p: Prior = Dirichlet(prior["alpha"])
        elif kind == "fixed":
            require("kernel" in prior, "fixed prior", "a 'kernel' key", sorted(prior))
            p = Fixed(prior["kernel"])
        elif kind == "mixture":
            comps = prior.get("components")
            require(isinstance(comps, list), "mixture prior", "a 'components' list", comps)
            for c in comps:
                require(isinstance(c, dict) and {"parents", "weight", "alpha"} <= set(c),
                        "mixture component", "a dict with parents, weight, alpha", c)
            p = Mixture(tuple(MixtureComponent(c["parents"], c["weight"], c["alpha"])
                              for c in comps))
        else:
            raise InductionHeadsError(
                f"prior kind: expected 'dirichlet', 'fixed' or 'mixture', received {kind!r}"
            )
        return cls(data["vocab_size"], data["parents"], p)

    def to_json(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as JSON to ``path``."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")


def load_source(path_or_dict: str | Path | dict[str, Any]) -> Source:
    """Build a :class:`Source` from a JSON file path or an already-parsed dict.

    Args:
        path_or_dict: a path to a JSON file, or a dict in the module docstring's format.

    Returns:
        The validated source.

    Raises:
        InductionHeadsError: on a missing file, invalid JSON or an invalid spec.
    """
    if isinstance(path_or_dict, dict):
        return Source.from_dict(path_or_dict)
    path = Path(path_or_dict)
    require(path.is_file(), "source path", "an existing JSON file", str(path))
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InductionHeadsError(f"source file {str(path)!r}: expected valid JSON ({err})") from None
    return Source.from_dict(data)


def head_sets(heads: int, degree: int) -> tuple[tuple[int, ...], ...]:
    """All head sets ``S ⊆ {1..H}`` with ``|S| <= D``, the empty set first.

    The order (by size, then lexicographic) is the order of the selector's weights ``C_S`` in
    ``numerics`` and of every per-set array in ``theory``.

    Args:
        heads: ``H >= 1``.
        degree: ``D`` with ``0 <= D <= H``.

    Returns:
        Tuples of 1-based head indices, e.g. H=3, D=2:
        ``((), (1,), (2,), (3,), (1, 2), (1, 3), (2, 3))``.
    """
    require(isinstance(heads, (int, np.integer)) and heads >= 1, "heads", "H >= 1", heads)
    require(isinstance(degree, (int, np.integer)) and 0 <= degree <= heads, "degree",
            f"0 <= D <= H = {heads}", degree)
    return tuple(
        s for size in range(degree + 1) for s in itertools.combinations(range(1, heads + 1), size)
    )


@dataclass(frozen=True)
class ModelSpec:
    """Sizes and initialisation of TF(M, H, d, D) (SPEC §2); d comes from the source.

    Attributes:
        heads: ``H >= 1`` copier heads.
        window: ``M >= H``, the copier's offsets ``1..M``.
        degree: ``D``, ``1 <= D <= H``, the largest head set the selector mixes.
        w_plus: initial copier logit of head h at offset h.
        w_minus: initial copier logit at every other offset.
        c_init: initial ``C_S`` for every set (so ``c_S = c_init**2``, uniform ``c̃``).
        a_init: initial classifier temperature ``a``.
    """

    heads: int
    window: int
    degree: int
    w_plus: float = 1.0
    w_minus: float = 0.0
    c_init: float = 1.0
    a_init: float = 0.01
    _sets: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("heads", "window", "degree"):
            v = getattr(self, name)
            require(isinstance(v, (int, np.integer)) and not isinstance(v, bool),
                    name, "an integer", v)
            object.__setattr__(self, name, int(v))
        require(self.heads >= 1, "heads", "H >= 1", self.heads)
        require(self.window >= self.heads, "window",
                f"M >= H = {self.heads} (each head starts on its own offset)", self.window)
        require(1 <= self.degree <= self.heads, "degree",
                f"1 <= D <= H = {self.heads}", self.degree)
        for name in ("w_plus", "w_minus", "c_init", "a_init"):
            v = getattr(self, name)
            require(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
                    name, "a finite number", v)
            object.__setattr__(self, name, float(v))
        require(self.c_init != 0.0, "c_init", "a non-zero number (C = 0 has no gradient)",
                self.c_init)
        object.__setattr__(self, "_sets", head_sets(self.heads, self.degree))

    @property
    def sets(self) -> tuple[tuple[int, ...], ...]:
        """The selector's head sets, in :func:`head_sets` order."""
        return self._sets

    def to_dict(self) -> dict[str, Any]:
        return {"heads": self.heads, "window": self.window, "degree": self.degree,
                "w_plus": self.w_plus, "w_minus": self.w_minus, "c_init": self.c_init,
                "a_init": self.a_init}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        require(isinstance(data, dict), "model spec", "a dict", type(data).__name__)
        allowed = ("heads", "window", "degree", "w_plus", "w_minus", "c_init", "a_init")
        unknown = sorted(set(data) - set(allowed))
        missing = sorted({"heads", "window", "degree"} - set(data))
        require(not unknown and not missing, "model spec keys",
                f"heads, window, degree and optionally {allowed[3:]}",
                f"unknown {unknown}, missing {missing}")
        return cls(**data)


PAPER_SOURCE = Source(3, (1, 2), Dirichlet(0.1))
"""The paper's experimental source: d=3, P=(1, 2), Dirichlet(0.1)."""

PAPER_MODEL = ModelSpec(heads=3, window=3, degree=2)
"""The paper's model sizes H=M=3, D=2 with SPEC §2's prototype initialisation."""
