"""How `HFTransformer` loads InternLM2 checkpoints without their hub code, and explains load failures.

- `internlm2_native_config`: the checkpoint's config.json when it is `model_type: internlm2` (then the
  native path is taken, whatever `trust_remote_code` says; a line in the log says so);
- `internlm2_tokenizer_files` / `load_internlm2_tokenizer`: InternLM2's SentencePiece tokenizer,
  checked against SentencePiece at load (`internlm2_tokenizer.check_tokenizer`);
- `load_internlm2_model`: the weights on transformers' Llama (`internlm2_checkpoint.load_llama_model`);
- `load_error`: an `LLMError` naming the checkpoint, the transformers version and the fix, for any
  exception a checkpoint's own code raises while loading (ImportError, AttributeError...).

The config and weight mapping itself lives in `internlm2_checkpoint` only.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ..errors import InkAgentError, LLMError
from .internlm2_checkpoint import fetch, is_internlm2, load_llama_model, read_config

logger = logging.getLogger(__name__)

#: The last transformers release the InternLM2 hub code generates with (4.49+ breaks cached generate).
HUB_CODE_TRANSFORMERS = "4.48.3"


def _cache_only(source: str) -> bool:
    from .hub import local_files_only

    return local_files_only(source)


def internlm2_native_config(source: str, trust_remote_code: bool) -> dict | None:
    """The config of an InternLM2 checkpoint, which inkagent loads natively; None for any other model.

    A checkpoint that cannot be read here (not downloaded, no network) is left to the normal path,
    which reports it.
    """
    try:
        config = read_config(source, local_files_only=_cache_only(source))
    except (OSError, LLMError):
        return None
    if config is None or not is_internlm2(config):
        return None
    logger.info(
        "%s is an InternLM2 checkpoint: loading it natively (transformers' Llama, SentencePiece "
        "tokenizer)%s; set use_hub_code: true to run its hub code instead (transformers <= %s)",
        source,
        "; trust_remote_code is not needed" if trust_remote_code else "",
        HUB_CODE_TRANSFORMERS,
    )
    return config


def internlm2_tokenizer_files(source: str, use_hub_code: bool) -> tuple[Path | None, bool]:
    """`(tokenizer.model, exact)` for a tokenizer with InternLM2's vocabulary, else `(None, False)`.

    InternLM2's vocabulary: the checkpoint's tokenizer_config.json names `InternLM2Tokenizer`, or was
    written by `inkagent convert-internlm2`. `exact` means "load inkagent's `InternLM2Tokenizer`";
    with `use_hub_code` the hub's tokenizer is loaded instead and only checked.
    """
    local_only = _cache_only(source)
    try:
        config_path = fetch(source, "tokenizer_config.json", local_files_only=local_only)
        settings = json.loads(config_path.read_text(encoding="utf-8")) if config_path else {}
        model_config = read_config(source, local_files_only=local_only) or {}
    except (OSError, LLMError, json.JSONDecodeError):
        return None, False
    converted = settings.get("inkagent_converted_from") == "internlm2"
    named = str(settings.get("tokenizer_class") or "").startswith("InternLM2Tokenizer")
    if not (converted or named or is_internlm2(model_config)):
        return None, False
    try:
        vocab_file = fetch(source, "tokenizer.model", local_files_only=local_only)
    except OSError:
        return None, False
    if vocab_file is None:
        return None, False
    return vocab_file, not use_hub_code


def load_internlm2_tokenizer(source: str, vocab_file: Path, **tokenizer_kwargs: Any) -> Any:
    """inkagent's `InternLM2Tokenizer` for a checkpoint, after a check against SentencePiece."""
    from .internlm2_tokenizer import InternLM2Tokenizer, check_tokenizer

    if _cache_only(source):
        tokenizer_kwargs.setdefault("local_files_only", True)
    try:
        tokenizer = InternLM2Tokenizer.from_pretrained(source, **tokenizer_kwargs)
    except InkAgentError:
        raise
    except Exception as exc:  # a broken tokenizer_config.json, an unreadable tokenizer.model
        raise LLMError(
            f"cannot load the InternLM2 tokenizer of {source!r}: {type(exc).__name__}: {exc}"
        ) from exc
    check_tokenizer(tokenizer, vocab_file)
    return tokenizer


def load_internlm2_model(source: str, config: dict, model_kwargs: dict) -> Any:
    """An InternLM2 checkpoint as `LlamaForCausalLM`; `model_kwargs` carry dtype and device_map."""
    kwargs = dict(model_kwargs)
    dtype = kwargs.pop("dtype", kwargs.pop("torch_dtype", "auto"))
    device_map = kwargs.pop("device_map", None)
    try:
        return load_llama_model(
            source, config, dtype=dtype, device_map=device_map, local_files_only=_cache_only(source), **kwargs
        )
    except InkAgentError:
        raise
    except Exception as exc:  # out of memory, a corrupt shard, a wrong shape...
        raise load_error(source, "model", exc, remote_code=False) from exc


def load_error(source: str, what: str, exc: BaseException, remote_code: bool) -> LLMError:
    """An `LLMError` for a failure loading `source`: what failed, the transformers version, the fix."""
    import transformers

    version = transformers.__version__
    reason = f"{type(exc).__name__}: {exc}"
    if remote_code:
        fix = (
            f"its own code (trust_remote_code / use_hub_code) does not run on transformers {version}. "
            "For InternLM2 / InternLM2.5, drop use_hub_code: inkagent loads them natively on any "
            f"transformers. Otherwise pin the transformers its model card names (InternLM2's hub code: "
            f"pip install 'transformers=={HUB_CODE_TRANSFORMERS}'), or serve the model with LMDeploy or "
            "vLLM and use OpenAICompatible"
        )
    else:
        fix = (
            f"transformers {version} could not build it; check the files are complete (a partial "
            "download?), that the dtype and device fit in memory, or report the message"
        )
    return LLMError(f"cannot load the {what} {source!r} ({reason}): {fix}")
