"""Frozen specs shared by both sides: the Markov-chain *source* and the *model* TF(M, H, d, D).

``theory`` turns these into predictions, ``numerics`` into data, a model and training; the tests
compare the two sides. Nothing here imports torch. The kernel priors (:class:`Dirichlet`,
:class:`Fixed`, :class:`Mixture`, :class:`MixtureComponent`) live in :mod:`theory.sources.priors` and are
re-exported here, as a source's spec is not complete without them.

Notation (docs/theory.md §1–§2):
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
    {"vocab_size": 3, "parents": [1, 2, 3], "prior": {"kind": "switching", "components": [
        {"parents": [1], "weight": 0.5, "alpha": 0.1},
        {"parents": [3], "weight": 0.5, "kernel": [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]]}]}}
    {"vocab_size": 2, "parents": [1], "prior": {"kind": "finite_mixture",
        "kernels": [[[0.9, 0.1], [0.2, 0.8]], [[0.5, 0.5], [0.1, 0.9]]], "weights": [0.5, 0.5]}}
    {"vocab_size": 3, "parents": [1], "prior": {"kind": "finite_mixture", "count": 4,
        "alpha": 1.0, "seed": 0, "weights": [0.25, 0.25, 0.25, 0.25]}}

A finite mixture's ``weights`` may be left out (uniform); its second form draws ``count`` kernels
once from ``Dirichlet(alpha)`` rows with ``numpy.random.default_rng(seed)``
(:meth:`FiniteMixture.draw`).
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from theory.errors import InductionHeadsError, require
from theory.sizes import require_head_sets
from theory.sources.priors import (
    Dirichlet,
    FiniteMixture,
    Fixed,
    Mixture,
    MixtureComponent,
    Prior,
    Switching,
    SwitchingComponent,
    check_parents,
)
from theory.validation import as_float, as_int, check_keys, read_text_file

__all__ = [
    "Dirichlet",
    "Fixed",
    "MixtureComponent",
    "Mixture",
    "Switching",
    "SwitchingComponent",
    "FiniteMixture",
    "Prior",
    "Source",
    "ModelSpec",
    "head_sets",
    "load_source",
    "PAPER_SOURCE",
    "WEAK_PARENT_SOURCE",
    "PAPER_MODEL",
    "SOURCE_KEYS",
    "PRIOR_KEYS",
    "MODEL_KEYS",
]

SOURCE_KEYS = ("vocab_size", "parents", "prior")
"""The keys of a source's dict, all required."""

PRIOR_KEYS = {"dirichlet": ("kind", "alpha"), "fixed": ("kind", "kernel"),
              "mixture": ("kind", "components"), "switching": ("kind", "components"),
              "finite_mixture": ("kind", "kernels", "count", "alpha", "seed", "weights")}
"""The keys of a prior's dict by ``kind``: all required, except a finite mixture's, which holds
``kernels`` or ``count``, ``alpha`` and ``seed``, and optionally ``weights``."""

_FINITE_FORMS = (("kind", "kernels"), ("kind", "count", "alpha", "seed"))
"""The required keys of a finite mixture's two JSON forms (each may add ``weights``)."""

MODEL_KEYS = ("heads", "window", "degree", "w_plus", "w_minus", "c_init", "a_init",
              "head_windows")
"""The keys of a model spec's dict: the first three required, the others optional."""


@dataclass(frozen=True)
class Source:
    """An in-context n-gram Markov source: vocabulary, parent offsets and kernel prior (docs/theory.md §1).

    Attributes:
        vocab_size: ``d >= 2``.
        parents: ``P``, strictly increasing positive offsets.
        prior: :class:`Dirichlet`, :class:`Fixed`, :class:`Mixture`, :class:`Switching` or
            :class:`FiniteMixture`.
    """

    vocab_size: int
    parents: tuple[int, ...]
    prior: Prior

    def __post_init__(self) -> None:
        d = as_int(self.vocab_size, "vocab_size", minimum=2, symbol="d")
        object.__setattr__(self, "vocab_size", d)
        parents = check_parents(self.parents)
        object.__setattr__(self, "parents", parents)
        prior = self.prior
        require(isinstance(prior, (Dirichlet, Fixed, Mixture, Switching, FiniteMixture)),
                "prior", "a Dirichlet, Fixed, Mixture, Switching or FiniteMixture prior", prior)
        if isinstance(prior, Fixed):
            expected = (d,) * (len(parents) + 1)
            require(prior.kernel.shape == expected, "kernel",
                    f"shape {expected} for d={d} and parents {parents}", prior.kernel.shape)
        if isinstance(prior, Mixture):
            for comp in prior.components:
                require(set(comp.parents) <= set(parents), "component parents",
                        f"a subset of the source parents {parents}", comp.parents)
        if isinstance(prior, Switching):
            for comp in prior.components:
                require(set(comp.parents) <= set(parents), "component parents",
                        f"a subset of the source parents {parents}", comp.parents)
                if comp.kernel is not None:
                    expected = (d,) * (len(comp.parents) + 1)
                    require(comp.kernel.shape == expected, "component kernel",
                            f"shape {expected} for d={d} and parents {comp.parents}",
                            comp.kernel.shape)
        if isinstance(prior, FiniteMixture):
            expected = (prior.count,) + (d,) * (len(parents) + 1)
            require(prior.kernels.shape == expected, "finite-mixture kernels",
                    f"shape {expected} (N kernels) for d={d} and parents {parents}",
                    prior.kernels.shape)

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
        check_keys(data, "source", SOURCE_KEYS)
        prior = data["prior"]
        require(isinstance(prior, dict) and "kind" in prior, "prior",
                "a dict with a 'kind' key", prior)
        kind = prior["kind"]
        require(isinstance(kind, str) and kind in PRIOR_KEYS, "prior kind",
                "one of " + ", ".join(repr(k) for k in PRIOR_KEYS), kind)
        if kind == "finite_mixture":
            form = _FINITE_FORMS[0] if "kernels" in prior else _FINITE_FORMS[1]
            check_keys(prior, "finite_mixture prior", form, ("weights",))
        else:
            check_keys(prior, f"{kind} prior", PRIOR_KEYS[kind])
        if kind == "dirichlet":
            p: Prior = Dirichlet(prior["alpha"])
        elif kind == "fixed":
            p = Fixed(prior["kernel"])
        elif kind == "finite_mixture":
            weights = prior.get("weights")
            if "kernels" in prior:
                p = FiniteMixture(prior["kernels"], weights)
            else:
                parents = check_parents(data["parents"])
                p = FiniteMixture.draw(prior["count"], prior["alpha"], seed=prior["seed"],
                                       vocab_size=data["vocab_size"], order=len(parents),
                                       weights=weights)
        else:
            comps = prior["components"]
            require(isinstance(comps, list), f"{kind} prior", "a 'components' list", comps)
            # dict entries are checked key by key there
            p = Mixture(tuple(comps)) if kind == "mixture" else Switching(tuple(comps))
        return cls(data["vocab_size"], data["parents"], p)

    def to_json(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as JSON (UTF-8) to ``path``.

        Raises:
            InductionHeadsError: when ``path`` cannot be written.
        """
        try:
            Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        except OSError as err:
            raise InductionHeadsError(f"source path: expected a writable path, received "
                                      f"{str(path)!r} ({err.strerror})") from None


def load_source(path_or_dict: str | Path | dict[str, Any]) -> Source:
    """Build a :class:`Source` from a JSON file path or an already-parsed dict.

    Args:
        path_or_dict: a path to a JSON file, or a dict in the module docstring's format.

    Returns:
        The validated source.

    Raises:
        InductionHeadsError: on a missing or unreadable file, a file that is not UTF-8 text,
            invalid JSON or an invalid spec.
    """
    if isinstance(path_or_dict, dict):
        return Source.from_dict(path_or_dict)
    require(isinstance(path_or_dict, (str, os.PathLike)), "source",
            "a path to a JSON file or a dict", type(path_or_dict).__name__)
    path = Path(path_or_dict)
    require(path.is_file(), "source path", "an existing JSON file", str(path))
    where = f"source file {str(path)!r}"
    text = read_text_file(path, where)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InductionHeadsError(f"{where}: expected valid JSON, received text that does not "
                                  f"parse ({err})") from None
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

    Raises:
        InductionHeadsError: on a bad H or D, or more than
            :data:`theory.sizes.MAX_HEAD_SETS` sets.
    """
    heads = as_int(heads, "heads", minimum=1, symbol="H")
    degree = as_int(degree, "degree")
    require(0 <= degree <= heads, "degree", f"0 <= D <= H = {heads}", degree)
    require_head_sets(heads, degree)
    return tuple(
        s for size in range(degree + 1) for s in itertools.combinations(range(1, heads + 1), size)
    )


@dataclass(frozen=True)
class ModelSpec:
    """Sizes and initialisation of TF(M, H, d, D) (docs/theory.md §2); d comes from the source.

    Attributes:
        heads: ``H >= 1`` copier heads.
        window: ``M >= H``, the largest offset any head attends to.
        degree: ``D``, ``1 <= D <= H``, the largest head set the selector mixes.
        w_plus: initial copier logit of head h at offset h.
        w_minus: initial copier logit at every other offset of the head's window.
        c_init: initial ``C_S`` for every set (so ``c_S = c_init**2``, uniform ``c̃``).
        a_init: initial classifier temperature ``a``.
        head_windows: the offsets each head attends to, one strictly increasing tuple per head
            within ``1..M`` and holding the head's own offset h (where its ``w_plus`` sits); a
            structural mask, not a parameter. None (the default): every head attends to
            ``1..M``. The authors' models give head h the band ``h..h+H-1``
            (:meth:`band`).
    """

    heads: int
    window: int
    degree: int
    w_plus: float = 1.0
    w_minus: float = 0.0
    c_init: float = 1.0
    a_init: float = 0.01
    head_windows: tuple[tuple[int, ...], ...] | None = None
    _sets: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("heads", "window", "degree"):
            object.__setattr__(self, name, as_int(getattr(self, name), name))
        require(self.heads >= 1, "heads", "H >= 1", self.heads)
        require(self.window >= self.heads, "window",
                f"M >= H = {self.heads} (each head starts on its own offset)", self.window)
        require(1 <= self.degree <= self.heads, "degree",
                f"1 <= D <= H = {self.heads}", self.degree)
        for name in ("w_plus", "w_minus", "c_init", "a_init"):
            object.__setattr__(self, name, as_float(getattr(self, name), name))
        require(self.c_init != 0.0, "c_init", "a non-zero number (C = 0 has no gradient)",
                self.c_init)
        if self.head_windows is not None:
            object.__setattr__(self, "head_windows", _check_head_windows(
                self.head_windows, self.heads, self.window))
        object.__setattr__(self, "_sets", head_sets(self.heads, self.degree))

    @classmethod
    def band(cls, heads: int, degree: int, **init: float) -> ModelSpec:
        """The authors' windows: head h attends to the band ``h..h+H-1``, so ``M = 2H - 1``.

        ``init``: ``w_plus``, ``w_minus``, ``c_init``, ``a_init``.
        """
        H = as_int(heads, "heads", minimum=1, symbol="H")
        windows = tuple(tuple(range(h, h + H)) for h in range(1, H + 1))
        return cls(heads=H, window=2 * H - 1, degree=degree, head_windows=windows, **init)

    @property
    def sets(self) -> tuple[tuple[int, ...], ...]:
        """The selector's head sets, in :func:`head_sets` order."""
        return self._sets

    @property
    def windows(self) -> tuple[tuple[int, ...], ...]:
        """Each head's offsets, ``head_windows`` or ``1..M`` for every head."""
        if self.head_windows is not None:
            return self.head_windows
        return (tuple(range(1, self.window + 1)),) * self.heads

    def window_mask(self) -> list[list[bool]]:
        """(H, M) nested lists: whether head h (row h-1) attends to offset i (column i-1)."""
        return [[i in set(w) for i in range(1, self.window + 1)] for w in self.windows]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"heads": self.heads, "window": self.window, "degree": self.degree,
                               "w_plus": self.w_plus, "w_minus": self.w_minus,
                               "c_init": self.c_init, "a_init": self.a_init}
        if self.head_windows is not None:
            out["head_windows"] = [list(w) for w in self.head_windows]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        """Inverse of :meth:`to_dict`; refuses missing and unknown keys (:data:`MODEL_KEYS`)."""
        require(isinstance(data, dict), "model spec", "a dict", type(data).__name__)
        check_keys(data, "model spec", MODEL_KEYS[:3], MODEL_KEYS[3:])
        return cls(**data)


def _check_head_windows(windows: object, heads: int, window: int) -> tuple[tuple[int, ...], ...]:
    """``head_windows`` as a tuple of tuples, checked against H and M."""
    wanted = (f"{heads} strictly increasing lists of offsets in 1..{window}, the list of head h "
              "holding h")
    require(isinstance(windows, (tuple, list)) and len(windows) == heads, "head_windows",
            wanted, windows)
    out = []
    for h, offsets in enumerate(windows, start=1):
        require(isinstance(offsets, (tuple, list)) and len(offsets) >= 1, f"head_windows[{h - 1}]",
                wanted, offsets)
        row = tuple(as_int(o, f"head_windows[{h - 1}] offset", minimum=1) for o in offsets)
        require(all(a < b for a, b in zip(row, row[1:])) and row[-1] <= window and h in row,
                f"head_windows[{h - 1}]", wanted, offsets)
        out.append(row)
    return tuple(out)


PAPER_SOURCE = Source(3, (1, 2), Dirichlet(0.1))
"""The paper's experimental source: d=3, P=(1, 2), Dirichlet(0.1)."""

WEAK_PARENT_SOURCE = Source(3, (1, 2), Mixture((MixtureComponent((1,), 0.7, 0.1),
                                                MixtureComponent((1, 2), 0.3, 0.1))))
"""docs/theory.md §1's mixture: parent 1 strong (weight 0.7 alone), parent 2 weak (weight 0.3
with parent 1), ``α = 0.1``; ``S* = (1,)``, smaller than ``P``."""

PAPER_MODEL = ModelSpec(heads=3, window=3, degree=2)
"""The paper's model sizes H=M=3, D=2 with the prototype initialisation of docs/theory.md §2."""
