"""Write a small llama-architecture GGUF model with random weights for llama-server.

No model weights can be downloaded in this project's environments, so the tests make their own:
a llama-architecture model with seeded random F32 weights and a tiny GPT-2 style byte-level BPE
tokenizer (the 256 byte tokens, a few dozen merges and three ChatML control tokens).

Random weights alone would mostly emit control bytes and invalid UTF-8. To keep the output
printable, residual-stream dimension 0 is reserved: every token embedding holds the constant
``sqrt(dim)`` there, the attention and feed-forward output matrices never write to it, and the
output matrix turns it into a per-token logit bias: printable ASCII is neutral, a newline is
slightly negative, the end-of-turn token ``<|im_end|>`` is mildly negative (so most generations
run to ``max_tokens`` and a few stop early), everything else is strongly negative.

The same arguments always produce a byte-identical file.

Usage::

    python -m tests.realserver.make_model OUT.gguf --size tiny
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys
import time
from typing import Literal

import gguf
import numpy as np
import numpy.typing as npt

__all__ = ["SPECS", "ModelSize", "ModelSpec", "main", "make_model"]

ModelSize = Literal["tiny", "medium"]

#: Control tokens appended after the byte tokens and the merges, in this order.
ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"

#: ChatML, as used by Qwen-style models; llama-server renders it for /v1/chat/completions.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

#: Pairs merged by the BPE tokenizer, highest priority first. ``" "`` is a space.
MERGES: tuple[tuple[str, str], ...] = (
    ("t", "h"),
    ("h", "e"),
    (" ", "t"),
    (" ", "a"),
    ("i", "n"),
    ("e", "r"),
    ("a", "n"),
    ("r", "e"),
    ("o", "n"),
    (" ", "s"),
    ("e", "n"),
    ("a", "t"),
    ("n", "d"),
    ("o", "r"),
    ("e", "s"),
    (" ", "w"),
    ("e", "d"),
    ("i", "s"),
    ("i", "t"),
    ("o", "u"),
    ("a", "r"),
    ("t", "e"),
    ("n", "g"),
    ("a", "l"),
    ("s", "t"),
    (" ", "o"),
    (" ", "c"),
    (" ", "b"),
    ("l", "e"),
    (" ", "f"),
    (" ", "p"),
    (" ", "m"),
    ("th", "e"),
    (" t", "he"),
    ("in", "g"),
    (" a", "nd"),
    (" o", "f"),
    (" ", "i"),
    (" i", "s"),
    ("o", "f"),
)

#: Logit biases added through the reserved dimension (relative to printable ASCII at 0).
BIAS_PRINTABLE = 0.0
BIAS_NEWLINE = -3.0
BIAS_EOS = -1.0  # about 5 % of 32-token generations stop early with default sampling
BIAS_FORBIDDEN = -40.0
#: Standard deviation of the context-dependent (random) part of the logits.
LOGIT_NOISE_STD = 1.0
#: Standard deviation of the weights that write into the residual stream, before 1/sqrt(fan_in).
RESIDUAL_WRITE_SCALE = 0.1


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Hyperparameters of one model size."""

    dim: int
    n_layers: int
    ff_dim: int
    n_heads: int
    n_kv_heads: int
    context_length: int

    @property
    def head_dim(self) -> int:
        """Size of one attention head."""
        return self.dim // self.n_heads


SPECS: dict[str, ModelSpec] = {
    # ~0.1 M parameters, ~450 KB: thousands of tokens/s, for functional tests.
    "tiny": ModelSpec(dim=64, n_layers=2, ff_dim=128, n_heads=4, n_kv_heads=2, context_length=2048),
    # ~91 M parameters, ~363 MB: tens of tokens/s on 2 cores, like a small CPU deployment.
    "medium": ModelSpec(
        dim=1024, n_layers=8, ff_dim=2816, n_heads=16, n_kv_heads=4, context_length=4096
    ),
}


def bytes_to_unicode() -> dict[int, str]:
    """Return GPT-2's reversible mapping from byte values to printable unicode characters."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


@dataclasses.dataclass(frozen=True)
class Vocab:
    """Token texts (GPT-2 byte-encoded), types, merges and the logit bias of each token."""

    tokens: list[str]
    types: list[int]
    merges: list[str]
    bias: npt.NDArray[np.float32]
    bos_id: int
    eos_id: int
    im_start_id: int


def build_vocab() -> Vocab:
    """Build the byte-level BPE vocabulary: 256 byte tokens, the merges, then control tokens."""
    enc = bytes_to_unicode()
    tokens = [enc[b] for b in range(256)]
    plain: list[str] = [chr(b) for b in range(256)]  # decoded text of each token (latin-1)
    index = {t: i for i, t in enumerate(tokens)}
    merges: list[str] = []
    for left, right in MERGES:
        left_enc = "".join(enc[ord(c)] for c in left)
        right_enc = "".join(enc[ord(c)] for c in right)
        if left_enc not in index or right_enc not in index:
            raise ValueError(f"merge {left!r} + {right!r} uses an unknown token")
        merged = left_enc + right_enc
        merges.append(f"{left_enc} {right_enc}")
        if merged not in index:
            index[merged] = len(tokens)
            tokens.append(merged)
            plain.append(left + right)
    types = [int(gguf.TokenType.NORMAL)] * len(tokens)

    bias = np.empty(len(tokens) + 3, dtype=np.float32)
    for i, text in enumerate(plain):
        if all(" " <= c <= "~" for c in text):
            bias[i] = BIAS_PRINTABLE
        elif text == "\n":
            bias[i] = BIAS_NEWLINE
        else:
            bias[i] = BIAS_FORBIDDEN

    bos_id = len(tokens)
    im_start_id = bos_id + 1
    eos_id = bos_id + 2
    tokens += [ENDOFTEXT, IM_START, IM_END]
    types += [int(gguf.TokenType.CONTROL)] * 3
    bias[bos_id] = BIAS_FORBIDDEN
    bias[im_start_id] = BIAS_FORBIDDEN
    bias[eos_id] = BIAS_EOS
    return Vocab(tokens, types, merges, bias, bos_id, eos_id, im_start_id)


def _normal(
    rng: np.random.Generator, shape: tuple[int, ...], std: float
) -> npt.NDArray[np.float32]:
    """Draw float32 normal samples with the given standard deviation."""
    out = rng.standard_normal(shape, dtype=np.float32)
    out *= np.float32(std)
    return out


def make_weights(
    spec: ModelSpec, vocab: Vocab, seed: int
) -> list[tuple[str, npt.NDArray[np.float32]]]:
    """Return the model's tensors in GGUF naming, numpy shapes as ``(out, in)``.

    Dimension 0 of the residual stream is the constant bias carrier described in the module
    docstring; the layers neither read it (their norm weights are 0 there) nor write it.
    """
    rng = np.random.default_rng(seed)
    dim, ff, n_vocab = spec.dim, spec.ff_dim, len(vocab.tokens)
    kv_dim = spec.n_kv_heads * spec.head_dim
    carrier = np.float32(np.sqrt(dim))

    def norm_weight() -> npt.NDArray[np.float32]:
        w = np.ones(dim, dtype=np.float32)
        w[0] = 0.0
        return w

    def residual_write(shape: tuple[int, int]) -> npt.NDArray[np.float32]:
        w = _normal(rng, shape, RESIDUAL_WRITE_SCALE / np.sqrt(shape[1]))
        w[0, :] = 0.0
        return w

    tensors: list[tuple[str, npt.NDArray[np.float32]]] = []
    embed = _normal(rng, (n_vocab, dim), 1.0)
    embed[:, 0] = carrier
    tensors.append(("token_embd.weight", embed))
    for i in range(spec.n_layers):
        p = f"blk.{i}."
        tensors += [
            (p + "attn_norm.weight", norm_weight()),
            (p + "attn_q.weight", _normal(rng, (dim, dim), 1.0 / np.sqrt(dim))),
            (p + "attn_k.weight", _normal(rng, (kv_dim, dim), 1.0 / np.sqrt(dim))),
            (p + "attn_v.weight", _normal(rng, (kv_dim, dim), 1.0 / np.sqrt(dim))),
            (p + "attn_output.weight", residual_write((dim, dim))),
            (p + "ffn_norm.weight", norm_weight()),
            (p + "ffn_gate.weight", _normal(rng, (ff, dim), 1.0 / np.sqrt(dim))),
            (p + "ffn_up.weight", _normal(rng, (ff, dim), 1.0 / np.sqrt(dim))),
            (p + "ffn_down.weight", residual_write((dim, ff))),
        ]
    tensors.append(("output_norm.weight", np.ones(dim, dtype=np.float32)))
    # After the final RMS norm the carrier is about sqrt(dim / 2) (it holds half the energy of
    # the stream), and each other dimension has a standard deviation of about sqrt(1 / 2).
    output = _normal(rng, (n_vocab, dim), LOGIT_NOISE_STD * np.sqrt(2.0 / (dim - 1)))
    output[:, 0] = vocab.bias / np.sqrt(dim / 2.0)
    tensors.append(("output.weight", output))
    return tensors


def make_model(path: pathlib.Path, size: ModelSize = "tiny", seed: int = 0) -> pathlib.Path:
    """Write a random-weight llama GGUF model of the given size to ``path`` and return it.

    The file is written next to ``path`` under a temporary name and renamed into place, so a
    reader never sees a partial model. Deterministic for a given ``size`` and ``seed``.
    """
    if size not in SPECS:
        raise ValueError(f"unknown size {size!r}; choose one of {sorted(SPECS)}")
    spec = SPECS[size]
    vocab = build_vocab()
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")

    writer = gguf.GGUFWriter(tmp, arch="llama")
    writer.add_name(f"inferwatch-random-{size}")
    writer.add_file_type(int(gguf.LlamaFileType.ALL_F32))
    writer.add_vocab_size(len(vocab.tokens))
    writer.add_context_length(spec.context_length)
    writer.add_embedding_length(spec.dim)
    writer.add_block_count(spec.n_layers)
    writer.add_feed_forward_length(spec.ff_dim)
    writer.add_head_count(spec.n_heads)
    writer.add_head_count_kv(spec.n_kv_heads)
    writer.add_rope_dimension_count(spec.head_dim)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)

    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    writer.add_token_merges(vocab.merges)
    writer.add_bos_token_id(vocab.bos_id)
    writer.add_pad_token_id(vocab.bos_id)
    writer.add_eos_token_id(vocab.eos_id)
    writer.add_add_bos_token(False)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHATML_TEMPLATE)

    for name, tensor in make_weights(spec, vocab, seed):
        writer.add_tensor(name, tensor)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: write a model and print its path, size and build time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=pathlib.Path, help="output .gguf path")
    parser.add_argument("--size", choices=sorted(SPECS), default="tiny")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    path = make_model(args.out, size=args.size, seed=args.seed)
    elapsed = time.perf_counter() - start
    print(f"{path} {path.stat().st_size} bytes {elapsed:.2f} s", file=sys.stderr)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
