"""The constructor options of the full variant (docs/theory.md §7), their checks and the authors'.

Every option defaults to the library's variant; :data:`OFFICIAL_FULL_OPTIONS` is the authors'
full model (their ``RPEAttention`` and ``TwoLayerTransformer``), on the spec
:func:`numerics.experiments.official_full_spec` and the loss ``"official_ce"``.

    normalization      ``"layernorm"`` (affine LayerNorm) or ``"l2"`` (``v/(||v|| + norm_offset)``)
    self_attention     offset 0 (the position itself) in every head's window
    relu_similarity    ``k_h(l)`` through a ReLU
    ln_eps             the LayerNorm's variance offset ε
    self_logit         None: offset 0's logit is trained; a number: it is fixed at that value
    content            ``"direct"``: ``A_h`` is a parameter; ``"factorised"``: ``A_h = Q_h K_hᵀ``
    content_init       ``A_h = content_init·I`` (direct) or ``Q_h = K_h = content_init·I``
    value_init         ``V_h = value_init·I``
    shared_layernorm   one LayerNorm gain and bias ``(d,)`` for all heads (else ``(H, d)``)
    train_content      False: the content tensors are buffers (saved, not trained)
    train_values       False: ``V`` is a buffer (saved, not trained)
    norm_offset        ``ν`` of the l2 normalisation ``v/(||v|| + ν)``
"""

from __future__ import annotations

import math
from collections.abc import Callable

from theory.dynamics.first_move import FullIngredients
from theory.errors import require

__all__ = ["FULL_OPTION_DEFAULTS", "REQUIRED_OPTION_KEYS", "OFFICIAL_FULL_OPTIONS",
           "NORMALIZATIONS", "CONTENT_FORMS", "LN_EPS", "check_full_options",
           "first_move_ingredients"]

NORMALIZATIONS = ("layernorm", "l2")
"""``layernorm``: affine LayerNorm (the full variant); ``l2``: docs/theory.md §2's v/||v||."""

CONTENT_FORMS = ("direct", "factorised")
"""How the content term's bilinear form ``A_h`` is parametrised."""

LN_EPS = 1e-5
"""The LayerNorm's variance offset, torch's ``nn.LayerNorm`` default."""

FULL_OPTION_DEFAULTS: dict[str, object] = {
    "normalization": "layernorm", "self_attention": True, "relu_similarity": False,
    "ln_eps": LN_EPS, "self_logit": None, "content": "direct", "content_init": 0.0,
    "value_init": 1.0, "shared_layernorm": False, "train_content": True, "train_values": True,
    "norm_offset": 0.0}
"""Every option and its default, in the order of ``constructor_options()``."""

REQUIRED_OPTION_KEYS = ("normalization", "self_attention", "relu_similarity", "ln_eps")
"""The options every full-model checkpoint holds; the others fill in with their defaults."""

OFFICIAL_FULL_OPTIONS: dict[str, object] = {
    **FULL_OPTION_DEFAULTS, "normalization": "layernorm", "self_attention": True,
    "self_logit": 1e-6, "content": "factorised", "content_init": 0.01, "value_init": 0.01,
    "shared_layernorm": True, "relu_similarity": True, "ln_eps": 1e-5}
"""The authors' full model (their RPE/model.py, proj_init 0.01 of RPE/train.py) as options: the
fixed self logit 1e-6, ``Q_h = K_h = 0.01·I``, values ``0.01·I``, one LayerNorm (ε = 1e-5) for
all heads, the ReLU; Q, K and the values trained (their ``q_k_o_v_list = [True, True]``)."""


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


_CHECKS: dict[str, tuple[Callable[[object], bool], str]] = {
    "normalization": (lambda v: v in NORMALIZATIONS, f"one of {NORMALIZATIONS}"),
    "self_attention": (lambda v: isinstance(v, bool), "a bool"),
    "relu_similarity": (lambda v: isinstance(v, bool), "a bool"),
    "ln_eps": (lambda v: _number(v) and v >= 0, "a float >= 0"),
    "self_logit": (lambda v: v is None or _number(v), "None or a finite float"),
    "content": (lambda v: v in CONTENT_FORMS, f"one of {CONTENT_FORMS}"),
    "content_init": (_number, "a finite float"),
    "value_init": (_number, "a finite float"),
    "shared_layernorm": (lambda v: isinstance(v, bool), "a bool"),
    "train_content": (lambda v: isinstance(v, bool), "a bool"),
    "train_values": (lambda v: isinstance(v, bool), "a bool"),
    "norm_offset": (lambda v: _number(v) and v >= 0, "a float >= 0"),
}


def check_full_options(options: dict[str, object], *, where: str | None = None
                       ) -> dict[str, object]:
    """Every option of ``options`` checked, the missing ones filled in with their defaults.

    Args:
        options: option name -> value (a subset of :data:`FULL_OPTION_DEFAULTS`' keys).
        where: the name errors give an option, ``f"{where}[{key!r}]"`` (None: the bare key,
            the constructor's keyword). Read from a file (a ``where``), numbers must be floats,
            as :meth:`numerics.FullInductionHeadModel.constructor_options` writes them.

    Returns:
        The complete options, numbers as floats, in :data:`FULL_OPTION_DEFAULTS`' order.

    Raises:
        InductionHeadsError: on a value the model cannot take, or options that contradict each
            other (a fixed self logit without offset 0; a shared LayerNorm or a norm offset
            with the other normalisation).
    """
    out = {**FULL_OPTION_DEFAULTS, **options}
    for key, (ok, wanted) in _CHECKS.items():
        value = out[key]
        strict = where is None or not _number(value) or isinstance(value, float)
        require(ok(value) and strict, key if where is None else f"{where}[{key!r}]", wanted,
                value)
        if _number(value):
            out[key] = float(value)
    name = "self_logit" if where is None else f"{where}['self_logit']"
    require(out["self_logit"] is None or out["self_attention"], name,
            "None without self_attention (there is no offset 0 to fix)", out["self_logit"])
    name = "shared_layernorm" if where is None else f"{where}['shared_layernorm']"
    require(not out["shared_layernorm"] or out["normalization"] == "layernorm", name,
            "False with normalization 'l2' (there is no LayerNorm to share)",
            out["shared_layernorm"])
    name = "norm_offset" if where is None else f"{where}['norm_offset']"
    require(out["norm_offset"] == 0.0 or out["normalization"] == "l2", name,
            "0.0 with normalization 'layernorm' (it offsets the l2 norm)", out["norm_offset"])
    return out


def first_move_ingredients(options: dict[str, object], loss: str) -> FullIngredients:
    """What theory's first-move prediction (:func:`theory.predict_first_move`) needs of a full
    model built with ``options`` and trained on ``loss``, at its initialisation.

    At initialisation a fixed and a trained self logit are both a logit value, a shared and a
    per-head LayerNorm are both the identity affine, and the factorised content term is
    ``Q_h K_hᵀ = content_init² · I``; the windows come from the spec.

    Raises:
        InductionHeadsError: on options :func:`check_full_options` refuses, or a bad loss kind.
    """
    out = check_full_options(options)
    scale = float(out["content_init"])
    return FullIngredients(
        self_offset=bool(out["self_attention"]), self_logit=out["self_logit"],
        content_scale=scale * scale if out["content"] == "factorised" else scale,
        value_scale=float(out["value_init"]), normalization=str(out["normalization"]),
        ln_eps=float(out["ln_eps"]), norm_offset=float(out["norm_offset"]),
        relu=bool(out["relu_similarity"]), loss=loss)
