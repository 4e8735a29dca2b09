"""VisionLanguageModel, ImageCaption and ImageUnderstanding on a tiny random LLaVA (loaded with from_pretrained)."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli
from vision_models import IMAGES, gallery_dir, tiny_clip_dir, tiny_llava_dir  # noqa: F401  (fixtures)

from inkagent.actions import ActionExecutor, ImageCaption
from inkagent.agents import ImageUnderstanding, Internlm2Agent
from inkagent.errors import ActionError
from inkagent.llms import ScriptedLLM
from inkagent.llms.vlm import ImageError, VisionLanguageModel, load_image
from inkagent.schema import AgentState, PromptSent, TextDelta, ToolCall

SUN, SEA = str(IMAGES / "red-sun.png"), str(IMAGES / "blue-sea.png")
VLM_TYPE = "inkagent.llms.vlm:VisionLanguageModel"


@pytest.fixture(scope="module")
def vlm(tiny_llava_dir):  # noqa: F811
    return VisionLanguageModel(str(tiny_llava_dir), device="cpu", max_new_tokens=12)


def _greedy(vlm: VisionLanguageModel, messages: list[dict], images: list[str], max_new_tokens: int) -> str:
    """What plain `model.generate` answers, decoded once at the end (the reference for streaming)."""
    import torch

    prompt = vlm.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    batch = vlm.processor(text=prompt, images=[load_image(i) for i in images], return_tensors="pt")
    with torch.no_grad():
        out = vlm.model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False)
    ids = [t for t in out[0, batch["input_ids"].shape[1] :].tolist() if t != vlm.tokenizer.eos_token_id]
    return vlm.tokenizer.decode(ids, skip_special_tokens=True)


def test_streamed_answer_equals_plain_generate(vlm):
    messages = [
        {
            "role": "user",
            "content": [{"type": "image", "image": SUN}, {"type": "text", "text": "What is it?"}],
        }
    ]
    deltas = list(vlm.stream_text(messages, max_new_tokens=12))
    template = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is it?"}]}]
    assert "".join(deltas) == _greedy(vlm, template, [SUN], 12)
    assert vlm.last_stats.completion_tokens > 0
    # 16 image tokens (32x32 pixels in 8x8 patches) stand in for the <image> placeholder
    assert vlm.last_stats.prompt_tokens == len(vlm.tokenizer(vlm.render(messages))["input_ids"]) + 15


def test_a_template_that_writes_the_bos_gets_no_second_one(vlm):
    bos = vlm.tokenizer.bos_token_id
    for prompt in ("<s><|im_start|>user\n<image>Hi<|im_end|>\n", "<|im_start|>user\n<image>Hi<|im_end|>\n"):
        batch, _ = vlm._inputs(prompt, [SUN])
        assert batch["input_ids"][0].tolist().count(bos) == 1 and batch["input_ids"][0, 0] == bos


def test_letter_choice_reads_the_logits(vlm):
    import torch

    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Pick: A."},
                {"type": "image", "image": SUN},
                {"type": "text", "text": "\nB."},
                {"type": "image", "image": SEA},
            ],
        }
    ]
    choice = vlm.choose_letter(messages, ["A", "B"], primer="The best image is")
    assert sum(choice.probabilities.values()) == pytest.approx(1.0)
    prompt = vlm.render(messages) + "The best image is"
    batch = vlm.processor(text=prompt, images=[load_image(SUN), load_image(SEA)], return_tensors="pt")
    with torch.no_grad():
        logits = vlm.model(**batch).logits[0, -1]
    ids = vlm.letter_token_ids(["A", "B"])
    best = {letter: max(logits[i].item() for i in token_ids) for letter, token_ids in ids.items()}
    assert choice.letter == max(best, key=best.__getitem__)
    ratio = choice.probabilities["A"] / choice.probabilities["B"]
    assert ratio == pytest.approx(torch.tensor(best["A"] - best["B"]).exp().item(), rel=1e-4)


def test_image_errors_name_the_file(tmp_path):
    with pytest.raises(ImageError, match="image not found: .*nope.png"):
        load_image(tmp_path / "nope.png")
    fake = tmp_path / "fake.png"
    fake.write_text("hello")
    with pytest.raises(ImageError, match="cannot read .*fake.png"):
        load_image(fake)
    with pytest.raises(ImageError, match="not a file"):
        load_image(tmp_path)
    with pytest.raises(ImageError, match="only local"):
        load_image("https://example.com/cat.png")


def test_caption_action_runs_the_model_and_reports_bad_images(tiny_llava_dir, tmp_path):  # noqa: F811
    action = ImageCaption(model=str(tiny_llava_dir), max_new_tokens=6, device="cpu")
    executor = ActionExecutor([action])
    missing = executor.run(ToolCall(name="ImageCaption", arguments={"image": str(tmp_path / "cat.png")}))
    assert not missing.ok and "image not found" in missing.error and "cat.png" in missing.error
    assert action._vlm is None  # a bad path fails before the model is loaded
    (tmp_path / "text.png").write_text("not an image")
    unreadable = executor.run(ToolCall(name="ImageCaption", arguments={"image": str(tmp_path / "text.png")}))
    assert not unreadable.ok and "cannot read" in unreadable.error
    result = executor.run(ToolCall(name="ImageCaption", arguments={"image": SUN}))
    assert result.ok, result.error
    reference = _greedy(
        action.vlm,
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": action.prompt}]}],
        [SUN],
        6,
    )
    assert result.output == reference.strip() and action.vlm.last_stats.completion_tokens > 0


def test_image_understanding_is_multi_turn(vlm):
    agent = ImageUnderstanding(vlm, max_new_tokens=5)
    first = list(agent.stream("What is in these images?", images=[SUN, SEA]))
    assert first[-1].state == AgentState.ANSWERED
    assert "".join(e.text for e in first if isinstance(e, TextDelta)).strip() == first[-1].text
    second = list(agent.stream("And the second one?"))
    prompt = next(e for e in second if isinstance(e, PromptSent)).messages
    assert [m["role"] for m in prompt] == ["user", "assistant", "user"]
    assert [p["image"] for p in prompt[0]["content"] if p["type"] == "image"] == [SUN, SEA]
    assert prompt[1]["content"][-1]["text"] == first[-1].text
    text_tokens = len(vlm.tokenizer(vlm.render(prompt))["input_ids"])
    assert vlm.last_stats.prompt_tokens == text_tokens + 2 * 15  # both images are in the second prompt
    assert agent.memory[0].images == [SUN, SEA] and agent.memory[2].content == "And the second one?"


def test_image_understanding_attach_and_bad_path(vlm, tmp_path):
    agent = ImageUnderstanding(vlm, max_new_tokens=3)
    with pytest.raises(ImageError, match="missing.png"):
        agent.attach(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="image not found"):
        list(agent.stream({"question": "?", "images": [str(tmp_path / "missing.png")]}))
    assert agent.memory == []
    agent.attach(SEA)
    agent.chat("Describe it.")
    assert agent.memory[0].images == [SEA]


def test_image_understanding_as_a_tool(vlm):
    skill = ImageUnderstanding(vlm, max_new_tokens=4)
    call = json.dumps({"name": "ImageUnderstanding", "parameters": {"images": [SUN], "question": "Colour?"}})
    llm = ScriptedLLM(
        [f"<|action_start|><|plugin|>\n{call}<|action_end|>\n<|im_end|>", "It is red.<|im_end|>"]
    )
    agent = Internlm2Agent(llm, plugin_executor=ActionExecutor([skill]), max_turn=3)
    events = list(agent.stream("What colour is the sun picture?"))
    result = next(e for e in events if e.type == "tool_result").result
    assert result.ok, result.error
    assert skill.memory[0].images == [SUN] and skill.memory[1].content == result.output
    assert events[-1].text == "It is red."


def test_see_command(tiny_llava_dir):  # noqa: F811
    done = run_cli("see", SUN, SEA, "What differs?", "--model", str(tiny_llava_dir), "--max-new-tokens", "4")
    assert done.returncode == 0, done.stderr


def test_see_command_errors_and_config(tiny_llava_dir, tmp_path, capsys):  # noqa: F811
    from inkagent.cli import main

    assert main(["see", str(tmp_path / "gone.png"), "What?", "--model", str(tiny_llava_dir)]) == 2
    assert "image not found" in capsys.readouterr().err
    config = tmp_path / "see.yaml"
    config.write_text(
        f"llm: {{type: '{VLM_TYPE}', path: '{tiny_llava_dir}', device: cpu}}\n"
        "agent: {type: ImageUnderstanding, system_prompt: 'Answer briefly.'}\n",
        encoding="utf-8",
    )
    assert main(["see", SUN, "Colour?", "--config", str(config), "--max-new-tokens", "3"]) == 0
    broken = tmp_path / "broken.yaml"
    broken.write_text("llm: {type: NoSuchModel}\n", encoding="utf-8")
    assert main(["see", SUN, "Colour?", "--config", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "NoSuchModel" in err and "broken.yaml" in err


def test_config_agent_retrieves_then_captions(tiny_llava_dir, tiny_clip_dir, gallery_dir, tmp_path):  # noqa: F811
    from inkagent.runners.config import build_agent, load_config

    config = tmp_path / "agent.yaml"
    config.write_text(
        json.dumps(
            {
                "llm": {"type": "ScriptedLLM"},
                "actions": [
                    {
                        "type": "ImageRetrieval",
                        "gallery": str(gallery_dir),
                        "model": str(tiny_clip_dir),
                        "progress": False,
                    },
                    {
                        "type": "ImageCaption",
                        "max_new_tokens": 4,
                        "llm": {"type": VLM_TYPE, "path": str(tiny_llava_dir)},
                    },
                ],
            }
        ),
        encoding="utf-8",
    )
    top = str(gallery_dir / "ink-mountain.png")
    calls = [
        {"name": "ImageRetrieval", "parameters": {"query": "mountain", "top_k": 2}},
        {"name": "ImageCaption", "parameters": {"image": top}},
    ]
    llm = ScriptedLLM(
        [f"<|action_start|><|plugin|>\n{json.dumps(c)}<|action_end|>\n<|im_end|>" for c in calls]
        + ["Done.<|im_end|>"]
    )
    agent = build_agent(load_config(config), llm=llm)
    results = [
        e.result for e in agent.stream("Find a mountain picture and describe it.") if e.type == "tool_result"
    ]
    assert [r.ok for r in results] == [True, True], [r.error for r in results]
    assert len(json.loads(results[0].output)) == 2 and "ImageRetrieval" in llm.prompts[0]
    assert agent.plugin_executor.actions["ImageCaption"].vlm.last_stats.completion_tokens > 0
    with pytest.raises(ActionError, match="VisionLanguageModel"):
        ImageCaption(llm=ScriptedLLM([]))
