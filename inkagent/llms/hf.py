"""`HFTransformer`: a local transformers model as an inkagent / lagent backend.

Drop-in for lagent 0.2.4's `HFTransformer` (same constructor arguments, same `generate`,
`stream_generate`, `chat`, `stream_chat`), rebuilt on public transformers APIs only
(`AutoModelForCausalLM`, `generate()`, `GenerationConfig`, `StoppingCriteria`), so it runs on
transformers 4.45 to 5.x, on the CPU or a GPU:

- special tokens of the InternLM2 protocol (`<|action_start|>`, `<|plugin|>`, ...) stay in the text;
  only BOS and padding are hidden;
- single-token stop words end generation by id (as EOS does); other stop words are matched on the
  text across token boundaries; either way the stop word is cut from the output and the stream;
- streaming detokenises incrementally (constant work per token) and stops the model within a token
  when the consumer closes the stream;
- a list of prompts is generated as one left-padded batch;
- `last_stats` reports token counts and timings of each call.

torch and transformers are imported when a model is loaded, not when this module is.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InkAgentError, LLMError, MissingDependency
from .base import LLM, GenerationStats, Prompt, resolve_meta_template
from .hub import cache_only_reason, local_files_only
from .internlm2_native import internlm2_native_config, load_error
from .meta_template import INTERNLM2_META
from .progress import quiet_weight_loading
from .stopping import cut_at_stop, normalize_stop_words

if TYPE_CHECKING:
    from .hf_stream import GenerationTracker

logger = logging.getLogger(__name__)

MODELSCOPE_PREFIX = "modelscope:"


def resolve_model_source(path: str) -> str:
    """A local directory or hub id for `from_pretrained`; `modelscope:<id>` is downloaded first."""
    if not path.startswith(MODELSCOPE_PREFIX):
        return path
    model_id = path[len(MODELSCOPE_PREFIX) :]
    try:
        import modelscope
    except ImportError as exc:
        raise MissingDependency(
            f"{path!r} names a ModelScope model, and modelscope is not installed: pip install modelscope"
        ) from exc
    logger.info("downloading %s from ModelScope (cached after the first time)", model_id)
    try:
        return str(modelscope.snapshot_download(model_id))
    except Exception as exc:  # modelscope raises assorted network and HTTP errors
        raise LLMError(f"could not download {model_id!r} from ModelScope: {exc}") from exc


@dataclass
class _Stops:
    """Stop words resolved against the tokenizer."""

    words: tuple[str, ...]  # all stop words, matched on text
    end_ids: tuple[int, ...]  # ids that end generation: EOS and single-token stop words
    multi_token: bool  # some stop word spans several tokens: generation must watch the text


@dataclass
class _Batch:
    """Prompts tokenised and left-padded, with the generation config for one call."""

    input_ids: Any
    attention_mask: Any
    prompt_tokens: int
    config: Any
    stops: _Stops


class HFTransformer(LLM):
    """A causal LM loaded with transformers, speaking through a meta template.

    Args (lagent's, same meaning):
        path: a local directory, a Hugging Face hub id, or `modelscope:<id>`.
        tokenizer_path: where the tokenizer is, if not with the model.
        tokenizer_kwargs / model_kwargs: extra `from_pretrained` arguments (lagent configs put
            `device_map` and `torch_dtype` in `model_kwargs`; both are honoured).
        tokenizer_only: load only the tokenizer (for `tokenize`/`render`).
        meta_template: lagent meta template (INTERNLM2 by default); `None` uses the tokenizer's own
            chat template when it has one.
        stop_words / stop_words_id: where generation stops (both are used when both are given;
            lagent used only the ids). Default: `<|im_end|>`.
        max_new_tokens, top_p, top_k, temperature, repetition_penalty, do_sample: generation
            defaults; every call may override them, and may pass any other `GenerationConfig` field.
    Args (inkagent's):
        device: "cpu", "cuda", "cuda:1", ... or "auto" (default: CUDA when available).
        dtype: "auto" (the checkpoint's), "float32", "bfloat16", "float16" or a torch dtype
            (default: the checkpoint's on a GPU, float32 on the CPU).
        device_map: passed to `from_pretrained` (e.g. "auto" to shard over GPUs); overrides `device`.
        trust_remote_code: run the checkpoint's own code where transformers has no class for it.
            InternLM2 / InternLM2.5 checkpoints (`model_type: internlm2`) never need it: they load
            natively (weights mapped onto transformers' Llama, SentencePiece tokenizer), with or without it.
        use_hub_code: run an InternLM2 checkpoint's own hub code anyway (only works with
            transformers <= 4.48.3, which that code was written for).
        num_threads: CPU threads torch uses for one operation (`torch.set_num_threads`, for the whole
            process); default: torch's own (one per core). A small model on the CPU generates faster
            on one thread: its matrices are too small to share out, and on a busy machine the
            threads wait on each other (the 4.5 M-parameter demo model: about 5x less time a token).
    """

    def __init__(
        self,
        path: str,
        tokenizer_path: str | None = None,
        tokenizer_kwargs: dict | None = None,
        tokenizer_only: bool = False,
        model_kwargs: dict | None = None,
        meta_template: list[dict] | None = INTERNLM2_META,
        stop_words_id: int | list[int] | None = None,
        *,
        device: str | None = None,
        dtype: Any = None,
        device_map: str | dict | None = None,
        trust_remote_code: bool = False,
        use_hub_code: bool = False,
        do_sample: bool = True,
        num_threads: int | None = None,
        **kwargs,
    ):
        if num_threads is not None:
            _set_threads(num_threads)
        self._setup(path, tokenizer_only, meta_template, stop_words_id, do_sample, trust_remote_code, kwargs)
        source = resolve_model_source(path)
        tokenizer_source = resolve_model_source(tokenizer_path) if tokenizer_path else source
        self.internlm2 = None if use_hub_code else internlm2_native_config(source, self.trust_remote_code)
        self.use_hub_code = use_hub_code
        if use_hub_code:
            self.trust_remote_code = True
        self._adopt_tokenizer(self._load_tokenizer(tokenizer_source, dict(tokenizer_kwargs or {})))
        if not tokenizer_only:
            self.model = self._load_model(source, dict(model_kwargs or {}), device, dtype, device_map)

    @classmethod
    def from_model(
        cls,
        model: Any,
        tokenizer: Any,
        *,
        meta_template: list[dict] | None = INTERNLM2_META,
        stop_words_id: int | list[int] | None = None,
        do_sample: bool = True,
        **kwargs,
    ) -> HFTransformer:
        """Wrap a model and tokenizer already in memory (one you fine-tuned, quantised or built)."""
        self = cls.__new__(cls)
        path = getattr(model, "name_or_path", "") or "in-memory model"
        self._setup(path, False, meta_template, stop_words_id, do_sample, False, kwargs)
        self._adopt_tokenizer(tokenizer)
        self.model = model.eval()
        return self

    def _setup(
        self,
        path: str,
        tokenizer_only: bool,
        meta_template: list[dict] | None,
        stop_words_id: int | list[int] | None,
        do_sample: bool,
        trust_remote_code: bool,
        kwargs: dict,
    ) -> None:
        meta_template = resolve_meta_template(meta_template)
        super().__init__(path=path, tokenizer_only=tokenizer_only, meta_template=meta_template, **kwargs)
        if isinstance(stop_words_id, int):
            stop_words_id = [stop_words_id]
        self.gen_params.update(stop_words_id=list(stop_words_id or []), do_sample=do_sample)
        self.trust_remote_code = trust_remote_code
        self.meta_template = meta_template
        self.model = None
        self.last_token_ids: list[list[int]] = []
        self._stops_cache: dict[tuple, _Stops] = {}

    # -- loading --------------------------------------------------------------------------------
    def _from_pretrained(self, loader: Any, source: str, what: str, **kwargs) -> Any:
        local = os.path.isdir(source)
        offline = local_files_only(source)
        if offline:
            kwargs["local_files_only"] = True  # never wait on a hub we are told not to, or cannot, reach
        try:
            with quiet_weight_loading():  # no "Loading weights" bar on every start
                return loader(source, trust_remote_code=self.trust_remote_code, **kwargs)
        except OSError as exc:
            if local:
                raise LLMError(f"cannot load the {what} from {source}: {exc}") from exc
            if offline:
                hint = (
                    f"{cache_only_reason()}, and it is not there. "
                    f"Download it on a connected machine (`hf download {source}`) or pass a local directory."
                )
            else:
                hint = (
                    "the hub could not be reached or has no such model. Pass a local directory, check the "
                    "id, or set HF_HUB_OFFLINE=1 to use only the local cache."
                )
            raise LLMError(
                f"cannot load the {what} {source!r}: it is not a local directory, and {hint}"
            ) from exc
        except ValueError as exc:  # unknown architecture (trust_remote_code?), bad config...
            raise LLMError(f"cannot load the {what} {source!r}: {exc}") from exc
        except InkAgentError:
            raise
        except (
            Exception
        ) as exc:  # remote code written for another transformers: ImportError, AttributeError...
            raise load_error(source, what, exc, remote_code=self.trust_remote_code) from exc

    def _load_tokenizer(self, source: str, tokenizer_kwargs: dict) -> Any:
        from transformers import AutoTokenizer

        from .internlm2_native import internlm2_tokenizer_files, load_internlm2_tokenizer

        vocab_file, exact = internlm2_tokenizer_files(source, self.use_hub_code)
        if exact:  # InternLM2's SentencePiece tokenizer, exactly (see internlm2_tokenizer)
            return load_internlm2_tokenizer(source, vocab_file, **tokenizer_kwargs)
        tokenizer = self._from_pretrained(
            AutoTokenizer.from_pretrained, source, "tokenizer", **tokenizer_kwargs
        )
        if vocab_file is not None:  # an InternLM2 vocabulary loaded by other code: it must agree
            from .internlm2_tokenizer import check_tokenizer

            check_tokenizer(tokenizer, vocab_file, decode=False)
        return tokenizer

    def _adopt_tokenizer(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        if tokenizer.pad_token_id is None:
            logger.info("the tokenizer has no padding token; padding with %r", tokenizer.eos_token)
        ids = (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id)
        self._pad_id = next((i for i in ids if i is not None), 0)
        # Text shown to the parser keeps special tokens, except those that carry no meaning.
        self._skip_ids = frozenset(
            i for i in (tokenizer.bos_token_id, tokenizer.pad_token_id) if i is not None
        )
        self._use_chat_template = self.meta_template is None and bool(
            getattr(tokenizer, "chat_template", None)
        )

    def _load_model(
        self, source: str, model_kwargs: dict, device: str | None, dtype: Any, device_map: Any
    ) -> Any:
        import torch
        import transformers
        from packaging.version import Version
        from transformers import AutoModelForCausalLM

        if device_map is None:
            device_map = model_kwargs.pop("device_map", None)
        else:
            model_kwargs.pop("device_map", None)
        if device is None or device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if dtype is None:
            dtype = model_kwargs.pop("torch_dtype", model_kwargs.pop("dtype", None))
        model_kwargs.pop("torch_dtype", None)
        model_kwargs.pop("dtype", None)
        dtype = _torch_dtype(dtype, on_gpu=device_map is not None or not str(device).startswith("cpu"))
        # `torch_dtype` was renamed `dtype` in transformers 4.56.
        dtype_key = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"
        model_kwargs[dtype_key] = dtype
        if device_map is not None:
            model_kwargs["device_map"] = device_map

        started = time.perf_counter()
        logger.info("loading %s (%s)", source, f"device_map={device_map}" if device_map else device)
        if self.internlm2 is not None:
            from .internlm2_native import load_internlm2_model

            model = load_internlm2_model(source, self.internlm2, model_kwargs)
        else:
            model = self._from_pretrained(
                AutoModelForCausalLM.from_pretrained, source, "model", **model_kwargs
            )
        if device_map is None:
            model = model.to(device)
        model.eval()
        logger.info("loaded %s in %.1f s", source, time.perf_counter() - started)
        return model

    # -- prompts ----------------------------------------------------------------------------------
    def render(self, inputs: Prompt) -> str:
        """Prompt text for `inputs`: the meta template, or the tokenizer's chat template."""
        if isinstance(inputs, str) or not self._use_chat_template:
            return super().render(inputs)
        messages = [{k: v for k, v in m.items() if k in ("role", "content", "name")} for m in inputs]
        if messages and messages[-1]["role"] == "assistant":  # continue a started answer
            return self.tokenizer.apply_chat_template(messages, tokenize=False, continue_final_message=True)
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def tokenize(self, inputs: str) -> list[int]:
        """Token ids of a prompt, as the model will see it (BOS added unless the text has one)."""
        bos = self.tokenizer.bos_token
        add_special = not (bos and inputs.startswith(bos))
        return self.tokenizer(inputs, add_special_tokens=add_special)["input_ids"]

    def decode(self, token_ids: Sequence[int]) -> str:
        """Text of token ids with special tokens kept (BOS and padding are filtered out by callers)."""
        kwargs = {"skip_special_tokens": False, "clean_up_tokenization_spaces": False}
        if not getattr(self.tokenizer, "is_fast", True):
            kwargs["spaces_between_special_tokens"] = False  # slow tokenizers pad special tokens with spaces
        return self.tokenizer.decode(list(token_ids), **kwargs)

    # -- generation ---------------------------------------------------------------------------------
    def _stops(self, stop_words: Any, stop_words_id: Any) -> _Stops:
        words = normalize_stop_words(stop_words)
        ids = [stop_words_id] if isinstance(stop_words_id, int) else list(stop_words_id or [])
        key = (words, tuple(ids))
        if key not in self._stops_cache:
            end_ids = set(_as_list(self.model.generation_config.eos_token_id if self.model else None))
            if not end_ids and self.tokenizer.eos_token_id is not None:
                end_ids.add(self.tokenizer.eos_token_id)
            end_ids.update(ids)
            multi_token = False
            for word in words:
                encoded = self.tokenizer.encode(word, add_special_tokens=False)
                if len(encoded) == 1 and self.decode(encoded) == word:
                    end_ids.add(encoded[0])
                else:
                    multi_token = True
            self._stops_cache[key] = _Stops(words, tuple(sorted(end_ids)), multi_token)
        return self._stops_cache[key]

    def _prepare(self, prompts: list[str], gen_params: dict) -> _Batch:
        if self.model is None:
            raise LLMError("this HFTransformer was loaded with tokenizer_only=True; it cannot generate")
        import torch

        params = self.update_gen_params(**gen_params)
        stops = self._stops(params.pop("stop_words", None), params.pop("stop_words_id", None))
        params.pop("session_id", None)  # lagent agents pass it; it means nothing to a local model
        config = copy.deepcopy(self.model.generation_config)
        do_sample = bool(params.pop("do_sample", True))
        temperature = params.pop("temperature", None)
        top_p, top_k = params.pop("top_p", None), params.pop("top_k", None)
        if do_sample and temperature is not None and temperature <= 0:
            do_sample = False  # OpenAI convention: temperature 0 means greedy
        config.do_sample = do_sample
        if do_sample:
            config.temperature, config.top_p, config.top_k = temperature, top_p, top_k
        else:  # unset, or transformers warns that sampling flags are ignored
            config.temperature = config.top_p = config.top_k = None
        config.eos_token_id = list(stops.end_ids)
        config.pad_token_id = self._pad_id
        unknown = config.update(**params)
        if unknown:
            logger.warning("ignoring parameters that are not generation options: %s", sorted(unknown))

        rows = [self.tokenize(prompt) for prompt in prompts]
        width = max(len(row) for row in rows)
        # Left padding: every row's last prompt token sits in the same column, where generation starts.
        input_ids = torch.tensor([[self._pad_id] * (width - len(row)) + row for row in rows])
        attention_mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in rows])
        device = self.model.device
        return _Batch(
            input_ids.to(device), attention_mask.to(device), sum(len(row) for row in rows), config, stops
        )

    def _tracker(self, batch: _Batch) -> GenerationTracker:
        from .hf_stream import GenerationTracker

        return GenerationTracker(
            prompt_length=batch.input_ids.shape[1],
            batch_size=batch.input_ids.shape[0],
            decode=self.decode,
            stop_words=batch.stops.words,
            end_ids=batch.stops.end_ids,
            skip_ids=self._skip_ids - set(batch.stops.end_ids),
        )

    def _run(self, batch: _Batch, tracker: GenerationTracker | None) -> Any:
        from transformers import StoppingCriteriaList

        try:
            return self.model.generate(
                input_ids=batch.input_ids,
                attention_mask=batch.attention_mask,
                generation_config=batch.config,
                stopping_criteria=StoppingCriteriaList([tracker] if tracker is not None else []),
            )
        except Exception as exc:  # CUDA out of memory, shape errors...: the agent reports LLM errors
            raise LLMError(f"generation with {self.path} failed: {type(exc).__name__}: {exc}") from exc

    def _row_ids(self, generated: list[int], end_ids: tuple[int, ...], length: int | None) -> list[int]:
        """The ids generated for one row, up to and including the one that ended it."""
        if length is not None:
            return generated[:length]
        for index, token_id in enumerate(generated):
            if token_id in end_ids:
                return generated[: index + 1]
        return generated

    def generate(self, inputs: str | list[str], **gen_params) -> str | list[str]:
        """Complete one prompt (returns a str) or a list of prompts as one left-padded batch (a list).

        Messages (a list of dicts) are taken as one conversation and rendered first.
        """
        if inputs and isinstance(inputs, list) and isinstance(inputs[0], dict):
            inputs = self.render(inputs)
        single = isinstance(inputs, str)
        prompts = [inputs] if single else list(inputs)
        if not prompts:
            return []
        started = time.perf_counter()
        batch = self._prepare(prompts, gen_params)
        # Without multi-token stop words generate() itself finds every stop (by id): no per-token work.
        tracker = self._tracker(batch) if batch.stops.multi_token else None
        sequences = self._run(batch, tracker).tolist()
        width = batch.input_ids.shape[1]
        texts, token_ids = [], []
        for index, sequence in enumerate(sequences):
            length = len(tracker.rows[index].tokens) if tracker is not None else None
            ids = self._row_ids(sequence[width:], batch.stops.end_ids, length)
            token_ids.append(ids)
            visible = [t for t in ids if t not in batch.stops.end_ids and t not in self._skip_ids]
            texts.append(cut_at_stop(self.decode(visible), batch.stops.words)[0])
        self.last_token_ids = token_ids
        self.last_stats = GenerationStats(
            prompt_tokens=batch.prompt_tokens,
            completion_tokens=sum(len(ids) for ids in token_ids),
            duration_s=time.perf_counter() - started,
            extra={
                "batch_size": len(prompts),
                "completion_tokens_per_prompt": [len(ids) for ids in token_ids],
            },
        )
        return texts[0] if single else texts

    def chat(self, inputs: list[dict] | list[list[dict]], **gen_params) -> str | list[str]:
        """Answer one conversation, or several as one batch."""
        if inputs and isinstance(inputs[0], list):
            return self.generate([self.render(one) for one in inputs], **gen_params)
        return self.generate(self.render(inputs), **gen_params)

    def stream_text(self, inputs: Prompt, **gen_params) -> Iterator[str]:
        """Stream the output for one prompt as text deltas.

        Generation runs in a worker thread; closing this iterator early (or dropping it) makes the
        model stop at its next token.
        """
        from .hf_stream import stream_on_worker

        started = time.perf_counter()
        batch = self._prepare([self.render(inputs)], gen_params)
        tracker = self._tracker(batch)
        try:
            yield from stream_on_worker(tracker, lambda: self._run(batch, tracker), "inkagent-hf-generate")
        finally:
            row = tracker.rows[0]
            self.last_token_ids = [list(row.tokens)]
            self.last_stats = GenerationStats(
                prompt_tokens=batch.prompt_tokens,
                completion_tokens=len(row.tokens),
                duration_s=time.perf_counter() - started,
                first_token_s=tracker.first_token_s,
                extra={"cancelled": tracker.cancelled},
            )


def _as_list(value: Any) -> list[int]:
    if value is None:
        return []
    return [value] if isinstance(value, int) else list(value)


def _set_threads(num_threads: Any) -> None:
    """`torch.set_num_threads`, with a clear error for a value that is not a positive count."""
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise LLMError(f"num_threads must be a positive whole number, not {num_threads!r}")
    import torch

    torch.set_num_threads(num_threads)


def _torch_dtype(dtype: Any, on_gpu: bool) -> Any:
    import torch

    if dtype is None:
        return "auto" if on_gpu else torch.float32
    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    value = getattr(torch, str(dtype).removeprefix("torch."), None)
    if not isinstance(value, torch.dtype):
        raise LLMError(f"unknown dtype {dtype!r}: use 'auto', 'float32', 'bfloat16' or 'float16'")
    return value
