"""Train inkagent's bundled demo model: a tiny Llama that speaks the InternLM2 tool protocol.

    python scripts/train_demo_model.py --out runs/demo-stage1
    python scripts/train_demo_model.py --init-from runs/demo-stage1 --out runs/demo-stage2 ...
    python scripts/train_demo_model.py --init-from runs/demo-stage2 --out inkagent/demo_model ...

(the later runs' arguments: inkagent/demo_model/MODEL_CARD.md). Reproducible from `--seed` (same
data, same tokenizer, same initial weights; CPU kernels are deterministic for a fixed thread count).
A later run continues the one before with its tokenizer and weights, on new data richer in requests
that need several calls (`--multi-call`) and in values that can only be copied (`--novel-values`). The steps:

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
import functools
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

from demo_conversations import ConversationGenerator  # noqa: E402
from demo_dialogues import (  # noqa: E402
    ALL_TOOLS,
    ARXIV,
    DEMO_TOOLS,
    INTERPRETER,
    WEATHER_FORECAST,
    WEATHER_NOW,
    Request,
    RequestGenerator,
    ToolWorld,
    dialogue,
)

from inkagent.protocols import Internlm2Protocol  # noqa: E402
from inkagent.schema import Message, ToolCall  # noqa: E402

logger = logging.getLogger("train_demo_model")

SPECIAL_TOKENS = [
    "<s>",
    "</s>",
    "<pad>",
    "<|im_start|>",
    "<|im_end|>",
    "<|action_start|>",
    "<|action_end|>",
    "<|plugin|>",
    "<|interpreter|>",
]
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


COPY_DENSE = {
    "arithmetic": 0.2,
    "worded": 0.03,
    "program": 0.1,
    "weather": 0.1,
    "forecast": 0.06,
    "arxiv": 0.08,
    "caption": 0.04,
    "retrieval": 0.04,
    "understanding": 0.04,
    "writer": 0.03,
    "persona": 0.03,
    "parallel": 0.13,
    "combo": 0.12,
}

# -- prompts and examples --------------------------------------------------------------------------------


@dataclass
class Context:
    """One system prompt and the dialogues trained under it.

    `demo`: the prompt of configs/demo.yaml (real actions, `Internlm2Protocol`), whole dialogues with
    the tools' results and the final answer. Otherwise a prompt as `inkagent bench --mode internlm2`
    builds it for a benchmark record's functions, first turns only (the call, or the answer).
    """

    name: str
    language: str
    system: list[dict]
    offered: set[str]
    demo: bool = False
    system_text: str = ""
    dialogues: list[list[Message]] = field(default_factory=list)


def demo_contexts(llm: Any) -> list[Context]:
    """The demo config's prompt in both prompt languages, from the real actions."""
    from inkagent.actions import ActionExecutor, ArxivSearch, IPythonInterpreter, Weather

    plugins = ActionExecutor([Weather(), ArxivSearch()], timeout_s=None)
    interpreter_action = IPythonInterpreter()
    interpreter = ActionExecutor([interpreter_action], timeout_s=None)
    names = set(plugins.api_names()) | {INTERPRETER}
    if names != set(DEMO_TOOLS):
        raise SystemExit(f"the demo tools changed: {sorted(names)}; update demo_dialogues.py")
    contexts = []
    for language in ("en", "zh"):
        system = Internlm2Protocol(language=language).format([], plugins, interpreter)
        contexts.append(Context(f"demo-{language}", language, system, names, demo=True))
    interpreter_action.close()
    return contexts


def bench_context(name: str, functions: list[dict], language: str) -> Context:
    from inkagent.bench.prompts import build_request

    question = {"question": [[{"role": "user", "content": ""}]], "function": functions}
    messages = build_request(
        "internlm2", "simple", question, prompt_language=language, language_hints=False
    ).messages
    return Context(name, language, messages[:-1], {f["name"] for f in functions})


def load_bench_train() -> tuple[list[tuple[dict, dict | None]], set[str]]:
    """The train split of inkagent-tools (records and answers), and the test split's questions (to keep
    out of the training data)."""
    from inkagent.bench.datasets import load_inkagent_tools

    train = [(r.question, r.answer) for r in load_inkagent_tools("train").records]
    test_questions = {r.question["question"][0][-1]["content"] for r in load_inkagent_tools("test").records}
    return train, test_questions


def calls_from_answer(answer: dict | None) -> list[ToolCall]:
    """The calls a benchmark answer expects: the first accepted value of each parameter; a parameter that
    may be omitted ("" accepted) is left out, as the model is trained to do."""
    calls = []
    for entry in (answer or {}).get("ground_truth", []):
        for name, params in entry.items():
            arguments = {key: values[0] for key, values in params.items() if "" not in values}
            kind = "interpreter" if name == INTERPRETER else "plugin"
            calls.append(ToolCall(kind=kind, name=name, arguments=arguments))
    return calls


def first_turn(request: Request) -> list[Message]:
    if request.calls:
        return [
            Message(role="user", content=request.user),
            Message(role="assistant", content=request.thought, tool_calls=list(request.calls)),
        ]
    return [Message(role="user", content=request.user), Message(role="assistant", content=request.direct)]


def fill_demo(
    context: Context,
    count: int,
    generator: RequestGenerator,
    world: ToolWorld,
    rng: random.Random,
    banned: set[str],
) -> None:
    while len(context.dialogues) < count:
        request = generator.sample(lang="zh" if context.language == "zh" and rng.random() < 0.7 else None)
        if request.user in banned:
            continue
        request = generator.fit(request, context.offered)
        failure = None
        if request.calls and request.needs & {WEATHER_NOW, WEATHER_FORECAST, ARXIV} and rng.random() < 0.15:
            failure = rng.choice(["network", "network", "network", "unknown", "timeout", "busy"])
        context.dialogues.append(dialogue(request, world, failure))


def fill_conversations(
    contexts: list[Context],
    count: int,
    seed: int,
    world: ToolWorld,
    rng: random.Random,
    banned: set[str],
    weights: dict[str, float] | None = None,
    follow_ups: float = 0.45,
    code_variety: float = 0.0,
) -> None:
    """Multi-turn conversations (scripts/demo_conversations.py) under the demo prompts, mostly the English
    prompt set (the demo config's), whatever the conversation's language."""
    generator = ConversationGenerator(
        seed + 100,
        split="train",
        world=world,
        weights=weights,
        follow_ups=follow_ups,
        code_variety=code_variety,
    )
    made = 0
    while made < count:
        conversation = generator.conversation()
        if any(turn.user in banned for turn in conversation.turns):
            continue  # a benchmark test question: never trained on
        context = contexts[1] if conversation.lang == "zh" and rng.random() < 0.3 else contexts[0]
        context.dialogues.append(conversation.messages)
        made += 1


def fill_bench(
    context: Context, count: int, generator: RequestGenerator, rng: random.Random, banned: set[str]
) -> None:
    """First turns under a benchmark prompt: mostly requests its tools can serve, some that none can."""
    tries = 0
    while len(context.dialogues) < count and tries < count * 20:
        tries += 1
        # three quarters served by the offered tools (one call, parallel calls, two tools), the rest not
        request = generator.servable(context.offered) if rng.random() < 0.75 else generator.sample()
        if request is None or request.user in banned:
            continue
        context.dialogues.append(first_turn(generator.fit(request, context.offered)))


def render_context(llm: Any, context: Context) -> list[tuple[str, list[tuple[int, int]]]]:
    """Each dialogue as text after the system prompt, with the character spans the model must produce."""
    protocol = Internlm2Protocol(language=context.language)
    head = llm.render(context.system + [{"role": "user", "content": ""}])
    context.system_text = head[: head.index("<|im_start|>user\n")]
    out = []
    for messages in context.dialogues:
        formatted = context.system + [protocol.format_message(m) for m in messages]
        full = llm.render(formatted)
        if not full.startswith(context.system_text):
            raise RuntimeError(f"the system prompt of {context.name} is not a prefix of its dialogues")
        spans = []
        base = len(context.system)
        for i, message in enumerate(messages):
            if message.role != "assistant":
                continue
            start = len(llm.render(formatted[: base + i]))
            end = len(llm.render(formatted[: base + i + 1])) - 1  # up to and with <|im_end|>
            if not full[:end].endswith("<|im_end|>"):
                raise RuntimeError("an assistant turn does not end with <|im_end|>")
            spans.append((start - len(context.system_text), end - len(context.system_text)))
        out.append((full[len(context.system_text) :], spans))
    return out


def build_contexts(llm: Any, args: argparse.Namespace) -> list[Context]:
    rng = random.Random(args.seed)
    generator = RequestGenerator(
        args.seed, split="train", novel=args.novel_values, multi_call=args.multi_call
    )
    world = ToolWorld(random.Random(args.seed + 1))
    train, test_questions = load_bench_train()
    banned = set(test_questions)
    contexts = demo_contexts(llm)
    fill_demo(contexts[0], int(args.demo_examples * 0.85), generator, world, rng, banned)
    fill_demo(contexts[1], args.demo_examples - len(contexts[0].dialogues), generator, world, rng, banned)
    if args.conversations:
        fill_conversations(
            contexts[:2],
            args.conversations,
            args.seed,
            world,
            rng,
            banned,
            args.turn_weights,
            args.follow_ups,
            args.code_variety,
        )
    # First turns with no system prompt at all, rich in spans to copy (numbers into code, places,
    # topics, paths and titles into calls): the curriculum starts with them (see train()).
    bare = Context("bare", "en", [], set(ALL_TOOLS), demo=True)
    while len(bare.dialogues) < args.bare_examples:
        request = generator.sample(families=COPY_DENSE)
        if request.user not in banned:
            bare.dialogues.append(first_turn(request))
    contexts.append(bare)
    # benchmark-style prompts: each train record's function list (with the record itself), and random ones
    functions_by_name = {f["name"]: f for question, _ in train for f in question["function"]}
    per_context = max(1, args.bench_examples // (len(train) + args.random_contexts))
    for i, (question, answer) in enumerate(train):
        context = bench_context(f"train-{i}", question["function"], "en" if rng.random() < 0.9 else "zh")
        user = question["question"][0][-1]["content"]
        calls = calls_from_answer(answer)
        language = "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in user) else "en"
        target = (
            Message(role="assistant", tool_calls=calls)
            if calls
            else Message(role="assistant", content=generator.no_call_answer(user, language))
        )
        context.dialogues.append([Message(role="user", content=user), target])
        fill_bench(context, per_context, generator, rng, banned)
        contexts.append(context)
    names = sorted(functions_by_name)
    for i in range(args.random_contexts):
        chosen = rng.sample(names, rng.choice([1, 1, 2, 2, 3, 4]))
        context = bench_context(
            f"random-{i}", [functions_by_name[n] for n in chosen], "en" if rng.random() < 0.9 else "zh"
        )
        fill_bench(context, per_context, generator, rng, banned)
        contexts.append(context)
    return contexts


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
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRE_TOKENIZER_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    phrases = protocol_phrases()
    # the phrases become tokens of their own after training: keep BPE from spending merges on them
    tokenizer.train_from_iterator((_without(text, phrases) for text in texts), trainer=trainer)
    tokenizer.add_tokens([AddedToken(p, normalized=False) for p in phrases])
    bos = tokenizer.token_to_id("<s>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        additional_special_tokens=SPECIAL_TOKENS[3:],
        model_max_length=4096,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _without(text: str, phrases: list[str]) -> str:
    for phrase in phrases:
        text = text.replace(phrase, "\n")
    return text


# -- data -------------------------------------------------------------------------------------------------


@dataclass
class Encoded:
    """One dialogue as ids after its context's prefix; `targets[t]` says whether id t is trained on."""

    context: int
    ids: list[int]
    targets: list[bool]


@dataclass
class Dataset:
    prefixes: list[list[int]]
    items: list[Encoded] = field(default_factory=list)


def encode_all(
    tokenizer: Any, contexts: list[Context], rendered: list[list[tuple[str, list[tuple[int, int]]]]]
) -> Dataset:
    data = Dataset([tokenizer(c.system_text)["input_ids"] for c in contexts])
    for index, (context, dialogues) in enumerate(zip(contexts, rendered, strict=True)):
        texts = [text for text, _ in dialogues]
        batch = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
        for (_text, spans), ids, offsets in zip(
            dialogues, batch["input_ids"], batch["offset_mapping"], strict=True
        ):
            targets = [b > a and any(s <= a and b <= e for s, e in spans) for a, b in offsets]
            data.items.append(Encoded(index, ids, targets))
        # the split at the prefix must not change the tokens: check one dialogue per context
        whole = tokenizer(context.system_text + texts[0])["input_ids"]
        if whole != data.prefixes[index] + batch["input_ids"][0]:
            raise RuntimeError(
                f"tokenising {context.name}'s system prompt apart from the dialogue changes the tokens"
            )
    return data


def batches(
    data: Dataset, max_tokens: int, rng: random.Random, only: set[int] | None = None
) -> list[list[int]]:
    """Batches of dialogues sharing a prefix and of similar length (at most `max_tokens` padded dialogue
    tokens each), in random order; only from the contexts `only` when given."""
    out = []
    by_context: dict[int, list[int]] = {}
    for i, item in enumerate(data.items):
        if only is None or item.context in only:
            by_context.setdefault(item.context, []).append(i)
    for indexes in by_context.values():
        indexes.sort(key=lambda i: len(data.items[i].ids) + rng.random())
        batch: list[int] = []
        for i in indexes:
            width = len(data.items[i].ids)  # sorted: the newest is the longest
            if batch and width * (len(batch) + 1) > max_tokens:
                out.append(batch)
                batch = []
            batch.append(i)
        if batch:
            out.append(batch)
    rng.shuffle(out)
    return out


# -- model ----------------------------------------------------------------------------------------------------


def build_model(tokenizer: Any, args: argparse.Namespace) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=args.hidden,
        intermediate_size=args.hidden * 3,
        num_hidden_layers=args.layers,
        num_attention_heads=args.hidden // args.head_dim,
        num_key_value_heads=args.hidden // args.head_dim,
        head_dim=args.head_dim,
        max_position_embeddings=4096,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config)


@functools.cache
def _cache_name() -> str:
    """transformers 5.24 renamed the KV-cache argument and output `past_key_values` -> `cache`."""
    import inspect

    from transformers import LlamaModel

    return "cache" if "cache" in inspect.signature(LlamaModel.forward).parameters else "past_key_values"


def batch_loss(model: Any, prefix: list[int], items: list[Encoded], bf16: bool = True) -> tuple[Any, int]:
    """Mean loss over the batch's target tokens, the shared prefix run once."""
    import torch
    import torch.nn.functional as F

    cache_name = _cache_name()
    width = max(len(item.ids) for item in items)
    ids = torch.full((len(items), width), 0, dtype=torch.long)
    mask = torch.zeros((len(items), len(prefix) + width), dtype=torch.long)
    mask[:, : len(prefix)] = 1
    wanted = torch.zeros((len(items), width), dtype=torch.bool)
    for row, item in enumerate(items):
        ids[row, : len(item.ids)] = torch.tensor(item.ids)
        mask[row, len(prefix) : len(prefix) + len(item.ids)] = 1
        wanted[row, : len(item.ids)] = torch.tensor(item.targets)
    device = model.device
    ids, mask, wanted = ids.to(device), mask.to(device), wanted.to(device)
    # bfloat16 matmuls are several times faster than float32 ones on CPUs with AVX512-BF16 / AMX;
    # the weights and the optimizer stay float32
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        prefix_out = model.model(input_ids=torch.tensor([prefix], device=device), use_cache=True)
        cache = prefix_out[cache_name]
        cache.batch_repeat_interleave(len(items))
        hidden = model.model(
            input_ids=ids, attention_mask=mask, use_cache=True, **{cache_name: cache}
        ).last_hidden_state
        # position t predicts token t + 1; token 0 of the dialogue is `<|im_start|>`, never a target
        select = wanted[:, 1:]
        logits = model.lm_head(hidden[:, :-1][select])
    labels = ids[:, 1:][select]
    return F.cross_entropy(logits.float(), labels), int(select.sum())


def train(model: Any, data: Dataset, args: argparse.Namespace, checkpoint: Any = None) -> dict[str, Any]:
    import torch

    rng = random.Random(args.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01, betas=(0.9, 0.98))
    warmup = min(100, max(1, args.steps // 20))

    def lr_at(step: int) -> float:
        if step < warmup:
            return args.lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, args.steps - warmup)
        return args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))

    model.train()
    # Curriculum: copying spans (numbers, places) is learnt by attention heads that find their source.
    # Behind a 600-token system prompt, or diluted among long dialogues, they form far later (not
    # within 2500 steps in trials; in a few hundred steps on short first turns). So the first steps
    # see only first turns with no system prompt, then everything.
    short_prompts = args.curriculum_steps > 0
    bare = {i for i, prefix in enumerate(data.prefixes) if len(prefix) <= 1}
    queue: list[list[int]] = []
    started = time.perf_counter()
    history = []
    running = None
    for step in range(args.steps):
        if short_prompts and step >= args.curriculum_steps:
            short_prompts, queue = False, []
        if not queue:
            queue = batches(data, args.batch_tokens, rng, bare if short_prompts else None)
        indexes = queue.pop()
        items = [data.items[i] for i in indexes]
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        loss, count = batch_loss(model, data.prefixes[items[0].context], items, bf16=args.bf16)
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
            logger.info(
                "step %d/%d  loss %.4f  lr %.2e  %.0f s", step, args.steps, running, lr_at(step), elapsed
            )
            history.append({"step": step, "loss": round(running, 4), "elapsed_s": round(elapsed, 1)})
        if checkpoint is not None and args.checkpoint_every and step and step % args.checkpoint_every == 0:
            checkpoint(step)
    model.eval()
    return {"train_seconds": round(time.perf_counter() - started, 1), "loss_history": history}


# -- main -----------------------------------------------------------------------------------------------------


def _weights(text: str) -> dict[str, float]:
    """`kind=weight,...` -> {kind: weight} (argparse type)."""
    out = {}
    for item in text.split(","):
        kind, sep, value = item.partition("=")
        try:
            out[kind.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r} is not KIND=WEIGHT") from None
        if not sep:
            raise argparse.ArgumentTypeError(f"{item!r} is not KIND=WEIGHT")
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="inkagent/demo_model", help="where the model is saved")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument(
        "--demo-examples", type=int, default=8000, help="whole dialogues under the demo prompt"
    )
    parser.add_argument(
        "--bench-examples", type=int, default=14000, help="first turns under benchmark-style prompts"
    )
    parser.add_argument(
        "--random-contexts", type=int, default=100, help="benchmark-style prompts with random tools"
    )
    parser.add_argument("--bare-examples", type=int, default=14000, help="first turns with no system prompt")
    parser.add_argument(
        "--conversations",
        type=int,
        default=0,
        help="multi-turn conversations (2-4 user turns, follow-ups) under the demo prompts",
    )
    parser.add_argument(
        "--turn-weights",
        type=_weights,
        default=None,
        metavar="KIND=W,...",
        help="the conversations' mixture of fresh turns, changed (e.g. code=0.16,code_timeout=0.1; kinds: "
        "scripts/demo_conversations.py ConversationGenerator.FRESH)",
    )
    parser.add_argument(
        "--follow-ups", type=float, default=0.45, help="chance that a turn refers back to the one before"
    )
    parser.add_argument(
        "--code-variety",
        type=float,
        default=0.0,
        help="share of the conversations' user-code turns drawn from scripts/demo_snippets.py (more kinds "
        "of code to copy as given)",
    )
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument(
        "--init-from",
        metavar="MODEL",
        help="continue training this saved model (its tokenizer and weights) instead of starting anew",
    )
    parser.add_argument(
        "--novel-values",
        type=float,
        default=0.0,
        help="share of titles, scenes, image questions and persona lines composed from words (not memorisable)",
    )
    parser.add_argument(
        "--multi-call",
        type=float,
        default=1.0,
        help="how much more often than the default mixture a request needs several calls",
    )
    parser.add_argument(
        "--curriculum-steps",
        type=int,
        default=500,
        help="first steps on dialogues without a system prompt only",
    )
    parser.add_argument("--batch-tokens", type=int, default=4096, help="padded dialogue tokens per batch")
    parser.add_argument(
        "--lr", type=float, default=8e-4, help="peak learning rate (higher keeps copying from forming)"
    )
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=64, help="attention head size (hidden / heads)")
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument(
        "--device", default="cpu", help="cpu, or cuda for a GPU (faster; not bit-for-bit reproducible)"
    )
    parser.add_argument(
        "--no-bf16", dest="bf16", action="store_false", help="train in float32 (slower on most CPUs)"
    )
    parser.add_argument("--checkpoint-every", type=int, default=0, help="save OUT/checkpoint every N steps")
    parser.add_argument(
        "--max-minutes", type=float, default=None, help="stop early after this long (experiments)"
    )
    parser.add_argument(
        "--dtype",
        default="float16",
        choices=["float16", "bfloat16", "float32"],
        help="dtype of the saved weights (float16 halves the file; the CPU loads float32)",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.novel_values <= 1:
        parser.error(f"--novel-values {args.novel_values} is not a share between 0 and 1")
    if args.multi_call <= 0:
        parser.error(f"--multi-call {args.multi_call} must be above 0")
    if args.hidden % args.head_dim:
        parser.error(f"--hidden {args.hidden} is not a multiple of --head-dim {args.head_dim}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the mock weather service's requests
    import torch

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    from inkagent.llms.base import LLM

    llm = LLM(path="")  # only its meta template: the text HFTransformer will see
    contexts = build_contexts(llm, args)
    rendered = [render_context(llm, c) for c in contexts]
    kinds: dict[str, int] = {}
    for context in contexts:
        key = "bare" if not context.system else "demo" if context.demo else "bench"
        kinds[key] = kinds.get(key, 0) + len(context.dialogues)
    logger.info("%d prompts, %s dialogues", len(contexts), kinds)

    if args.init_from:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.init_from)
        for loading_only in ("is_local", "local_files_only"):  # saved back otherwise
            tokenizer.init_kwargs.pop(loading_only, None)
    else:
        corpus = [c.system_text for c in contexts] + [text for dialogues in rendered for text, _ in dialogues]
        tokenizer = train_tokenizer(corpus, args.vocab)
    data = encode_all(tokenizer, contexts, rendered)
    lengths = sorted(len(item.ids) for item in data.items)
    prefix_lengths = sorted(len(p) for p in data.prefixes)
    logger.info(
        "tokenizer: %d tokens; prompts %d-%d tokens (demo %s); dialogues median %d, max %d tokens",
        len(tokenizer),
        prefix_lengths[0],
        prefix_lengths[-1],
        [len(p) for p in data.prefixes[:2]],
        lengths[len(lengths) // 2],
        lengths[-1],
    )
    data_seconds = time.perf_counter() - started

    if args.init_from:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(args.init_from, dtype=torch.float32)
    else:
        model = build_model(tokenizer, args)
    model = model.to(args.device)
    logger.info("model: %.2f M parameters", sum(p.numel() for p in model.parameters()) / 1e6)

    def checkpoint(step: int) -> None:  # for looking at a long run before it ends
        model.eval()
        save(model, tokenizer, args, Path(args.out) / "checkpoint")
        model.train()
        logger.info("checkpoint at step %d saved", step)

    report = train(model, data, args, checkpoint)

    save(model, tokenizer, args)
    report.update(
        {
            "seed": args.seed,
            "demo_examples": kinds.get("demo", 0),
            "bench_examples": kinds.get("bench", 0),
            "prompts": len(contexts),
            "init_from": args.init_from,
            "novel_values": args.novel_values,
            "multi_call": args.multi_call,
            "conversations": args.conversations,
            "turn_weights": args.turn_weights,
            "follow_ups": args.follow_ups,
            "code_variety": args.code_variety,
            "steps": args.steps,
            "curriculum_steps": args.curriculum_steps,
            "batch_tokens": args.batch_tokens,
            "lr": args.lr,
            "hidden": model.config.hidden_size,
            "layers": model.config.num_hidden_layers,
            "head_dim": model.config.head_dim,
            "vocab": len(tokenizer),
            "threads": args.threads,
            "device": args.device,
            "parameters": sum(p.numel() for p in model.parameters()),
            "data_seconds": round(data_seconds, 1),
            "total_seconds": round(time.perf_counter() - started, 1),
            "demo_prompt_tokens": len(data.prefixes[0]),
            "torch": torch.__version__,
            "command": "python scripts/train_demo_model.py " + " ".join(argv or sys.argv[1:]),
        }
    )
    Path(args.out, "training_report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    logger.info(
        "done in %.0f s (training %.0f s); saved to %s",
        report["total_seconds"],
        report["train_seconds"],
        args.out,
    )
    return 0


def save(model: Any, tokenizer: Any, args: argparse.Namespace, out: Path | None = None) -> None:
    import torch
    from transformers import GenerationConfig

    out = out or Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=[tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")],
        do_sample=False,
        max_new_tokens=256,
    )
    # the output layer is tied to the embeddings: store it once
    weights = {
        k: v.to("cpu", getattr(torch, args.dtype))
        for k, v in model.state_dict().items()
        if k != "lm_head.weight"
    }
    model.save_pretrained(out, state_dict=weights)
    tokenizer.save_pretrained(out)


if __name__ == "__main__":
    sys.exit(main())
