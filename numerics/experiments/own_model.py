"""Train your own torch language model on the library's sequences and probe it as it learns.

:func:`train_own_model` takes any model the probe reads through an adapter (:func:`numerics.from_hf`,
:func:`numerics.from_lens`, or a raw module with the adapter that wraps it), draws ``sequences``
training sequences ``x_1..x_{L+1}`` of a :class:`theory.Source` and a held-out set with their
kernels, and runs Adam on the next-token cross-entropy at every position ``l = 1..L`` for
``steps`` updates of ``batch_size`` sequences drawn with replacement. Every ``probe_every``
updates (and after the last) :func:`numerics.probe` reads the model on the held-out set against
theory's ``S*`` (:func:`theory.predict_limit`, computed once), every layer's attention included.
The loop is one for every model: the adapter's :meth:`~numerics.probing.ExternalModel.logits`
returns the logits ``(n, L, V)`` whether the model returns them (TransformerLens) or an object
holding them (Hugging Face).

:func:`tiny_gpt2` and :func:`tiny_lens` build two-layer models from configs on this machine (no
download), their initial weights drawn from an explicit generator (:func:`seeded_module`);
transformers and transformer_lens are imported only there, and a missing one is named with its
extra (``[hf]``, ``[lens]``). :data:`OWN_MODEL_SIZES` holds the notebook's sizes, and
``python -m numerics.experiments.own_model --size default`` prints the numbers of
docs/results.md §17.
"""

from __future__ import annotations

import argparse
import importlib
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import torch

from numerics.data import sample_sequences
from numerics.experiments.support import format_table
from numerics.plots.probe import plot_distances
from numerics.probing import (
    DECIDED,
    NO_GIH_FITS,
    ExternalModel,
    ProbeReport,
    from_hf,
    from_lens,
    probe,
)
from theory.errors import InductionHeadsError, require
from theory.limit.prediction import LimitPrediction, predict_limit
from theory.sources.spec import Dirichlet, ModelSpec, Source
from theory.validation import is_int, is_real

__all__ = ["OWN_MODEL_SOURCE", "OWN_MODEL_SPEC", "OWN_MODEL_SIZES", "OwnModelRun",
           "train_own_model", "seeded_module", "tiny_gpt2", "tiny_lens", "attention_rows"]

OWN_MODEL_SOURCE = Source(3, (1,), Dirichlet(0.1))
"""d = 3, one parent (the classic induction task), Dirichlet(0.1) kernels: at L = 30 a tiny
GPT-2 and HookedTransformer leave the unigram plateau within a thousand or two Adam steps on a
CPU, and the Bayes predictive reads as the decided GIH(1,) (KL 0.007)."""

OWN_MODEL_SPEC = ModelSpec(heads=3, window=3, degree=2)
"""The head sets the probe scores: window M = 3, at most D = 2 offsets (the paper's sizes)."""

OWN_MODEL_SIZES = {
    "small": {"train": dict(sequences=4000, seq_len=30, batch_size=32, lr=1e-2,
                            probe_every=100, heldout=500),
              "steps": {"gpt2": 500, "lens": 500}, "seed": 2},
    "default": {"train": dict(sequences=4000, seq_len=30, batch_size=32, lr=1e-2,
                              probe_every=100, heldout=2000),
                "steps": {"gpt2": 3000, "lens": 2000}, "seed": 1},
}
"""The notebook's sizes (:func:`numerics.experiments.by_size` ``(size, **OWN_MODEL_SIZES)``):
``train`` holds :func:`train_own_model`'s keywords, ``steps`` the updates per model, ``seed``
the generator of the data and batches (the initial weights come from seed 0).

``small`` (under a minute on 2 cores) stops the GPT-2 on the unigram plateau, which it leaves
after 1000 to 2000 steps; the HookedTransformer leaves it within a few hundred steps at
seed 2 (between 200 and past 1000 over the data seeds 1 to 4, so the small size names its
seed). ``default`` trains both past the plateau and probes 2000 held-out sequences, so the
margins are about twice as many standard errors."""

LIMIT_SAMPLES = 1000
"""Monte Carlo samples of :func:`theory.predict_limit` when no ``limit`` is given."""


@dataclass(frozen=True)
class OwnModelRun:
    """A training run of an outside model with the probe's reads along the way.

    Attributes:
        losses: ``(steps,)`` training cross-entropy of every update (nats per token).
        steps: ``(T,)`` the logged steps (updates done before the probe read), 0 and the last
            included.
        reports: ``(T,)`` the :class:`numerics.probing.ProbeReport` at each logged step.
        limit: theory's prediction at ``L`` (``limit.selected_set`` is ``S*``).
        seconds: wall time of the training and the probes.
    """

    losses: np.ndarray
    steps: tuple[int, ...]
    reports: tuple[ProbeReport, ...]
    limit: LimitPrediction
    seconds: float

    @property
    def final(self) -> ProbeReport:
        """The report after the last update."""
        return self.reports[-1]

    @property
    def selected_set(self) -> tuple[int, ...]:
        """Theory's ``S*``."""
        return tuple(self.limit.selected_set)

    def report_at(self, step: int) -> ProbeReport:
        """The report at logged step ``step``."""
        require(step in self.steps, "step", f"one of the logged steps {self.steps}", step)
        return self.reports[self.steps.index(step)]

    def first_decided_step(self) -> int | None:
        """The first logged step at which the probe decides ``S*`` (None if none does)."""
        return next((s for s, r in zip(self.steps, self.reports)
                     if r.verdict == DECIDED and r.effective_set == self.selected_set), None)

    def settled_step(self) -> int | None:
        """The first logged step from which every read decides ``S*`` (None if the last does
        not)."""
        settled = None
        for step, report in zip(self.steps, self.reports):
            stays = report.verdict == DECIDED and report.effective_set == self.selected_set
            settled = (step if settled is None else settled) if stays else None
        return settled

    def plateau_step(self) -> int:
        """An early checkpoint on the plateau: the last logged step after 0, before the last
        and before :meth:`first_decided_step` that reads "no GIH fits", else the first logged
        step after 0 (the model has left the uniform law but is no induction head yet)."""
        end = self.first_decided_step()
        early = [s for s, r in zip(self.steps[:-1], self.reports[:-1])
                 if 0 < s and (end is None or s < end) and r.verdict == NO_GIH_FITS]
        return early[-1] if early else self.steps[min(1, len(self.steps) - 1)]

    def read_row(self, step: int) -> dict[str, Any]:
        """The probe's read at logged step ``step`` as a table row: verdict, closest GIH, its
        KL and margin over the runner-up, and the in-context unigram's KL beside it."""
        report = self.report_at(step)
        eff = report.last.effective
        return {"step": step, "verdict": eff.verdict, "closest GIH": str(eff.head_set),
                "KL to it": eff.kl, "margin (SE)": eff.margin_se,
                "unigram KL": report.last.score("unigram").kl,
                "within reach": " ".join(str(s) for s in eff.within_reach)}

    def distances_figure(self, path: Any = None) -> Any:
        """:func:`numerics.plots.plot_distances` over the logged steps."""
        return plot_distances(self.steps, [r.to_dict() for r in self.reports],
                              selected_set=self.selected_set, parents=self.final.parents,
                              settled_step=self.settled_step(),
                              sequences=self.final.sequences, path=path)

    def findings(self) -> dict[str, Any]:
        """The numbers docs/results.md §17 reports: where the probe first decides ``S*``, the
        final read (set, verdict, margin, KL to the closest GIH, attention on ``S*``'s offsets
        in the first layer and on the matching keys in the second) and the plateau
        checkpoint's read."""
        eff, plateau = self.final.last.effective, self.report_at(self.plateau_step())
        rows = attention_rows(self.final)
        first_layer = [row for row in rows if row["layer"] == 0]
        second_layer = [row for row in rows if row["layer"] == 1 and row["match mass"] is not None]
        return {"first decided step": self.first_decided_step(),
                "final effective set": eff.head_set, "final verdict": eff.verdict,
                "margin (SE)": eff.margin_se, "KL to closest GIH": eff.kl,
                "S* offset mass (best first-layer head)":
                    max((row["S* offset mass"] for row in first_layer), default=None),
                "match mass on S* (best second-layer head)":
                    max((row["match mass"] for row in second_layer), default=None),
                "plateau step": self.plateau_step(), "plateau verdict": plateau.verdict,
                "plateau closest GIH": plateau.last.effective.head_set,
                "plateau KL to closest GIH": plateau.last.effective.kl,
                "final loss": float(np.mean(self.losses[-max(1, len(self.losses) // 20):])),
                "seconds": self.seconds}


def attention_rows(report: ProbeReport) -> list[dict[str, Any]]:
    """One row per layer and head of an adapter's attention read-out: the peak offset, the
    mass on each offset of ``S*`` (summed), and the match mass and correlation on ``S*``.

    Layers are numbered from 0 as in the taps ``blocks.{l}.attn.hook_pattern``; heads from 1.
    A tap of another name keeps its name in the ``layer`` column.
    """
    star = report.selected_set
    matches = {(m.name, m.head): m for m in report.matches}
    rows = []
    for o in report.offsets:
        match = matches.get((o.name, o.head))
        parts = o.name.split(".")
        layer = int(parts[1]) if parts[0] == "blocks" and parts[1:2] and parts[1].isdigit() \
            else o.name
        rows.append({"layer": layer, "head": o.head,
                     "peak offset": o.peak_offset,
                     "S* offset mass": float(sum(o.profile[i - 1] for i in star
                                                 if i <= len(o.profile))),
                     "match mass": None if match is None else match.match_mass,
                     "match correlation": None if match is None else match.correlation})
    return rows


def _check_sizes(sequences: Any, seq_len: Any, steps: Any, batch_size: Any, lr: Any,
                 probe_every: Any, heldout: Any) -> None:
    for name, value, least in (("sequences", sequences, 1), ("seq_len", seq_len, 1),
                               ("steps", steps, 1), ("batch_size", batch_size, 1),
                               ("probe_every", probe_every, 1), ("heldout", heldout, 2)):
        require(is_int(value) and value >= least, name, f"an integer >= {least}", value)
    require(is_real(lr) and lr > 0, "lr", "a learning rate > 0", lr)


def train_own_model(model: Any, source: Source, spec: ModelSpec, *, sequences: int,
                    seq_len: int, steps: int, batch_size: int, lr: float, probe_every: int,
                    heldout: int, generator: torch.Generator,
                    adapter: Callable[..., ExternalModel] | None = None,
                    limit: LimitPrediction | None = None, rng: np.random.Generator | None = None
                    ) -> OwnModelRun:
    """Train ``model`` on ``source``'s sequences by Adam and probe it every ``probe_every`` steps.

    Args:
        model: an :class:`~numerics.probing.ExternalModel` (``from_hf(m, vocab_size=d)``,
            ``from_lens(m, vocab_size=d)``), or a raw module together with ``adapter``.
        source: the source of the training and held-out sequences (d, P, prior).
        spec: the sizes H, M, D whose head sets the probe scores and ``S*`` comes from.
        sequences: ``n`` training sequences of ``L+1`` tokens, drawn once.
        seq_len: ``L``, the context length the model reads.
        steps: Adam updates.
        batch_size: sequences per update, drawn from the ``n`` with replacement.
        lr: Adam's learning rate.
        probe_every: updates between probe reads (the first read is before any update, the
            last after the final one).
        heldout: held-out sequences the probe reads (drawn once, with their kernels).
        generator: draws the sequences and the batches (keyword-only, the only torch
            randomness; initialise the model beforehand, e.g. with :func:`seeded_module`).
        adapter: wraps a raw ``model`` (e.g. ``functools.partial(from_hf, vocab_size=d)``).
        limit: theory's prediction at ``L``; else computed with ``rng``.
        rng: numpy generator for :func:`theory.predict_limit` when ``limit`` is None.

    Returns:
        :class:`OwnModelRun`; the model is left trained, in eval mode.

    Raises:
        InductionHeadsError: on a model that is not wrapped and no adapter, bad sizes, a
            ``limit`` for another ``L``, or neither ``limit`` nor ``rng``.
    """
    wrapped = model if isinstance(model, ExternalModel) or adapter is None else adapter(model)
    require(isinstance(wrapped, ExternalModel), "model",
            "a model wrapped by from_hf/from_lens, or a module with adapter=",
            type(model).__name__)
    _check_sizes(sequences, seq_len, steps, batch_size, lr, probe_every, heldout)
    require(isinstance(generator, torch.Generator), "generator", "a torch.Generator",
            type(generator).__name__)
    require(limit is not None or isinstance(rng, np.random.Generator), "rng",
            "a numpy Generator (theory's prediction) when no limit is given", type(rng).__name__)
    if limit is None:
        limit = predict_limit(source, spec, seq_len=seq_len, samples=LIMIT_SAMPLES, rng=rng)
    require(limit.seq_len == seq_len, "limit", f"a prediction at L = {seq_len}", limit.seq_len)
    started = time.perf_counter()
    device = wrapped.device()
    # The held-out draw has a generator of its own, seeded from ``generator``: the training
    # data and batches do not depend on ``heldout``, so a run probed on more sequences follows
    # the same trajectory.
    held_generator = torch.Generator().manual_seed(
        int(torch.randint(2**62, (1,), generator=generator)))
    train = sample_sequences(source, sequences, seq_len + 1, generator=generator)  # (n, L+1)
    held, kernels = sample_sequences(source, heldout, seq_len + 1, generator=held_generator,
                                     return_kernels=True, dtype=torch.float64)
    logged = sorted(set(range(0, steps, probe_every)) | {steps})
    optimiser = torch.optim.Adam(wrapped.model.parameters(), lr=lr)
    losses, reports = np.empty(steps), []
    for step in range(steps + 1):
        if step in logged:
            reports.append(probe(wrapped, source, spec, tokens=held, kernels=kernels,
                                 limit=limit))
        if step == steps:
            break
        batch = train[torch.randint(sequences, (batch_size,), generator=generator)]
        batch = batch.to(device)                                             # (b, L+1)
        wrapped.model.train()
        logits = wrapped.logits(batch[:, :-1])                               # (b, L, V)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 batch[:, 1:].reshape(-1))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses[step] = loss.item()
    wrapped.model.eval()
    return OwnModelRun(losses=losses, steps=tuple(logged), reports=tuple(reports), limit=limit,
                       seconds=time.perf_counter() - started)


# ------------------------------------------------------------------------ the models
def _extra(module: str, extra: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise InductionHeadsError(
            f"{module} is not installed: install the extra, pip install 'induction-heads[{extra}]'"
        ) from error


def seeded_module(build: Callable[..., torch.nn.Module], *args: Any,
                  generator: torch.Generator, **kwargs: Any) -> torch.nn.Module:
    """``build(*args, **kwargs)`` with its initial weights drawn from ``generator``.

    Hugging Face and TransformerLens draw initial weights from torch's global generator; this
    seeds that generator from ``generator`` inside :func:`torch.random.fork_rng`, so the
    caller's global state is left as it was and the same ``generator`` gives the same model.
    """
    require(isinstance(generator, torch.Generator), "generator", "a torch.Generator",
            type(generator).__name__)
    seed = int(torch.randint(2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        # transformer-lens 3.x deprecates HookedTransformer in favour of TransformerBridge
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.manual_seed(seed)
        return build(*args, **kwargs)


def tiny_gpt2(vocab_size: int, seq_len: int, *, generator: torch.Generator, width: int = 32,
              heads: int = 2) -> torch.nn.Module:
    """A two-layer ``GPT2LMHeadModel`` from a config (eager attention, no dropout), built here.

    Raises:
        InductionHeadsError: when transformers (the ``[hf]`` extra) is not installed.
    """
    transformers = _extra("transformers", "hf")
    config = transformers.GPT2Config(n_layer=2, n_head=heads, n_embd=width,
                                     vocab_size=vocab_size, n_positions=seq_len,
                                     attn_implementation="eager", resid_pdrop=0.0,
                                     embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0,
                                     eos_token_id=0)
    return seeded_module(transformers.GPT2LMHeadModel, config, generator=generator)


def tiny_lens(vocab_size: int, seq_len: int, *, generator: torch.Generator, width: int = 48,
              heads: int = 3) -> torch.nn.Module:
    """A two-layer attention-only ``HookedTransformer`` with rotary positions, built here.

    Raises:
        InductionHeadsError: when transformer_lens (the ``[lens]`` extra) is not installed.
    """
    lens = _extra("transformer_lens", "lens")
    config = lens.HookedTransformerConfig(n_layers=2, d_model=width, d_head=width // heads,
                                          n_heads=heads, n_ctx=seq_len, d_vocab=vocab_size,
                                          attn_only=True, act_fn="relu",
                                          positional_embedding_type="rotary", device="cpu")
    return seeded_module(lens.HookedTransformer, config, generator=generator)


# ------------------------------------------------------------------------ the command line
def _runs(size: str, seed: int) -> dict[str, OwnModelRun]:
    """Both tiny models of :data:`OWN_MODEL_SIZES` ``[size]`` trained as the notebook trains
    them (initial weights from seed 0, data and batches from ``seed``)."""
    settings = OWN_MODEL_SIZES[size]
    train, d, L = settings["train"], OWN_MODEL_SOURCE.vocab_size, settings["train"]["seq_len"]
    limit = predict_limit(OWN_MODEL_SOURCE, OWN_MODEL_SPEC, seq_len=L, samples=LIMIT_SAMPLES,
                          rng=np.random.default_rng(0))
    models = {"gpt2": from_hf(tiny_gpt2(d, L, generator=torch.Generator().manual_seed(0)),
                              vocab_size=d),
              "lens": from_lens(tiny_lens(d, L, generator=torch.Generator().manual_seed(0)),
                                vocab_size=d)}
    return {name: train_own_model(model, OWN_MODEL_SOURCE, OWN_MODEL_SPEC, limit=limit,
                                  steps=settings["steps"][name],
                                  generator=torch.Generator().manual_seed(seed), **train)
            for name, model in models.items()}


def main(argv: list[str] | None = None) -> int:
    """``python -m numerics.experiments.own_model [--size default] [--seed N]``: train both
    tiny models and print :meth:`OwnModelRun.findings` and the final probe summaries."""
    parser = argparse.ArgumentParser(prog="python -m numerics.experiments.own_model",
                                     description=main.__doc__)
    parser.add_argument("--size", choices=tuple(OWN_MODEL_SIZES), default="default")
    parser.add_argument("--seed", type=int, default=None,
                        help="the seed of the data and batches (default: the size's)")
    args = parser.parse_args(argv)
    args.seed = OWN_MODEL_SIZES[args.size]["seed"] if args.seed is None else args.seed
    runs = _runs(args.size, args.seed)
    rows = [{"model": name, **{k: str(v) if isinstance(v, tuple) or v is None else v
                               for k, v in run.findings().items()}}
            for name, run in runs.items()]
    print(f"size={args.size}, seed={args.seed}, source {OWN_MODEL_SOURCE}, "
          f"S* = {next(iter(runs.values())).selected_set}")
    for row in rows:
        print(format_table([{"quantity": k, "value": v} for k, v in row.items()], digits=4))
    for name, run in runs.items():
        print(f"\n{name}: final read\n{run.final.summary()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
