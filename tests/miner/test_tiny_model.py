"""The tiny model: offline, deterministic, loadable through the normal from_pretrained path."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from miner.tiny_model import build_tiny_model, weights_hash


def _file_hashes(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


def test_rebuild_is_byte_identical(tiny_model_path: Path, tmp_path: Path) -> None:
    again = build_tiny_model(tmp_path / "again", seed=0)
    first = _file_hashes(tiny_model_path)
    assert "model.safetensors" in first and "tokenizer.json" in first
    assert _file_hashes(again) == first
    assert weights_hash(again) == weights_hash(tiny_model_path)


def test_other_seed_other_weights_same_architecture(
    tiny_model_path: Path, tiny_model_other_path: Path
) -> None:
    a, b = _file_hashes(tiny_model_path), _file_hashes(tiny_model_other_path)
    assert a["model.safetensors"] != b["model.safetensors"]
    assert a["config.json"] == b["config.json"]
    assert a["tokenizer.json"] == b["tokenizer.json"]
    assert weights_hash(tiny_model_path) != weights_hash(tiny_model_other_path)


def test_loads_offline_with_tokenizer_and_chat_template(tiny_model_path: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model_path, local_files_only=True)
    tok = AutoTokenizer.from_pretrained(tiny_model_path, local_files_only=True)
    assert tok.is_fast
    assert model.config.vocab_size == len(tok)
    text = "Hello, wörld 🙂 and the rest"
    ids = tok(text).input_ids
    assert ids[0] == tok.bos_token_id
    assert tok.decode(ids, skip_special_tokens=True) == text
    chat = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
    )
    assert chat.endswith("<|start_header|>assistant<|end_header|>")
    assert "hi<|eot|>" in chat
    logits = model(torch.tensor([ids])).logits
    assert logits.shape == (1, len(ids), len(tok))
    assert torch.isfinite(logits).all()


def test_weights_hash_is_canonical(tiny_model_path: Path, tmp_path: Path) -> None:
    tensors = load_file(tiny_model_path / "model.safetensors")
    reordered = dict(sorted(tensors.items(), reverse=True))
    save_file(reordered, tmp_path / "model.safetensors", metadata={"note": "other metadata"})
    assert weights_hash(tmp_path) == weights_hash(tiny_model_path)
    name = sorted(tensors)[0]
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[0] += 1e-3
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    save_file(tensors, tampered / "model.safetensors")
    assert weights_hash(tampered) != weights_hash(tiny_model_path)
