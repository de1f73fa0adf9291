"""A fixed sample prepared once for TF(M, H, d, D), in one of :data:`INPUT_FORMS`.

Forms (docs/theory.md §2, input forms; :mod:`numerics.models.costs` ranks them):
match tensors (:class:`CopierInputs`: the copier's inner products and norms as quadratic forms of
σ over data-only token matches), value vectors (:class:`numerics.models.vectors.VectorInputs`),
or window-pattern ids and (pattern, next token) counts
(:class:`numerics.models.patterns.PatternInputs`). :class:`StageInputs` adds the part of the
forward that a stage training ``C`` or ``a`` alone cannot change. The checks of token tensors and
dtypes shared by the model and its reference constructions live here too.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from numerics.models.costs import PATTERN_TABLE_MAX
from numerics.models.patterns import PatternInputs, pattern_table_entries, prepare_patterns
from numerics.models.vectors import VectorInputs, prepare_vectors
from theory.errors import require
from theory.validation import is_int

__all__ = ["CopierInputs", "VectorInputs", "PatternInputs", "PreparedInputs", "StageInputs",
           "STAGE_CACHE_MAX_BYTES", "INPUT_FORMS", "DTYPES", "prepare_inputs", "resolve_dtype",
           "is_token_tensor", "shape_or_type", "check_tokens"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}
"""Parameter dtypes of the model, by name; the constructor takes the name or the torch dtype."""


def is_token_tensor(value: object, dim: int) -> bool:
    """A ``dim``-dimensional tensor of an integer dtype (not bool, float or complex)."""
    return (isinstance(value, torch.Tensor) and value.dim() == dim
            and not torch.is_floating_point(value) and not torch.is_complex(value)
            and value.dtype != torch.bool)


def shape_or_type(value: object) -> object:
    """What an error message shows for a received tensor-like value: its shape, else its type."""
    if isinstance(value, torch.Tensor):
        return (tuple(value.shape), str(value.dtype))
    return getattr(value, "shape", type(value).__name__)


def check_tokens(tokens: torch.Tensor, what: str, vocab_size: int) -> None:
    """Every entry of an integer tensor lies in ``0..d-1`` (one min/max reduction)."""
    lo, hi = torch.aminmax(tokens)
    lo, hi = int(lo), int(hi)
    require(lo >= 0 and hi < vocab_size, what, f"values in [0, {vocab_size})", (lo, hi))


def resolve_dtype(dtype: object) -> torch.dtype:
    """``torch.float32``/``torch.float64`` or their names (:data:`DTYPES`)."""
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    require(isinstance(dtype, torch.dtype) and dtype in DTYPES.values(), "dtype",
            "torch.float32, torch.float64, 'float32' or 'float64'", dtype)
    return dtype


class CopierInputs(NamedTuple):
    """Data-only tensors of one sample, prepared once for a fixed sample.

    With one-hot inputs, ``v_h(l) = Σ_i σ_h(l,i) e(x_{l-i})``, so the copier's inner products are
    quadratic forms of the attention weights over token-match indicators:
    ``<v_h(L+1), v_h(l)> = Σ_{i,j} σ_h(L+1,i) σ_h(l,j) 1{x_{L+1-i} = x_{l-j}}`` and
    ``||v_h(l)||^2 = Σ_{j,k} σ_h(l,j) σ_h(l,k) 1{x_{l-j} = x_{l-k}}`` (invalid offsets never match).

    Attributes:
        onehot: (n, L, d) ``e(x_l)`` for l = 1..L.
        cross: (L, M·M, n) ``1{x_{L+1-i} = x_{l-j}}`` at flat index ``(i-1)·M + (j-1)``.
        gram: (L+1, M·M, n) ``1{x_{l-j} = x_{l-k}}`` for l = 1..L+1.
    """

    onehot: torch.Tensor
    cross: torch.Tensor
    gram: torch.Tensor


class StageInputs(NamedTuple):
    """A fixed sample's inputs with the part of the forward that a stage cannot change.

    A stage that trains ``C`` alone leaves the copier, hence every head-set product
    ``Π_{h∈S} <v̄_h(L+1), v̄_h(l)>``, where it is; one that trains ``a`` alone leaves the whole
    similarity ``s_l`` where it is. The model's ``stage_inputs`` computes that part
    once, and the forward reuses it with the same operations in the same order, so losses and
    gradients are bit-identical to the full forward.

    Attributes:
        base: the sample's :class:`CopierInputs`.
        products: (|𝒮|, L, n) the head-set products (empty set: ones), or None.
        similarity: (L, n) ``s_l``, or None.
    """

    base: CopierInputs
    products: torch.Tensor | None
    similarity: torch.Tensor | None

    @property
    def onehot(self) -> torch.Tensor:
        """(n, L, d) of the base inputs."""
        return self.base.onehot


STAGE_CACHE_MAX_BYTES = 256 * 2**20
"""Largest head-set product cache the model's ``stage_inputs`` builds (|𝒮|·L·n
entries); above it a selector stage runs the full forward."""

INPUT_FORMS = ("matches", "vectors", "positions", "counts")
"""How a fixed sample is prepared: the copier's match tensors (:class:`CopierInputs`, any M),
the one-hot context for value vectors (:class:`numerics.models.vectors.VectorInputs`, any M,
memory O(n·L·H·d)), or window-pattern ids per position or per-sequence (pattern, next token)
counts (:class:`numerics.models.patterns.PatternInputs`, for ``d^M`` small enough)."""

PreparedInputs = CopierInputs | VectorInputs | PatternInputs
"""What :func:`prepare_inputs` returns, one type per form."""


def prepare_inputs(context: torch.Tensor, window: int, vocab_size: int,
                   dtype: torch.dtype = torch.float32, *, form: str = "matches"
                   ) -> PreparedInputs:
    """A checked context prepared in one of :data:`INPUT_FORMS` (match tensors by default).

    Args:
        context: (n, L) integer tokens ``x_1..x_L`` in ``0..d-1``, with n >= 1 and L > M.
        window: M >= 1.
        vocab_size: d >= 2.
        dtype: float dtype of the outputs (a key or value of :data:`DTYPES`).
        form: one of :data:`INPUT_FORMS` (:func:`numerics.models.costs.input_form` picks the
            cheapest).

    Returns:
        :class:`CopierInputs` (``matches``), :class:`numerics.models.vectors.VectorInputs`
        (``vectors``) or :class:`numerics.models.patterns.PatternInputs` (``positions``,
        ``counts``).

    Raises:
        InductionHeadsError: on a context that is not an integer (n, L) tensor, n = 0, L <= M,
            tokens outside ``0..d-1``, or a bad window, vocabulary, dtype or form.
    """
    require(is_token_tensor(context, 2), "context", "an integer tensor of shape (n, L)",
            shape_or_type(context))
    require(is_int(window) and window >= 1, "window", "an integer M >= 1", window)
    require(is_int(vocab_size) and vocab_size >= 2, "vocab_size", "an integer d >= 2",
            vocab_size)
    require(form in INPUT_FORMS, "form", f"one of {INPUT_FORMS}", form)
    dtype = resolve_dtype(dtype)
    window, vocab_size = int(window), int(vocab_size)
    n, L = context.shape
    require(n >= 1, "context sequences n", "n >= 1", n)
    require(L > window, "context length L", f"L > M = {window}", L)
    check_tokens(context, "context tokens", vocab_size)
    if form == "vectors":
        return prepare_vectors(context, vocab_size, dtype)
    if form in ("positions", "counts"):
        entries = pattern_table_entries(n, window, vocab_size)
        require(entries <= PATTERN_TABLE_MAX, "window patterns",
                f"U·P' <= {PATTERN_TABLE_MAX} (form 'matches' has no such bound)", entries)
        return prepare_patterns(context, window, vocab_size, dtype, counts=form == "counts")
    onehot = F.one_hot(context.long(), vocab_size).to(dtype)              # (n, L, d)
    padded = F.pad(onehot, (0, 0, window, 0))                             # (n, L+M, d)
    # Window j covers padded[j .. j+M-1]; for position l = j+1 element M-i is x_{l-i}.
    shifted = padded.unfold(1, window, 1).flip(-1).transpose(-1, -2)     # (n, L+1, M, d)
    shifted = shifted.transpose(0, 1)                                     # (L+1, n, M, d)
    query = shifted[L]                                                    # (n, M, d)
    cross = torch.einsum("nid,lnjd->lijn", query, shifted[:L])            # (L, M, M, n)
    gram = torch.einsum("lnjd,lnkd->ljkn", shifted, shifted)              # (L+1, M, M, n)
    return CopierInputs(onehot, cross.reshape(L, window * window, n).contiguous(),
                        gram.reshape(L + 1, window * window, n).contiguous())
