"""`IllustratedWriter`: illustrated writing (图文写作) in the manner of InternLM-XComposer2, on any model.

Five steps, each a public method that works on its own:

1. `write_article` / `stream_article`: the article, from a title (plus optional material) or an instruction;
2. `choose_positions`: the article is shown as `<Seg0> ...`, `<Seg1> ...` lines and the model names the
   lines after which an image fits (`适合插入图像的行是<Seg1>, <Seg3>...`), parsed by `parse_positions`;
3. `write_caption(s)`: for each position, a caption, with the captions already chosen carried forward
   in the prompt (the assistant turn is primed with `标题是"`; the caption ends at the closing quote);
4. `retrieve`: candidate images for a caption from a local gallery (`ImageRetrieval` / `GalleryIndex`),
   leaving out images already used;
5. `choose_image`: a vision-language model picks among up to four candidates (A-D). With a
   `VisionLanguageModel` the letter is read from the next-token logits; with a model that only writes
   text, its answer is parsed (`最合适的图是 D`); if that fails too, the best retrieval score wins.

`write()` / `stream()` run them all and save a folder with `article.md`, `article.html` and `images/`.
Prompts exist in Chinese (XComposer2's own wording) and English (`language="en"`).

The text steps (1-3) use `llm`; step 5 uses `vlm` (by default `llm` itself when it is a
`VisionLanguageModel`, as with XComposer2, which does every step with one model).

This module runs the steps; the prompts and the parsing of the answers are in `writer_prompts`, the
request, the results and the article's files in `writer_article`. The names that moved there are
re-exported here (`import X as X`), so `inkagent.agents.writer.X` keeps working.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..actions.base import Action
from ..errors import ActionError, ConfigError, InkAgentError, LLMError
from ..schema import (
    ActionResult,
    AgentError,
    AgentEvent,
    AgentState,
    FinalAnswer,
    Message,
    ToolCall,
    ToolCallStarted,
    ToolResult,
    UserMessage,
)
from .chat import stream_reply
from .skill import SkillAgent
from .writer_article import Article, ArticleOutput, Choice, WriteRequest, _request
from .writer_article import _unique_folder as _unique_folder
from .writer_article import existing_article_files as existing_article_files
from .writer_article import render_html as render_html
from .writer_prompts import _CLOSING_QUOTE as _CLOSING_QUOTE
from .writer_prompts import _SEG as _SEG
from .writer_prompts import (
    LETTERS,
    PROMPTS,
    WriterPrompts,
    _fallback_query,
    parse_caption,
    parse_letter,
    parse_positions,
    split_segments,
    spread_positions,
)
from .writer_prompts import Prompts as Prompts

logger = logging.getLogger(__name__)


# -- the agent ------------------------------------------------------------------------------------


class IllustratedWriter(WriterPrompts, ArticleOutput, SkillAgent):
    """Writes an article and illustrates it from a gallery (see the module docstring).

    Args:
        llm: the text model (steps 1-3): an inkagent backend or a lagent model.
        vlm: the model that picks images (step 5): a `VisionLanguageModel` or `OpenAICompatibleVision`
            (a model server), a path / hub id or a mapping of `VisionLanguageModel` arguments to load
            one (a mapping with `type: OpenAICompatibleVision` builds that), a text model (its answer is
            parsed), or None (the best retrieval score decides; `llm` is used when it can choose).
        gallery: the folder of images to illustrate with (or pass `retriever`).
        clip_model: the CLIP-style model of the gallery index.
        retriever: an `ImageRetrieval` action or a `GalleryIndex` (instead of `gallery`).
        language: "zh" (XComposer2's prompts) or "en".
        num_images: how many images an article gets.
        num_candidates: how many retrieved images the chooser sees (1 to 8; XComposer2 uses 4).
        min_words: the article's length asked for in step 1.
        out_dir: where article folders are made (one per title) when `write` is given no folder.
        name / description: the tool's name and description when used as an action.
        gen_params: generation parameters for the article (step 1).
    """

    def __init__(
        self,
        llm: Any,
        *,
        vlm: Any = None,
        gallery: str | os.PathLike[str] | None = None,
        clip_model: str | None = None,
        retriever: Any = None,
        language: str = "zh",
        num_images: int = 6,
        num_candidates: int = 4,
        min_words: int = 800,
        out_dir: str | os.PathLike[str] = "articles",
        name: str = "IllustratedWriter",
        description: str = "Write an illustrated article (text and images from the gallery) for a title; "
        "returns the folder with article.md and article.html.",
        **gen_params: Any,
    ) -> None:
        if language not in PROMPTS:
            raise ConfigError(f"language must be one of {sorted(PROMPTS)} (got {language!r})")
        if not 1 <= num_candidates <= len(LETTERS):
            raise ConfigError(f"num_candidates must be between 1 and {len(LETTERS)} (got {num_candidates})")
        if num_images < 0:
            raise ConfigError(f"num_images must be 0 or more (got {num_images})")
        self.llm = llm
        self.vlm = _load_vlm(vlm) if vlm is not None else (llm if hasattr(llm, "choose_letter") else None)
        if retriever is None and gallery is not None:
            from ..actions.image_retrieval import DEFAULT_CLIP, ImageRetrieval

            retriever = ImageRetrieval(gallery, clip_model or DEFAULT_CLIP, top_k=num_candidates)
        self.retriever = retriever
        self.language = language
        self.prompts = PROMPTS[language]
        self.num_images = num_images
        self.num_candidates = num_candidates
        self.min_words = min_words
        self.out_dir = Path(out_dir)
        self.name = name
        self.description = description
        self.gen_params = gen_params
        self.memory: list[Message] = []
        self.last_article: Article | None = None

    failure_prefix = "Illustrated writing failed"

    def reset(self) -> None:
        """Forget the conversation and the last article."""
        self.memory = []
        self.last_article = None

    # -- step 1: the article --------------------------------------------------------------------
    def stream_article(
        self,
        title: str = "",
        *,
        instruction: str | None = None,
        material: str | None = None,
        **gen_params: Any,
    ) -> Iterator[str]:
        """Step 1, streamed: the article's text deltas."""
        messages = [
            {
                "role": "user",
                "content": self.article_prompt(title, instruction=instruction, material=material),
            }
        ]
        yield from stream_reply(self.llm, messages, **{**self.gen_params, **gen_params})

    def write_article(
        self,
        title: str = "",
        *,
        instruction: str | None = None,
        material: str | None = None,
        **gen_params: Any,
    ) -> str:
        """Step 1: the article's text."""
        return "".join(
            self.stream_article(title, instruction=instruction, material=material, **gen_params)
        ).strip()

    # -- step 2: where the images go ------------------------------------------------------------
    def _positions(self, segments: Sequence[str], num_images: int) -> tuple[list[int], str, str | None]:
        """Positions, the model's answer, and what went wrong (None when the answer was usable)."""
        messages = [{"role": "user", "content": self.positions_prompt(segments, num_images)}]
        answer = "".join(stream_reply(self.llm, messages, max_new_tokens=128))
        positions = parse_positions(answer, len(segments), self.prompts.positions_marker)
        if not positions:
            fallback = spread_positions(segments, num_images)
            return (
                fallback,
                answer,
                f"no usable <SegN> in the model's answer {answer!r}; spread over the article: {fallback}",
            )
        if len(positions) > num_images:
            positions = positions[:num_images]
        return positions, answer, None

    def choose_positions(self, segments: Sequence[str], num_images: int | None = None) -> list[int]:
        """Step 2: the segments after which an image goes (spread evenly if the answer has none)."""
        positions, _, problem = self._positions(
            segments, self.num_images if num_images is None else num_images
        )
        if problem:
            logger.warning("%s", problem)
        return positions

    # -- step 3: captions -----------------------------------------------------------------------
    def write_caption(
        self, segments: Sequence[str], position: int, earlier: dict[int, str] | None = None
    ) -> str:
        """Step 3 for one position; `earlier` holds the captions already chosen ({position: caption})."""
        messages = [{"role": "user", "content": self.caption_prompt(segments, position, dict(earlier or {}))}]
        prompt = self._primed(self.llm, messages, self.prompts.caption_primer)
        continuation = "".join(stream_reply(self.llm, prompt, max_new_tokens=96))
        return parse_caption(continuation)

    def write_captions(self, segments: Sequence[str], positions: Sequence[int]) -> dict[int, str]:
        """Step 3: a caption for every position, each prompt carrying the captions before it."""
        captions: dict[int, str] = {}
        for position in positions:
            captions[position] = self.write_caption(segments, position, captions) or _fallback_query(
                segments[position]
            )
        return captions

    # -- step 4: candidates ---------------------------------------------------------------------
    def retrieve(self, caption: str, exclude: Sequence[str] = ()) -> list[Any]:
        """Step 4: up to `num_candidates` gallery images for a caption, best first, none from `exclude`."""
        if self.retriever is None:
            raise ActionError(
                "no image gallery: give the writer a gallery folder (gallery=...) or a retriever"
            )
        return list(self.retriever.search(caption, self.num_candidates, exclude))

    # -- step 5: the choice ---------------------------------------------------------------------
    def choose_image(
        self, segments: Sequence[str], position: int, candidates: Sequence[Any], placed: Sequence[int] = ()
    ) -> Choice:
        """Step 5: pick one of the candidates (logits, else the parsed answer, else the best score)."""
        candidates = list(candidates)
        if not candidates:
            return Choice(position, None, [], method="none")
        if len(candidates) == 1:
            return Choice(position, candidates[0], candidates, letter="A", method="only")
        letters = list(LETTERS[: len(candidates)])
        chooser, marker = self.vlm, self.prompts.choice_marker
        if chooser is None:
            return Choice(position, candidates[0], candidates, letter="A", method="score")
        if hasattr(chooser, "choose_letter"):
            messages = self.choice_messages(segments, position, candidates, placed)
            try:
                picked = chooser.choose_letter(messages, letters, primer=marker)
                hit = candidates[letters.index(picked.letter)]
                return Choice(
                    position, hit, candidates, picked.letter, "logits", probabilities=picked.probabilities
                )
            except LLMError as exc:  # letters the tokenizer cannot tell apart: let the model write
                logger.info("cannot read the choice from logits (%s); parsing the answer instead", exc)
            prompt: Any = messages
        else:
            prompt = [
                {
                    "role": "user",
                    "content": self.choice_text_prompt(segments, position, len(candidates), placed),
                }
            ]
        answer = "".join(stream_reply(chooser, prompt, max_new_tokens=32))
        letter = parse_letter(answer, letters, marker)
        if letter is None:
            logger.warning(
                "no choice (%s) in the answer %r; taking the best retrieval score", "/".join(letters), answer
            )
            return Choice(position, candidates[0], candidates, "A", "score", answer=answer)
        return Choice(position, candidates[letters.index(letter)], candidates, letter, "text", answer=answer)

    # -- the whole pipeline ---------------------------------------------------------------------
    def stream(self, message: str | dict | WriteRequest, **gen_params: Any) -> Iterator[AgentEvent]:
        """Run the five steps and save the article; yield the events.

        The article streams as `TextDelta`s; steps 2-5 and the saving appear as tool calls of this
        skill (`IllustratedWriter.choose_positions`, `.write_caption`, `.retrieve`, `.choose_image`,
        `.save`) with their results, so a REPL shows them; the `FinalAnswer` holds the article in
        Markdown. `message` is a title, or `{"title" | "instruction", "material", "num_images", "out_dir"}`.
        """
        request = _request(message)
        shown = request.instruction or request.title
        yield UserMessage(text=shown)
        prompt = [
            {
                "role": "user",
                "content": self.article_prompt(
                    request.title, instruction=request.instruction, material=request.material
                ),
            }
        ]
        written: list[str] = []
        yield from self.reply_events(prompt, {**self.gen_params, **gen_params}, written)
        if not written:
            return
        text = written[0]
        segments = split_segments(text)
        if not segments:
            yield AgentError(kind="llm_error", message="The model wrote no article.")
            yield FinalAnswer(text="", state=AgentState.LLM_ERROR)
            return
        title = request.title or segments[0].lstrip("# ").strip()
        article = Article(title=title, text=text, segments=segments)
        num_images = self.num_images if request.num_images is None else request.num_images
        try:
            yield from self._illustrate(article, num_images)
        except Exception as exc:  # keep the article: save it with the images chosen so far
            reason = str(exc) if isinstance(exc, InkAgentError) else f"{type(exc).__name__}: {exc}"
            logger.debug("illustrating failed", exc_info=True)
            article.problems.append(f"Illustrating the article failed: {reason}")
            yield AgentError(kind="tool_error", message=article.problems[-1])
        call = ToolCall(name=f"{self.name}.save", arguments={"folder": request.out_dir})
        yield ToolCallStarted(call=call)
        folder = self.save(article, request.out_dir, overwrite=request.overwrite)
        files = [str(folder / "article.md"), str(folder / "article.html")]
        yield ToolResult(
            call=call,
            result=ActionResult(
                name=call.name, arguments=call.arguments, output=str(folder), files=files, call_id=call.id
            ),
        )
        self.last_article = article
        self.memory += [
            Message(role="user", content=shown),
            Message(role="assistant", content=article.markdown),
        ]
        yield FinalAnswer(text=article.markdown)

    def _illustrate(self, article: Article, num_images: int) -> Iterator[AgentEvent]:
        """Steps 2-5 on a written article, as tool-call events; fills `article` in place."""
        if num_images == 0:
            return
        segments = article.segments
        call = _call(self.name, "choose_positions", num_images=num_images)
        yield ToolCallStarted(call=call)
        article.positions, answer, problem = self._positions(segments, num_images)
        if problem:
            yield AgentError(kind="parse_error", message=problem, raw=answer)
        yield _result(call, json.dumps(article.positions))

        for position in article.positions:
            call = _call(self.name, "write_caption", position=position)
            yield ToolCallStarted(call=call)
            caption = self.write_caption(segments, position, article.captions)
            if not caption:
                caption = _fallback_query(segments[position])
                yield AgentError(
                    kind="parse_error",
                    message=f"no caption for <Seg{position}>; searching with the segment's text",
                )
            article.captions[position] = caption
            yield _result(call, caption)

        if self.retriever is None:
            article.problems.append("No image gallery is configured: the article is saved without images.")
            yield AgentError(kind="tool_error", message=article.problems[-1])
            return
        used: list[str] = []
        placed: list[int] = []
        for position in article.positions:
            call = _call(self.name, "retrieve", caption=article.captions[position], exclude=list(used))
            yield ToolCallStarted(call=call)
            candidates = self.retrieve(article.captions[position], used)
            listing = [{"path": h.path, "score": round(h.score, 4)} for h in candidates]
            if not candidates:
                yield ToolResult(
                    call=call,
                    result=ActionResult(
                        name=call.name,
                        arguments=call.arguments,
                        error="the gallery has no unused image left",
                        error_type="tool_error",
                        call_id=call.id,
                    ),
                )
                continue
            yield _result(call, json.dumps(listing, ensure_ascii=False), [h.path for h in candidates])

            call = _call(
                self.name, "choose_image", position=position, candidates=[h.path for h in candidates]
            )
            yield ToolCallStarted(call=call)
            choice = self.choose_image(segments, position, candidates, placed)
            article.choices[position] = choice
            used.append(choice.hit.path)
            placed.append(position)
            summary = {"letter": choice.letter, "method": choice.method, "path": choice.hit.path}
            yield _result(call, json.dumps(summary, ensure_ascii=False), [choice.hit.path])

    def write(self, message: str | dict | WriteRequest, **gen_params: Any) -> Article:
        """Run the whole pipeline; return the saved `Article`.

        Raises `InkAgentError` when no article was written; a failure after that (no gallery, a
        retrieval error) leaves the article saved, with the reason in `Article.problems`.
        """
        problem = None
        self.last_article = None
        for event in self.stream(message, **gen_params):
            if isinstance(event, AgentError):
                problem = event.message
        if self.last_article is None:
            raise InkAgentError(problem or "the article could not be written")
        return self.last_article

    def as_action(self) -> Action:
        """This skill as a tool: `{"title": ...}` in, the article's folder and text out."""
        return WriteSkill(self)


class WriteSkill(Action):
    """Write an illustrated article for a title."""

    call_timeout_s = 900.0  # writing, captioning and choosing images takes minutes

    def __init__(self, writer: IllustratedWriter) -> None:
        self.writer = writer
        self.name = writer.name
        self.description = writer.description

    def run(self, title: str, material: str | None = None) -> ActionResult:
        """Write an illustrated article.

        Args:
            title: the article's title (or a short instruction)
            material: text the article should draw on
        """
        try:
            article = self.writer.write({"title": title, "material": material})
        except InkAgentError as exc:
            raise ActionError(str(exc)) from exc
        header = f"The article is in {article.folder} (article.md, article.html, {len(article.images)} images).\n\n"
        return ActionResult(
            name=self.name, output=header + article.markdown, files=[str(p) for p in article.images]
        )


def _load_vlm(spec: Any) -> Any:
    """A chooser from the `vlm` argument: an object as is, a path or a mapping loaded as a `VisionLanguageModel`;
    a mapping with `type` names a backend (`OpenAICompatibleVision` for a model server)."""
    if isinstance(spec, dict) and "type" in spec:
        from ..registry import BUILTIN_LLMS, LookupFailed, load_object

        kwargs = {k: v for k, v in spec.items() if k != "type"}
        try:
            backend = load_object(spec["type"], table=BUILTIN_LLMS)
        except LookupFailed as exc:
            raise ConfigError(str(exc), key="agent.vlm.type") from exc
        return backend(**kwargs)
    if isinstance(spec, str | os.PathLike | dict):
        from ..llms.vlm import VisionLanguageModel

        return VisionLanguageModel(**spec) if isinstance(spec, dict) else VisionLanguageModel(os.fspath(spec))
    return spec


def _call(skill: str, step: str, **arguments: Any) -> ToolCall:
    return ToolCall(name=f"{skill}.{step}", arguments=arguments)


def _result(call: ToolCall, output: str, files: Sequence[str] = ()) -> ToolResult:
    return ToolResult(
        call=call,
        result=ActionResult(
            name=call.name, arguments=call.arguments, output=output, files=list(files), call_id=call.id
        ),
    )
