"""Training a :class:`numerics.models.standard.StandardTransformer` on in-context Markov chains.

The in-context setting of ``docs/theory.md §1``: every step draws ``batch_size`` fresh sequences
``x_1 .. x_{L+1}``, each from its own kernel, so the model can only do well by reading the
context. The loss is the next-token cross-entropy at every position (``loss_positions="all"``,
the predictions of ``x_2 .. x_{L+1}``) or only of the in-context target ``x_{L+1}``
(``"last"``). AdamW, weight decay on the weight matrices and embeddings only (not on biases,
LayerNorm parameters or the relative-position biases), an optional linear warm-up and cosine
decay, optional gradient-norm clipping.

Randomness comes only from the ``torch.Generator`` passed to :func:`numerics.training.train`, in this
order: a fixed evaluation batch of ``eval_sequences`` sequences, then the batch of every step.
The model's initial weights come from its own generator (:class:`StandardTransformer`).

History (:class:`StandardHistory`): the initial state (step 0) and the steps
:func:`numerics.training.config.log_steps` ``(steps, log_points)`` (log-spaced, first and last
included). Row ``t``, after ``steps[t]`` updates:

    steps           (T,)  updates done
    lr              (T,)  learning rate of the last update (0 at step 0)
    train_loss      (T,)  objective on that update's batch before the update (NaN at step 0)
    eval_loss       (T,)  mean cross-entropy over all positions of the evaluation batch
    eval_last_loss  (T,)  cross-entropy of ``x_{L+1}`` on the evaluation batch (the ICL loss the
                          GIH of ``docs/theory.md §3.4`` is compared on)
    reports         (T,)  what the ``callback`` returned at that step (a JSON dict), or None

A ``callback(model, step)`` runs at every logged step with the model in eval mode under
``torch.no_grad()`` and must not use the training generator; :func:`probe_callback` builds one
that runs :func:`numerics.probe` on a fixed held-out set, so the history then holds the
distance to every reference predictor over training (:meth:`StandardHistory.distances`) and
:meth:`StandardHistory.settled_step`, the first logged step from which the decided effective head
set stays at its final value (an undecided step breaks the run).

Checkpoints hold only tensors and plain containers (``torch.load(..., weights_only=True)``),
are written atomically (a temporary file, then ``os.replace``) and let
:func:`numerics.training.resume` continue bit-identically on the CPU with the same thread count (``docs/theory.md §6.1``).

Modules: ``config`` (:class:`StandardTrainConfig`), ``history`` (:class:`StandardHistory`),
``checkpoint`` (the checkpoint's format, the optimizer and the validation of a loaded file),
``loop`` (the run: the trainer the registry entry ``"standard"`` of
:mod:`numerics.training.kinds` names), ``settings`` (the tuned :data:`PAPER_SPEC`,
:data:`PAPER_TRAINING`, :data:`FAST_SPEC`, :data:`FAST_TRAINING`, the default run and
architecture). :func:`probe_callback` lives in :mod:`numerics.probing.callback` and works for
any model a trainer passes.
"""

from numerics.models.standard import StandardSpec as StandardSpec  # the model a run trains
from numerics.models.standard import StandardTransformer as StandardTransformer
from numerics.probing.callback import probe_callback
from numerics.training.standard.checkpoint import (
    STANDARD_CHECKPOINT_FORMAT,
    STANDARD_CHECKPOINT_VERSION,
    adamw_for,
)
from numerics.training.standard.config import LOSS_POSITIONS, SCHEDULES, StandardTrainConfig
from numerics.training.standard.history import StandardHistory
from numerics.training.standard.loop import Callback, train_step
from numerics.training.standard.settings import (
    FAST_SPEC,
    FAST_TRAINING,
    PAPER_SPEC,
    PAPER_TRAINING,
    default_architecture,
    standard_config,
)

__all__ = ["StandardTrainConfig", "StandardHistory", "probe_callback", "LOSS_POSITIONS",
           "SCHEDULES", "STANDARD_CHECKPOINT_FORMAT", "STANDARD_CHECKPOINT_VERSION", "PAPER_SPEC",
           "PAPER_TRAINING", "FAST_SPEC", "FAST_TRAINING", "Callback", "adamw_for", "train_step",
           "standard_config", "default_architecture"]
