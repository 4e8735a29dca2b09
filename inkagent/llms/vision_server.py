"""`OpenAICompatibleVision`: a vision-language model behind an OpenAI-compatible server.

XComposer2 / XComposer2.5 need transformers 4.33-4.40 in-process, so inkagent reaches them (and
InternVL, Qwen2-VL...) through a server instead: LMDeploy (`lmdeploy serve api_server
internlm/internlm-xcomposer2d5-7b`) serves XComposer2 and InternVL; vLLM serves InternVL and Qwen2-VL.
Both speak OpenAI's `/v1/chat/completions` with image content parts, which this client sends.

It offers what `VisionLanguageModel` offers, so `ImageCaption`, `ImageUnderstanding`,
`IllustratedWriter` and `inkagent see/write` take either:

- `stream_text(messages)`: inkagent's multimodal messages (`{"type": "image", "image": PATH}` parts)
  become OpenAI parts (`{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}`),
  any number of images per message; the answer streams back over server-sent events;
- `caption(image, prompt)`;
- `choose_letter(messages, letters, primer=...)`: the four-way choice of the illustrated writer, read
  from the `logprobs` of the answer's first letter token when the server returns them (both LMDeploy
  and vLLM do, with `logprobs: true, top_logprobs: N`), else parsed from the answer text.

An answer the writer has started (a last `assistant` message, e.g. `标题是"`) is continued by the
server when `prefill` is on (vLLM's `continue_final_message`); servers that cannot continue a message
(`prefill: false`, LMDeploy) are asked without it, and the answer is read after the primer when the
model repeats it. Transport, retries, timeouts and the API key are `OpenAICompatible`'s.
"""

from __future__ import annotations

import base64
import io
import math
import os
import re
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import ConfigError, LLMError
from .base import Prompt
from .openai_compat import OpenAICompatible
from .vlm import ImageError, LetterChoice, load_image

#: PIL format -> the MIME type sent in the data URL; other formats are re-encoded as PNG.
_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
_PASS_THROUGH = ("http://", "https://", "data:")
#: Marks a BPE / SentencePiece token's leading space ("Ġ", "▁").
_SPACE_MARKS = "Ġ▁ \t\n"


def image_url(image: Any) -> str:
    """An image as the `url` of an OpenAI image part: a data URL (base64), or an http(s)/data URL as is.

    Local files are checked with PIL first, so a missing or broken file is an `ImageError` naming it.
    """
    from PIL import Image

    if isinstance(image, str) and image.startswith(_PASS_THROUGH):
        return image
    if isinstance(image, Image.Image):
        return _data_url(_png_bytes(image), "image/png")
    if not isinstance(image, str | os.PathLike):
        raise ImageError(f"expected an image path, URL or PIL image, got {type(image).__name__}")
    picture = load_image(image)  # raises ImageError for a missing, non-file or undecodable image
    path = os.path.expanduser(os.fspath(image))
    with Image.open(path) as opened:
        kind = opened.format
    if kind in _MIME:
        with open(path, "rb") as handle:
            return _data_url(handle.read(), _MIME[kind])
    return _data_url(_png_bytes(picture), "image/png")


def _png_bytes(picture: Any) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def openai_content(content: Any) -> Any:
    """Message content in OpenAI's form: a string as is; image parts as `image_url` parts."""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        kind = part.get("type")
        if kind == "image":
            payload = part.get("image", part.get("path", part.get("url")))
            if payload is None:
                raise ImageError("an image part has no image (expected {'type': 'image', 'image': PATH})")
            parts.append({"type": "image_url", "image_url": {"url": image_url(payload)}})
        elif kind == "text":
            parts.append({"type": "text", "text": str(part.get("text", ""))})
        else:  # already OpenAI's (image_url, input_audio...)
            parts.append(part)
    return parts


def _letter_of(token: str, letters: Sequence[str]) -> str | None:
    text = token.strip(_SPACE_MARKS)
    return text if text in letters else None


class OpenAICompatibleVision(OpenAICompatible):
    """A vision-language model served behind an OpenAI-compatible chat API (see the module docstring).

    Args:
        model: the model name the server knows (GET /v1/models).
        base_url: the API root including `/v1` (LMDeploy: `http://127.0.0.1:23333/v1`).
        prefill: whether the server continues a final assistant message (vLLM: yes, via
            `continue_final_message`; LMDeploy: no, so set false).
        top_logprobs: how many alternatives per token to ask for when choosing a letter (LMDeploy and
            vLLM allow up to 20).
        Other arguments are `OpenAICompatible`'s (api_key_env, timeout, max_retries, extra_body,
        max_new_tokens, temperature...). The mode is always "chat". Greedy by default.
    """

    #: The illustrated writer may end its messages with the start of the answer (see `prefill`).
    prefills_messages = True

    def __init__(
        self,
        model: str = "",
        base_url: str = "http://127.0.0.1:23333/v1",
        *,
        prefill: bool = True,
        top_logprobs: int = 20,
        do_sample: bool = False,
        mode: str = "chat",
        meta_template: Any = None,
        **kwargs: Any,
    ) -> None:
        if mode != "chat":
            raise ConfigError(f"OpenAICompatibleVision speaks the chat API only (mode: chat), not {mode!r}")
        super().__init__(
            model=model,
            base_url=base_url,
            mode="chat",
            meta_template=meta_template,
            do_sample=do_sample,
            **kwargs,
        )
        self.prefill = prefill
        self.top_logprobs = max(1, min(int(top_logprobs), 20))

    # -- messages -------------------------------------------------------------------------------
    def to_messages(self, inputs: Prompt) -> list[dict]:
        """OpenAI chat messages, image parts as base64 data URLs (`ImageError` for a bad image)."""
        messages = super().to_messages(inputs)
        for message in messages:
            message["content"] = openai_content(message["content"])
        return messages

    def _with_images(self, inputs: Prompt, images: Sequence[Any] | None) -> Prompt:
        """`inputs` with `images` added to the last user message (or a new one around prompt text)."""
        if not images:
            return inputs
        parts = [{"type": "image", "image": image} for image in images]
        if isinstance(inputs, str):
            return [{"role": "user", "content": [*parts, {"type": "text", "text": inputs}]}]
        messages = [dict(m) for m in inputs]
        for message in reversed(messages):
            if message.get("role") == "user":
                content = message.get("content", "")
                content = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
                message["content"] = [*parts, *content]
                return messages
        return [*messages, {"role": "user", "content": parts}]

    def _split_primer(self, inputs: Prompt) -> tuple[Prompt, str]:
        """(messages to send, primer to cut from the answer) for a server that cannot prefill."""
        if self.prefill or isinstance(inputs, str) or not inputs or inputs[-1].get("role") != "assistant":
            return inputs, ""
        primer = inputs[-1].get("content", "")
        return list(inputs[:-1]), primer if isinstance(primer, str) else ""

    def _payload(self, inputs: Prompt, gen_params: dict, stream: bool) -> tuple[dict, tuple[str, ...]]:
        payload, stop_words = super()._payload(inputs, gen_params, stream)
        messages = payload.get("messages") or []
        if self.prefill and messages and messages[-1]["role"] == "assistant":
            payload.setdefault("continue_final_message", True)
            payload.setdefault("add_generation_prompt", False)
        return payload, stop_words

    # -- generation -----------------------------------------------------------------------------
    def stream_text(
        self, inputs: Prompt, images: Sequence[Any] | None = None, **gen_params: Any
    ) -> Iterator[str]:
        """Stream the answer to `inputs` (messages with image parts, or prompt text plus `images`)."""
        prompt, primer = self._split_primer(self._with_images(inputs, images))
        if not primer:
            yield from super().stream_text(prompt, **gen_params)
            return
        # The model restarts the answer: hold it back, then give what follows the primer.
        text = self.complete(prompt, **gen_params).text
        head, found, tail = text.partition(primer)
        yield tail if found and not head.strip() else text

    def caption(
        self, image: Any, prompt: str = "Describe this image in one sentence.", **gen_params: Any
    ) -> str:
        """A description of one image."""
        messages = [
            {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": prompt}]}
        ]
        return "".join(self.stream_text(messages, **gen_params)).strip()

    def choose_letter(
        self,
        inputs: Prompt,
        letters: Sequence[str] = ("A", "B", "C", "D"),
        *,
        images: Sequence[Any] | None = None,
        primer: str = "",
    ) -> LetterChoice:
        """Which letter the model answers: from `logprobs` when the server sends them, else the text.

        With logprobs, the probabilities are a softmax over the offered letters among the first letter
        token's alternatives (a letter not among them gets 0). Raises `LLMError` when the answer names
        no offered letter.
        """
        if not letters:
            raise LLMError("choose_letter needs at least one letter")
        messages = self._with_images(inputs, images)
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        if primer and self.prefill:
            messages = [*messages, {"role": "assistant", "content": primer}]
        payload, _ = self._payload(
            messages, {"max_new_tokens": 16 if not self.prefill else 4, "do_sample": False}, False
        )
        payload.update(logprobs=True, top_logprobs=self.top_logprobs)
        body = self.post_json(payload)
        choices = body.get("choices") or []
        if not choices:
            raise LLMError(f"the server's answer has no choices: {str(body)[:300]}")
        choice = choices[0]
        picked = _from_logprobs(choice.get("logprobs"), letters)
        if picked is not None:
            return picked
        text = (choice.get("message") or {}).get("content") or ""
        letter = _letter_in_text(text, letters, primer)
        if letter is None:
            raise LLMError(f"the answer {text[:200]!r} names none of {', '.join(letters)}")
        return LetterChoice(letter=letter, probabilities={})


def _from_logprobs(logprobs: Any, letters: Sequence[str]) -> LetterChoice | None:
    """The choice read at the first answer token that is an offered letter, or None without logprobs."""
    if not isinstance(logprobs, dict):
        return None
    for entry in logprobs.get("content") or []:
        if _letter_of(str(entry.get("token", "")), letters) is None:
            continue
        scores: dict[str, float] = {}
        for alternative in [entry, *(entry.get("top_logprobs") or [])]:
            letter = _letter_of(str(alternative.get("token", "")), letters)
            logprob = alternative.get("logprob")
            if (
                letter is not None
                and isinstance(logprob, int | float)
                and logprob > scores.get(letter, -math.inf)
            ):
                scores[letter] = float(logprob)
        top = max(scores.values())
        weights = {letter: math.exp(scores[letter] - top) if letter in scores else 0.0 for letter in letters}
        total = sum(weights.values())
        probabilities = {letter: weight / total for letter, weight in weights.items()}
        best = max(probabilities, key=probabilities.__getitem__)
        return LetterChoice(letter=best, probabilities=probabilities)
    return None


def _letter_in_text(text: str, letters: Sequence[str], primer: str) -> str | None:
    """The first offered letter standing alone in `text` (after `primer` when the text repeats it)."""
    _, found, after = text.partition(primer) if primer else ("", "", text)
    allowed = "".join(re.escape(letter) for letter in letters)
    match = re.search(rf"(?<![A-Za-z])([{allowed}])(?![A-Za-z])", after if found else text)
    return match.group(1) if match else None
