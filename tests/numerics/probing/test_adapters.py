"""Hugging Face and TransformerLens models read by the probe in one call: their next-token
probabilities are their own softmax at the last position, their attention read-out is their own
attention weights by offset, and a raising plain callable names its calling convention
(``numerics.probing.external``, ``numerics.probing.adapters``)."""

from __future__ import annotations

import importlib.metadata
import types
import warnings

import numpy as np
import pytest
import torch

from numerics import InductionHeadsError, from_hf, from_lens, from_logits, probe, sample_sequences
from theory import PAPER_MODEL, PAPER_SOURCE, predict_limit

transformers = pytest.importorskip("transformers")
lens = pytest.importorskip("transformer_lens")
LENS_VERSION = importlib.metadata.version("transformer-lens")
try:  # 4.x answers this name with ImportError (its module __getattr__)
    HookedTransformer = lens.HookedTransformer
except ImportError:
    HookedTransformer = None
try:
    from transformer_lens.model_bridge import TransformerBridge
    from transformer_lens.model_bridge.sources import build_bridge_from_module
except ImportError:
    TransformerBridge = build_bridge_from_module = None

needs_hooked_transformer = pytest.mark.skipif(
    HookedTransformer is None,
    reason=f"transformer-lens {LENS_VERSION} has no HookedTransformer (4.x ships only "
           "TransformerBridge)")
needs_bridge = pytest.mark.skipif(
    TransformerBridge is None or not hasattr(TransformerBridge, "boot_native"),
    reason=f"transformer-lens {LENS_VERSION} has no TransformerBridge.boot_native and "
           "build_bridge_from_module (3.9 and 4.x have them)")

D = PAPER_SOURCE.vocab_size
L = 30
N = 40
TRAIN_STEPS = 20
SOFTMAX_ATOL = 1e-6
"""The adapter takes the float64 softmax of the same float32 logits the model returns: the two
agree to float32 round-off of a probability (about 1e-7)."""
PROFILE_ATOL = 1e-6
"""Offset profiles: float64 means of the same float32 weights, summed in different orders."""
NOT_UNIFORM = 1e-3
"""After training, some next-token probability is this far from 1/d at least (an untrained
tiny model is already non-uniform; this guards against an adapter returning 1/d)."""


def _train(model: torch.nn.Module, forward) -> torch.nn.Module:
    """``TRAIN_STEPS`` Adam steps of next-token cross-entropy on paper-source sequences; the
    model is returned in eval mode (the probe's adapters call it so)."""
    torch.manual_seed(0)  # the models' own initialisation draws from the global generator
    tokens = sample_sequences(PAPER_SOURCE, 32, L + 1, generator=torch.Generator().manual_seed(1))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(TRAIN_STEPS):
        logits = forward(model, tokens[:, :-1])  # (n, L, V)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 tokens[:, 1:].reshape(-1))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


def _gpt2(vocab: int, implementation: str = "eager") -> torch.nn.Module:
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=2, n_head=2, n_embd=32, vocab_size=vocab,
                                     n_positions=128, attn_implementation=implementation,
                                     bos_token_id=0, eos_token_id=0)
    return transformers.GPT2LMHeadModel(config)


def _hf_logits(model, tokens):
    return model(input_ids=tokens).logits


def _lens_logits(model, tokens):
    return model(tokens)


@pytest.fixture(scope="module")
def context() -> torch.Tensor:
    """N held-out contexts ``(N, L)`` and their targets, ``(N, L+1)``."""
    return sample_sequences(PAPER_SOURCE, N, L + 1, generator=torch.Generator().manual_seed(7))


@pytest.fixture(scope="module")
def limit():
    return predict_limit(PAPER_SOURCE, PAPER_MODEL, seq_len=L, samples=200,
                         rng=np.random.default_rng(0))


@pytest.fixture(scope="module")
def gpt2() -> torch.nn.Module:
    return _train(_gpt2(D), _hf_logits)


@pytest.fixture(scope="module", params=["rotary", "standard"])
def lens_model(request) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = lens.HookedTransformerConfig(n_layers=2, d_model=32, n_ctx=128, d_head=16, n_heads=2,
                                       d_vocab=D, act_fn="relu", attn_only=True,
                                       positional_embedding_type=request.param)
    with warnings.catch_warnings():  # 3.9 deprecates HookedTransformer for TransformerBridge
        warnings.simplefilter("ignore", DeprecationWarning)
        model = HookedTransformer(cfg)
    return _train(model, _lens_logits)


BRIDGES = ["native rotary", "native standard", "gpt2", "gpt2 compatibility mode"]
"""Bridges built locally (no Hub access): ``boot_native`` around a TransformerLens-native
attention-only model, ``build_bridge_from_module`` around a Hugging Face GPT-2 built from a
config, the latter also after ``enable_compatibility_mode()`` (folded weights)."""


@pytest.fixture(scope="module", params=BRIDGES)
def bridge(request) -> torch.nn.Module:
    if request.param.startswith("native"):
        config = dict(n_layers=2, d_model=32, n_ctx=128, d_head=16, n_heads=2, d_vocab=D,
                      act_fn="relu", attn_only=True, seed=0,
                      positional_embedding_type=request.param.split()[1])
        return _train(TransformerBridge.boot_native(config), _lens_logits)
    hf = _gpt2(D)
    model = _train(build_bridge_from_module(hf, "GPT2LMHeadModel", hf_config=hf.config),
                   _lens_logits)
    if request.param.endswith("compatibility mode"):
        model.enable_compatibility_mode()
    return model.eval()


def _own_profile(pattern: torch.Tensor, window: int) -> np.ndarray:
    """Mean weight of query ``q`` on key ``q - i``, ``i = 1..M``, over the sequences and the
    queries ``q = M+1..L`` (1-based), gathered row by row: ``(n, heads, L, L) -> (heads, M)``."""
    n, heads, length, _ = pattern.shape
    queries = torch.arange(window, length)  # 0-based q = M..L-1
    keys = queries[:, None] - torch.arange(1, window + 1)[None, :]  # (Q, M)
    rows = pattern[:, :, queries].to(torch.float64)  # (n, heads, Q, L)
    index = keys.expand(n, heads, -1, -1)  # (n, heads, Q, M)
    return torch.gather(rows, 3, index).mean(dim=(0, 2)).numpy()


def _check_read_out(report, own: list[torch.Tensor]):
    """Every layer's profiles in the report equal its own weights by offset, head by head in
    the model's head order (whatever numbering the probe gives the heads)."""
    for layer, pattern in enumerate(own):
        name = f"blocks.{layer}.attn.hook_pattern"
        profiles = sorted((p for p in report.offsets if p.name == name), key=lambda p: p.head)
        matches = [m for m in report.matches if m.name == name]
        heads = pattern.shape[1]
        assert len(profiles) == heads and len(matches) == heads, (
            f"{name}: {heads} heads, read {len(profiles)} profiles and {len(matches)} matches")
        expected = _own_profile(pattern, PAPER_MODEL.window)  # (heads, M)
        measured = np.array([p.profile for p in profiles])
        gap = np.abs(measured - expected).max()
        assert gap <= PROFILE_ATOL, f"{name}: predicted {expected}, measured {measured}"


def test_hf_probabilities_are_its_softmax_at_the_last_position(gpt2, context):
    ctx = context[:, :L]
    with torch.no_grad():
        own = torch.softmax(gpt2.eval()(input_ids=ctx).logits[:, -1].double(), dim=-1)  # (n, d)
    got = from_hf(gpt2.train(), batch_size=16)(ctx.numpy())  # called in eval mode (no dropout)
    assert got.shape == (N, D) and got.dtype == torch.float64
    gap = (got - own).abs().max().item()
    assert gap <= SOFTMAX_ATOL, f"predicted {own[:2]}, measured {got[:2]}"
    assert (got - 1 / D).abs().max().item() >= NOT_UNIFORM, "a trained model is not uniform"
    assert gpt2.training, "the adapter restores the model's training flag"


def test_hf_probe_reads_every_layer_and_head(gpt2, context, limit):
    report = probe(from_hf(gpt2), PAPER_SOURCE, PAPER_MODEL, tokens=context, limit=limit)
    with torch.no_grad():
        own = gpt2.eval()(input_ids=context[:, :L], output_attentions=True).attentions
    _check_read_out(report, list(own))
    assert report.last.score("uniform").kl > 0


def test_hf_larger_vocabulary_is_restricted_and_renormalised(context, limit):
    model = _gpt2(D + 2).eval()
    ctx = context[:, :L]
    with torch.no_grad():
        logits = model(input_ids=ctx).logits[:, -1, :D].double()  # the library's ids 0..d-1
    got = from_hf(model, vocab_size=D)(ctx)
    assert (got - torch.softmax(logits, dim=-1)).abs().max().item() <= SOFTMAX_ATOL
    with pytest.raises(InductionHeadsError, match=rf"d={D}"):
        probe(from_hf(model, attention=False), PAPER_SOURCE, PAPER_MODEL, tokens=context,
              limit=limit)
    with pytest.raises(InductionHeadsError, match="vocabulary V = 5"):
        from_hf(model, vocab_size=6)


def test_hf_fused_attention_is_refused_naming_the_option(context, limit):
    model = _gpt2(D, implementation="sdpa")
    with pytest.raises(InductionHeadsError, match='attn_implementation="eager"'):
        probe(from_hf(model), PAPER_SOURCE, PAPER_MODEL, tokens=context, limit=limit)
    report = probe(from_hf(model, attention=False), PAPER_SOURCE, PAPER_MODEL, tokens=context,
                   limit=limit)
    assert report.offsets == () and report.matches == ()


def _check_lens(model, context, limit):
    """From ``from_lens``: the model's own softmax at the last position and its own cached
    patterns by offset."""
    ctx = context[:, :L]
    with torch.no_grad():
        logits, cache = model.eval().run_with_cache(ctx)
    own = torch.softmax(logits[:, -1].double(), dim=-1)
    got = from_lens(model, batch_size=16)(ctx)
    assert got.shape == (N, D) and got.dtype == torch.float64
    gap = (got - own).abs().max().item()
    assert gap <= SOFTMAX_ATOL, f"predicted {own[:2]}, measured {got[:2]}"
    assert (got - 1 / D).abs().max().item() >= NOT_UNIFORM, "a trained model is not uniform"
    report = probe(from_lens(model), PAPER_SOURCE, PAPER_MODEL, tokens=context, limit=limit)
    _check_read_out(report, [cache[f"blocks.{i}.attn.hook_pattern"] for i in range(2)])


@needs_hooked_transformer
def test_lens_probabilities_and_attention_are_its_own(lens_model, context, limit):
    _check_lens(lens_model, context, limit)


@needs_bridge
def test_bridge_probabilities_and_attention_are_its_own(bridge, context, limit):
    _check_lens(bridge, context, limit)


@needs_bridge
def test_bridge_logits_train_and_the_flag_is_restored(bridge, context):
    ctx = context[:, :L]
    adapter = from_lens(bridge.train(), vocab_size=D)
    logits = adapter.logits(ctx)  # (n, L, d)
    assert logits.shape == (N, L, D) and logits.requires_grad, (
        f"predicted ({N}, {L}, {D}) with a graph, measured {tuple(logits.shape)} "
        f"requires_grad={logits.requires_grad}")
    adapter(ctx)
    assert bridge.training, "the adapter restores the bridge's training flag"
    bridge.eval()


class _NoPatterns(torch.nn.Module):
    """A TransformerLens-shaped model whose cache holds no attention hooks."""

    def __init__(self):
        super().__init__()
        self.cfg = types.SimpleNamespace(n_layers=2, d_vocab=D, n_ctx=None, device=None)
        self.embed = torch.nn.Embedding(D, D)

    def forward(self, tokens, return_type="logits"):
        return self.embed(tokens)  # (n, L, d)

    def run_with_cache(self, tokens, names_filter=None, return_type="logits"):
        return self(tokens), {}


def test_lens_cache_without_patterns_is_refused_naming_the_option(context, limit):
    model = _NoPatterns()
    with pytest.raises(InductionHeadsError, match=r"lacks .*blocks\.0\.attn\.hook_pattern.*"
                                                  r"attention=False"):
        probe(from_lens(model), PAPER_SOURCE, PAPER_MODEL, tokens=context, limit=limit)
    report = probe(from_lens(model, attention=False), PAPER_SOURCE, PAPER_MODEL, tokens=context,
                   limit=limit)
    assert report.offsets == () and report.matches == ()


def test_plain_function_around_a_module_gets_tensors(gpt2, context, limit):
    def logits(tokens):  # (n, L) -> (n, L, d): the probe reads the last row
        return gpt2(input_ids=tokens).logits

    plain = probe(from_logits(logits), PAPER_SOURCE, PAPER_MODEL, tokens=context, limit=limit)
    wrapped = probe(from_hf(gpt2, attention=False), PAPER_SOURCE, PAPER_MODEL, tokens=context,
                    limit=limit)
    gaps = [abs(a.kl - b.kl) for a, b in zip(plain.last.scores, wrapped.last.scores)]
    assert max(gaps) <= SOFTMAX_ATOL, f"KL gaps up to {max(gaps)}"


def test_raising_callable_names_its_convention_and_the_option(gpt2, context, limit):
    def logits(tokens):
        return gpt2(input_ids=tokens).logits

    with pytest.raises(InductionHeadsError,
                       match=r'numpy\.ndarray \(int64, shape \(40, 30\)\).*call_with="torch"'
                       ) as caught:
        probe(from_logits(logits, call_with="numpy"), PAPER_SOURCE, PAPER_MODEL,
              tokens=context, limit=limit)
    assert caught.value.__cause__ is not None, "the model's own error is chained"

    def numpy_only(tokens):
        return np.full((tokens.shape[0], D), 1 / D) + tokens.to_numpy_only()

    with pytest.raises(InductionHeadsError,
                       match=r'call_with="auto" chose "numpy".*call_with="torch"'):
        probe(numpy_only, PAPER_SOURCE, PAPER_MODEL, tokens=context, limit=limit)
