"""`ImageCaption`: describe a local image with a vision-language model.

The model (`VisionLanguageModel`: any `AutoModelForImageTextToText` checkpoint) is loaded on the first
call, not when the action is built, so listing actions or starting an agent stays fast. A missing or
unreadable image is an error that names the file; the agent's model reads it as the tool's answer.
"""

from __future__ import annotations

import threading
from typing import Any

from ..errors import ActionError
from .base import Action

DEFAULT_PROMPT = "Describe this image in one or two sentences."


class ImageCaption(Action):
    """Describe what a local image shows, in one or two sentences."""

    def __init__(
        self,
        llm: Any = None,
        *,
        model: str | None = None,
        prompt: str = DEFAULT_PROMPT,
        max_new_tokens: int = 128,
        **model_kwargs: Any,
    ) -> None:
        """
        Args:
            llm: a loaded `VisionLanguageModel` (shared with other skills), or None to load `model`.
            model: path or hub id of the vision-language model to load on first use.
            prompt: the instruction given with the image when the call names none.
            max_new_tokens: the longest caption, in tokens.
            model_kwargs: more `VisionLanguageModel` arguments (device, dtype, trust_remote_code...).
        """
        if llm is None and model is None:
            raise ActionError(
                "ImageCaption needs a vision-language model: pass llm=... or model='<path or hub id>'"
            )
        if llm is not None and not hasattr(llm, "caption"):
            raise ActionError(
                f"ImageCaption needs a VisionLanguageModel, not {type(llm).__name__}: give it model='<path>' "
                "or llm: {type: 'inkagent.llms.vlm:VisionLanguageModel', path: ...}, or for a model server "
                "(LMDeploy, vLLM) llm: {type: OpenAICompatibleVision, base_url: ..., model: ...}"
            )
        self._vlm = llm
        self._model = model
        self._model_kwargs = model_kwargs
        self.prompt = prompt
        self.max_new_tokens = max_new_tokens
        self._lock = threading.Lock()
        self._generating = threading.Lock()

    @property
    def vlm(self) -> Any:
        """The vision-language model, loaded on first use."""
        with self._lock:
            if self._vlm is None:
                from ..llms.vlm import VisionLanguageModel

                self._vlm = VisionLanguageModel(self._model, **self._model_kwargs)
            return self._vlm

    def run(self, image: str, prompt: str | None = None) -> str:
        """Describe an image.

        Args:
            image: path of a local image file (PNG, JPEG, WebP...)
            prompt: what to ask about the image (default: a short description)
        """
        from ..llms.vlm import load_image

        picture = load_image(image)  # before loading the model: a bad path fails fast
        vlm = self.vlm
        with self._generating:  # parallel calls of one turn share the model: one generation at a time
            return vlm.caption(picture, prompt or self.prompt, max_new_tokens=self.max_new_tokens)
