"""`inkagent write TITLE` (illustrated writing) and `inkagent see IMAGE... QUESTION` (image understanding).

Both read an optional config (the usual `llm:` and `agent:` sections, with `agent.type` the skill);
without one they use the defaults below, which download their models on first use. Flags override the
config. Exit codes: 0 done, 1 the model failed, 2 a bad config, argument or image.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError, InkAgentError

#: Used when no --config is given (see configs/writer.yaml for the same, commented).
DEFAULT_WRITER = {
    "llm": {"type": "HFTransformer", "path": "internlm/internlm2_5-7b-chat"},
    "agent": {
        "type": "IllustratedWriter",
        "clip_model": "OFA-Sys/chinese-clip-vit-base-patch16",
        "vlm": {"path": "Qwen/Qwen2-VL-2B-Instruct"},
    },
}
DEFAULT_VLM = "Qwen/Qwen2-VL-2B-Instruct"
VLM_TYPE = "inkagent.llms.vlm:VisionLanguageModel"


# -- inkagent write ---------------------------------------------------------------------------------


def add_write_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = "exit codes: 0 written, 1 the model failed, 2 bad config or usage"
    parser.add_argument("title", help="the article's title (with --instruction, it only names the article)")
    parser.add_argument(
        "--config", help="YAML config with agent.type: IllustratedWriter (see configs/writer.yaml)"
    )
    parser.add_argument(
        "--out", help="folder for article.md, article.html and images/ (default: articles/<title>)"
    )
    parser.add_argument(
        "--force", action="store_true", help="replace article.md / article.html already in --out"
    )
    parser.add_argument("--gallery", help="folder of images to illustrate with (overrides the config)")
    parser.add_argument("--images", type=int, help="how many images (default 6)")
    parser.add_argument("--material", help="text the article should draw on")
    parser.add_argument("--instruction", help="a full writing instruction instead of the title template")
    parser.add_argument("--language", choices=["zh", "en"], help="prompt language (default zh)")


def _writer_settings(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The config (or the defaults) and the writer's keyword arguments, flags applied."""
    from .config import Config, load_config

    if args.config:
        config = load_config(args.config)
    else:
        config = Config.model_validate(DEFAULT_WRITER)
    section = config.agent
    if "type" in section.model_fields_set and section.type not in (
        "IllustratedWriter",
        "inkagent.agents:IllustratedWriter",
    ):
        raise ConfigError(
            "expected IllustratedWriter for `inkagent write`", path=args.config, key="agent.type"
        )
    from ..agents.writer import IllustratedWriter
    from .config import check_agent_keys

    check_agent_keys(config, IllustratedWriter)
    kwargs = {**(section.model_extra or {}), **section.generation}
    kwargs.pop("protocol", None)
    if "language" in section.model_fields_set:
        kwargs["language"] = section.language
    overrides = {"gallery": args.gallery, "num_images": args.images, "language": args.language}
    kwargs.update({key: value for key, value in overrides.items() if value is not None})
    return config, kwargs


def run_write(args: argparse.Namespace) -> int:
    from ..agents.writer import IllustratedWriter, existing_article_files
    from ..schema import AgentError, FinalAnswer, TextDelta, ToolCallStarted, ToolResult
    from .config import build_llm

    if args.out and not args.force:
        existing = existing_article_files(args.out)
        if existing:  # refused before the model runs: nothing is lost
            names = ", ".join(str(path) for path in existing)
            print(f"error: {names} already exist; pass --force to replace them, or choose another --out",
                  file=sys.stderr)
            return 2
    try:
        config, kwargs = _writer_settings(args)
        writer = IllustratedWriter(build_llm(config), **kwargs)
        request = {
            "title": args.title,
            "material": args.material,
            "instruction": args.instruction,
            "out_dir": args.out,
            "overwrite": bool(args.force),
        }
        events = writer.stream(request)
        state = "cancelled"
        for event in events:
            if isinstance(event, TextDelta):
                sys.stdout.write(event.text)
                sys.stdout.flush()
            elif isinstance(event, ToolCallStarted):
                step = event.call.name.rsplit(".", 1)[-1]
                print(f"\n→ {step} {json.dumps(event.call.arguments, ensure_ascii=False)}", file=sys.stderr)
            elif isinstance(event, ToolResult):
                mark = "←" if event.result.ok else "✗"
                print(f"{mark} {event.result.output or event.result.error}", file=sys.stderr)
            elif isinstance(event, AgentError):
                print(f"✗ {event.message}", file=sys.stderr)
            elif isinstance(event, FinalAnswer):
                state = event.state.value
    except InkAgentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    article = writer.last_article
    if state != "answered" or article is None or article.folder is None:
        return 1
    print(f"\narticle: {article.folder / 'article.md'} ({len(article.images)} images)", file=sys.stderr)
    return 0


# -- inkagent see -----------------------------------------------------------------------------------


def add_see_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = "exit codes: 0 answered, 1 the model failed, 2 bad config, usage or image"
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="one or several local image files")
    parser.add_argument("question", help="the question about the image(s)")
    parser.add_argument(
        "--config", help="YAML config: llm (a VisionLanguageModel) and agent.type: ImageUnderstanding"
    )
    parser.add_argument("--model", help=f"vision-language model path or hub id (default {DEFAULT_VLM})")
    parser.add_argument("--max-new-tokens", type=int, default=512, help="the longest answer, in tokens")


def run_see(args: argparse.Namespace) -> int:
    from ..agents.image_understanding import ImageUnderstanding
    from ..schema import AgentError, FinalAnswer, TextDelta
    from .config import Component, build_llm, load_config

    try:
        kwargs: dict[str, Any] = {}
        if args.config:
            config = load_config(args.config)
            if args.model:
                config.llm = Component(type=VLM_TYPE, path=args.model)
            from .config import check_agent_keys

            check_agent_keys(config, ImageUnderstanding)
            kwargs = {**(config.agent.model_extra or {}), **config.agent.generation}
            kwargs.pop("protocol", None)
            llm = build_llm(config)
        else:
            from ..llms.vlm import VisionLanguageModel

            llm = VisionLanguageModel(args.model or DEFAULT_VLM)
        agent = ImageUnderstanding(llm, **kwargs)
        state = "cancelled"
        for event in agent.stream(
            args.question, images=[str(Path(p)) for p in args.images], max_new_tokens=args.max_new_tokens
        ):
            if isinstance(event, TextDelta):
                sys.stdout.write(event.text)
                sys.stdout.flush()
            elif isinstance(event, AgentError):
                print(f"error: {event.message}", file=sys.stderr)
            elif isinstance(event, FinalAnswer):
                state = event.state.value
    except InkAgentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write("\n")
    return 0 if state == "answered" else 1
