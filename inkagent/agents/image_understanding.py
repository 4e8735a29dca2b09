"""`ImageUnderstanding`: questions about one or several images, multi-turn, streamed.

Images given in a turn stay in the conversation: a follow-up question ("and the second one?") is
answered with every image seen so far in the prompt, where it was first shown. The model is a
`VisionLanguageModel` (any `AutoModelForImageTextToText` checkpoint); pass it loaded, or its path.

Images come with a message as `stream(question, images=[...])`, as a dict
`{"question": ..., "images": [...]}` (the tool's call shape), or are attached beforehand with
`attach(path, ...)` (what a REPL does when the user drops a file in). Each image is checked when it is
given, so a wrong path fails at once with the file's name, before the model runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from ..actions.base import Action
from ..errors import ActionError
from ..schema import AgentEvent, FinalAnswer, Message, UserMessage
from .skill import SkillAgent, guarded


class VisionMessage(Message):
    """A chat message with the images shown in it (absolute paths)."""

    images: list[str] = Field(default_factory=list)


class ImageUnderstanding(SkillAgent):
    """Multi-turn visual question answering (see the module docstring).

    Args:
        llm: a `VisionLanguageModel`, or a model path / hub id to load as one.
        system_prompt: an optional system message.
        name / description: the tool's name and description when used as an action.
        model_kwargs: `VisionLanguageModel` arguments when `llm` is a path (device, dtype...).
        gen_params: generation parameters for every call (max_new_tokens, temperature...).
    """

    def __init__(
        self,
        llm: Any,
        system_prompt: str | None = None,
        *,
        name: str = "ImageUnderstanding",
        description: str = "Answer a question about one or several local images.",
        model_kwargs: dict | None = None,
        **gen_params: Any,
    ) -> None:
        if isinstance(llm, str | os.PathLike):
            from ..llms.vlm import VisionLanguageModel

            llm = VisionLanguageModel(os.fspath(llm), **dict(model_kwargs or {}))
        self.llm = llm
        self.system_prompt = system_prompt
        self.name = name
        self.description = description
        self.gen_params = gen_params
        self.memory: list[Message] = []
        self._attached: list[str] = []

    note_role = "user"  # vision chat templates take a system message only first

    def reset(self) -> None:
        """Forget the conversation and any attached images."""
        self.memory = []
        self._attached = []

    def attach(self, *images: str | os.PathLike[str]) -> list[str]:
        """Attach images to the next message; returns their checked absolute paths."""
        checked = _check_images(images)
        self._attached.extend(checked)
        return checked

    def prompt_messages(self) -> list[dict]:
        """The conversation in the multimodal chat format (images first in the turn that showed them)."""
        messages: list[dict] = []
        if self.system_prompt:
            messages.append({"role": "system", "content": [{"type": "text", "text": self.system_prompt}]})
        for message in self.memory:
            parts = [{"type": "image", "image": path} for path in getattr(message, "images", [])]
            parts.append({"type": "text", "text": message.content})
            messages.append({"role": message.role, "content": parts})
        return messages

    def stream(
        self, message: str | dict, images: Sequence[str | os.PathLike[str]] | None = None, **gen_params: Any
    ) -> Iterator[AgentEvent]:
        """Yield `UserMessage`, `PromptSent`, `TextDelta`s, `ModelOutput` and the `FinalAnswer`.

        A missing or unreadable image raises `ImageError` (an `InkAgentError`) before any event;
        a question without images is asked about the images already in the conversation, if any.
        """
        question, given = _split_message(message)
        shown = [*self._attached, *_check_images([*given, *(images or [])])]  # a bad path raises here
        start, attached = len(self.memory), self._attached
        self._attached = []

        def undo() -> None:  # the turn did not happen: its images wait for the next message
            del self.memory[start:]
            self._attached = attached

        return guarded(self._turn(question, shown, {**self.gen_params, **gen_params}), undo)

    def _turn(self, question: str, shown: list[str], gen_params: dict[str, Any]) -> Iterator[AgentEvent]:
        self.memory.append(VisionMessage(role="user", content=question, images=shown))
        yield UserMessage(text=question)
        answer: list[str] = []
        yield from self.reply_events(self.prompt_messages(), gen_params, answer)
        if answer:
            self.memory.append(Message(role="assistant", content=answer[0]))
            yield FinalAnswer(text=answer[0])

    def note(self, text: str) -> dict[str, Any]:
        """A message in the multimodal chat format."""
        return {"role": self.note_role, "content": [{"type": "text", "text": text}]}

    def chat(
        self, message: str | dict, images: Sequence[str | os.PathLike[str]] | None = None, **gen_params: Any
    ):
        """Answer one question; returns lagent's `AgentReturn` (`.response` is the answer)."""
        return super().chat(message, images, **gen_params)

    def stream_chat(self, message: str | dict, images: Sequence[str] | None = None, **gen_params: Any):
        """lagent's streaming view: `AgentReturn` snapshots."""
        yield from super().stream_chat(message, images, **gen_params)

    def as_action(self) -> Action:
        """This agent as a tool: `{"images": [...], "question": ...}` in, the answer out.

        Each call is a fresh conversation about the images it names.
        """
        return ImageQuestionSkill(self)


class ImageQuestionSkill(Action):
    """Answer a question about local images."""

    def __init__(self, agent: ImageUnderstanding) -> None:
        self.agent = agent
        self.name = agent.name
        self.description = agent.description

    def run(self, images: list[str], question: str) -> str:
        """Ask a question about images.

        Args:
            images: paths of local image files
            question: the question about them
        """
        self.agent.reset()
        result = self.agent.chat(question, images)
        if not result.response:
            raise ActionError(result.errmsg or "the model gave no answer")
        return result.response


def _split_message(message: str | dict) -> tuple[str, list[str]]:
    if isinstance(message, dict):
        images = message.get("images") or []
        if isinstance(images, str | os.PathLike):
            images = [images]
        return str(message.get("question", message.get("content", ""))), list(images)
    return str(message), []


def _check_images(images: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Absolute paths of readable images; `ImageError` naming the first bad one."""
    from ..llms.vlm import load_image

    checked = []
    for image in images:
        load_image(image)
        checked.append(str(Path(image).expanduser().resolve()))
    return checked
