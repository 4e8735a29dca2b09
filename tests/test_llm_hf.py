"""HFTransformer on a real (tiny, random) Llama model, on the CPU: exact outputs, streaming, batching, stops."""

from __future__ import annotations

import sys
import types

import pytest
from lagent.schema import ModelStatusCode
from tiny_model import INTERNLM2_SPECIAL_TOKENS, tiny_model_dir  # noqa: F401  (fixture)

from inkagent.errors import LLMError, MissingDependency
from inkagent.llms import HFTransformer

PROMPTS = [
    "<|im_start|>user\nWhat is the weather in Shanghai?<|im_end|>\n<|im_start|>assistant\n",
    "我们来计算一下这个问题。",
    "hi",
    "The quick brown fox jumps over the lazy dog. " * 6,
]


@pytest.fixture(scope="module")
def llm(tiny_model_dir) -> HFTransformer:  # noqa: F811
    return HFTransformer(str(tiny_model_dir), do_sample=False, max_new_tokens=48, device="cpu")


def raw_generate(llm: HFTransformer, prompt: str, max_new_tokens: int, eos: list[int]) -> list[int]:
    """What plain `model.generate` produces, cut after the first end token."""
    import torch

    ids = torch.tensor([llm.tokenizer(prompt)["input_ids"]])
    out = llm.model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        eos_token_id=eos,
        pad_token_id=llm.tokenizer.pad_token_id,
    )[0, ids.shape[1] :].tolist()
    for index, token in enumerate(out):
        if token in eos:
            return out[: index + 1]
    return out


def visible_text(llm: HFTransformer, ids: list[int], hidden: set[int]) -> str:
    """Reference text: one decode of the whole output, special tokens kept, BOS/padding/end dropped."""
    return llm.tokenizer.decode(
        [t for t in ids if t not in hidden], skip_special_tokens=False, clean_up_tokenization_spaces=False
    )


@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_output_equals_raw_generate_token_for_token(llm, prompt):
    tok = llm.tokenizer
    eos = [tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>")]  # EOS + the default stop word
    expected = raw_generate(llm, prompt, 48, eos)

    text = llm.generate(prompt)

    assert llm.last_token_ids == [expected]
    assert text == visible_text(llm, expected, {*eos, tok.bos_token_id})
    assert llm.last_stats.prompt_tokens == len(tok(prompt)["input_ids"])
    assert llm.last_stats.completion_tokens == len(expected)


@pytest.mark.parametrize("prompt", PROMPTS)
def test_streamed_pieces_join_to_the_generated_text(llm, prompt):
    # 200 tokens of byte-level babble: many characters arrive split over several tokens.
    generated = llm.generate(prompt, max_new_tokens=200)
    ids = llm.last_token_ids

    pieces = list(llm.stream_text(prompt, max_new_tokens=200))

    assert "".join(pieces) == generated
    assert llm.last_token_ids == ids
    assert len(pieces) > 1 or len(ids[0]) < 3  # streamed, not handed over in one piece
    assert llm.last_stats.first_token_s is not None
    assert llm.last_stats.completion_tokens == len(ids[0])


def test_a_batch_equals_its_members_run_alone(llm):
    alone = [llm.generate(prompt, max_new_tokens=40) for prompt in PROMPTS]
    alone_ids = []
    for prompt in PROMPTS:
        llm.generate(prompt, max_new_tokens=40)
        alone_ids += llm.last_token_ids

    batch = llm.generate(PROMPTS, max_new_tokens=40)

    assert batch == alone
    assert llm.last_token_ids == alone_ids
    assert llm.last_stats.extra["batch_size"] == len(PROMPTS)
    assert llm.last_stats.completion_tokens == sum(len(ids) for ids in alone_ids)


def test_chat_renders_internlm2_and_batches_conversations(llm):
    messages = [{"role": "user", "content": "hi"}]
    assert llm.render(messages) == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    one = llm.chat(messages)
    assert one == llm.generate(llm.render(messages))
    assert llm.chat([messages, [{"role": "user", "content": "你好"}]])[0] == one


def test_lagent_stream_generate_ends_with_the_full_text(llm):
    steps = list(llm.stream_generate(PROMPTS[0]))
    assert steps[-1][0] == ModelStatusCode.END
    assert steps[-1][1] == llm.generate(PROMPTS[0])
    assert all(status == ModelStatusCode.STREAM_ING for status, _, _ in steps[:-1])


def _clean_token_positions(llm: HFTransformer, ids: list[int]) -> list[int]:
    """Positions whose token decodes alone to clean, non-empty text (no partial character, not special)."""
    special = set(llm.tokenizer.all_special_ids)
    return [
        i
        for i, t in enumerate(ids)
        if t not in special and (text := llm.decode([t])).strip() and "\ufffd" not in text
    ]


def test_single_token_stop_word_is_honoured_and_trimmed(llm):
    prompt = PROMPTS[3]
    llm.generate(prompt, max_new_tokens=48, stop_words=[])
    ids = llm.last_token_ids[0]
    # A token that re-encodes to itself, first seen after a few tokens of output.
    k = next(
        i
        for i in _clean_token_positions(llm, ids)
        if i >= 3
        and ids[i] not in ids[:i]
        and llm.tokenizer.encode(llm.decode([ids[i]]), add_special_tokens=False) == [ids[i]]
        and llm.decode([ids[i]]) not in llm.decode(ids[:i])
    )
    stop = llm.decode([ids[k]])

    text = llm.generate(prompt, max_new_tokens=48, stop_words=[stop])

    assert llm.last_token_ids == [ids[: k + 1]]  # ended by id, on the stop token
    assert text == llm.decode([t for t in ids[:k] if t != llm.tokenizer.bos_token_id])
    assert stop not in text
    assert "".join(llm.stream_text(prompt, max_new_tokens=48, stop_words=[stop])) == text
    assert llm.last_token_ids == [ids[: k + 1]]


def test_multi_token_stop_word_split_across_tokens_is_honoured_and_trimmed(llm):
    prompt = PROMPTS[0]
    full = llm.generate(prompt, max_new_tokens=48, stop_words=[])
    ids = llm.last_token_ids[0]
    clean = set(_clean_token_positions(llm, ids))
    # The last character of token k and the first of token k+1: the stop word straddles a boundary.
    candidates = []
    for k in sorted(clean):
        if k + 1 in clean and k >= 2:
            stop = llm.decode([ids[k]])[-1] + llm.decode([ids[k + 1]])[0]
            head = llm.decode([t for t in ids[: k + 1] if t != llm.tokenizer.bos_token_id])
            if stop not in head and full.find(stop) == len(head) - 1:
                candidates.append((k, stop))
    assert candidates, "the tiny model's output has no usable token pair"
    k, stop = candidates[0]

    text = llm.generate(prompt, max_new_tokens=48, stop_words=[stop])

    assert text == full[: full.find(stop)]
    assert len(llm.last_token_ids[0]) == k + 2  # generation stopped on the token completing the stop word
    pieces = list(llm.stream_text(prompt, max_new_tokens=48, stop_words=[stop]))
    assert "".join(pieces) == text
    assert len(llm.last_token_ids[0]) == k + 2
    # In a batch, only the row that wrote the stop word stops early.
    batch = llm.generate([prompt, PROMPTS[2]], max_new_tokens=48, stop_words=[stop])
    assert batch == [text, llm.generate(PROMPTS[2], max_new_tokens=48, stop_words=[stop])]


def test_protocol_special_tokens_stay_in_the_text_but_bos_does_not(llm):
    tok = llm.tokenizer
    favoured = ["<|action_start|>", "<|plugin|>", "<|interpreter|>", "<|action_end|>", "<s>"]
    bias = {(tok.convert_tokens_to_ids(t),): 4.0 for t in favoured}

    text = llm.generate(PROMPTS[2], sequence_bias=bias, stop_words=[])
    ids = llm.last_token_ids[0]

    shown = [t for t in INTERNLM2_SPECIAL_TOKENS if tok.convert_tokens_to_ids(t) in ids]
    assert shown, "the biased model wrote no protocol token"
    for token in shown:
        assert text.count(token) == ids.count(tok.convert_tokens_to_ids(token))
    assert tok.bos_token_id in ids and "<s>" not in text
    assert "".join(llm.stream_text(PROMPTS[2], sequence_bias=bias, stop_words=[])) == text


def test_closing_the_stream_stops_the_model(llm):
    # Without the close, this would generate 2,000 tokens (min_new_tokens forbids an early EOS).
    stream = llm.stream_text(PROMPTS[0], max_new_tokens=2000, min_new_tokens=2000, stop_words=[])
    first = next(stream)
    stream.close()

    assert first
    assert llm.last_stats.extra["cancelled"]
    assert llm.last_stats.completion_tokens < 2000
    # The model is free again: the next call is not disturbed by the cancelled one.
    assert "".join(llm.stream_text(PROMPTS[2])) == llm.generate(PROMPTS[2])


def test_sampling_parameters_are_used(llm):
    import torch

    torch.manual_seed(0)
    first = llm.generate(PROMPTS[2], do_sample=True, temperature=1.5, top_k=0, top_p=1.0)
    torch.manual_seed(0)
    again = llm.generate(PROMPTS[2], do_sample=True, temperature=1.5, top_k=0, top_p=1.0)
    assert first == again
    assert first != llm.generate(PROMPTS[2])  # greedy differs from a hot sample on babble


def test_tokenizer_chat_template_is_used_when_meta_template_is_none(tiny_model_dir):  # noqa: F811
    llm = HFTransformer(str(tiny_model_dir), meta_template=None, tokenizer_only=True)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    prompt = llm.render(messages)
    assert prompt == llm.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert prompt.startswith("<s><|im_start|>system\nBe brief.<|im_end|>\n")
    # The template already holds BOS: tokenising must not add a second one.
    assert llm.tokenize(prompt).count(llm.tokenizer.bos_token_id) == 1
    with pytest.raises(LLMError, match="tokenizer_only"):
        llm.generate(prompt)


def test_modelscope_id_is_downloaded_with_snapshot_download(tiny_model_dir, monkeypatch):  # noqa: F811
    asked = []

    def snapshot_download(model_id: str) -> str:
        asked.append(model_id)
        return str(tiny_model_dir)

    monkeypatch.setitem(sys.modules, "modelscope", types.SimpleNamespace(snapshot_download=snapshot_download))
    llm = HFTransformer(
        "modelscope:Shanghai_AI_Laboratory/internlm2-chat-1_8b", do_sample=False, max_new_tokens=4
    )
    assert asked == ["Shanghai_AI_Laboratory/internlm2-chat-1_8b"]  # downloaded once, for model and tokenizer
    assert isinstance(llm.generate("hi"), str)


def test_modelscope_id_without_modelscope_gives_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "modelscope", None)  # makes `import modelscope` fail
    with pytest.raises(MissingDependency, match="pip install modelscope"):
        HFTransformer("modelscope:Shanghai_AI_Laboratory/internlm2-chat-7b")


def test_hub_id_offline_names_the_id_and_hf_hub_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(LLMError) as caught:
        HFTransformer("internlm/internlm2-chat-1_8b-not-cached")
    assert "internlm/internlm2-chat-1_8b-not-cached" in str(caught.value)
    assert "HF_HUB_OFFLINE" in str(caught.value)


def test_missing_local_directory_is_a_clear_error(tmp_path):
    (tmp_path / "model").mkdir()
    with pytest.raises(LLMError, match="cannot load the tokenizer"):
        HFTransformer(str(tmp_path / "model"))


def test_a_model_already_in_memory_can_be_wrapped(llm):
    wrapped = HFTransformer.from_model(llm.model, llm.tokenizer, do_sample=False, max_new_tokens=48)
    assert wrapped.generate(PROMPTS[0]) == llm.generate(PROMPTS[0])
    assert "".join(wrapped.stream_text(PROMPTS[1])) == llm.generate(PROMPTS[1])
