"""The article of `IllustratedWriter`: what is asked for, what the steps produce, and its files.

- `WriteRequest`: a title (with optional material) or an instruction, and where to save (`_request`
  makes one from a title or a mapping);
- `Choice` and `Article`: the results of the steps (positions, captions, the chosen images, problems);
- `ArticleOutput`: the writer's `render_markdown` and `save` (a base class of `IllustratedWriter`):
  a folder with `article.md`, `article.html` (`render_html`) and `images/`, never over another
  article unless asked (`existing_article_files`).

No model is called here; `inkagent.agents.writer` runs the steps and re-exports these names.
"""

from __future__ import annotations

import html
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InkAgentError

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


# -- output ---------------------------------------------------------------------------------------


class ArticleOutput:
    """The article as files (a base class of `IllustratedWriter`, which sets `out_dir` and `language`)."""

    out_dir: Path
    language: str

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


def existing_article_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The files of `folder` that saving an article there would replace (article.md, article.html)."""
    return [path for path in (Path(folder) / "article.md", Path(folder) / "article.html") if path.exists()]


def _unique_folder(root: Path, title: str) -> Path:
    slug = re.sub(r'[\\/:*?"<>|\s]+', "-", title).strip("-.")[:60] or "article"
    candidate, number = root / slug, 2
    while candidate.exists():
        candidate, number = root / f"{slug}-{number}", number + 1
    return candidate
