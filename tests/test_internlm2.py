"""Real InternLM2 checkpoints (hub layout) on today's transformers, without the hub's code.

Every test runs on a tiny random checkpoint in the exact layout of internlm/internlm2_5-7b-chat
(tests/tiny_internlm2.py) and compares with an independent plain-torch forward of the architecture.
"""

from __future__ import annotations

import json
import logging
import re

import pytest
import torch
from conftest import run_cli
from tiny_internlm2 import (
    build_sentencepiece_model,
    build_tiny_internlm2,
    read_hub_tensors,
    reference_greedy,
    reference_logits,
    tiny_internlm2_dir,  # noqa: F401  (fixture)
)
from tiny_model import INTERNLM2_SPECIAL_TOKENS

from inkagent.errors import LLMError
from inkagent.llms import HFTransformer
from inkagent.llms.internlm2_checkpoint import llama_config, llama_config_kwargs, llama_tensors, split_wqkv
from inkagent.llms.internlm2_tokenizer import InternLM2Tokenizer, check_tokenizer

PROMPT = "<|im_start|>user\nWhat is 17 * 23?<|im_end|>\n<|im_start|>assistant\n"

STRINGS = [
    "What is 17 * 23?",
    " leading space",
    "   three leading spaces and  two   inside",
    "trailing spaces   ",
    "line one\nline two\n\n\nafter three newlines\r\nCRLF",
    "\tindented\twith tabs",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "书生·浦语是一个大语言模型，它可以调用工具并阅读结果。",
    "今天上海的天气很好，气温二十五度。",
    "rare characters need byte fallback: 龘 쀍 𝔘 🙂🚀",
    "digits 0 1 12 123 2024-06-30 3.14159 1e-5 100000",
    'JSON {"name": "Weather.query", "parameters": {"city": "Beijing"}}',
    "<|im_start|>system name=<|plugin|>\nsome tools<|im_end|>",
    "<|action_start|><|interpreter|>\n```python\nprint(1)\n```<|action_end|>\n",
    "",
    " ",
    "\n",
]


@pytest.fixture(scope="module")
def llm(tiny_internlm2_dir):  # noqa: F811
    return HFTransformer(str(tiny_internlm2_dir), trust_remote_code=True, device="cpu", do_sample=False)


@pytest.fixture(scope="module")
def hub(tiny_internlm2_dir):  # noqa: F811
    """(raw hub tensors, config.json) of the tiny checkpoint."""
    return read_hub_tensors(tiny_internlm2_dir), json.loads((tiny_internlm2_dir / "config.json").read_text())


def logits_of(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].double()


# -- the layout of wqkv, from the public facts ------------------------------------------------------


@pytest.mark.parametrize(
    ("heads", "kv_heads", "q_rows", "k_rows", "v_rows"),
    [
        # heads 4, kv 2 (gs = 2 + 4/2 = 4): rows per group g are [q(2g), q(2g+1), k(g), v(g)].
        (4, 2, [0, 1, 4, 5], [2, 6], [3, 7]),
        # heads 6, kv 3 (gs = 4): three groups of [q, q, k, v].
        (6, 3, [0, 1, 4, 5, 8, 9], [2, 6, 10], [3, 7, 11]),
        # heads 4, kv 1 (gs = 6): one group [q0, q1, q2, q3, k0, v0].
        (4, 1, [0, 1, 2, 3], [4], [5]),
        # heads 2, kv 2 (multi-head attention, gs = 3): [q0, k0, v0, q1, k1, v1].
        (2, 2, [0, 3], [1, 4], [2, 5]),
    ],
)
def test_wqkv_slots_land_in_q_k_v_per_kv_group(heads, kv_heads, q_rows, k_rows, v_rows):
    head_dim, hidden = 3, 5
    slots = heads + 2 * kv_heads
    # Slot s (a head_dim block of rows) holds the value 1000*s + 10*row-in-block + column: all distinct.
    packed = torch.tensor(
        [[1000 * s + 10 * r + c for c in range(hidden)] for s in range(slots) for r in range(head_dim)],
        dtype=torch.float64,
    )

    q, k, v = split_wqkv(packed, heads, kv_heads)

    def slots_of(matrix):
        blocks = matrix.reshape(-1, head_dim, hidden)
        assert torch.equal(blocks - blocks[:, :1, :1], (packed[:head_dim] - packed[0, 0]).expand_as(blocks))
        return [int(block[0, 0]) // 1000 for block in blocks]

    assert slots_of(q) == q_rows
    assert slots_of(k) == k_rows
    assert slots_of(v) == v_rows
    bias = torch.arange(slots * head_dim, dtype=torch.float64)  # biases split the same way
    qb, kb, vb = split_wqkv(bias, heads, kv_heads)
    assert [int(x) // head_dim for x in qb[::head_dim]] == q_rows
    assert [int(x) // head_dim for x in kb[::head_dim]] == k_rows
    assert [int(x) // head_dim for x in vb[::head_dim]] == v_rows


def test_weight_names_map_to_llama_and_unknown_names_are_refused(hub):
    tensors, config = hub
    names = dict(llama_tensors(tensors.items(), config))
    assert "model.embed_tokens.weight" in names and "lm_head.weight" in names
    assert names["model.layers.1.mlp.gate_proj.weight"] is tensors["model.layers.1.feed_forward.w1.weight"]
    assert names["model.layers.1.mlp.up_proj.weight"] is tensors["model.layers.1.feed_forward.w3.weight"]
    assert names["model.layers.1.mlp.down_proj.weight"] is tensors["model.layers.1.feed_forward.w2.weight"]
    assert names["model.layers.0.self_attn.o_proj.weight"] is tensors["model.layers.0.attention.wo.weight"]
    assert names["model.layers.0.input_layernorm.weight"] is tensors["model.layers.0.attention_norm.weight"]
    assert (
        names["model.layers.0.post_attention_layernorm.weight"] is tensors["model.layers.0.ffn_norm.weight"]
    )
    with pytest.raises(LLMError, match="Plora_A.*XComposer2"):
        list(llama_tensors([("model.layers.0.attention.wqkv.Plora_A.weight", torch.zeros(1))], config))


def test_config_of_internlm2_5_7b_chat_maps_to_llama():
    # config.json of internlm/internlm2_5-7b-chat (sizes and settings as published).
    config = {
        "model_type": "internlm2",
        "architectures": ["InternLM2ForCausalLM"],
        "bias": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "max_position_embeddings": 32768,
        "num_attention_heads": 32,
        "num_hidden_layers": 32,
        "num_key_value_heads": 8,
        "rms_norm_eps": 1e-05,
        "rope_scaling": {"type": "dynamic", "factor": 2.0},
        "rope_theta": 1000000,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "vocab_size": 92544,
    }
    kwargs = llama_config_kwargs(config)
    assert kwargs["rope_scaling"] == {"rope_type": "dynamic", "factor": 2.0}
    assert (kwargs["num_attention_heads"], kwargs["num_key_value_heads"]) == (32, 8)
    assert kwargs["attention_bias"] is False and kwargs["tie_word_embeddings"] is False
    llama = llama_config(config)
    rope = getattr(llama, "rope_parameters", None) or {**llama.rope_scaling, "rope_theta": llama.rope_theta}
    assert rope["rope_type"] == "dynamic" and rope["factor"] == 2.0 and rope["rope_theta"] == 1e6
    assert llama.head_dim == 128 and llama.max_position_embeddings == 32768
    with pytest.raises(LLMError, match="yarn"):
        llama_config_kwargs({**config, "rope_scaling": {"type": "yarn", "factor": 4.0}})


# -- the native path ----------------------------------------------------------------------------------


def test_trust_remote_code_takes_the_native_path_and_says_so_once(tiny_internlm2_dir, caplog):  # noqa: F811
    with caplog.at_level(logging.INFO, logger="inkagent"):
        llm = HFTransformer(str(tiny_internlm2_dir), trust_remote_code=True, device="cpu")
    assert type(llm.model).__name__ == "LlamaForCausalLM"
    assert isinstance(llm.tokenizer, InternLM2Tokenizer)
    said = [r.getMessage() for r in caplog.records if "loading it natively" in r.getMessage()]
    assert len(said) == 1 and "trust_remote_code is not needed" in said[0]


def test_logits_equal_the_reference_forward(llm, hub):
    tensors, config = hub
    ids = llm.tokenize(PROMPT)
    assert ids[0] == 1 and len(ids) > 10
    assert (logits_of(llm.model, ids) - reference_logits(tensors, config, ids)).abs().max() < 1e-4


def test_greedy_generate_equals_the_reference_greedy_tokens(llm, hub):
    tensors, config = hub
    ends = {2, llm.tokenizer.convert_tokens_to_ids("<|im_end|>")}
    llm.generate(PROMPT, max_new_tokens=16)
    got = llm.last_token_ids[0]
    expected = reference_greedy(tensors, config, llm.tokenize(PROMPT), len(got))
    assert got == expected
    assert len(got) == 16 or got[-1] in ends  # cut only by an end token


def test_dynamic_ntk_rope_beyond_max_position_embeddings(tmp_path):
    directory = build_tiny_internlm2(tmp_path / "ntk", seed=1, max_position_embeddings=16)
    llm = HFTransformer(str(directory), device="cpu")
    config = json.loads((directory / "config.json").read_text())
    ids = llm.tokenize("The quick brown fox jumps over the lazy dog. " * 3)
    assert len(ids) > 2 * 16
    reference = reference_logits(read_hub_tensors(directory), config, ids)
    assert (logits_of(llm.model, ids) - reference).abs().max() < 1e-4
    # and the scaling matters: without it the logits differ
    plain = reference_logits(read_hub_tensors(directory), {**config, "rope_scaling": None}, ids)
    assert (plain - reference).abs().max() > 1e-2


@pytest.mark.parametrize("weights", ["bin", "bin-sharded"])
def test_bin_weights_with_bias_and_lower_precision(weights, tmp_path):
    directory = build_tiny_internlm2(tmp_path / "bin", weights=weights, seed=2, bias=True)
    config = json.loads((directory / "config.json").read_text())
    tensors = read_hub_tensors(directory)
    ids = [1, 3, 40, 50, 60, 4, 19]
    exact = HFTransformer(str(directory), device="cpu", dtype="float32")
    assert exact.model.model.layers[0].self_attn.q_proj.bias is not None
    assert (logits_of(exact.model, ids) - reference_logits(tensors, config, ids)).abs().max() < 1e-4
    for dtype, tolerance in ((torch.bfloat16, 0.5), (torch.float16, 0.1)):
        low = HFTransformer(str(directory), device="cpu", dtype=str(dtype).removeprefix("torch."))
        assert low.model.dtype == dtype
        assert (logits_of(low.model, ids) - reference_logits(tensors, config, ids)).abs().max() < tolerance


def test_device_map_is_honoured(tiny_internlm2_dir, hub):  # noqa: F811
    llm = HFTransformer(str(tiny_internlm2_dir), device_map="cpu", dtype="auto")
    assert llm.model.device.type == "cpu" and llm.model.dtype == torch.float32  # the checkpoint's dtype
    tensors, config = hub
    assert (logits_of(llm.model, [1, 5, 6]) - reference_logits(tensors, config, [1, 5, 6])).abs().max() < 1e-4


def test_weights_that_do_not_fit_the_config_are_an_llm_error(tmp_path):
    directory = build_tiny_internlm2(tmp_path / "bad", seed=3)
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 3}))
    with pytest.raises(LLMError, match="do not fit"):
        HFTransformer(str(directory), device="cpu")


# -- the tokenizer ------------------------------------------------------------------------------------


def test_tokenizer_ids_equal_sentencepiece_and_decode_round_trips(llm, tiny_internlm2_dir):  # noqa: F811
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tiny_internlm2_dir / "tokenizer.model"))
    tok = llm.tokenizer
    for text in STRINGS:
        ids = tok.encode(text, add_special_tokens=False)
        assert ids == sp.encode(text), text
        assert tok.decode(ids) == text
        assert llm.decode(ids) == text
        assert llm.tokenize(text) == [1, *sp.encode(text)]
    assert any(sp.id_to_piece(i).startswith("<0x") for i in tok.encode("龘 🙂", add_special_tokens=False))
    for special in INTERNLM2_SPECIAL_TOKENS:
        assert tok.encode(special, add_special_tokens=False) == [sp.piece_to_id(special)]
    assert tok.decode(tok.encode("a</s>b", add_special_tokens=False)) == "a</s>b"
    assert (
        tok.encode("a</s>b", add_special_tokens=False)[1] == 2
    )  # EOS text is the EOS id, as in the hub tokenizer


def test_tokenizer_self_check_refuses_a_tokenizer_that_differs(tmp_path, tiny_internlm2_dir):  # noqa: F811
    other = tmp_path / "dummy-prefix.model"
    other.write_bytes(build_sentencepiece_model(add_dummy_prefix=True))
    wrong = InternLM2Tokenizer(str(other))
    with pytest.raises(LLMError, match="does not tokenize like"):
        check_tokenizer(wrong, tiny_internlm2_dir / "tokenizer.model")
    check_tokenizer(
        InternLM2Tokenizer(str(tiny_internlm2_dir / "tokenizer.model")),
        tiny_internlm2_dir / "tokenizer.model",
    )


def test_protocol_stop_word_is_one_id_and_ends_generation(llm):
    end = llm.tokenizer.convert_tokens_to_ids("<|im_end|>")
    stops = llm._stops(["<|im_end|>"], None)
    assert end in stops.end_ids and not stops.multi_token


# -- failures -----------------------------------------------------------------------------------------


def test_hub_code_failure_is_an_llm_error_naming_checkpoint_version_and_fix(tiny_internlm2_dir):  # noqa: F811
    import transformers

    with pytest.raises(LLMError) as caught:
        HFTransformer(str(tiny_internlm2_dir), use_hub_code=True, device="cpu")
    message = str(caught.value)
    assert str(tiny_internlm2_dir) in message
    assert transformers.__version__ in message
    assert "4.48.3" in message and "use_hub_code" in message


def test_inkagent_run_reports_a_load_failure_without_a_traceback(tiny_internlm2_dir, tmp_path):  # noqa: F811
    config = tmp_path / "hub-code.yaml"
    config.write_text(
        f"llm:\n  type: HFTransformer\n  path: {tiny_internlm2_dir}\n  use_hub_code: true\n  device: cpu\n"
        "agent:\n  type: Internlm2Agent\n  max_turn: 1\n"
    )
    result = run_cli("run", str(config), "--task", "hi", "--trace", str(tmp_path / "t.jsonl"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    assert "4.48.3" in result.stderr


def test_inkagent_run_on_the_checkpoint_ends_cleanly(tiny_internlm2_dir, tmp_path):  # noqa: F811
    config = tmp_path / "native.yaml"
    config.write_text(
        f"llm:\n  type: HFTransformer\n  path: {tiny_internlm2_dir}\n  trust_remote_code: true\n  device: cpu\n"
        "  max_new_tokens: 12\n  do_sample: false\n"
        "agent:\n  type: Internlm2Agent\n  max_turn: 2\n"
    )
    trace = tmp_path / "t.jsonl"
    result = run_cli("run", str(config), "--task", "What is 17 * 23?", "--trace", str(trace), "--json")
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode in (0, 1), result.stderr
    assert json.loads(result.stdout)["state"] in ("answered", "max_turn", "repeated_failure")
    events = [json.loads(line)["type"] for line in trace.read_text().splitlines()]
    assert events[-1] == "final_answer" and "prompt" in events


def test_agent_runs_on_the_checkpoint_to_a_clean_end(llm, tmp_path):
    from inkagent.actions import ActionExecutor, tool
    from inkagent.agents import Internlm2Agent
    from inkagent.schema import AgentState, FinalAnswer

    @tool
    def lookup(query: str) -> str:
        """Look something up.

        Args:
            query: what to look up
        """
        return f"nothing found for {query}"

    agent = Internlm2Agent(
        llm, plugin_executor=ActionExecutor([lookup]), max_turn=2, trace=tmp_path / "t.jsonl"
    )
    for task in ["What is 17 * 23?", "上海今天天气怎么样？"]:
        events = list(agent.stream(task, max_new_tokens=16))
        assert isinstance(events[-1], FinalAnswer)
        assert events[-1].state in (AgentState.ANSWERED, AgentState.MAX_TURN, AgentState.REPEATED_FAILURE)
        agent.reset()
    agent.close()
    assert (tmp_path / "t.jsonl").read_text().count('"final_answer"') == 2


# -- convert-internlm2 --------------------------------------------------------------------------------


def test_convert_writes_a_llama_checkpoint_with_the_same_logits(tiny_internlm2_dir, hub, tmp_path):  # noqa: F811
    from transformers import LlamaForCausalLM

    target = tmp_path / "llama"
    result = run_cli("convert-internlm2", str(tiny_internlm2_dir), str(target))
    assert result.returncode == 0, result.stderr
    assert json.loads((target / "config.json").read_text())["model_type"] == "llama"
    assert not list(target.glob("*.py"))  # no hub code
    model = LlamaForCausalLM.from_pretrained(target).eval()
    tensors, config = hub
    ids = [1, 3, 40, 50, 60, 70, 4]
    assert (logits_of(model, ids) - reference_logits(tensors, config, ids)).abs().max() < 1e-4
    # inkagent keeps the exact tokenizer on the converted checkpoint
    llm = HFTransformer(str(target), device="cpu")
    assert isinstance(llm.tokenizer, InternLM2Tokenizer)
    # an existing folder is not overwritten
    again = run_cli("convert-internlm2", str(tiny_internlm2_dir), str(target))
    assert again.returncode == 2 and "not empty" in again.stderr and "Traceback" not in again.stderr


def test_convert_refuses_a_checkpoint_that_is_not_internlm2(tiny_model_dir, tmp_path):
    result = run_cli("convert-internlm2", str(tiny_model_dir), str(tmp_path / "out"))
    assert result.returncode == 2
    assert re.search(r"not an InternLM2 checkpoint .*llama", result.stderr)


# -- ready configs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "hub_id"),
    [
        ("internlm2_5-7b-chat-hf.yaml", "internlm/internlm2_5-7b-chat"),
        ("internlm2-chat-1_8b-hf.yaml", "internlm/internlm2-chat-1_8b"),
    ],
)
def test_ready_configs_need_no_remote_code_and_load_the_hub_layout(name, hub_id, tiny_internlm2_dir):  # noqa: F811
    """The config's own keys on the real HFTransformer; only the weights (tiny, same layout) and device differ."""
    from conftest import ROOT

    from inkagent.runners.config import build_agent, load_config
    from inkagent.schema import FinalAnswer

    config = load_config(ROOT / "configs" / name)
    assert config.llm.kwargs["path"] == hub_id
    assert "trust_remote_code" not in config.llm.kwargs and "use_hub_code" not in config.llm.kwargs
    llm_section = config.llm.model_copy(update={"path": str(tiny_internlm2_dir), "device": "cpu"})
    config = config.model_copy(update={"llm": llm_section, "actions": [], "interpreter": None})
    agent = build_agent(config)
    try:
        assert type(agent.llm.model).__name__ == "LlamaForCausalLM"
        assert str(agent.llm.model.dtype) == "torch.bfloat16"
        events = list(agent.stream("hello", max_new_tokens=6))
        assert isinstance(events[-1], FinalAnswer)
    finally:
        agent.close()
