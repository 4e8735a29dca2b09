"""A tiny InternLM2 checkpoint in the exact hub layout, built at test time, and a plain-torch reference.

The layout is that of `internlm/internlm2_5-7b-chat`: `config.json` with `model_type: internlm2` and
`auto_map` naming the hub's `configuration_internlm2` / `modeling_internlm2` modules, a `generation_config.json`,
weights under InternLM2's names with attention packed into `wqkv` (sharded safetensors with an index,
or one `pytorch_model.bin`), a SentencePiece `tokenizer.model` (BPE, byte fallback, no dummy prefix,
whitespace kept; InternLM2's protocol tokens are user-defined symbols, so each is one id), and a
`tokenizer_config.json` naming the hub's `InternLM2Tokenizer`. The hub's Python files are stand-ins
that import what the real ones import first and that transformers 5 no longer has, so running "the
hub's code" fails here as it does for real.

`reference_logits` is an independent InternLM2 forward written from the architecture (packed wqkv
read per key/value group, GQA, RoPE with dynamic NTK, RMSNorm, SwiGLU), on the raw hub tensors.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
from tiny_model import _CORPUS, CHAT_TEMPLATE, INTERNLM2_SPECIAL_TOKENS

TINY = {
    "hidden_size": 64,
    "intermediate_size": 160,
    "num_hidden_layers": 2,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
}

_MODELING_STUB = '''"""Stand-in for the hub's modeling_internlm2.py: its first imports, which transformers 5 lacks."""
from transformers.modeling_attn_mask_utils import AttentionMaskConverter  # noqa: F401
'''
_TOKENIZATION_STUB = '''"""Stand-in for the hub's tokenization_internlm2.py: its first imports."""
from transformers.tokenization_utils import PreTrainedTokenizer  # noqa: F401
'''
_CONFIGURATION_STUB = '''"""Stand-in for the hub's configuration_internlm2.py (enough to parse config.json)."""
from transformers import PretrainedConfig


class InternLM2Config(PretrainedConfig):
    model_type = "internlm2"
'''


def build_sentencepiece_model(*, add_dummy_prefix: bool = False) -> bytes:
    """A SentencePiece BPE model (vocabulary 600) trained in milliseconds, InternLM2-style."""
    import sentencepiece as spm

    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_CORPUS.splitlines() * 8),
        model_writer=buffer,
        model_type="bpe",
        vocab_size=600,
        hard_vocab_limit=False,
        byte_fallback=True,
        user_defined_symbols=INTERNLM2_SPECIAL_TOKENS,
        add_dummy_prefix=add_dummy_prefix,
        remove_extra_whitespaces=False,
        normalization_rule_name="identity",
        split_digits=True,
        allow_whitespace_only_pieces=True,
        character_coverage=0.99,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        num_threads=1,
        minloglevel=2,
    )
    return buffer.getvalue()


def hub_config(vocab_size: int, **overrides) -> dict:
    """config.json as internlm2_5-7b-chat has it, with tiny sizes."""
    config = {
        "architectures": ["InternLM2ForCausalLM"],
        "attn_implementation": "eager",
        "auto_map": {
            "AutoConfig": "configuration_internlm2.InternLM2Config",
            "AutoModelForCausalLM": "modeling_internlm2.InternLM2ForCausalLM",
            "AutoModel": "modeling_internlm2.InternLM2ForCausalLM",
        },
        "bias": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "initializer_range": 0.02,
        "max_position_embeddings": 4096,
        "model_type": "internlm2",
        "pad_token_id": 2,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": {"type": "dynamic", "factor": 2.0},
        "rope_theta": 1000000,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "transformers_version": "4.41.0",
        "use_cache": True,
        "vocab_size": vocab_size,
        **TINY,
    }
    config.update(overrides)
    return config


def random_hub_tensors(config: dict, seed: int = 0) -> dict:
    """Random weights under InternLM2's names and shapes (wqkv packed)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    hidden, inter = config["hidden_size"], config["intermediate_size"]
    heads, kv = config["num_attention_heads"], config["num_key_value_heads"]
    head_dim = hidden // heads

    def rand(*shape, std=0.3):
        return torch.randn(*shape, generator=generator) * std

    tensors = {"model.tok_embeddings.weight": rand(config["vocab_size"], hidden, std=1.0)}
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        tensors[p + "attention.wqkv.weight"] = rand((heads + 2 * kv) * head_dim, hidden)
        tensors[p + "attention.wo.weight"] = rand(hidden, heads * head_dim)
        if config.get("bias"):
            tensors[p + "attention.wqkv.bias"] = rand((heads + 2 * kv) * head_dim)
            tensors[p + "attention.wo.bias"] = rand(hidden)
        tensors[p + "feed_forward.w1.weight"] = rand(inter, hidden)
        tensors[p + "feed_forward.w3.weight"] = rand(inter, hidden)
        tensors[p + "feed_forward.w2.weight"] = rand(hidden, inter)
        tensors[p + "attention_norm.weight"] = 1 + rand(hidden, std=0.1)
        tensors[p + "ffn_norm.weight"] = 1 + rand(hidden, std=0.1)
    tensors["model.norm.weight"] = 1 + rand(hidden, std=0.1)
    tensors["output.weight"] = rand(config["vocab_size"], hidden)
    return tensors


def build_tiny_internlm2(
    directory: Path, *, weights: str = "safetensors", seed: int = 0, **config_overrides
) -> Path:
    """Write a tiny InternLM2 checkpoint in the hub layout to `directory` and return it.

    `weights`: "safetensors" (two shards and an index), "bin" (one pytorch_model.bin) or
    "bin-sharded" (two `.bin` shards and pytorch_model.bin.index.json).
    """
    import sentencepiece as spm
    import torch
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model_proto = build_sentencepiece_model()
    (directory / "tokenizer.model").write_bytes(model_proto)
    sp = spm.SentencePieceProcessor(model_proto=model_proto)
    config = hub_config(sp.get_piece_size(), **config_overrides)
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    im_end = sp.piece_to_id("<|im_end|>")
    (directory / "generation_config.json").write_text(
        json.dumps({"bos_token_id": 1, "eos_token_id": [2, im_end], "pad_token_id": 2})
    )
    tensors = random_hub_tensors(config, seed)
    if weights == "bin":
        torch.save(tensors, directory / "pytorch_model.bin")
    else:  # two shards and an index: safetensors, or `.bin` as the first InternLM2 releases shipped
        suffix, index_name = (
            (".bin", "pytorch_model.bin.index.json")
            if weights == "bin-sharded"
            else (".safetensors", "model.safetensors.index.json")
        )
        stem = "pytorch_model" if weights == "bin-sharded" else "model"
        names = list(tensors)
        half = len(names) // 2
        shards = {
            f"{stem}-00001-of-00002{suffix}": names[:half],
            f"{stem}-00002-of-00002{suffix}": names[half:],
        }
        weight_map = {}
        for shard, shard_names in shards.items():
            part = {n: tensors[n].contiguous() for n in shard_names}
            if suffix == ".bin":
                torch.save(part, directory / shard)
            else:
                save_file(part, str(directory / shard))
            weight_map.update(dict.fromkeys(shard_names, shard))
        index = {
            "metadata": {"total_size": sum(t.numel() * 4 for t in tensors.values())},
            "weight_map": weight_map,
        }
        (directory / index_name).write_text(json.dumps(index, indent=2))
    added = {
        str(sp.piece_to_id(token)): {
            "content": token,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for token in INTERNLM2_SPECIAL_TOKENS
    }
    tokenizer_config = {
        "auto_map": {
            "AutoTokenizer": [
                "tokenization_internlm2.InternLM2Tokenizer",
                "tokenization_internlm2_fast.InternLM2TokenizerFast",
            ]
        },
        "added_tokens_decoder": added,
        "additional_special_tokens": list(INTERNLM2_SPECIAL_TOKENS),
        "bos_token": "<s>",
        "eos_token": "</s>",
        "pad_token": "</s>",
        "unk_token": "<unk>",
        "clean_up_tokenization_spaces": False,
        "decode_with_prefix_space": False,
        "model_max_length": 1000000000000000019884624838656,
        "tokenizer_class": "InternLM2Tokenizer",
        "chat_template": CHAT_TEMPLATE,
    }
    (directory / "tokenizer_config.json").write_text(
        json.dumps(tokenizer_config, indent=2, ensure_ascii=False)
    )
    (directory / "special_tokens_map.json").write_text(
        json.dumps(
            {
                "bos_token": "<s>",
                "eos_token": "</s>",
                "pad_token": "</s>",
                "unk_token": "<unk>",
                "additional_special_tokens": list(INTERNLM2_SPECIAL_TOKENS),
            }
        )
    )
    (directory / "modeling_internlm2.py").write_text(_MODELING_STUB)
    (directory / "configuration_internlm2.py").write_text(_CONFIGURATION_STUB)
    (directory / "tokenization_internlm2.py").write_text(_TOKENIZATION_STUB)
    (directory / "tokenization_internlm2_fast.py").write_text(_TOKENIZATION_STUB)
    return directory


def read_hub_tensors(directory: Path) -> dict:
    """The checkpoint's tensors under their hub names (safetensors shards or pytorch_model.bin)."""
    import torch
    from safetensors.torch import load_file

    directory = Path(directory)
    if any(directory.glob("pytorch_model*.bin")):
        tensors = {}
        for shard in sorted(directory.glob("pytorch_model*.bin")):
            tensors.update(torch.load(shard, weights_only=True))
        return tensors
    tensors = {}
    for shard in sorted(directory.glob("*.safetensors")):
        tensors.update(load_file(str(shard)))
    return tensors


# -- an independent InternLM2 forward, from the architecture -----------------------------------------


def reference_logits(tensors: dict, config: dict, input_ids: list[int]):
    """Logits `[len(input_ids), vocab]` (float64) of InternLM2 on one sequence, without a cache."""
    import torch

    t = {k: v.double() for k, v in tensors.items()}
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    kv, eps = config["num_key_value_heads"], config["rms_norm_eps"]
    d, groups = hidden // heads, heads // config["num_key_value_heads"]
    n = len(input_ids)

    # RoPE; dynamic NTK raises the base when the sequence is longer than max_position_embeddings.
    base = float(config["rope_theta"])
    scaling, max_pos = config.get("rope_scaling"), config["max_position_embeddings"]
    if scaling and scaling["type"] == "dynamic" and n > max_pos:
        factor = scaling["factor"]
        base = base * ((factor * n / max_pos) - (factor - 1)) ** (d / (d - 2))
    inv_freq = 1.0 / base ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
    angles = torch.outer(torch.arange(n, dtype=torch.float64), inv_freq)
    cos, sin = torch.cat([angles.cos()] * 2, -1), torch.cat([angles.sin()] * 2, -1)

    def rope(x):  # x [n, d]: rotate the two halves of the head
        half = torch.cat([-x[..., d // 2 :], x[..., : d // 2]], -1)
        return x * cos + half * sin

    def rms(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    x = t["model.tok_embeddings.weight"][torch.tensor(input_ids)]
    mask = torch.full((n, n), -math.inf, dtype=torch.float64).triu(1)
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms(x, t[p + "attention_norm.weight"])
        qkv = h @ t[p + "attention.wqkv.weight"].T
        if p + "attention.wqkv.bias" in t:
            qkv = qkv + t[p + "attention.wqkv.bias"]
        # Per kv group g: `groups` query heads, then its key head, then its value head, d columns each.
        qkv = qkv.view(n, kv, groups + 2, d)
        outputs = []
        for head in range(heads):
            g, j = divmod(head, groups)
            q, k, v = rope(qkv[:, g, j]), rope(qkv[:, g, -2]), qkv[:, g, -1]
            weights = torch.softmax(q @ k.T / math.sqrt(d) + mask, -1)
            outputs.append(weights @ v)
        attn = torch.cat(outputs, -1) @ t[p + "attention.wo.weight"].T
        if p + "attention.wo.bias" in t:
            attn = attn + t[p + "attention.wo.bias"]
        x = x + attn
        h = rms(x, t[p + "ffn_norm.weight"])
        gate = h @ t[p + "feed_forward.w1.weight"].T
        x = (
            x
            + (torch.nn.functional.silu(gate) * (h @ t[p + "feed_forward.w3.weight"].T))
            @ t[p + "feed_forward.w2.weight"].T
        )
    return rms(x, t["model.norm.weight"]) @ t["output.weight"].T


def reference_greedy(tensors: dict, config: dict, input_ids: list[int], max_new_tokens: int) -> list[int]:
    """Greedy continuation by full recomputation at every step (no cache)."""
    ids = list(input_ids)
    for _ in range(max_new_tokens):
        ids.append(int(reference_logits(tensors, config, ids)[-1].argmax()))
    return ids[len(input_ids) :]


@pytest.fixture(scope="session")
def tiny_internlm2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory of the tiny InternLM2 checkpoint (hub layout, sharded safetensors), built once per session."""
    directory = tmp_path_factory.getbasetemp() / "tiny-internlm2-hub"
    if not (directory / "config.json").exists():
        build_tiny_internlm2(directory)
    return directory
