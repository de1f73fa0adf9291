"""The tuned settings of a standard transformer and its run on the paper's source.

:data:`PAPER_SPEC` / :data:`PAPER_TRAINING` at the paper's length ``L = 100``, and
:data:`FAST_SPEC` / :data:`FAST_TRAINING`, the fastest setting found to learn the GIH on the CPU;
what each reaches is in docs/results.md §11.
"""

from __future__ import annotations

import dataclasses

from numerics.models.standard import StandardSpec
from numerics.training.standard.config import StandardTrainConfig
from theory.errors import require
from theory.sources.spec import ModelSpec

__all__ = ["PAPER_SPEC", "PAPER_TRAINING", "FAST_SPEC", "FAST_TRAINING", "standard_config",
           "default_architecture"]

PAPER_SPEC = StandardSpec(d_model=48, mlp=True, max_len=100)
"""The transformer for the paper's length ``L = 100``: D = 48, heads (3, 1), relative-position
biases, pre-LayerNorm, MLP, ``init_std`` 0.1 (19.5k parameters without the MLP, 57k with it)."""

PAPER_TRAINING = StandardTrainConfig(steps=2000, batch_size=128, seq_len=100)
"""2000 steps of 128 fresh sequences of the paper's source at ``L = 100`` (AdamW lr 1e-2, 100
warm-up steps, cosine decay to 1e-3, loss at every position): enough steps for
:data:`PAPER_SPEC` to leave the unigram plateau and come within 0.02 nats of GIH(1, 2)
(docs/results.md §11).
"""

FAST_SPEC = StandardSpec(d_model=24, mlp=True, max_len=50)
"""The smallest transformer found to learn the GIH quickly on the CPU: :data:`PAPER_SPEC` with
D = 24 (heads of width 8 in the first layer), for contexts up to ``L = 50``."""

FAST_TRAINING = StandardTrainConfig(steps=2000, batch_size=128, seq_len=50)
""":data:`PAPER_TRAINING` at ``L = 50``: the fastest setting found that comes within about 0.02
nats of GIH(1, 2) on the paper's source; smaller batches, a lower rate, no warm-up or no MLP
each did worse (docs/results.md §11).
"""


def standard_config(mode: str = "stagewise", *, sequences: int | None = None,
                    seq_len: int | None = None, device: str = "auto",
                    vocab_size: int | None = None, degree: int | None = None
                    ) -> StandardTrainConfig:
    """The default run of a standard transformer: :data:`FAST_TRAINING` at ``seq_len``.

    Asked for with the keywords every model kind's default run takes
    (:mod:`numerics.training.kinds`); the ones that do not apply are refused when set.

    Args:
        mode: ``"stagewise"`` or ``"joint"``: a standard transformer trains every weight at
            once, so both name the same run.
        sequences: None (the run draws fresh batches of ``batch_size`` every step).
        seq_len: L (None: :data:`FAST_TRAINING`'s 50).
        device: a device name.
        vocab_size: d of the source (unused).
        degree: D (unused).

    Raises:
        InductionHeadsError: on a mode that is neither, or ``sequences`` that is not None.
    """
    require(mode in ("stagewise", "joint"), "mode", "one of ('stagewise', 'joint')", mode)
    require(sequences is None, "sequences", "None for the standard transformer (it trains on "
            "fresh batches: set the config's batch_size)", sequences)
    config = FAST_TRAINING if seq_len is None else dataclasses.replace(FAST_TRAINING,
                                                                        seq_len=seq_len)
    return dataclasses.replace(config, device=device)


def default_architecture(spec: ModelSpec, seq_len: int) -> StandardSpec:
    """The transformer a verify run trains when none is given: :data:`FAST_SPEC` with
    ``spec.heads`` first-layer heads (one per head of the TF it is compared with) and
    ``max_len`` the training length."""
    return dataclasses.replace(FAST_SPEC, heads=spec.heads, n_heads=None, max_len=seq_len)
