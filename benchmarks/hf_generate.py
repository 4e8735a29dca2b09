"""HFTransformer against raw `model.generate`, in one process, on the same prompt and token count.

    python benchmarks/hf_generate.py                      # CPU: a 2-layer Llama of InternLM2's proportions
    python benchmarks/hf_generate.py --device cuda --shape internlm2-1_8b --tokens 128,1024
    python benchmarks/hf_generate.py --device cuda --shape internlm2_5-7b --tokens 128,1024   # issue 14's GPU check

Prints, for each output length, the time of raw `model.generate`, of `HFTransformer.generate` and of
streaming through `HFTransformer.stream_text` (medians over --repeats interleaved runs), their ratios
to raw, the cost per token, and how the cost per token grows from the shortest to the longest output
(constant-work detokenisation keeps that growth to the model's own). It also prints what re-decoding
the whole output at every token, as lagent 0.2.4 does, would add per token (lagent 0.2.4's own
HFTransformer cannot be timed here: it calls `.cuda()` and private generation APIs that today's
transformers no longer has). With --batch-sizes (default 1,16 on CUDA) it reports the throughput of
one left-padded batch. On the CPU, ratios use the process's CPU time (steadier than the wall clock on
a shared machine; both are printed) and torch runs one thread unless --threads says otherwise.

Models have random weights, built from a config, with a synthetic byte-level BPE tokenizer of the
model's vocabulary size that carries InternLM2's special tokens: nothing is downloaded. Generation is
forced to the full length (`min_new_tokens`), so every variant produces exactly the same token count.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable

SHAPES = {
    # name: hidden, layers, heads, kv heads, intermediate, vocab
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=128, vocab_size=2048),
    # InternLM2's proportions (MLP 4x hidden, grouped KV heads, large vocabulary), two layers: CPU-sized.
    "medium": dict(hidden_size=1024, num_hidden_layers=2, num_attention_heads=16, num_key_value_heads=8, intermediate_size=4096, vocab_size=32000),
    "small": dict(hidden_size=512, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=4, intermediate_size=1536, vocab_size=8192),
    # InternLM2-1.8B's dimensions (config.json of internlm/internlm2-chat-1_8b), as a Llama.
    "internlm2-1_8b": dict(hidden_size=2048, num_hidden_layers=24, num_attention_heads=16, num_key_value_heads=8, intermediate_size=8192, vocab_size=92544, rope_theta=1_000_000.0),
    # InternLM2.5-7B's dimensions (config.json of internlm/internlm2_5-7b-chat), as the native loader builds it.
    "internlm2_5-7b": dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, intermediate_size=14336, vocab_size=92544, rope_theta=1_000_000.0),
}  # fmt: skip
SPECIALS = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>", "<|action_start|>", "<|action_end|>",
            "<|interpreter|>", "<|plugin|>"]  # fmt: skip


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (what the ByteLevel decoder inverts)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


def synthetic_tokenizer(vocab_size: int, seed: int = 0):
    """A byte-level BPE with `vocab_size` entries whose tokens are whole characters and words.

    Merges first build every character of a mixed alphabet (ASCII, accents, 3,000 CJK) from its bytes,
    then join random tokens into longer ones, like a trained vocabulary: random models then write
    mostly valid UTF-8, with some raw bytes, as real ones do.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    rng = random.Random(seed)
    byte_char = bytes_to_unicode()
    vocab = {token: i for i, token in enumerate(SPECIALS)}
    for b in range(256):
        vocab[byte_char[b]] = len(vocab)
    merges: list[tuple[str, str]] = []
    words = [chr(c) for c in range(32, 127)]
    alphabet = [chr(c) for c in range(0xC0, 0x180)] + [chr(0x4E00 + i) for i in range(3000)]
    target = vocab_size
    for char in alphabet:
        if len(vocab) >= target:
            break
        pieces = [byte_char[b] for b in char.encode()]
        token = pieces[0]
        for piece in pieces[1:]:
            merged = token + piece
            if merged not in vocab:
                merges.append((token, piece))
                vocab[merged] = len(vocab)
            token = merged
        words.append(char)
    encoded = {w: "".join(byte_char[b] for b in w.encode()) for w in words}
    pool = list(encoded.values())
    while len(vocab) < target:
        left, right = rng.choice(pool), rng.choice(pool)
        merged = left + right
        if merged in vocab or len(merged) > 18:
            continue
        merges.append((left, right))
        vocab[merged] = len(vocab)
        pool.append(merged)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(SPECIALS)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="</s>",
        additional_special_tokens=SPECIALS[3:],
        clean_up_tokenization_spaces=False,
    )


def build(shape: str, device: str, dtype_name: str):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    dims = dict(SHAPES[shape])
    tokenizer = synthetic_tokenizer(dims["vocab_size"])
    config = LlamaConfig(
        **dims,
        max_position_embeddings=8192,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    dtype = getattr(torch, dtype_name)
    torch.manual_seed(0)
    with torch.device(device):
        previous = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            model = LlamaForCausalLM(config).eval()
        finally:
            torch.set_default_dtype(previous)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def timed(fn: Callable[[], object], device: str) -> tuple[float, float]:
    """(wall-clock seconds, CPU seconds of this process, all threads). On a shared CPU machine the
    CPU time is the steadier measure of work done; on a GPU the wall clock is what counts."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - wall, time.process_time() - cpu


def lagent_style_decode_ms_per_token(tokenizer, ids: list[int]) -> float:
    """What decoding the whole output again at every step costs per token (lagent 0.2.4's way)."""
    start = time.perf_counter()
    for end in range(1, len(ids) + 1):
        tokenizer.decode(ids[:end])
    return (time.perf_counter() - start) * 1000 / max(1, len(ids))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--shape", choices=sorted(SHAPES), default=None, help="default: medium (CPU), internlm2-1_8b (CUDA)"
    )
    parser.add_argument("--dtype", default=None, help="default: float32 on the CPU, bfloat16 on CUDA")
    parser.add_argument("--tokens", default="128,2048", help="output lengths to time, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", default=None, help="e.g. 1,16 (default on CUDA: 1,16)")
    parser.add_argument("--batch-tokens", type=int, default=128)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (default 1: steady on shared CPUs)"
    )
    args = parser.parse_args(argv)

    import torch
    import transformers

    from inkagent.llms import HFTransformer

    cuda = args.device.startswith("cuda")
    shape = args.shape or ("internlm2-1_8b" if cuda else "medium")
    dtype = args.dtype or ("bfloat16" if cuda else "float32")
    batch_sizes = [int(b) for b in (args.batch_sizes or ("1,16" if cuda else "")).split(",") if b]
    lengths = [int(n) for n in args.tokens.split(",")]
    if not cuda:
        torch.set_num_threads(args.threads)

    print(
        f"transformers {transformers.__version__}, torch {torch.__version__}, device {args.device}",
        flush=True,
    )
    if cuda:
        print(f"GPU: {torch.cuda.get_device_name()}")
    print(f"building a random {shape} Llama ({dtype})...", flush=True)
    model, tokenizer = build(shape, args.device, dtype)
    params = sum(p.numel() for p in model.parameters())
    print(f"  {params / 1e6:.1f} M parameters, vocabulary {len(tokenizer)}", flush=True)

    llm = HFTransformer.from_model(model, tokenizer, do_sample=False, stop_words=[])
    prompt = llm.render(
        [{"role": "user", "content": "Search arXiv for papers about agents and summarise them."}]
    )
    input_ids = torch.tensor([llm.tokenize(prompt)], device=model.device)

    def raw(n: int) -> None:
        out = model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=n,
            min_new_tokens=n,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        assert out.shape[1] - input_ids.shape[1] == n

    def plain(n: int) -> None:
        llm.generate(prompt, max_new_tokens=n, min_new_tokens=n)
        assert llm.last_stats.completion_tokens == n, llm.last_stats

    def stream(n: int) -> None:
        for _ in llm.stream_text(prompt, max_new_tokens=n, min_new_tokens=n):
            pass
        assert llm.last_stats.completion_tokens == n, llm.last_stats

    variants = {"raw generate": raw, "HFTransformer.generate": plain, "HFTransformer.stream_text": stream}
    print("warming up...", flush=True)
    for fn in variants.values():
        fn(8)

    # On the CPU, CPU time (all threads of this process) is the measure; the wall clock is shown too.
    measure = "wall" if cuda else "cpu"
    per_token: dict[str, dict[int, float]] = {name: {} for name in variants}
    print(
        f"\nprompt {input_ids.shape[1]} tokens; medians of {args.repeats} interleaved runs; ratios on {measure} time"
    )
    print(f"{'tokens':>7} {'variant':<27} {'wall s':>8} {'cpu s':>8} {'vs raw':>7} {'ms/token':>9}")
    for n in lengths:
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
        for repeat in range(args.repeats):
            order = list(variants.items())
            order = order[repeat % len(order) :] + order[: repeat % len(order)]  # no variant always first
            for name, fn in order:
                runs[name].append(timed(lambda fn=fn, n=n: fn(n), args.device))
        medians = {
            name: (statistics.median(w for w, _ in r), statistics.median(c for _, c in r))
            for name, r in runs.items()
        }
        base = medians["raw generate"][0 if cuda else 1]
        for name, (wall, cpu) in medians.items():
            value = wall if cuda else cpu
            per_token[name][n] = value * 1000 / n
            print(
                f"{n:>7} {name:<27} {wall:>8.3f} {cpu:>8.3f} {value / base:>6.3f}x {per_token[name][n]:>9.3f}"
            )
        llm.generate(prompt, max_new_tokens=n, min_new_tokens=n)
        full_decode = lagent_style_decode_ms_per_token(tokenizer, llm.last_token_ids[0])
        print(
            f"{n:>7} {'(lagent-style re-decode adds)':<27} {'':>8} {'':>8} {'':>7} {full_decode:>9.3f}",
            flush=True,
        )

    if len(lengths) > 1:
        short, long = min(lengths), max(lengths)
        print(f"\ncost per token at {long} tokens / at {short} tokens ({measure} time):")
        for name in variants:
            print(f"  {name:<27} {per_token[name][long] / per_token[name][short]:.3f}x")
        print("HFTransformer's own cost per token (minus raw generate's), ms:")
        for name in list(variants)[1:]:
            extra = [per_token[name][n] - per_token["raw generate"][n] for n in (short, long)]
            print(f"  {name:<27} {extra[0]:+.3f} at {short}, {extra[1]:+.3f} at {long}")

    if batch_sizes:
        n = args.batch_tokens
        print(f"\nbatch throughput, {n} new tokens per prompt (one left-padded batch):")
        base = None
        for size in batch_sizes:
            prompts = [prompt] * size
            llm.generate(prompts, max_new_tokens=8, min_new_tokens=8)  # warm up this shape
            seconds = timed(
                lambda prompts=prompts: llm.generate(prompts, max_new_tokens=n, min_new_tokens=n), args.device
            )[0]
            rate = size * n / seconds
            base = base or rate
            print(
                f"  batch {size:>3}: {seconds:7.3f} s, {rate:9.1f} tokens/s ({rate / base:.2f}x batch {batch_sizes[0]})",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
