"""InternLM2 / InternLM2.5 checkpoints as Llama: the one place that maps their config and weights.

InternLM2 is a Llama-style decoder (RMSNorm, RoPE, grouped-query attention, SwiGLU). Its hub code
(`modeling_internlm2.py`) runs only on transformers 4.33-4.48, so inkagent never runs it: it reads the
checkpoint's `config.json` and weights and hands them to transformers' own `LlamaForCausalLM`.
The public facts this follows are InternLM's `tools/convert2llama.py` and vLLM's InternLM2 model:

- attention weights are packed into one `wqkv` matrix of `(heads + 2 * kv_heads) * head_dim` rows,
  laid out per key/value group as `[q x (heads / kv_heads), k, v]` (convert2llama's rearrange
  `(h gs d) dim -> h gs d dim` with `gs = 2 + heads / kv_heads`); `split_wqkv` undoes it;
- the rest is renaming (`RENAMES`): `tok_embeddings` -> `embed_tokens`, `attention.wo` -> `o_proj`,
  `feed_forward.w1/w3/w2` -> `gate/up/down_proj`, `attention_norm` / `ffn_norm` -> the two layer
  norms, `output` -> `lm_head`;
- the config maps one to one (`llama_config_kwargs`), with `bias` as `attention_bias` and
  `rope_scaling` (`{"type": "dynamic", "factor": 2.0}` on InternLM2.5) as Llama's `rope_scaling`.

Only names that every transformers since 4.45 understands are used (`rope_theta`, `rope_scaling` with
`rope_type`; transformers 5 turns them into `rope_parameters` itself), so one mapping serves all.

`load_llama_model` builds the model from a checkpoint (local folder or hub id; sharded or single
safetensors or `.bin`) without a converted copy on disk; `convert_checkpoint` writes one, for other
tools (`inkagent convert-internlm2 SRC DST`). torch and transformers are imported inside functions.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import LLMError

logger = logging.getLogger(__name__)

MODEL_TYPE = "internlm2"

#: InternLM2 weight names (after `model.layers.N.`, or whole) -> Llama's. `wqkv` is split, not renamed.
RENAMES = {
    "model.tok_embeddings.weight": "model.embed_tokens.weight",
    "model.norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
    "attention.wo.weight": "self_attn.o_proj.weight",
    "attention.wo.bias": "self_attn.o_proj.bias",
    "feed_forward.w1.weight": "mlp.gate_proj.weight",
    "feed_forward.w3.weight": "mlp.up_proj.weight",
    "feed_forward.w2.weight": "mlp.down_proj.weight",
    "attention_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
}
_LAYER = re.compile(r"model\.layers\.(\d+)\.(.+)")
#: Buffers some old `.bin` checkpoints carry; Llama recomputes them.
_DROPPED = re.compile(r".*\.rotary_emb\.inv_freq$")
_UNEXPECTED = (
    "unexpected weight {name!r} in an InternLM2 checkpoint: inkagent loads InternLM2 language models; "
    "XComposer2 and other multimodal variants run behind a server (LMDeploy), see the README"
)

#: Weight files, in the order transformers prefers them.
WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
#: Files copied from the checkpoint next to the converted weights (the tokenizer and its settings).
TOKENIZER_FILES = (
    "tokenizer.model",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "generation_config.json",
)


# -- config -----------------------------------------------------------------------------------------


def is_internlm2(config: dict) -> bool:
    """Whether a `config.json` (as a dict) describes an InternLM2-family language model."""
    return config.get("model_type") == MODEL_TYPE


def checkpoint_dtype(config: dict) -> str | None:
    """The dtype the checkpoint was saved in (`torch_dtype` before transformers 4.56, `dtype` after)."""
    value = config.get("dtype", config.get("torch_dtype"))
    return str(value) if value else None


def llama_config_kwargs(config: dict) -> dict[str, Any]:
    """`LlamaConfig` arguments equivalent to an InternLM2 `config.json`.

    Raises `LLMError` for settings Llama cannot express (heads that do not divide the hidden size
    into the head dimension, an unknown RoPE scaling).
    """
    heads = int(config["num_attention_heads"])
    kv_heads = int(config.get("num_key_value_heads") or heads)
    hidden = int(config["hidden_size"])
    if hidden % heads or heads % kv_heads:
        raise LLMError(
            f"InternLM2 config with hidden_size {hidden}, {heads} heads, {kv_heads} kv heads is not valid"
        )
    kwargs: dict[str, Any] = {
        "vocab_size": int(config["vocab_size"]),
        "hidden_size": hidden,
        "intermediate_size": int(config["intermediate_size"]),
        "num_hidden_layers": int(config["num_hidden_layers"]),
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "hidden_act": config.get("hidden_act", "silu"),
        "max_position_embeddings": int(config.get("max_position_embeddings", 2048)),
        "rms_norm_eps": float(config.get("rms_norm_eps", 1e-6)),
        "initializer_range": float(config.get("initializer_range", 0.02)),
        "rope_theta": float(config.get("rope_theta", 10000.0)),
        "attention_bias": bool(config.get("bias", False)),
        "tie_word_embeddings": bool(config.get("tie_word_embeddings", False)),
        "use_cache": bool(config.get("use_cache", True)),
        "architectures": ["LlamaForCausalLM"],
    }
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if config.get(key) is not None:
            kwargs[key] = config[key]
    scaling = config.get("rope_scaling")
    if scaling:
        kind = scaling.get("rope_type", scaling.get("type"))
        if kind not in ("dynamic", "linear"):
            raise LLMError(f"InternLM2 rope_scaling {scaling} is not supported (known: dynamic, linear)")
        kwargs["rope_scaling"] = {"rope_type": kind, "factor": float(scaling["factor"])}
    # The dtype is not part of the mapping: `load_llama_model` passes it to `from_pretrained`, and
    # `save_pretrained` records the model's own (as `torch_dtype` or `dtype`, as that version names it).
    return kwargs


def _old_transformers() -> bool:
    import transformers
    from packaging.version import Version

    return Version(transformers.__version__) < Version("4.56")


def llama_config(config: dict) -> Any:
    """A `transformers.LlamaConfig` for an InternLM2 `config.json`."""
    from transformers import LlamaConfig

    return LlamaConfig(**llama_config_kwargs(config))


# -- weights ----------------------------------------------------------------------------------------


def split_wqkv(packed: Any, num_heads: int, num_kv_heads: int) -> tuple[Any, Any, Any]:
    """Split a packed `wqkv` weight `[(heads + 2*kv_heads)*head_dim, hidden]` (or its bias) into q, k, v.

    Rows are grouped per key/value head: `gs = 2 + heads // kv_heads` blocks of `head_dim` rows, the
    first `heads // kv_heads` are query heads, then one key head, then one value head. Returns q
    `[heads*head_dim, ...]`, k and v `[kv_heads*head_dim, ...]`, query heads in group order (query
    head `g * heads // kv_heads + j` uses key/value head `g`, as Llama's `repeat_kv` expects).
    """
    per_kv = num_heads // num_kv_heads
    group_size = per_kv + 2
    rows = packed.shape[0]
    if rows % (num_kv_heads * group_size):
        raise LLMError(
            f"wqkv has {rows} rows, not a multiple of {num_kv_heads} kv heads x {group_size} blocks"
        )
    head_dim = rows // (num_kv_heads * group_size)
    grouped = packed.reshape(num_kv_heads, group_size, head_dim, *packed.shape[1:])
    tail = packed.shape[1:]
    q = grouped[:, :per_kv].reshape(num_heads * head_dim, *tail)
    k = grouped[:, -2].reshape(num_kv_heads * head_dim, *tail)
    v = grouped[:, -1].reshape(num_kv_heads * head_dim, *tail)
    return q.contiguous(), k.contiguous(), v.contiguous()


def llama_tensors(tensors: Iterable[tuple[str, Any]], config: dict) -> Iterator[tuple[str, Any]]:
    """InternLM2 `(name, tensor)` pairs as Llama's (wqkv split, names mapped). Unknown names raise `LLMError`."""
    heads = int(config["num_attention_heads"])
    kv_heads = int(config.get("num_key_value_heads") or heads)
    for name, tensor in tensors:
        if _DROPPED.match(name):
            continue
        if name in RENAMES:
            yield RENAMES[name], tensor
            continue
        layer = _LAYER.fullmatch(name)
        if layer is None:
            raise LLMError(_UNEXPECTED.format(name=name))
        index, rest = layer.groups()
        prefix = f"model.layers.{index}."
        if rest in ("attention.wqkv.weight", "attention.wqkv.bias"):
            kind = rest.rsplit(".", 1)[1]
            q, k, v = split_wqkv(tensor, heads, kv_heads)
            yield prefix + f"self_attn.q_proj.{kind}", q
            yield prefix + f"self_attn.k_proj.{kind}", k
            yield prefix + f"self_attn.v_proj.{kind}", v
        elif rest in RENAMES:
            yield prefix + RENAMES[rest], tensor
        else:
            raise LLMError(_UNEXPECTED.format(name=name))


# -- files ------------------------------------------------------------------------------------------


def fetch(source: str, filename: str, *, local_files_only: bool = False) -> Path | None:
    """`filename` of a local checkpoint folder or a hub repo (downloaded and cached), or None if it has none."""
    if os.path.isdir(source):
        path = Path(source) / filename
        return path if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return Path(hf_hub_download(source, filename, local_files_only=local_files_only))
    except EntryNotFoundError:  # not in the repo (offline: not in the cache either)
        return None
    except Exception as exc:  # no such repo, gated, network and HTTP errors: one kind for the caller
        raise OSError(f"cannot fetch {filename} of {source!r}: {type(exc).__name__}: {exc}") from exc


def read_config(source: str, *, local_files_only: bool = False) -> dict | None:
    """The checkpoint's `config.json` as a dict (no code run), or None when it has none."""
    path = fetch(source, "config.json", local_files_only=local_files_only)
    if path is None:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise LLMError(f"cannot read {path}: {exc}") from exc


def weight_files(source: str, *, local_files_only: bool = False) -> list[Path]:
    """The checkpoint's weight files: the shards an index names, or the single file."""
    for index_name in WEIGHT_INDEXES:
        index = fetch(source, index_name, local_files_only=local_files_only)
        if index is not None:
            try:
                weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            except (OSError, json.JSONDecodeError, KeyError) as exc:
                raise LLMError(f"cannot read the weight index {index}: {exc}") from exc
            files = []
            for shard in sorted(set(weight_map.values())):
                path = fetch(source, shard, local_files_only=local_files_only)
                if path is None:
                    raise LLMError(f"{index} names {shard}, which {source} does not have")
                files.append(path)
            return files
    for name in WEIGHT_FILES:
        path = fetch(source, name, local_files_only=local_files_only)
        if path is not None:
            return [path]
    where = "" if os.path.isdir(source) else " (is it fully downloaded?)"
    raise LLMError(f"{source} has no weights ({', '.join(WEIGHT_FILES)} or a sharded index){where}")


def read_tensors(files: Iterable[Path]) -> Iterator[tuple[str, Any]]:
    """`(name, tensor)` from safetensors or PyTorch `.bin` files, one file at a time, on the CPU."""
    import torch

    for path in files:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt", device="cpu") as handle:
                for name in handle.keys():  # noqa: SIM118  (safe_open is not a mapping)
                    yield name, handle.get_tensor(name)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            yield from state.items()


# -- building the model ---------------------------------------------------------------------------


def load_llama_model(
    source: str,
    config: dict,
    *,
    dtype: Any = "auto",
    device_map: Any = None,
    local_files_only: bool = False,
    **from_pretrained_kwargs: Any,
) -> Any:
    """`LlamaForCausalLM` holding an InternLM2 checkpoint's weights (nothing written to disk).

    Args:
        source: a checkpoint folder or hub id in InternLM2's layout.
        config: its `config.json` (see `read_config`).
        dtype: a torch dtype, or "auto" for the checkpoint's own (`torch_dtype` / `dtype` field).
        device_map: passed to `from_pretrained` ("auto", "cuda:0", a dict...); None keeps the CPU.
        from_pretrained_kwargs: more `LlamaForCausalLM.from_pretrained` arguments (attn_implementation...).
    Raises `LLMError` when the weights are missing or do not fit the config.
    """
    import torch
    from transformers import GenerationConfig, LlamaForCausalLM

    if dtype == "auto" or dtype is None:
        name = checkpoint_dtype(config) or "float32"
        dtype = getattr(torch, name.removeprefix("torch."), torch.float32)
    llama = llama_config(config)
    files = weight_files(source, local_files_only=local_files_only)
    state = {}
    for name, tensor in llama_tensors(read_tensors(files), config):
        state[name] = tensor.to(dtype) if tensor.is_floating_point() else tensor
    if llama.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    dtype_key = "torch_dtype" if _old_transformers() else "dtype"
    kwargs: dict[str, Any] = {**from_pretrained_kwargs, dtype_key: dtype}
    if device_map is not None:
        kwargs["device_map"] = device_map
    with torch.device("meta"):  # no memory, no initialisation: only the names
        expected = set(LlamaForCausalLM(llama).state_dict())
    if llama.tie_word_embeddings:
        expected.discard("lm_head.weight")
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise LLMError(
            f"the weights of {source} do not fit its config.json: missing {missing[:4]}, unexpected {unexpected[:4]}"
        )
    model = LlamaForCausalLM.from_pretrained(None, config=llama, state_dict=state, **kwargs)
    generation = fetch(source, "generation_config.json", local_files_only=local_files_only)
    if generation is not None:
        model.generation_config = GenerationConfig.from_pretrained(str(generation.parent))
    return model


def convert_checkpoint(
    src: str, dst: str | os.PathLike[str], *, dtype: Any = "auto", overwrite: bool = False
) -> Path:
    """Write an InternLM2 checkpoint as a standard Llama checkpoint (safetensors, LlamaConfig).

    The tokenizer files are copied; `tokenizer_config.json` loses the hub code's `auto_map` and
    names `LlamaTokenizer` for other tools, and records `inkagent_converted_from: internlm2` so that
    inkagent keeps tokenizing with SentencePiece exactly. Raises `LLMError` if `dst` exists and is not
    empty (unless `overwrite`), or if `src` is not an InternLM2 checkpoint.
    """
    target = Path(dst)
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise LLMError(f"{target} exists and is not empty; choose another folder (or pass --overwrite)")
    config = read_config(src)
    if config is None or not is_internlm2(config):
        kind = "no config.json" if config is None else f"model_type {config.get('model_type')!r}"
        raise LLMError(f"{src} is not an InternLM2 checkpoint ({kind}; expected model_type {MODEL_TYPE!r})")
    model = load_llama_model(src, config, dtype=dtype)
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    for name in TOKENIZER_FILES:
        path = fetch(src, name)
        if path is None:
            continue
        if name == "tokenizer_config.json":
            settings = json.loads(path.read_text(encoding="utf-8"))
            settings.pop("auto_map", None)
            settings["tokenizer_class"] = "LlamaTokenizer"
            settings["inkagent_converted_from"] = MODEL_TYPE
            (target / name).write_text(json.dumps(settings, ensure_ascii=False, indent=2), encoding="utf-8")
        elif name == "generation_config.json" and (target / name).exists():
            continue  # save_pretrained wrote the model's (loaded from this very file)
        else:
            shutil.copyfile(path, target / name)
    return target
