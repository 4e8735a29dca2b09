"""IllustratedWriter: the real XComposer2 run (fixtures/illustrated_writing.json) replayed through ScriptedLLM,
over a gallery indexed by a tiny random CLIP; the logits choice on a tiny LLaVA; the skill as a tool; the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT, run_cli
from markdown_it import MarkdownIt
from vision_models import gallery_dir, tiny_clip_dir, tiny_llava_dir  # noqa: F401  (fixtures)

from inkagent.actions import ActionExecutor, ImageRetrieval
from inkagent.actions.image_retrieval import ClipEmbedder, GalleryIndex
from inkagent.agents import IllustratedWriter, Internlm2Agent
from inkagent.agents.writer import parse_caption, parse_letter, parse_positions, split_segments
from inkagent.errors import ConfigError
from inkagent.llms import ScriptedLLM
from inkagent.schema import AgentError, FinalAnswer, TextDelta, ToolCallStarted, ToolResult

RUN = json.loads((FIXTURES / "illustrated_writing.json").read_text(encoding="utf-8"))
TITLE = RUN["title"]
SEGMENTS = [s["text"] for s in sorted(RUN["segments"], key=lambda s: s["index"])]
ARTICLE = "\n\n".join(SEGMENTS)
CAPTIONS = {int(k): v for k, v in RUN["step3_captions"].items()}
MATERIAL = "水墨画是由水和墨调配成不同深浅的墨色所画出的画，是绘画的一种形式，xxx。"


def text_llm(captions: dict[int, str] = CAPTIONS) -> ScriptedLLM:
    """The text model of the fixture run: article, insertion lines, one caption per position."""
    answers = [ARTICLE + "<|im_end|>", RUN["step2_model_answer"] + "<|im_end|>"]
    answers += [f'{caption}"<|im_end|>' for _, caption in sorted(captions.items())]
    return ScriptedLLM(answers, chunk_size=16)


@pytest.fixture(scope="module")
def embedder(tiny_clip_dir):  # noqa: F811
    return ClipEmbedder(str(tiny_clip_dir), device="cpu")


@pytest.fixture
def retriever(gallery_dir, embedder):  # noqa: F811
    return ImageRetrieval(index=GalleryIndex(gallery_dir, embedder, progress=False))


# -- parsing the real answers -------------------------------------------------------------------


def test_parsers_read_the_real_answers():
    assert (
        parse_positions(RUN["step2_model_answer"], len(SEGMENTS), "适合插入图像的行是") == RUN["step2_parsed"]
    )
    letters = [parse_letter(a, "ABCD", "最合适的图是") for a in RUN["step5_model_answers"]]
    assert letters == RUN["step5_parsed"]
    assert parse_caption(CAPTIONS[1] + '"。') == CAPTIONS[1]
    assert parse_caption("  一只猫”，后面是别的") == "一只猫"
    assert split_segments(ARTICLE) == SEGMENTS


def test_parsers_reject_what_is_not_there():
    assert parse_positions("适合插入图像的行是<Seg40>, <Seg2>, <Seg2>", 12, "适合插入图像的行是") == [2]
    assert parse_positions("我觉得第二段不错", 12) == []
    assert parse_letter("最合适的图是 E", "ABCD", "最合适的图是") is None
    assert parse_letter("Both are fine", "ABCD") is None  # capital letters inside words do not count
    assert parse_letter("答案：B", "ABCD") == "B"


def test_prompts_of_steps_1_and_2_match_the_run():
    writer = IllustratedWriter(ScriptedLLM([]))
    assert writer.article_prompt(TITLE, material=MATERIAL) == RUN["step1_article_prompt"]
    prompt = writer.positions_prompt(SEGMENTS, 6)
    assert prompt.endswith("\n" + RUN["step2_insertion_prompt_suffix"])
    assert prompt.startswith(f"<Seg0> {SEGMENTS[0]}\n<Seg1> {SEGMENTS[1]}\n")


# -- the whole run ----------------------------------------------------------------------------------


def test_fixture_run_end_to_end(retriever, tmp_path):
    llm = text_llm()
    vlm = ScriptedLLM([a + "<|im_end|>" for a in RUN["step5_model_answers"]] + ["都挺好的。<|im_end|>"] * 4)
    writer = IllustratedWriter(llm, vlm=vlm, retriever=retriever)
    article = writer.write({"title": TITLE, "material": MATERIAL, "out_dir": str(tmp_path / "out")})

    assert llm.prompts[0].endswith(RUN["step1_article_prompt"] + "<|im_end|>\n<|im_start|>assistant\n")
    assert article.segments == SEGMENTS and article.positions == [1, 3, 5, 7, 9, 11]
    assert article.captions == CAPTIONS

    # step 3: the article up to one segment past the position, the earlier captions carried forward
    for n, position in enumerate(article.positions):
        prompt = llm.prompts[2 + n]
        assert f"<Seg{min(position + 1, 11)}> " in prompt and f"<Seg{position + 2}> " not in prompt
        earlier = [f'<Seg{k}>后插入图像对应的标题是"{CAPTIONS[k]}"' for k in article.positions[:n]]
        carried = f"现在{'， '.join(earlier)}。" if earlier else ""
        request = f"给出适合在<Seg{position}>后插入的图像对应的标题。"
        assert prompt.endswith(carried + request + '<|im_end|>\n<|im_start|>assistant\n标题是"')

    # steps 4 and 5: four candidates each while the gallery has them; never an image twice
    choices = [article.choices[p] for p in article.positions]
    assert [len(c.candidates) for c in choices] == [4, 4, 4, 4, 4, 3]
    assert [c.method for c in choices] == ["text", "text", "score", "score", "score", "score"]
    assert choices[0].hit == choices[0].candidates[3] and choices[1].hit == choices[1].candidates[2]  # D, C
    assert all(c.hit == c.candidates[0] for c in choices[2:])  # unparseable answer: best retrieval score
    used = [c.hit.path for c in choices]
    assert len(set(used)) == 6
    for n, choice in enumerate(choices):
        assert not set(used[:n]) & {h.path for h in choice.candidates}

    # the choice prompt: context up to the position, placed images as <image>, four candidates
    second = vlm.prompts[1]
    assert (
        f"{SEGMENTS[1]}\n<image>\n{SEGMENTS[2]}\n{SEGMENTS[3]}\n候选图像包括: A.<image>\nB.<image>\nC.<image>\nD.<image>"
        in second
    )
    assert second.count(RUN["step5_choice_prompt"].split("{context}")[0]) == 1

    # output: one image right after each chosen segment
    folder = tmp_path / "out"
    assert article.folder == folder and sorted(p.name for p in (folder / "images").iterdir()) == [
        p.name for p in article.images
    ]
    blocks = (folder / "article.md").read_text(encoding="utf-8").rstrip("\n").split("\n\n")
    assert blocks[0] == f"# {TITLE}"
    for number, position in enumerate(article.positions, 1):
        at = blocks.index(SEGMENTS[position])
        assert re.fullmatch(
            rf"!\[{re.escape(CAPTIONS[position])}\]\(images/{number:02d}-[\w-]+\.png\)", blocks[at + 1]
        )
        copy = folder / "images" / blocks[at + 1].split("(images/")[1][:-1]
        assert copy.read_bytes() == Path(choices[number - 1].hit.path).read_bytes()
    page = (folder / "article.html").read_text(encoding="utf-8")
    assert f"<h1>{TITLE}</h1>" in page and page.count('<img src="images/') == 6


def test_stream_shows_each_step(retriever, tmp_path):
    writer = IllustratedWriter(text_llm(), retriever=retriever, out_dir=tmp_path)  # no vlm: best score
    events = list(writer.stream(TITLE))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == ARTICLE
    steps = [e.call.name.split(".")[1] for e in events if isinstance(e, ToolCallStarted)]
    assert steps == ["choose_positions"] + ["write_caption"] * 6 + ["retrieve", "choose_image"] * 6 + ["save"]
    assert all(e.result.ok for e in events if isinstance(e, ToolResult))
    final = events[-1]
    assert isinstance(final, FinalAnswer) and final.text == writer.last_article.markdown
    assert writer.last_article.folder.parent == tmp_path and writer.last_article.folder.name == TITLE
    assert [m.role for m in writer.memory] == ["user", "assistant"]
    assert writer.chat  # lagent's view is offered too


def test_positions_fall_back_when_the_answer_has_none(retriever, tmp_path):
    llm = ScriptedLLM([ARTICLE, "我觉得都可以。", 'A"', 'B"'])
    writer = IllustratedWriter(llm, retriever=retriever, num_images=2, out_dir=tmp_path)
    events = list(writer.stream(TITLE))
    errors = [e for e in events if isinstance(e, AgentError)]
    assert len(errors) == 1 and errors[0].kind == "parse_error" and "我觉得都可以" in errors[0].raw
    assert writer.last_article.positions == [1, 7]  # spread over the body, headings and title skipped


def test_no_gallery_keeps_the_article(tmp_path):
    writer = IllustratedWriter(text_llm({1: "甲", 3: "乙"}), num_images=2, out_dir=tmp_path)
    article = writer.write(TITLE)
    assert article.images == [] and "No image gallery" in article.problems[0]
    assert (article.folder / "article.md").read_text(encoding="utf-8").count("![") == 0


def test_english_prompts(retriever, tmp_path):
    llm = ScriptedLLM(["Ink\n\nFirst.\n\nSecond.", "The lines suitable for images are <Seg2>.", 'a brush"'])
    writer = IllustratedWriter(llm, retriever=retriever, language="en", num_images=1, out_dir=tmp_path)
    article = writer.write("Ink")
    assert llm.prompts[0].endswith(
        'Write a long article of at least 800 words titled "Ink".<|im_end|>\n<|im_start|>assistant\n'
    )
    assert llm.prompts[2].endswith(
        'Give the caption of the image to insert after <Seg2>.<|im_end|>\n<|im_start|>assistant\nCaption: "'
    )
    assert article.positions == [2] and article.captions == {2: "a brush"}


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="language"):
        IllustratedWriter(ScriptedLLM([]), language="fr")
    with pytest.raises(ConfigError, match="num_candidates"):
        IllustratedWriter(ScriptedLLM([]), num_candidates=9)


# -- step 5 with logits --------------------------------------------------------------------------------


def test_choice_from_the_logits_of_a_vlm(retriever, tiny_llava_dir):  # noqa: F811
    from inkagent.llms.vlm import VisionLanguageModel

    vlm = VisionLanguageModel(str(tiny_llava_dir), device="cpu")
    writer = IllustratedWriter(ScriptedLLM([]), vlm=vlm, retriever=retriever)
    candidates = writer.retrieve(CAPTIONS[3])
    choice = writer.choose_image(SEGMENTS, 3, candidates, placed=[1])
    assert choice.method == "logits" and sum(choice.probabilities.values()) == pytest.approx(1.0)
    expected = vlm.choose_letter(
        writer.choice_messages(SEGMENTS, 3, candidates, [1]), list("ABCD"), primer="最合适的图是"
    )
    assert choice.letter == expected.letter and choice.hit == candidates["ABCD".index(expected.letter)]
    images = [
        p["image"]
        for p in writer.choice_messages(SEGMENTS, 3, candidates, [1])[0]["content"]
        if p["type"] == "image"
    ]
    assert images == [h.path for h in candidates]


# -- as a tool, and from the command line ------------------------------------------------------------


def test_an_agent_calls_the_writer_and_gets_the_article(retriever, tmp_path):
    writer = IllustratedWriter(
        text_llm({1: "古画", 3: "书房"}), retriever=retriever, num_images=2, out_dir=tmp_path
    )
    call = json.dumps({"name": "IllustratedWriter", "parameters": {"title": TITLE}}, ensure_ascii=False)
    agent_llm = ScriptedLLM(
        [f"好的。<|action_start|><|plugin|>\n{call}<|action_end|>\n<|im_end|>", "文章写好了。<|im_end|>"]
    )
    agent = Internlm2Agent(agent_llm, plugin_executor=ActionExecutor([writer]), max_turn=3)
    result = agent.chat(f"写一篇《{TITLE}》的图文文章")
    assert result.response == "文章写好了。"
    tool = result.actions[0]
    folder = writer.last_article.folder
    text = tool.result[0]["content"]
    assert str(folder) in text and SEGMENTS[5] in text and len(writer.last_article.images) == 2
    assert [item["content"] for item in tool.result[1:]] == [str(p) for p in writer.last_article.images]
    assert f"The article is in {folder}" in agent_llm.prompts[1]  # the model read the tool's answer
    spec = ActionExecutor([writer]).specs()[0]
    assert spec.name == "IllustratedWriter" and spec.parameters["required"] == ["title"]


def test_writer_config_and_cli_defaults_fit_the_constructor():
    import argparse
    import inspect

    from inkagent.runners.skills_cmd import _writer_settings

    args = argparse.Namespace(
        config=str(ROOT / "configs" / "writer.yaml"), gallery="g", images=3, language="en"
    )
    config, kwargs = _writer_settings(args)
    assert kwargs["gallery"] == "g" and kwargs["num_images"] == 3 and kwargs["language"] == "en"
    assert config.llm.type == "HFTransformer" and kwargs["vlm"] == {"path": "Qwen/Qwen2-VL-2B-Instruct"}
    inspect.signature(IllustratedWriter).bind(None, **kwargs)  # every key is a constructor argument
    _, defaults = _writer_settings(argparse.Namespace(config=None, gallery=None, images=None, language=None))
    inspect.signature(IllustratedWriter).bind(None, **defaults)


def test_write_command(gallery_dir, tiny_clip_dir, tmp_path):  # noqa: F811
    responses = [ARTICLE, RUN["step2_model_answer"], f'{CAPTIONS[1]}"', f'{CAPTIONS[3]}"']
    config = tmp_path / "writer.yaml"
    config.write_text(
        json.dumps(
            {
                "llm": {"type": "ScriptedLLM", "responses": responses},
                "agent": {"type": "IllustratedWriter", "clip_model": str(tiny_clip_dir), "language": "zh"},
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    out = tmp_path / "article"
    done = run_cli(
        "write",
        TITLE,
        "--config",
        str(config),
        "--out",
        str(out),
        "--gallery",
        str(gallery_dir),
        "--images",
        "2",
    )
    assert done.returncode == 0, done.stderr
    assert SEGMENTS[3] in done.stdout and "→ choose_image" in done.stderr
    tokens = MarkdownIt("commonmark").parse((out / "article.md").read_text(encoding="utf-8"))
    images = [child for t in tokens if t.children for child in t.children if child.type == "image"]
    assert len(images) == 2 and all((out / img.attrs["src"]).is_file() for img in images)
    # a second run into the same folder is refused before the model runs; --force replaces
    before = (out / "article.md").read_bytes()
    again = run_cli("write", TITLE, "--config", str(config), "--out", str(out), "--gallery", str(gallery_dir))
    assert again.returncode == 2 and "--force" in again.stderr and "article.md" in again.stderr
    assert (out / "article.md").read_bytes() == before


def test_saving_into_a_folder_with_an_article_writes_beside_it_unless_told_to_replace(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "article.html").write_text("the user's page")
    writer = IllustratedWriter(text_llm({1: "甲"}), num_images=1, out_dir=tmp_path)
    article = writer.write({"title": TITLE, "out_dir": str(tmp_path / "mine")})
    assert (tmp_path / "mine" / "article.html").read_text() == "the user's page"
    assert article.folder == tmp_path / "mine-2" and (article.folder / "article.md").exists()
    replaced = IllustratedWriter(text_llm({1: "甲"}), num_images=1, out_dir=tmp_path).write(
        {"title": TITLE, "out_dir": str(tmp_path / "mine"), "overwrite": True})  # what `write --force` asks
    assert replaced.folder == tmp_path / "mine" and "user's page" not in (tmp_path / "mine" / "article.html").read_text()
