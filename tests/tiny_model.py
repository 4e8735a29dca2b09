"""A tiny Llama-architecture chat model, built at test time: no download, a few hundred KB on disk.

The tokenizer is a byte-level BPE trained in-process on a small mixed English/Chinese/protocol text, so
that characters span several tokens (the streaming detokeniser must cope), and it carries InternLM2's
special tokens (`<|im_start|>`, `<|im_end|>`, `<|action_start|>`, `<|action_end|>`, `<|plugin|>`,
`<|interpreter|>`) as special tokens, with InternLM2's ChatML chat template. The weights are random
(seeded), so the model babbles, deterministically.

Use the session fixture `tiny_model_dir` (a directory for `from_pretrained`) or call
`build_tiny_model(directory)` yourself. tests/conftest.py re-exports the fixture.
"""

from __future__ import annotations

from pathlib import Path

import pytest

INTERNLM2_SPECIAL_TOKENS = [
    "<|im_start|>",
    "<|im_end|>",
    "<|action_start|>",
    "<|action_end|>",
    "<|interpreter|>",
    "<|plugin|>",
]

#: InternLM2-chat's chat template (ChatML), as shipped in its tokenizer_config.json.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_CORPUS = """\
The quick brown fox jumps over the lazy dog. Agents call tools and read their answers.
Search arXiv for papers about large language models, then summarise the three newest ones.
What is the weather in Shanghai today? It is sunny, 25 degrees, with a light breeze.
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
print(fib(10))
{"name": "ArxivSearch.get_arxiv_article_information", "parameters": {"query": "agents"}}
{"name": "Weather.query", "parameters": {"city": "Beijing", "unit": "celsius"}}
我们来计算一下这个问题。书生·浦语是一个大语言模型，它可以调用工具并阅读结果。
今天上海的天气很好，气温二十五度。请帮我写一篇关于春天的文章，并配上插图。
Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000 3.14159 2.71828 ... !? ;: () [] {} <> / \\ | ~ ` @ # $ % ^ & * - + =
Emoji and accents: café naïve résumé 🙂 🚀 ✓ — “quotes” ‘single’ …
"""


def build_tokenizer():
    """A byte-level BPE (vocabulary of ~400) with InternLM2's special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", *INTERNLM2_SPECIAL_TOKENS]
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_CORPUS.splitlines() * 4, trainer=trainer)
    bos_id = backend.token_to_id("<s>")
    # Like InternLM2's tokenizer: a BOS is prepended when special tokens are added.
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", bos_id)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="</s>",  # as in InternLM2's tokenizer_config.json
        additional_special_tokens=list(INTERNLM2_SPECIAL_TOKENS),
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny_model(directory: Path, *, seed: int = 0, hidden_size: int = 64, num_layers: int = 2) -> Path:
    """Save a tiny random Llama and its tokenizer to `directory` (for `from_pretrained`) and return it."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    directory = Path(directory)
    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        # Wide random weights make the babble varied (tiny default-init models repeat one token).
        initializer_range=0.5,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory of the tiny chat model, built once per test session."""
    directory = tmp_path_factory.getbasetemp() / "tiny-internlm2-llama"
    # Several fixture registrations (conftest and a module) may ask for it: build it once.
    if not (directory / "config.json").exists():
        build_tiny_model(directory)
    return directory
