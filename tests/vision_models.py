"""Tiny random-weight vision models built at test time: a CLIP and a LLaVA-style VLM (no download).

Both are saved with `save_pretrained` and are meant to be loaded back through `from_pretrained`
(`AutoModel` / `AutoProcessor` / `AutoModelForImageTextToText`), so loading, processors, chat templates
and generation run for real on the CPU. The weights are random (seeded): retrieval scores and captions
are arbitrary but deterministic.

- `build_tiny_clip(directory)`: CLIP with 32x32 images, a byte-level CLIP tokenizer (any text,
  Chinese included, tokenises), 16-dimensional embeddings.
- `build_tiny_llava(directory)`: LLaVA (CLIP vision tower + Llama) with the `<image>` token, the
  byte-level BPE tokenizer of tests/tiny_model.py, and a ChatML chat template that takes image parts.
- Session fixtures `tiny_clip_dir` and `tiny_llava_dir` build each model once per test session;
  `gallery_dir` gives each test its own copy of tests/fixtures/images/.

Register the fixtures in a test module with `from vision_models import tiny_clip_dir, ...  # noqa: F401`
or in tests/conftest.py with `pytest_plugins = ["vision_models"]`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

IMAGES = Path(__file__).parent / "fixtures" / "images"
IMAGE_SIZE = 32
PATCH_SIZE = 8

#: ChatML (InternLM2's chat format) with image parts written as the `<image>` token.
LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<image>' }}{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{{ '<|im_end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _image_processor():
    from transformers import CLIPImageProcessorPil  # the PIL backend: no torchvision needed

    return CLIPImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )


def _vision_config():
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        projection_dim=16,
    )


def build_clip_tokenizer():
    """A CLIP tokenizer whose vocabulary is the 256 byte-level symbols (no merges): tokenises anything."""
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for symbol in alphabet:
        vocab.setdefault(symbol, len(vocab))
        vocab.setdefault(symbol + "</w>", len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def build_tiny_clip(directory: Path, *, seed: int = 0) -> Path:
    """Save a tiny random CLIP (model and processor) to `directory` and return it."""
    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPProcessor, CLIPTextConfig

    tokenizer = build_clip_tokenizer()
    text_config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=77,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        projection_dim=16,
    )
    config = CLIPConfig(
        text_config=text_config.to_dict(), vision_config=_vision_config().to_dict(), projection_dim=16
    )
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    CLIPProcessor(image_processor=_image_processor(), tokenizer=tokenizer).save_pretrained(directory)
    return directory


def build_tiny_llava(directory: Path, *, seed: int = 0) -> Path:
    """Save a tiny random LLaVA (CLIP vision tower + Llama) and its processor to `directory`."""
    import torch
    from tiny_model import build_tokenizer
    from transformers import (
        GenerationConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tokenizer = build_tokenizer()
    tokenizer.add_special_tokens(
        {"additional_special_tokens": ["<image>"]}, replace_extra_special_tokens=False
    )
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    text_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        initializer_range=0.5,  # varied babble (see tests/tiny_model.py)
    )
    config = LlavaConfig(
        vision_config=_vision_config().to_dict(),
        text_config=text_config.to_dict(),
        image_token_index=image_token_id,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    processor = LlavaProcessor(
        image_processor=_image_processor(),
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # the CLS token; "default" drops it again
        chat_template=LLAVA_CHAT_TEMPLATE,
    )
    processor.save_pretrained(directory)
    return directory


def _built_once(tmp_path_factory: pytest.TempPathFactory, name: str, builder) -> Path:
    directory = tmp_path_factory.getbasetemp() / name
    if not (directory / "config.json").exists():  # several registrations of the fixture: build once
        builder(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory of the tiny CLIP, built once per test session."""
    return _built_once(tmp_path_factory, "tiny-clip", build_tiny_clip)


@pytest.fixture(scope="session")
def tiny_llava_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory of the tiny LLaVA, built once per test session."""
    return _built_once(tmp_path_factory, "tiny-llava", build_tiny_llava)


@pytest.fixture
def gallery_dir(tmp_path: Path) -> Path:
    """A fresh copy of the fixture images (tests may add, change or delete files in it)."""
    target = tmp_path / "gallery"
    shutil.copytree(IMAGES, target)
    return target
