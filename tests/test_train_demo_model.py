"""scripts/train_demo_model.py end to end at toy size: the same seed gives the same model, the model loads
through HFTransformer, and it is trained on exactly the prompt configs/demo.yaml sends."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from inkagent.llms import ScriptedLLM
from inkagent.runners.config import build_agent, load_config

SCRIPT = ROOT / "scripts" / "train_demo_model.py"
# every size knob turned down: a few seconds on one core
TOY = [
    "--steps", "4", "--curriculum-steps", "2", "--demo-examples", "30", "--bench-examples", "30",
    "--bare-examples", "20", "--random-contexts", "2", "--hidden", "64", "--layers", "1",
    "--vocab", "800", "--threads", "1", "--batch-tokens", "512",
]  # fmt: skip


def train_toy(out: Path, *extra: str) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), *TOY, *extra], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory) -> tuple[Path, Path]:
    first, second = tmp_path_factory.mktemp("toy-a"), tmp_path_factory.mktemp("toy-b")
    train_toy(first)
    train_toy(second)
    return first, second


def test_same_seed_gives_the_same_model(toy_runs):
    first, second = toy_runs
    for name in ("model.safetensors", "tokenizer.json", "config.json", "generation_config.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), f"{name} differs between runs"
    report = json.loads((first / "training_report.json").read_text())
    assert report["steps"] == 4 and report["seed"] == 8 and report["parameters"] > 0
    assert report["command"].startswith("python scripts/train_demo_model.py --out")


def test_toy_model_loads_and_keeps_protocol_tokens_whole(toy_runs):
    from inkagent.llms import HFTransformer

    llm = HFTransformer(path=str(toy_runs[0]), device="cpu", do_sample=False, max_new_tokens=5)
    for token in ("<|im_start|>", "<|im_end|>", "<|action_start|>", "<|action_end|>", "<|plugin|>"):
        assert len(llm.tokenizer(token, add_special_tokens=False)["input_ids"]) == 1, token
    assert isinstance(llm.generate("What is 17 * 23?"), str)  # random weights: any text, no crash


def test_second_stage_continues_the_first(toy_runs, tmp_path):
    """The bundled model is trained in two stages; the second starts from the first's tokenizer and weights."""
    from safetensors.torch import load_file

    first, second_stage = toy_runs[0], tmp_path / "stage2"
    train_toy(
        second_stage, "--init-from", str(first), "--seed", "9", "--novel-values", "1", "--multi-call", "2",
        "--conversations", "12",
    )
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (second_stage / name).read_bytes() == (first / name).read_bytes(), name
    before, after = load_file(first / "model.safetensors"), load_file(second_stage / "model.safetensors")
    assert before.keys() == after.keys()
    assert any(not before[k].equal(after[k]) for k in before), "the second stage changed no weight"
    report = json.loads((second_stage / "training_report.json").read_text())
    assert report["init_from"] == str(first) and report["hidden"] == 64 and report["layers"] == 1
    assert report["conversations"] == 12 and report["demo_examples"] == 30 + 12  # multi-turn ones added


def test_composed_values_are_not_from_the_fixed_lists():
    sys.path.insert(0, str(ROOT / "scripts"))
    import demo_dialogues as dialogues

    fixed = dialogues.RequestGenerator(1)
    composed = dialogues.RequestGenerator(1, novel=1.0)
    known = {t for pair in dialogues.TITLES for t in pair}
    assert all(fixed.title(lang) in known for lang in ("en", "zh") * 20)
    assert not any(composed.title(lang) in known for lang in ("en", "zh") * 20)
    assert composed.writer("en").calls[0].arguments["title"] not in known


def test_weather_calls_ask_for_units_only_when_the_request_names_them():
    sys.path.insert(0, str(ROOT / "scripts"))
    import demo_dialogues as dialogues

    generator = dialogues.RequestGenerator(3)
    named = {"imperial": ("Fahrenheit", "华氏"), "metric": ("Celsius", "摄氏")}
    with_units = 0
    for _ in range(400):
        request = generator.weather(generator.pick(["en", "zh"]))
        for call in request.calls:
            units = call.arguments.get("units")
            with_units += units is not None
            assert units is None or any(word in request.user for word in named[units]), request.user
            assert units is not None or not any(w in request.user for ws in named.values() for w in ws)
    assert with_units  # the requests that do name units still get them


def test_training_prompt_is_the_one_the_demo_config_sends():
    spec = importlib.util.spec_from_file_location("train_demo_model", SCRIPT)
    train = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = train  # its dataclasses look their module up there
    spec.loader.exec_module(train)
    from inkagent.llms.base import LLM

    renderer = LLM(path="")
    context = train.demo_contexts(renderer)[0]  # the English demo prompt, as the model was trained
    train.render_context(renderer, context)

    scripted = ScriptedLLM(responses=["Hello."])
    agent = build_agent(load_config(ROOT / "configs" / "demo.yaml"), llm=scripted)
    try:
        agent.chat("hi")
    finally:
        agent.close()
    assert scripted.prompts[0] == context.system_text + "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
