"""What `IllustratedWriter` says to its models and how it reads their answers: text in, text out.

- `Prompts` / `PROMPTS`: the wording of every step, in Chinese (XComposer2's own) and English;
- `WriterPrompts`: the writer's methods that build each step's prompt from that wording (the article
  request, the `<SegN>` listing, the caption request with the captions so far, the image choice as text
  or as image parts), a base class of `IllustratedWriter`;
- the parsers of the answers (`split_segments`, `parse_positions`, `parse_caption`, `parse_letter`), and
  what stands in for an unusable answer (`spread_positions`, `_fallback_query`).

Nothing here calls a model, so each piece can be read and tested on its own; `inkagent.agents.writer`
runs the steps and re-exports these names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InkAgentError

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


def _fallback_query(segment: str) -> str:
    """A retrieval query from a segment when the model gave no caption (CLIP reads ~77 tokens)."""
    return segment.lstrip("# ").strip()[:60]


# -- the prompts of the steps ---------------------------------------------------------------------


class WriterPrompts:
    """The prompt of each step, from the writer's `prompts` (a base class of `IllustratedWriter`,
    which sets `prompts`, `min_words` and `language`)."""

    prompts: Prompts
    min_words: int
    language: str

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

    # -- step 2: where the images go ------------------------------------------------------------
    @staticmethod
    def segment_listing(segments: Sequence[str], end: int | None = None) -> str:
        """Segments `0..end-1` as the `<SegN> text` lines every later prompt starts with."""
        return "".join(f"<Seg{i}> {text}\n" for i, text in enumerate(segments[:end]))

    def positions_prompt(self, segments: Sequence[str], num_images: int) -> str:
        return self.segment_listing(segments) + self.prompts.positions.format(n=num_images)

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
