"""`VisionLanguageModel`: a transformers image-text-to-text model as an inkagent backend.

It loads any checkpoint that `AutoProcessor` + `AutoModelForImageTextToText` understand (LLaVA,
LLaVA-NeXT, Qwen2-VL / Qwen2.5-VL, InternVL, Idefics, Gemma 3...; with `trust_remote_code=True`, remote
code that registers itself for that auto class), and offers:

- `stream_text(messages)`: the answer as text deltas, like every inkagent backend. Messages use the
  transformers multimodal chat format: `content` is a string or a list of parts,
  `{"type": "text", "text": ...}` and `{"type": "image", "image": <path or PIL image>}`;
- `caption(image, prompt)`: one image in, one description out;
- `choose_letter(messages, letters)`: which of the letters (A, B, C, D...) the model would answer,
  read from the next-token logits rather than from sampled text, so a multiple-choice question
  always gets a valid answer, with a probability for each letter.

Images are read with PIL here (not by the processor) so a missing or unreadable file is reported as
an `ImageError` that names the file. torch, transformers and PIL are imported when a model loads.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ActionError, LLMError
from .base import LLM, GenerationStats, Prompt
from .hf import _as_list, _torch_dtype, resolve_model_source
from .hub import cache_only_reason, local_files_only
from .progress import quiet_weight_loading
from .stopping import normalize_stop_words

logger = logging.getLogger(__name__)

ImageInput = Any  # a path (str / os.PathLike) or a PIL image

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


class ImageError(ActionError):
    """An image is missing, is not a local file, or cannot be decoded. The message names it."""


def load_image(image: ImageInput) -> Any:
    """Open `image` (a local path or a PIL image) as an RGB PIL image; `ImageError` says what is wrong."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if not isinstance(image, str | os.PathLike):
        raise ImageError(f"expected an image path, got {type(image).__name__}")
    text = os.fspath(image)
    if "://" in text:
        raise ImageError(f"{text}: only local image files are supported, not URLs")
    path = Path(text).expanduser()
    if not path.exists():
        raise ImageError(f"image not found: {path}")
    if not path.is_file():
        raise ImageError(f"not a file: {path}")
    try:
        with Image.open(path) as opened:
            opened.load()
            return opened.convert("RGB")
    except UnidentifiedImageError as exc:
        raise ImageError(f"cannot read {path}: not an image file PIL can decode") from exc
    except Image.DecompressionBombError as exc:  # e.g. 20000x20000: decoding would take gigabytes
        raise ImageError(f"cannot read {path}: too many pixels to decode safely ({exc})") from exc
    except OSError as exc:  # truncated or corrupt data, permission denied
        raise ImageError(f"cannot read {path}: {exc}") from exc


@dataclass
class LetterChoice:
    """The model's answer to a multiple-choice question, read from its next-token logits."""

    letter: str
    probabilities: dict[str, float] = field(default_factory=dict)  # softmax over the offered letters


def _user_parts(content: Any) -> list[dict]:
    """Message content as a list of parts (some chat templates iterate over it unconditionally)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content)


def split_images(messages: Sequence[dict]) -> tuple[list[dict], list[ImageInput]]:
    """Messages for the chat template (image parts without payload) and the images, in prompt order."""
    clean, images = [], []
    for message in messages:
        parts = []
        for part in _user_parts(message.get("content", "")):
            if part.get("type") == "image":
                payload = part.get("image", part.get("path", part.get("url")))
                if payload is None:
                    raise ImageError("an image part has no image (expected {'type': 'image', 'image': PATH})")
                images.append(payload)
                parts.append({"type": "image"})
            else:
                parts.append(part)
        clean.append({"role": message["role"], "content": parts})
    return clean, images


class VisionLanguageModel(LLM):
    """An image-text-to-text model loaded with transformers (see the module docstring).

    Args:
        path: a local directory, a Hugging Face hub id, or `modelscope:<id>`.
        processor_path: where the processor is, if not with the model.
        device: "cpu", "cuda", "cuda:1"... or "auto" (default: CUDA when available).
        dtype: "auto", "float32", "bfloat16", "float16" (default: the checkpoint's on a GPU,
            float32 on the CPU).
        device_map: passed to `from_pretrained` (e.g. "auto"); overrides `device`.
        trust_remote_code: run the checkpoint's own code.
        meta_template: `None` (default) renders prompts with the processor's chat template; a lagent
            meta template renders them with it instead (image parts become the image token).
        processor_kwargs / model_kwargs: extra `from_pretrained` arguments.
        max_new_tokens, temperature, top_p, top_k, repetition_penalty, stop_words, do_sample:
            generation defaults (greedy by default); every call may override them.
    """

    def __init__(
        self,
        path: str,
        *,
        processor_path: str | None = None,
        device: str | None = None,
        dtype: Any = None,
        device_map: str | dict | None = None,
        trust_remote_code: bool = False,
        meta_template: list[dict] | None = None,
        processor_kwargs: dict | None = None,
        model_kwargs: dict | None = None,
        do_sample: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(path=path, meta_template=meta_template, **kwargs)
        self.gen_params["do_sample"] = do_sample
        self.trust_remote_code = trust_remote_code
        self._use_meta_template = meta_template is not None
        source = resolve_model_source(path)
        started = time.perf_counter()
        logger.info("loading the vision-language model %s", path)
        self.processor = self._load(
            "AutoProcessor",
            resolve_model_source(processor_path) if processor_path else source,
            "processor",
            **dict(processor_kwargs or {}),
        )
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        self.model = self._load_model(source, dict(model_kwargs or {}), device, dtype, device_map)
        logger.info("loaded %s in %.1f s", path, time.perf_counter() - started)
        self.image_token = getattr(self.processor, "image_token", None) or "<image>"

    # -- loading --------------------------------------------------------------------------------
    def _load(self, auto_class: str, source: str, what: str, **kwargs: Any) -> Any:
        import transformers

        loader = getattr(transformers, auto_class).from_pretrained
        local = os.path.isdir(source)
        cache_only = local_files_only(source)
        if cache_only:
            kwargs["local_files_only"] = True
        try:
            with quiet_weight_loading():  # no "Loading weights" bar on every start
                return loader(source, trust_remote_code=self.trust_remote_code, **kwargs)
        except OSError as exc:
            reason = cache_only_reason() if cache_only else "is it downloaded, or is the hub reachable?"
            where = "" if local else f" (not a local directory; {reason})"
            raise LLMError(f"cannot load the {what} of {source!r}{where}: {exc}") from exc
        except ValueError as exc:  # an architecture this auto class does not know
            raise LLMError(
                f"cannot load the {what} of {source!r} with {auto_class}: {exc}. "
                "Is it an image-text-to-text model? Remote-code models need trust_remote_code: true."
            ) from exc

    def _load_model(self, source: str, model_kwargs: dict, device: Any, dtype: Any, device_map: Any) -> Any:
        import torch

        device_map = device_map if device_map is not None else model_kwargs.pop("device_map", None)
        if device is None or device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        on_gpu = device_map is not None or not str(device).startswith("cpu")
        dtype = (
            dtype if dtype is not None else model_kwargs.pop("torch_dtype", model_kwargs.pop("dtype", None))
        )
        model_kwargs.pop("torch_dtype", None)
        model_kwargs["dtype"] = _torch_dtype(dtype, on_gpu)
        if device_map is not None:
            model_kwargs["device_map"] = device_map
        model = self._load("AutoModelForImageTextToText", source, "model", **model_kwargs)
        if device_map is None:
            model = model.to(device)
        return model.eval()

    # -- prompts --------------------------------------------------------------------------------
    def render(self, inputs: Prompt) -> str:
        """Prompt text of messages (image parts become the model's image placeholder)."""
        if isinstance(inputs, str):
            return inputs
        messages, _ = split_images(inputs)
        template = getattr(self.processor, "chat_template", None)
        if template and not self._use_meta_template:
            if messages and messages[-1]["role"] == "assistant":  # continue a started answer
                return self.processor.apply_chat_template(
                    messages, tokenize=False, continue_final_message=True
                )
            return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        flat = [
            {"role": m["role"], "content": "".join(self._part_text(p) for p in m["content"])}
            for m in messages
        ]
        return self.template_parser(flat)

    def _part_text(self, part: dict) -> str:
        return self.image_token if part.get("type") == "image" else str(part.get("text", ""))

    def _inputs(self, inputs: Prompt, images: Sequence[ImageInput] | None) -> tuple[Any, str]:
        """Tensors for the model (on its device and dtype) and the prompt text."""
        prompt = self.render(inputs)
        found = [] if isinstance(inputs, str) else split_images(inputs)[1]
        pictures = [load_image(image) for image in [*found, *(images or [])]]
        kwargs: dict[str, Any] = {"text": prompt, "return_tensors": "pt"}
        if pictures:
            kwargs["images"] = pictures
        bos = getattr(self.tokenizer, "bos_token", None)
        if bos and prompt.startswith(bos):  # the chat template wrote the BOS: do not add a second one
            kwargs["add_special_tokens"] = False
        try:
            batch = self.processor(**kwargs)
        except ValueError as exc:  # e.g. the number of image tokens and images differ
            raise LLMError(f"the processor rejected the prompt: {exc}") from exc
        batch = batch.to(self.model.device)
        for key, value in batch.items():
            if hasattr(value, "is_floating_point") and value.is_floating_point():
                batch[key] = value.to(self.model.dtype)
        return batch, prompt

    # -- generation -----------------------------------------------------------------------------
    def _config(self, gen_params: dict) -> tuple[Any, tuple[str, ...], tuple[int, ...]]:
        import copy

        params = self.update_gen_params(**gen_params)
        stop_words = normalize_stop_words(params.pop("stop_words", None))
        params.pop("session_id", None)
        config = copy.deepcopy(self.model.generation_config)
        do_sample = bool(params.pop("do_sample", False))
        temperature, top_p, top_k = (
            params.pop("temperature", None),
            params.pop("top_p", None),
            params.pop("top_k", None),
        )
        if do_sample and temperature is not None and temperature <= 0:
            do_sample = False
        config.do_sample = do_sample
        if do_sample:
            config.temperature, config.top_p, config.top_k = temperature, top_p, top_k
        else:
            config.temperature = config.top_p = config.top_k = None
        end_ids = set(_as_list(config.eos_token_id)) | set(_as_list(self.tokenizer.eos_token_id))
        for word in stop_words:
            encoded = self.tokenizer.encode(word, add_special_tokens=False)
            if len(encoded) == 1:
                end_ids.add(encoded[0])
        config.eos_token_id = sorted(end_ids)
        if config.pad_token_id is None:
            config.pad_token_id = (
                self.tokenizer.pad_token_id
                if self.tokenizer.pad_token_id is not None
                else config.eos_token_id[0]
            )
        unknown = config.update(**params)
        if unknown:
            logger.warning("ignoring parameters that are not generation options: %s", sorted(unknown))
        return config, stop_words, tuple(sorted(end_ids))

    def _decode(self, token_ids: Sequence[int]) -> str:
        return self.tokenizer.decode(
            list(token_ids), skip_special_tokens=True, clean_up_tokenization_spaces=False
        )

    def stream_text(
        self, inputs: Prompt, images: Sequence[ImageInput] | None = None, **gen_params: Any
    ) -> Iterator[str]:
        """Stream the answer to `inputs` (messages with image parts, or prompt text plus `images`).

        Generation runs in a worker thread; closing the iterator early stops the model at its next token.
        """
        from transformers import StoppingCriteriaList

        from .hf_stream import GenerationTracker, stream_on_worker

        started = time.perf_counter()
        batch, _ = self._inputs(inputs, images)
        config, stop_words, end_ids = self._config(gen_params)
        skip = {i for i in (self.tokenizer.bos_token_id, self.tokenizer.pad_token_id) if i is not None}
        tracker = GenerationTracker(
            prompt_length=batch["input_ids"].shape[1],
            batch_size=1,
            decode=self._decode,
            stop_words=stop_words,
            end_ids=end_ids,
            skip_ids=skip - set(end_ids),
        )

        def generate() -> None:
            self.model.generate(
                **batch, generation_config=config, stopping_criteria=StoppingCriteriaList([tracker])
            )

        try:
            yield from stream_on_worker(tracker, generate, "inkagent-vlm-generate")
        except Exception as exc:
            raise LLMError(f"generation with {self.path} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            self.last_stats = GenerationStats(
                prompt_tokens=int(batch["input_ids"].shape[1]),
                completion_tokens=len(tracker.rows[0].tokens),
                duration_s=time.perf_counter() - started,
                first_token_s=tracker.first_token_s,
                extra={"cancelled": tracker.cancelled},
            )

    def caption(
        self, image: ImageInput, prompt: str = "Describe this image in one sentence.", **gen_params: Any
    ) -> str:
        """A description of one image."""
        messages = [
            {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": prompt}]}
        ]
        return "".join(self.stream_text(messages, **gen_params)).strip()

    # -- multiple choice from logits ------------------------------------------------------------
    def letter_token_ids(self, letters: Sequence[str]) -> dict[str, list[int]]:
        """For each letter, the ids of the tokens that spell it alone (`D`, ` D`, `▁D`...).

        Raises `LLMError` when two letters share a token or a letter has no single-token spelling:
        the logits could not tell them apart.
        """
        ids: dict[str, list[int]] = {}
        owner: dict[int, str] = {}
        for letter in letters:
            found = []
            for variant in (letter, " " + letter):
                encoded = self.tokenizer.encode(variant, add_special_tokens=False)
                if len(encoded) == 1 and encoded[0] not in found:
                    found.append(encoded[0])
            if not found:
                raise LLMError(f"the tokenizer has no single token for the choice {letter!r}")
            for token_id in found:
                if owner.setdefault(token_id, letter) != letter:
                    raise LLMError(f"the choices {owner[token_id]!r} and {letter!r} share token {token_id}")
            ids[letter] = found
        return ids

    def choose_letter(
        self,
        inputs: Prompt,
        letters: Sequence[str] = ("A", "B", "C", "D"),
        *,
        images: Sequence[ImageInput] | None = None,
        primer: str = "",
    ) -> LetterChoice:
        """The letter the model puts first, from the logits of the token after the prompt.

        `primer` is text the answer is made to start with (e.g. `最合适的图是`): the letter is read at
        the position after it. Only the offered letters compete; their probabilities sum to 1.
        """
        import torch

        if not letters:
            raise LLMError("choose_letter needs at least one letter")
        token_ids = self.letter_token_ids(letters)
        if isinstance(inputs, str):
            prompt_inputs: Prompt = inputs + primer
        else:
            prompt_inputs = self.render(inputs) + primer
            images = [*split_images(inputs)[1], *(images or [])]
        batch, _ = self._inputs(prompt_inputs, images)
        with torch.no_grad():
            try:
                logits = self.model(**batch).logits[0, -1].float()
            except Exception as exc:
                raise LLMError(f"scoring with {self.path} failed: {type(exc).__name__}: {exc}") from exc
        # A letter's score is its best spelling; a softmax over the letters alone makes them comparable.
        scores = torch.stack([logits[ids].max() for ids in token_ids.values()])
        probabilities = torch.softmax(scores, dim=0).tolist()
        table = dict(zip(token_ids, probabilities, strict=True))
        best = max(table, key=table.__getitem__)
        return LetterChoice(letter=best, probabilities=table)
