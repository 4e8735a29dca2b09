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
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
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

logger = logging.getLogger(__name__)

LETTERS = "ABCDEFGH"


@dataclass(frozen=True)
class Prompts:
    """The wording of every step in one language."""

    article: str  # {title} {min_words}
    material: str  # {material}, appended to `article`
    positions: str  # {n}, appended to the <SegN> listing
    positions_marker: str  # what precedes the <SegN> list in the answer
    earlier_caption: str  # {k} {caption}
    earlier_join: str
    earlier_open: str
    earlier_close: str
    caption: str  # {k}
    caption_primer: str  # the start of the assistant's answer; the model continues with the caption
    choice: str  # {context}
    candidates: str
    choice_marker: str  # what precedes the letter in the answer; also the primer for logits
    placed_image: str  # an image already placed, in the context of a text-only chooser


PROMPTS: dict[str, Prompts] = {
    "zh": Prompts(
        article="根据以下标题：“{title}”，创作长文章，字数不少于{min_words}字。",
        material="请结合以下文本素材：\n“{material}”",
        positions=" 根据上述文章，选择适合插入图像的{n}行",
        positions_marker="适合插入图像的行是",
        earlier_caption='<Seg{k}>后插入图像对应的标题是"{caption}"',
        earlier_join="， ",
        earlier_open="现在",
        earlier_close="。",
        caption="给出适合在<Seg{k}>后插入的图像对应的标题。",
        caption_primer='标题是"',
        choice="根据给定上下文和候选图像，选择合适的配图：{context}",
        candidates="候选图像包括: ",
        choice_marker="最合适的图是",
        placed_image="<image>",
    ),
    "en": Prompts(
        article='Write a long article of at least {min_words} words titled "{title}".',
        material=' Use this material:\n"{material}"',
        positions=" Based on the article above, choose the {n} lines after which an image fits best.",
        positions_marker="The lines suitable for images are",
        earlier_caption='the image after <Seg{k}> has the caption "{caption}"',
        earlier_join="; ",
        earlier_open="So far, ",
        earlier_close=". ",
        caption="Give the caption of the image to insert after <Seg{k}>.",
        caption_primer='Caption: "',
        choice="Choose the best image for the given context among the candidates: {context}",
        candidates="Candidates: ",
        choice_marker="The best image is",
        placed_image="<image>",
    ),
}

_SEG = re.compile(r"<Seg(\d+)>")
_CLOSING_QUOTE = re.compile(r'["”]')


# -- parsing the model's answers ------------------------------------------------------------------


def split_segments(article: str) -> list[str]:
    """The article's segments: its non-empty lines (a heading, a paragraph), as XComposer2 splits it."""
    return [line.strip() for line in article.splitlines() if line.strip()]


def parse_positions(answer: str, num_segments: int, marker: str | None = None) -> list[int]:
    """Segment indexes named as `<SegN>` in the answer (after `marker` when present), valid, unique, sorted."""
    if marker and marker in answer:
        answer = answer.split(marker, 1)[1]
    found = [int(n) for n in _SEG.findall(answer)]
    return sorted({n for n in found if 0 <= n < num_segments})


def parse_caption(continuation: str) -> str:
    """The caption in the model's continuation of a primed `标题是"`: up to the closing quote (or line end)."""
    text = continuation.strip()
    quote = _CLOSING_QUOTE.search(text)
    if quote:
        text = text[: quote.start()]
    return text.splitlines()[0].strip() if text.strip() else ""


def parse_letter(answer: str, letters: Sequence[str], marker: str | None = None) -> str | None:
    """The first offered letter standing alone in the answer (after `marker` when present), or None."""
    if marker and marker in answer:
        answer = answer.split(marker, 1)[1]
    allowed = "".join(letters)
    match = re.search(rf"(?<![A-Za-z])([{re.escape(allowed)}])(?![A-Za-z])", answer) if allowed else None
    return match.group(1) if match else None


def spread_positions(segments: Sequence[str], n: int) -> list[int]:
    """`n` positions spread over the body segments (not the title, not headings): the fallback."""
    body = [i for i, seg in enumerate(segments) if i > 0 and not seg.lstrip().startswith("#")] or list(
        range(len(segments))
    )
    n = min(n, len(body))
    return sorted({body[(j * len(body)) // n] for j in range(n)}) if n else []


# -- results --------------------------------------------------------------------------------------


@dataclass
class Choice:
    """The image chosen for one position, and how it was chosen."""

    position: int
    hit: Any  # an `inkagent.actions.image_retrieval.Hit`, or None when nothing could be retrieved
    candidates: list[Any] = field(default_factory=list)
    letter: str | None = None
    method: str = "score"  # logits | text | score | only | none
    answer: str | None = None  # the model's text answer (text method)
    probabilities: dict[str, float] = field(default_factory=dict)  # logits method


@dataclass
class Article:
    """An illustrated article: the text, the steps' results, and where it was saved."""

    title: str
    text: str
    segments: list[str]
    positions: list[int] = field(default_factory=list)
    captions: dict[int, str] = field(default_factory=dict)
    choices: dict[int, Choice] = field(default_factory=dict)
    folder: Path | None = None
    markdown: str = ""
    images: list[Path] = field(default_factory=list)  # the copies in folder/images, in article order
    problems: list[str] = field(default_factory=list)  # steps that failed (the article was kept)


@dataclass
class WriteRequest:
    """What to write: a title (with optional material) or a free instruction."""

    title: str = ""
    instruction: str | None = None
    material: str | None = None
    num_images: int | None = None
    out_dir: str | None = None
    overwrite: bool = False  # replace article.md / article.html already in out_dir


# -- the agent ------------------------------------------------------------------------------------


class IllustratedWriter(SkillAgent):
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
    def article_prompt(
        self, title: str = "", *, instruction: str | None = None, material: str | None = None
    ) -> str:
        """The user message of step 1: the instruction as given, or the title template (plus material)."""
        if instruction:
            return instruction
        if not title:
            raise InkAgentError("give a title or an instruction")
        text = self.prompts.article.format(title=title, min_words=self.min_words)
        if material:
            text += self.prompts.material.format(material=material)
        return text

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
    @staticmethod
    def segment_listing(segments: Sequence[str], end: int | None = None) -> str:
        """Segments `0..end-1` as the `<SegN> text` lines every later prompt starts with."""
        return "".join(f"<Seg{i}> {text}\n" for i, text in enumerate(segments[:end]))

    def positions_prompt(self, segments: Sequence[str], num_images: int) -> str:
        return self.segment_listing(segments) + self.prompts.positions.format(n=num_images)

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
    def caption_prompt(self, segments: Sequence[str], position: int, earlier: dict[int, str]) -> str:
        """The article up to one segment past `position`, the captions so far, and the request."""
        p = self.prompts
        text = self.segment_listing(segments, position + 2)
        if earlier:
            listed = p.earlier_join.join(
                p.earlier_caption.format(k=k, caption=c) for k, c in sorted(earlier.items())
            )
            text += p.earlier_open + listed + p.earlier_close
        return text + p.caption.format(k=position)

    def _primed(self, llm: Any, messages: list[dict], primer: str) -> list[dict] | str:
        """The prompt with the assistant's answer already started: as a last assistant message for a
        chat-API backend that continues one (`prefills_messages`), else as text when it can render."""
        if getattr(llm, "prefills_messages", False):
            return [*messages, {"role": "assistant", "content": primer}]
        render = getattr(llm, "render", None)
        return render(messages) + primer if callable(render) else messages

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
    def choice_context(
        self, segments: Sequence[str], position: int, placed: Sequence[int], marker: str
    ) -> str:
        """The article up to `position`, with `marker` after each segment that already has an image."""
        lines = []
        for i, text in enumerate(segments[: position + 1]):
            lines.append(text)
            if i in placed and i != position:
                lines.append(marker)
        return "\n".join(lines)

    def choice_text_prompt(
        self, segments: Sequence[str], position: int, count: int, placed: Sequence[int] = ()
    ) -> str:
        """Step 5's prompt for a model that reads text only (images as `<image>` placeholders)."""
        p = self.prompts
        context = self.choice_context(segments, position, placed, p.placed_image)
        options = "\n".join(f"{LETTERS[i]}.<image>" for i in range(count))
        return p.choice.format(context=context) + "\n" + p.candidates + options

    def choice_messages(
        self, segments: Sequence[str], position: int, candidates: Sequence[Any], placed: Sequence[int] = ()
    ) -> list[dict]:
        """Step 5's prompt for a vision-language model: the candidates as image parts."""
        p = self.prompts
        context = self.choice_context(
            segments, position, placed, "[图像]" if self.language == "zh" else "[image]"
        )
        parts: list[dict] = [{"type": "text", "text": p.choice.format(context=context) + "\n" + p.candidates}]
        for i, hit in enumerate(candidates):
            parts.append({"type": "text", "text": ("\n" if i else "") + f"{LETTERS[i]}."})
            parts.append({"type": "image", "image": hit.path})
        return [{"role": "user", "content": parts}]

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

    # -- output ---------------------------------------------------------------------------------
    def render_markdown(self, article: Article, image_names: dict[int, str]) -> str:
        """Markdown: the segments in order, each chosen image right after its segment, under a `#` title."""
        title = article.title.strip()
        blocks = []
        for i, text in enumerate(article.segments):
            if i == 0 and title and text.lstrip("#").strip() == title:
                text = f"# {title}"  # the model's title line becomes the heading
            blocks.append(text)
            if i in image_names:
                alt = article.captions.get(i, "").replace("[", "(").replace("]", ")")
                blocks.append(f"![{alt}](images/{image_names[i]})")
        if title and not (blocks and blocks[0].startswith("#")):
            blocks.insert(0, f"# {title}")
        return "\n\n".join(blocks) + "\n"

    def save(
        self, article: Article, folder: str | os.PathLike[str] | None = None, *, overwrite: bool = False
    ) -> Path:
        """Write `article.md`, `article.html` and `images/` to `folder` (default: a new folder under `out_dir`).

        A `folder` that already holds an article is not overwritten unless `overwrite`: the article goes
        to a numbered folder beside it (`folder-2`, ...), which is returned.
        """
        if folder is None:
            target = _unique_folder(self.out_dir, article.title or "article")
        else:
            target = Path(folder)
            if not overwrite and existing_article_files(target):
                target = _unique_folder(target.parent, target.name)
        images_dir = target / "images"
        images_dir.mkdir(parents=True, exist_ok=True)
        names: dict[int, str] = {}
        article.images = []
        for number, position in enumerate(
            sorted(p for p, c in article.choices.items() if c.hit is not None), 1
        ):
            source = Path(article.choices[position].hit.path)
            # a name Markdown links can hold as is (no spaces or brackets)
            names[position] = f"{number:02d}-" + re.sub(r"[^\w.-]+", "-", source.name)
            shutil.copy2(source, images_dir / names[position])
            article.images.append(images_dir / names[position])
        article.markdown = self.render_markdown(article, names)
        (target / "article.md").write_text(article.markdown, encoding="utf-8")
        (target / "article.html").write_text(
            render_html(article.markdown, article.title, self.language), encoding="utf-8"
        )
        article.folder = target
        return target

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


# -- helpers --------------------------------------------------------------------------------------


def render_html(markdown: str, title: str, language: str = "zh") -> str:
    """A standalone HTML page of the Markdown article."""
    from ..errors import require

    require("markdown_it", "markdown-it-py")
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark").render(markdown)
    return (
        f'<!doctype html>\n<html lang="{language}">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n"
        "<style>body{max-width:46em;margin:2em auto;padding:0 1em;line-height:1.7;font-family:sans-serif}"
        "img{max-width:100%;display:block;margin:1em auto}</style>\n"
        f"</head>\n<body>\n{body}</body>\n</html>\n"
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


def _request(message: str | dict | WriteRequest) -> WriteRequest:
    if isinstance(message, WriteRequest):
        return message
    if isinstance(message, dict):
        allowed = set(WriteRequest.__dataclass_fields__)
        unknown = set(message) - allowed
        if unknown:
            raise InkAgentError(
                f"unknown keys {sorted(unknown)} in the writing request (expected {sorted(allowed)})"
            )
        return WriteRequest(**message)
    return WriteRequest(title=str(message).strip())


def _fallback_query(segment: str) -> str:
    """A retrieval query from a segment when the model gave no caption (CLIP reads ~77 tokens)."""
    return segment.lstrip("# ").strip()[:60]


def existing_article_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The files of `folder` that saving an article there would replace (article.md, article.html)."""
    return [path for path in (Path(folder) / "article.md", Path(folder) / "article.html") if path.exists()]


def _unique_folder(root: Path, title: str) -> Path:
    slug = re.sub(r'[\\/:*?"<>|\s]+', "-", title).strip("-.")[:60] or "article"
    candidate, number = root / slug, 2
    while candidate.exists():
        candidate, number = root / f"{slug}-{number}", number + 1
    return candidate


def _call(skill: str, step: str, **arguments: Any) -> ToolCall:
    return ToolCall(name=f"{skill}.{step}", arguments=arguments)


def _result(call: ToolCall, output: str, files: Sequence[str] = ()) -> ToolResult:
    return ToolResult(
        call=call,
        result=ActionResult(
            name=call.name, arguments=call.arguments, output=output, files=list(files), call_id=call.id
        ),
    )

