"""Building one's own kernel family through the public names: ``theory.on_parent``,
``theory.blend_kernel`` and a family at one value (``kernel_at``, ``kernel_exact_at``,
``source_at``)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from sympy import Rational as R

import theory
import theory.criterion
from theory import (
    TWO_PARENT_FAMILY,
    InductionHeadsError,
    KernelFamily,
    Source,
    blend_kernel,
    kernel_at,
    kernel_exact_at,
    on_parent,
    phase_diagram,
    source_at,
)

BUILDERS = ("on_parent", "blend_kernel", "kernel_at", "kernel_exact_at", "source_at")

A = [[R(1, 2), R(1, 2)], [R(1, 4), R(3, 4)]]
"""A first-order binary chain ``A(e|x)``: rows ``x``, columns ``e``."""
B = [[R(9, 10), R(1, 10)], [R(1, 5), R(4, 5)]]
W = sp.Symbol("w", positive=True)


def test_the_builders_are_public_and_documented():
    for name in BUILDERS:
        assert name in theory.__all__ and name in theory.criterion.__all__, name
        doc = getattr(theory, name).__doc__ or ""
        assert "(d,)*k + (d,)" in doc, f"{name} gives no shape: {doc!r}"
    for name in ("on_parent", "blend_kernel"):
        assert "Example" in getattr(theory, name).__doc__, name


def test_on_parent_reads_the_chosen_parent_only():
    kernel = on_parent(B, 1)  # π(e | x_{l-1}, x_{l-2}) = B(e | x_{l-2})
    assert kernel.shape == (2, 2, 2)
    for x1, x2, e in np.ndindex(2, 2, 2):
        assert kernel[x1, x2, e] == B[x2][e], (x1, x2, e)
    assert on_parent(A, 0, order=1).shape == (2, 2)
    assert on_parent(A, 2, order=3).shape == (2, 2, 2, 2)


def test_blend_kernel_is_the_entrywise_mixture():
    first, second = on_parent(A, 0), on_parent(B, 1)
    kernel = blend_kernel(first, second, W)
    for idx in np.ndindex(2, 2, 2):
        assert sp.expand(kernel[idx] - ((1 - W) * first[idx] + W * second[idx])) == 0, idx
    with pytest.raises(InductionHeadsError, match="shape"):
        blend_kernel(first, on_parent(A, 0, order=1), W)


def test_a_family_of_ones_own_kernel_evaluates_and_has_a_phase_diagram():
    family = KernelFamily("A on x_{l-1} to B on x_{l-2}", W, (0, 1), (1, 2),
                          blend_kernel(on_parent(A, 0), on_parent(B, 1), W))
    exact = kernel_exact_at(family, R(1, 4))
    assert exact[1, 0, 1] == R(3, 4) * R(3, 4) + R(1, 4) * R(1, 10)
    np.testing.assert_array_equal(kernel_at(family, 0.25), exact.astype(np.float64))
    source = source_at(family, R(1, 4))
    assert isinstance(source, Source) and source.parents == (1, 2) and source.vocab_size == 2
    phases = phase_diagram(family)
    assert phases[0].lo == 0 and phases[-1].hi == 1
    # at w -> 0 the chain reads x_{l-1} only, at w -> 1 x_{l-2} only
    assert phases[0].winner == (1,) and phases[-1].winner == (2,), phases


def test_the_predefined_family_is_built_from_the_public_builders():
    rebuilt = blend_kernel(
        on_parent([[R(v, 10) for v in row] for row in ((1, 6, 3), (3, 3, 4), (1, 1, 8))], 0),
        on_parent([[R(v, 10) for v in row] for row in ((1, 1, 8), (5, 2, 3), (1, 1, 8))], 1),
        TWO_PARENT_FAMILY.symbol)
    assert rebuilt == TWO_PARENT_FAMILY.kernel
