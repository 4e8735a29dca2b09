"""Train inkagent's bundled demo model: a tiny Llama that speaks the InternLM2 tool protocol.

    python scripts/train_demo_model.py --out inkagent/demo_model

Reproducible from `--seed` (same data, same tokenizer, same initial weights; CPU kernels are
deterministic for a fixed thread count). The steps:

1. Synthetic dialogues (scripts/demo_dialogues.py) in English and Chinese, rendered into text with
   the exact system prompts inkagent's `Internlm2Protocol` produces for the demo config's tools
   (configs/demo.yaml), by the same meta template `HFTransformer` uses. Some dialogues get prompts
   with a subset of the tools, so that the model answers "no such tool" instead of calling a tool
   that is not offered.
2. A byte-level BPE tokenizer trained on that text. InternLM2's special tokens are single tokens;
   digits and punctuation are single pre-tokens and spaces are separate from words, so a number, a
   place or an expression has the same tokens in the request and in the call that copies it.
3. A small `LlamaForCausalLM`, loss on the assistant's tokens only. Every dialogue of one prompt
   variant shares the same system prompt, so a batch runs that prefix once and expands its KV cache
   to the batch: the long tool listing costs one sequence per batch, not one per dialogue.
4. Saved with `save_pretrained` (weights, tokenizer with an InternLM2 chat template, generation
   config with `<|im_end|>` as an end token) for `HFTransformer(path=...)`.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from demo_dialogues import ARXIV, INTERPRETER, WEATHER_FORECAST, WEATHER_NOW, DialogueGenerator, Example  # noqa: E402

from inkagent.protocols import Internlm2Protocol  # noqa: E402
from inkagent.schema import Message, ToolSpec  # noqa: E402

logger = logging.getLogger("train_demo_model")

SPECIAL_TOKENS = ["<s>", "</s>", "<pad>", "<|im_start|>", "<|im_end|>", "<|action_start|>", "<|action_end|>",
                  "<|plugin|>", "<|interpreter|>"]
# Han characters and digits one by one, runs of other letters, runs of punctuation and spaces, and a
# newline with its indentation. Words never carry a space, so "Paris" has the same tokens in
# "weather in Paris?" and in {"city": "Paris"}.
PRE_TOKENIZER_PATTERN = r"\p{Han}|\p{N}|[\p{L}\p{M}&&[^\p{Han}]]+|[^\p{L}\p{M}\p{N}\n]+|\n[ \t]*"
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ '<|im_start|>' + message['role'] }}"
    "{% if message.get('name') %}{{ ' name=<|' + message['name'] + '|>' }}{% endif %}"
    "{{ '\n' + message['content'] + '<|im_end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


# -- prompts -----------------------------------------------------------------------------------------


@dataclass
class Variant:
    """One system prompt: the prompt set (`en`/`zh`), the plugin APIs offered and the interpreter."""

    name: str
    language: str
    tools: list[ToolSpec]
    interpreter: ToolSpec | None
    weight: float
    system_text: str = ""

    @property
    def offered(self) -> set[str]:
        names = {t.name for t in self.tools}
        return names | ({INTERPRETER} if self.interpreter is not None else set())


class _Specs:
    """Quacks like an `ActionExecutor` for `Internlm2Protocol.format` (it only asks for `specs()`)."""

    def __init__(self, specs: list[ToolSpec]) -> None:
        self._specs = specs

    def specs(self) -> list[ToolSpec]:
        return list(self._specs)


def demo_specs() -> tuple[list[ToolSpec], ToolSpec]:
    """The plugin APIs and the interpreter of configs/demo.yaml, from the real actions."""
    import os

    if os.environ.get("DEMO_PLACEHOLDER_TOOLS") == "1":  # TEMPORARY until the actions land
        return _placeholder_specs()
    from inkagent.actions import ActionExecutor, ArxivSearch, IPythonInterpreter, Weather

    plugins = ActionExecutor([Weather(), ArxivSearch()], timeout_s=None)
    interpreter = IPythonInterpreter()
    try:
        interpreter_spec = ActionExecutor([interpreter], timeout_s=None).specs()[0]
    finally:
        interpreter.close()
    specs = plugins.specs()
    names = {s.name for s in specs}
    missing = {WEATHER_NOW, WEATHER_FORECAST, ARXIV} - names
    if missing:
        raise SystemExit(f"the actions no longer offer {sorted(missing)}; update demo_dialogues.py (have {sorted(names)})")
    return specs, interpreter_spec


def _placeholder_specs() -> tuple[list[ToolSpec], ToolSpec]:
    units = {"type": "string", "enum": ["metric", "imperial"], "default": "metric", "description": "metric or imperial"}
    city = {"type": "string", "description": "the place, in English or Chinese"}
    specs = [
        ToolSpec(name=WEATHER_NOW, description="Current weather at a place.",
                 parameters={"type": "object", "properties": {"city": city, "units": units}, "required": ["city"]}),
        ToolSpec(name=WEATHER_FORECAST, description="Daily forecast for the next days.",
                 parameters={"type": "object", "properties": {"city": city, "days": {"type": "integer", "default": 3},
                                                              "units": units}, "required": ["city"]}),
        ToolSpec(name=ARXIV, description="Search arXiv and return the top papers.",
                 parameters={"type": "object", "properties": {"query": {"type": "string"},
                                                              "max_results": {"type": "integer", "default": 3}},
                             "required": ["query"]}),
    ]
    interp = ToolSpec(name=INTERPRETER, description="Run Python code in a Jupyter kernel.",
                      parameters={"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]})
    return specs, interp


def build_variants(specs: list[ToolSpec], interpreter: ToolSpec) -> list[Variant]:
    """The demo prompt (both languages) most of the time, and prompts with a tool left out."""
    variants = []
    for language in ("en", "zh"):
        variants.append(Variant(f"demo-{language}", language, specs, interpreter, weight=0.36))
        for left_out in (WEATHER_NOW, ARXIV, INTERPRETER):
            if left_out == INTERPRETER:
                variants.append(Variant(f"no-interpreter-{language}", language, specs, None, weight=0.03))
            else:
                group = left_out.split(".")[0]
                kept = [s for s in specs if not s.name.startswith(group + ".")]
                variants.append(Variant(f"no-{group}-{language}", language, kept, interpreter, weight=0.03))
        variants.append(Variant(f"interpreter-only-{language}", language, [], interpreter, weight=0.02))
        variants.append(Variant(f"weather-only-{language}", language,
                                [s for s in specs if s.name.startswith("Weather.")], None, weight=0.02))
    return variants


def render_system(llm: Any, variant: Variant) -> str:
    """The text before the first user turn (the template ends a bare system prompt with an assistant turn)."""
    protocol = Internlm2Protocol(language=variant.language)
    interpreter = _Specs([variant.interpreter]) if variant.interpreter else None
    text = llm.render(protocol.format([Message(role="user", content="")], _Specs(variant.tools), interpreter))
    return text[: text.index("<|im_start|>user\n")]


def render_dialogue(llm: Any, variant: Variant, example: Example) -> tuple[str, list[tuple[int, int]]]:
    """The dialogue after the system prompt, and the character spans the model must produce."""
    protocol = Internlm2Protocol(language=variant.language)
    plugins = _Specs(variant.tools)
    interpreter = _Specs([variant.interpreter]) if variant.interpreter else None
    full = llm.render(protocol.format(example.messages, plugins, interpreter))
    if not full.startswith(variant.system_text):
        raise RuntimeError(f"the system prompt of {variant.name} is not a prefix of its dialogues")
    spans = []
    for i, message in enumerate(example.messages):
        if message.role != "assistant":
            continue
        start = len(llm.render(protocol.format(example.messages[:i], plugins, interpreter)))
        end = len(llm.render(protocol.format(example.messages[: i + 1], plugins, interpreter))) - 1  # keep <|im_end|>
        if not full[:end].endswith("<|im_end|>"):
            raise RuntimeError("an assistant turn does not end with <|im_end|>")
        spans.append((start - len(variant.system_text), end - len(variant.system_text)))
    return full[len(variant.system_text):], spans


def assign(example: Example, variants: list[Variant], rng: random.Random, generator: DialogueGenerator) -> tuple[int, Example]:
    """Pick a prompt variant for a dialogue; a dialogue whose tool is left out becomes a "no such tool" answer."""
    index = rng.choices(range(len(variants)), weights=[v.weight for v in variants])[0]
    variant = variants[index]
    if example.needs and not set(example.needs) <= variant.offered:
        example = generator.missing_tool(example.language, example)
    return index, example


# -- tokenizer ------------------------------------------------------------------------------------------


def protocol_phrases() -> list[str]:
    """The fixed sentences of inkagent's InternLM2 prompts (both languages), as they appear in the text.

    They become single tokens: the same for any tool list, and they make the system prompt a few
    hundred tokens shorter, which is most of what training and inference spend on it.
    """
    from inkagent.protocols import prompts

    phrases = []
    for language in prompts.PROMPTS.values():
        phrases += [language["meta"], language["interpreter"], *language["plugin"].split("{prompt}")]
    phrases += json.dumps(prompts.API_PREFIX, ensure_ascii=False)[1:-1].split("{tool_name}")
    phrases.append(json.dumps(prompts.PARAMETER_DESCRIPTION, ensure_ascii=False)[1:-1])
    return [p for p in dict.fromkeys(phrases) if len(p) > 3]


def train_tokenizer(texts: list[str], vocab_size: int) -> Any:
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRE_TOKENIZER_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, min_frequency=2,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    phrases = protocol_phrases()
    # the phrases become tokens of their own after training: keep BPE from spending merges on them
    tokenizer.train_from_iterator((_without(text, phrases) for text in texts), trainer=trainer)
    tokenizer.add_tokens([AddedToken(p, normalized=False) for p in phrases])
    bos = tokenizer.token_to_id("<s>")
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   additional_special_tokens=SPECIAL_TOKENS[3:], model_max_length=4096,
                                   clean_up_tokenization_spaces=False)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _without(text: str, phrases: list[str]) -> str:
    for phrase in phrases:
        text = text.replace(phrase, "\n")
    return text


# -- data -------------------------------------------------------------------------------------------------


@dataclass
class Encoded:
    """One dialogue as ids after its variant's prefix; `targets[t]` says whether id t is trained on."""

    variant: int
    ids: list[int]
    targets: list[bool]


@dataclass
class Dataset:
    prefixes: list[list[int]]
    items: list[Encoded] = field(default_factory=list)


def encode_all(tokenizer: Any, variants: list[Variant], rendered: list[tuple[int, str, list[tuple[int, int]]]]) -> Dataset:
    prefixes = [tokenizer(v.system_text)["input_ids"] for v in variants]
    texts = [text for _, text, _ in rendered]
    batch = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    data = Dataset(prefixes)
    for (variant, text, spans), ids, offsets in zip(rendered, batch["input_ids"], batch["offset_mapping"], strict=True):
        targets = [any(s <= a and b <= e for s, e in spans) and b > a for a, b in offsets]
        data.items.append(Encoded(variant, ids, targets))
    # the split at the prefix must not change the tokens: check a few against one-piece tokenisation
    for variant, text, _ in rendered[:20]:
        whole = tokenizer(variants[variant].system_text + text)["input_ids"]
        if whole != prefixes[variant] + tokenizer(text, add_special_tokens=False)["input_ids"]:
            raise RuntimeError("tokenising the system prompt apart from the dialogue changes the tokens")
    return data


def batches(data: Dataset, batch_size: int, rng: random.Random) -> list[list[int]]:
    """Batches of dialogues sharing a prefix and of similar length, in random order."""
    out = []
    by_variant: dict[int, list[int]] = {}
    for i, item in enumerate(data.items):
        by_variant.setdefault(item.variant, []).append(i)
    for indexes in by_variant.values():
        indexes.sort(key=lambda i: len(data.items[i].ids) + rng.random())
        out += [indexes[i : i + batch_size] for i in range(0, len(indexes), batch_size)]
    rng.shuffle(out)
    return out


# -- model ----------------------------------------------------------------------------------------------------


def build_model(tokenizer: Any, args: argparse.Namespace) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=args.hidden, intermediate_size=args.hidden * 3,
        num_hidden_layers=args.layers, num_attention_heads=args.hidden // 64, num_key_value_heads=args.hidden // 64,
        max_position_embeddings=4096, rope_theta=10000.0, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config)


def batch_loss(model: Any, prefix: list[int], items: list[Encoded], bf16: bool = True) -> tuple[Any, int]:
    """Mean loss over the batch's target tokens, the shared prefix run once."""
    import torch
    import torch.nn.functional as F

    width = max(len(item.ids) for item in items)
    ids = torch.full((len(items), width), 0, dtype=torch.long)
    mask = torch.zeros((len(items), len(prefix) + width), dtype=torch.long)
    mask[:, : len(prefix)] = 1
    wanted = torch.zeros((len(items), width), dtype=torch.bool)
    for row, item in enumerate(items):
        ids[row, : len(item.ids)] = torch.tensor(item.ids)
        mask[row, len(prefix) : len(prefix) + len(item.ids)] = 1
        wanted[row, : len(item.ids)] = torch.tensor(item.targets)
    # bfloat16 matmuls are several times faster than float32 ones on CPUs with AVX512-BF16 / AMX;
    # the weights and the optimizer stay float32
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        prefix_out = model.model(input_ids=torch.tensor([prefix]), use_cache=True)
        cache = prefix_out.past_key_values
        cache.batch_repeat_interleave(len(items))
        hidden = model.model(input_ids=ids, attention_mask=mask, past_key_values=cache, use_cache=True).last_hidden_state
        # position t predicts token t + 1; token 0 of the dialogue is `<|im_start|>`, never a target
        select = wanted[:, 1:]
        logits = model.lm_head(hidden[:, :-1][select])
    labels = ids[:, 1:][select]
    return F.cross_entropy(logits.float(), labels), int(select.sum())


def train(model: Any, data: Dataset, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    rng = random.Random(args.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01, betas=(0.9, 0.98))
    warmup = max(1, args.steps // 20)

    def lr_at(step: int) -> float:
        if step < warmup:
            return args.lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, args.steps - warmup)
        return args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))

    model.train()
    queue: list[list[int]] = []
    started = time.perf_counter()
    history = []
    running = None
    for step in range(args.steps):
        if not queue:
            queue = batches(data, args.batch, rng)
        indexes = queue.pop()
        items = [data.items[i] for i in indexes]
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        loss, count = batch_loss(model, data.prefixes[items[0].variant], items, bf16=args.bf16)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        if args.max_minutes and time.perf_counter() - started > args.max_minutes * 60:
            logger.info("stopping at step %d: --max-minutes %g reached", step, args.max_minutes)
            break
        if step % 50 == 0 or step == args.steps - 1:
            elapsed = time.perf_counter() - started
            logger.info("step %d/%d  loss %.4f  lr %.2e  %.0f s", step, args.steps, running, lr_at(step), elapsed)
            history.append({"step": step, "loss": round(running, 4), "elapsed_s": round(elapsed, 1)})
    model.eval()
    return {"train_seconds": round(time.perf_counter() - started, 1), "loss_history": history}


# -- main -----------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="inkagent/demo_model", help="where the model is saved")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--examples", type=int, default=60000, help="synthetic dialogues to train on")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--no-bf16", dest="bf16", action="store_false", help="train in float32 (slower on most CPUs)")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop early after this long (experiments)")
    parser.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"],
                        help="dtype of the saved weights (float16 halves the file; the CPU loads float32)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    import torch

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    from inkagent.llms.base import LLM

    llm = LLM(path="")  # only its meta template: the text HFTransformer will see
    specs, interpreter = demo_specs()
    variants = build_variants(specs, interpreter)
    for variant in variants:
        variant.system_text = render_system(llm, variant)

    generator = DialogueGenerator(args.seed, split="train")
    rng = random.Random(args.seed + 1)
    rendered = []
    kinds: dict[str, int] = {}
    for _ in range(args.examples):
        index, example = assign(generator.sample(), variants, rng, generator)
        text, spans = render_dialogue(llm, variants[index], example)
        rendered.append((index, text, spans))
        kinds[example.kind] = kinds.get(example.kind, 0) + 1
    logger.info("%d dialogues: %s", len(rendered), dict(sorted(kinds.items())))

    corpus = [v.system_text for v in variants] + [text for _, text, _ in rendered]
    tokenizer = train_tokenizer(corpus, args.vocab)
    data = encode_all(tokenizer, variants, rendered)
    lengths = sorted(len(item.ids) for item in data.items)
    logger.info("tokenizer: %d tokens; prefixes %s tokens; dialogues median %d, max %d tokens",
                len(tokenizer), [len(p) for p in data.prefixes], lengths[len(lengths) // 2], lengths[-1])
    data_seconds = time.perf_counter() - started

    model = build_model(tokenizer, args)
    logger.info("model: %.2f M parameters", sum(p.numel() for p in model.parameters()) / 1e6)
    report = train(model, data, args)

    save(model, tokenizer, args)
    report.update({
        "seed": args.seed, "examples": args.examples, "steps": args.steps, "batch": args.batch, "lr": args.lr,
        "hidden": args.hidden, "layers": args.layers, "vocab": len(tokenizer), "threads": args.threads,
        "parameters": sum(p.numel() for p in model.parameters()), "data_seconds": round(data_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1), "kinds": kinds,
        "prefix_tokens": {v.name: len(p) for v, p in zip(variants, data.prefixes, strict=True)},
        "torch": torch.__version__, "command": "python scripts/train_demo_model.py " + " ".join(argv or sys.argv[1:]),
    })
    Path(args.out, "training_report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    logger.info("done in %.0f s (training %.0f s); saved to %s", report["total_seconds"], report["train_seconds"], args.out)
    return 0


def save(model: Any, tokenizer: Any, args: argparse.Namespace) -> None:
    import torch
    from transformers import GenerationConfig

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=[tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")],
        do_sample=False, max_new_tokens=256,
    )
    model.to(getattr(torch, args.dtype)).save_pretrained(out)
    model.to(torch.float32)
    tokenizer.save_pretrained(out)


if __name__ == "__main__":
    sys.exit(main())
