"""A tiny, deterministic Llama-style model and byte-level BPE tokenizer, built offline.

Used by the tests and the CPU localnet in place of a real model: no download, a few hundred KB,
and byte-identical on every rebuild with the same seed (same torch / transformers versions).
A second preset, ``small`` (hidden 512, 6 layers, same tokenizer and recipe), gives benchmarks
a more realistic per-request compute size.

Decisions (the issue is silent on them):

* Weights are drawn parameter by parameter, in sorted name order, from one
  ``torch.Generator`` seeded with ``seed`` -- not through transformers' own init, so the bytes
  do not depend on module construction order. Linear and embedding weights are
  ``N(0, WEIGHT_STD)``; norm weights are ones. ``WEIGHT_STD`` is larger than a trained model's
  init (0.02) so that next-token distributions are peaked rather than near-uniform: greedy
  argmax is then far from ties, which the exact-match tests rely on.
* The tokenizer is byte-level BPE over the 256 byte symbols plus a fixed, hand-written list of
  merges (no training, so nothing order-dependent) and a handful of special tokens. Any UTF-8
  text round-trips.
* The chat template is a minimal header/turn format:
  ``<|bos|><|start_header|>user<|end_header|>hi<|eot|><|start_header|>assistant<|end_header|>``.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from transformers.utils import logging as hf_logging

from chain.paths import MODELS_DIR

__all__ = ["DEFAULT_TINY_MODEL_DIR", "PRESETS", "ModelPreset", "build_tiny_model", "weights_hash"]

DEFAULT_TINY_MODEL_DIR = MODELS_DIR / "tiny"

BOS = "<|bos|>"
EOS = "<|eos|>"
PAD = "<|pad|>"
START_HEADER = "<|start_header|>"
END_HEADER = "<|end_header|>"
EOT = "<|eot|>"
SPECIAL_TOKENS = (BOS, EOS, PAD, START_HEADER, END_HEADER, EOT)

#: Standard deviation of every linear / embedding weight of the tiny preset (see module
#: docstring); wider presets scale it by ``sqrt(64 / hidden_size)`` so that logits keep the
#: tiny model's spread (the LM head sees unit-RMS inputs: logit std = std * sqrt(hidden)).
WEIGHT_STD = 0.25


@dataclass(frozen=True)
class ModelPreset:
    """Architecture of a generated model (all presets share the tokenizer)."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int

    @property
    def weight_std(self) -> float:
        """Std of linear / embedding weights: exactly ``WEIGHT_STD`` at hidden 64."""
        return WEIGHT_STD * (64 / self.hidden_size) ** 0.5


#: ``tiny``: tests and the CPU localnet (~100k parameters, each request a few ms of compute).
#: ``small``: benchmarks with a more realistic per-request compute size on CPU
#: (~18M parameters, hidden 512, 6 layers; ~70 MB in fp32). Same tokenizer, same recipe.
PRESETS: dict[str, ModelPreset] = {
    "tiny": ModelPreset(
        hidden_size=64,
        intermediate_size=176,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    ),
    "small": ModelPreset(
        hidden_size=512,
        intermediate_size=1408,
        num_hidden_layers=6,
        num_attention_heads=8,
        num_key_value_heads=4,
    ),
}

#: Hand-picked merges of frequent English pairs ("Ġ" is the byte-level symbol for a space).
_MERGES: tuple[tuple[str, str], ...] = (
    ("t", "h"),
    ("Ġ", "t"),
    ("Ġ", "a"),
    ("h", "e"),
    ("i", "n"),
    ("r", "e"),
    ("o", "n"),
    ("Ġt", "he"),
    ("e", "r"),
    ("Ġ", "s"),
    ("a", "t"),
    ("Ġ", "w"),
    ("Ġ", "o"),
    ("e", "n"),
    ("Ġ", "c"),
    ("i", "t"),
    ("i", "s"),
    ("a", "n"),
    ("o", "r"),
    ("e", "s"),
    ("Ġ", "b"),
    ("e", "d"),
    ("Ġ", "f"),
    ("in", "g"),
    ("Ġ", "p"),
    ("o", "u"),
    ("Ġ", "m"),
    ("Ġ", "i"),
    ("a", "r"),
    ("a", "l"),
    ("Ġ", "d"),
    ("Ġ", "h"),
    ("l", "e"),
    ("Ġa", "n"),
    ("Ġ", "in"),
    ("Ġt", "o"),
    ("Ġo", "f"),
    ("Ġan", "d"),
    ("Ġ", "l"),
    ("Ġ", "n"),
)

_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|start_header|>{{ message['role'] }}<|end_header|>{{ message['content'] }}<|eot|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|start_header|>assistant<|end_header|>{% endif %}"
)


def _bytes_to_unicode() -> list[str]:
    """The byte-level BPE alphabet, indexed by byte value (printable bytes map to themselves)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    table: dict[int, str] = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shifted)
            shifted += 1
    return [table[b] for b in range(256)]


def _build_tokenizer() -> PreTrainedTokenizerFast:
    vocab: dict[str, int] = {sym: i for i, sym in enumerate(_bytes_to_unicode())}
    for left, right in _MERGES:
        assert left in vocab and right in vocab, (left, right)
        vocab.setdefault(left + right, len(vocab))
    backend = Tokenizer(models.BPE(vocab=vocab, merges=list(_MERGES)))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(list(SPECIAL_TOKENS))
    bos_id = backend.token_to_id(BOS)
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, bos_id)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=[START_HEADER, END_HEADER, EOT],
        model_max_length=1024,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = _CHAT_TEMPLATE
    return tokenizer


def build_tiny_model(out_dir: Path, *, seed: int = 0, preset: str = "tiny") -> Path:
    """Write a generated model + tokenizer to ``out_dir`` (created if missing) and return it.

    ``preset`` names the architecture (:data:`PRESETS`: ``"tiny"`` or ``"small"``). The
    directory loads with ``AutoModelForCausalLM.from_pretrained(out_dir,
    local_files_only=True)`` and ``AutoTokenizer.from_pretrained(...)``. Rebuilding with the same
    ``seed`` and preset gives byte-identical files; another seed gives other weights, same
    architecture.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; choose one of {', '.join(PRESETS)}")
    arch = PRESETS[preset]
    std = arch.weight_std
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = _build_tokenizer()
    vocab_size = len(tokenizer)  # every model row decodes to a token
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=arch.hidden_size,
        intermediate_size=arch.intermediate_size,
        num_hidden_layers=arch.num_hidden_layers,
        num_attention_heads=arch.num_attention_heads,
        num_key_value_heads=arch.num_key_value_heads,
        max_position_embeddings=1024,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=[tokenizer.eos_token_id, tokenizer.get_vocab()[EOT]],
        pad_token_id=tokenizer.pad_token_id,
        dtype="float32",
    )
    with torch.device("cpu"):
        model = LlamaForCausalLM(config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            if name.endswith("norm.weight"):
                param.fill_(1.0)
            else:
                param.copy_(
                    torch.randn(param.shape, generator=generator, dtype=torch.float32) * std
                )
    model.generation_config.do_sample = False
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    hf_logging.disable_progress_bar()  # a CLI prints its own one-line summary
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def weights_hash(model_dir: Path) -> str:
    """sha256 (hex) over every tensor in ``model_dir``'s ``*.safetensors`` files.

    Canonical: tensors sorted by name, each contributing its name, dtype, shape and raw bytes,
    so the hash does not depend on file sharding, header key order or metadata. This is the
    value to pin a model on-chain.
    """
    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no *.safetensors files in {model_dir}")
    entries: list[tuple[str, Path, dict]] = []
    for path in files:
        with path.open("rb") as fh:
            (header_len,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(header_len))
        for name, info in header.items():
            if name != "__metadata__":
                entries.append((name, path, {**info, "_base": 8 + header_len}))
    entries.sort(key=lambda e: e[0])
    digest = hashlib.sha256()
    for name, path, info in entries:
        start, end = info["data_offsets"]
        with path.open("rb") as fh:
            fh.seek(info["_base"] + start)
            data = fh.read(end - start)
        meta = json.dumps([name, info["dtype"], info["shape"]], separators=(",", ":"))
        digest.update(struct.pack("<Q", len(meta)) + meta.encode())
        digest.update(struct.pack("<Q", len(data)) + data)
    return digest.hexdigest()
