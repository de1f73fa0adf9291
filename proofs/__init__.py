"""proofs: the derivation steps of the limit (docs/theory.md §3), each checked with sympy.

One lemma per module; each module's ``verify()`` returns a frozen :class:`LemmaResult` and never
prints. An identity holds when its residual is structurally zero after targeted exact
simplification (``together``/``cancel``/``expand``); limits are decided by ``sp.limit`` /
``sp.series`` or by explicit bounds with exact certificates. Statements general in a size
(``d``, ``L``, number of sets) are checked over a range of small sizes, recorded in
``LemmaResult.sizes_checked``.

Lemmas (registry :data:`LEMMAS`, in derivation order). The numbering 1–8 is this project's own
ordering of the derivation steps of docs/theory.md §3; it is not the numbering of the paper's
lemmas or theorems. docs/theory.md §5 maps every lemma to the claim it supports and to the
numeric tests that check the same claim.

1. ``first_order``: ``-∂ℓ/∂a`` at ``a = 0`` is linear in ``c̃`` with coefficient ``G`` per set.
2. ``criterion_identity``: the averaged signal is the modified χ² information ``G(S)``.
3. ``nonnegativity``: every term of ``G`` is a χ² divergence; ``G >= 0``, ``G(∅) = 0``.
4. ``replicator``: gradient flow on ``C`` is a replicator equation converging to ``S*``.
5. ``copier_limit``: a dominant logit makes a head an exact copier; similarities → indicators.
6. ``classifier_limit``: ``ŷ → m_e/m`` (the GIH), uniform when nothing matches.
7. ``classifier_growth``: ``-∂ℓ/∂a ≈ κ e^{-a}``; ``a(t) = log(e^{a_0} + κ t)``.
8. ``temperature_expansion``: the GIH loss to second order in ``a`` (first coefficient ``G_L``).

Public API: :class:`LemmaResult`, :data:`LEMMAS` (name -> ``verify``), :data:`NUMBERING_NOTE`,
:func:`verify_all`; CLI ``python -m proofs`` prints a numbered table and exits 1 if a lemma fails.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from proofs import (
    classifier_growth,
    classifier_limit,
    copier_limit,
    criterion_identity,
    first_order,
    nonnegativity,
    replicator,
    temperature_expansion,
)
from proofs._result import LemmaResult

__all__ = ["LemmaResult", "LEMMAS", "NUMBERING_NOTE", "verify_all"]

LEMMAS: Mapping[str, Callable[[], LemmaResult]] = MappingProxyType({
    "first_order": first_order.verify,
    "criterion_identity": criterion_identity.verify,
    "nonnegativity": nonnegativity.verify,
    "replicator": replicator.verify,
    "copier_limit": copier_limit.verify,
    "classifier_limit": classifier_limit.verify,
    "classifier_growth": classifier_growth.verify,
    "temperature_expansion": temperature_expansion.verify,
})
"""Read-only registry: lemma name -> its ``verify`` (default arguments), in derivation order."""

NUMBERING_NOTE = ("Lemma numbers are this project's own ordering of the derivation steps "
                  "(docs/theory.md §5), not the paper's numbering.")
"""What the lemma numbers (positions in :data:`LEMMAS`, from 1) mean; ``python -m proofs`` prints it."""


def verify_all() -> tuple[LemmaResult, ...]:
    """Run every lemma's ``verify()`` with its defaults, in the order of :data:`LEMMAS`."""
    return tuple(verify() for verify in LEMMAS.values())
