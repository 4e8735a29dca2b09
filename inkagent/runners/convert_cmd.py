"""`inkagent convert-internlm2 SRC DST`: an InternLM2 / InternLM2.5 checkpoint as a standard Llama one.

The same mapping `HFTransformer` applies at load (`inkagent.llms.internlm2_checkpoint`): packed `wqkv`
split per key/value group, weights renamed, config.json as `LlamaConfig`. The output loads as
`LlamaForCausalLM` in any tool (vLLM, llama.cpp's converter, transformers without remote code); the
tokenizer files are copied. Exit codes: 0 written, 2 bad source, existing destination or failure.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = "exit codes: 0 written, 2 not an InternLM2 checkpoint, DST not empty, or a load failure"
    parser.add_argument(
        "src", help="InternLM2 checkpoint: a folder or a hub id (internlm/internlm2_5-7b-chat)"
    )
    parser.add_argument("dst", help="folder for the Llama checkpoint (must not exist, or be empty)")
    parser.add_argument(
        "--dtype", default="auto", help="auto (the checkpoint's), bfloat16, float16 or float32 (default auto)"
    )
    parser.add_argument("--overwrite", action="store_true", help="write into DST even if it is not empty")


def run(args: argparse.Namespace) -> int:
    from ..errors import InkAgentError
    from ..llms.hf import _torch_dtype
    from ..llms.internlm2_checkpoint import convert_checkpoint

    try:
        dtype = _torch_dtype(args.dtype, on_gpu=True)  # "auto" stays "auto": the checkpoint's dtype
        target = convert_checkpoint(args.src, args.dst, dtype=dtype, overwrite=args.overwrite)
    except InkAgentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the hub cannot be reached, a disk is full...
        print(f"error: converting {args.src}: {exc}", file=sys.stderr)
        return 2
    print(f"wrote a Llama checkpoint to {target}", file=sys.stderr)
    return 0
