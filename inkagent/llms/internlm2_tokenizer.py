"""InternLM2's tokenizer, exactly: SentencePiece itself, behind the transformers tokenizer interface.

InternLM2 / InternLM2.5 checkpoints ship a SentencePiece `tokenizer.model` (BPE with byte fallback, no
dummy prefix, whitespace kept as is) and a slow tokenizer class in their hub code. Today's transformers
builds a *fast* tokenizer from `tokenizer.model` with Llama's assumptions, which silently gives other
ids (`"What is 17 * 23?"` comes back as `'<s> h ati s 1 7 * 2 3 ?'`). `InternLM2Tokenizer` keeps the hub
tokenizer's semantics on top of `transformers.PreTrainedTokenizer` (present in 4.x and 5.x):

- the text is split at special tokens (the protocol's `<|im_start|>`, `<|action_start|>`... and
  `<s>`, `</s>`, `<unk>`), which become one id each; every piece in between is `sp.encode(piece)`;
- a BOS is prepended when special tokens are added (no EOS);
- decoding joins `sp.decode` of the runs between special tokens with the special tokens' text, so
  `decode(encode(text)) == text` (no spaces added around special tokens, none removed).

`check_tokenizer` compares any tokenizer with SentencePiece on a few strings and raises `LLMError`
when they differ; `HFTransformer` runs it on every InternLM2 tokenizer it loads.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from typing import Any

from transformers import PreTrainedTokenizer

from ..errors import LLMError

VOCAB_FILE = "tokenizer.model"

#: Strings on which a tokenizer must give SentencePiece's ids (leading and repeated spaces, newlines,
#: tabs, digits, CJK, punctuation, code, characters that need byte fallback).
CHECK_STRINGS = (
    "What is 17 * 23?",
    "  two leading spaces,   three inside\n\nand two newlines\tand a tab",
    "def f(x):\n    return x ** 2  # 4 spaces\n",
    "书生·浦语是一个大语言模型，它可以调用工具。",
    "Numbers 0123456789 and 3.14159; emoji 🙂 and rare 龘 쀍",
    " ",
)


class InternLM2Tokenizer(PreTrainedTokenizer):
    """InternLM2's SentencePiece tokenizer (see the module docstring).

    Args:
        vocab_file: the SentencePiece model (`tokenizer.model`).
        unk_token / bos_token / eos_token / pad_token: as in InternLM2's tokenizer_config.json.
        add_bos_token / add_eos_token: what `add_special_tokens=True` adds (BOS only, by default).
        Other keyword arguments (chat_template, added_tokens_decoder, additional special tokens...) go
        to `PreTrainedTokenizer`.
    """

    vocab_files_names = {"vocab_file": VOCAB_FILE}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        vocab_file: str,
        unk_token: str = "<unk>",
        bos_token: str = "<s>",
        eos_token: str = "</s>",
        pad_token: str = "</s>",
        add_bos_token: bool = True,
        add_eos_token: bool = False,
        sp_model_kwargs: dict | None = None,
        clean_up_tokenization_spaces: bool = False,
        **kwargs: Any,
    ) -> None:
        import sentencepiece as spm

        self.vocab_file = vocab_file
        self.sp_model_kwargs = dict(sp_model_kwargs or {})
        self.sp_model = spm.SentencePieceProcessor(**self.sp_model_kwargs)
        if not self.sp_model.Load(os.fspath(vocab_file)):
            raise LLMError(f"cannot read the SentencePiece model {vocab_file}")
        self.add_bos_token = add_bos_token
        self.add_eos_token = add_eos_token
        for key in ("auto_map", "decode_with_prefix_space", "tokenizer_class"):  # hub-code settings
            kwargs.pop(key, None)
        super().__init__(
            unk_token=unk_token,
            bos_token=bos_token,
            eos_token=eos_token,
            pad_token=pad_token,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            sp_model_kwargs=self.sp_model_kwargs,
            add_bos_token=add_bos_token,
            add_eos_token=add_eos_token,
            **kwargs,
        )

    # -- vocabulary -----------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self.sp_model.get_piece_size()

    def get_vocab(self) -> dict[str, int]:
        vocab = {self.sp_model.id_to_piece(i): i for i in range(self.vocab_size)}
        vocab.update(self._added_tokens_encoder)
        return vocab

    def _convert_token_to_id(self, token: str) -> int:
        return self.sp_model.piece_to_id(token)

    def _convert_id_to_token(self, index: int) -> str:
        return self.sp_model.id_to_piece(index)

    # -- encoding -------------------------------------------------------------------------------
    def _tokenize(self, text: str, **kwargs: Any) -> list[str]:
        """SentencePiece's pieces for text that holds no special token."""
        return self.sp_model.encode(text, out_type=str)

    def build_inputs_with_special_tokens(
        self, token_ids_0: list[int], token_ids_1: list[int] | None = None
    ) -> list[int]:
        bos = [self.bos_token_id] if self.add_bos_token else []
        eos = [self.eos_token_id] if self.add_eos_token else []
        ids = bos + list(token_ids_0) + eos
        if token_ids_1 is not None:
            ids += bos + list(token_ids_1) + eos
        return ids

    def get_special_tokens_mask(
        self,
        token_ids_0: list[int],
        token_ids_1: list[int] | None = None,
        already_has_special_tokens: bool = False,
    ) -> list[int]:
        if already_has_special_tokens:
            special = set(self.all_special_ids)
            return [1 if i in special else 0 for i in token_ids_0]
        bos = [1] if self.add_bos_token else []
        eos = [1] if self.add_eos_token else []
        mask = bos + [0] * len(token_ids_0) + eos
        if token_ids_1 is not None:
            mask += bos + [0] * len(token_ids_1) + eos
        return mask

    # -- decoding -------------------------------------------------------------------------------
    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """Text of pieces: runs of ordinary pieces through `sp.decode`, special tokens as they are."""
        special = set(self.all_special_tokens) | set(self._added_tokens_encoder)
        out: list[str] = []
        run: list[str] = []
        for token in tokens:
            if token in special:
                out.append(self.sp_model.decode_pieces(run))
                out.append(token)
                run = []
            else:
                run.append(token)
        out.append(self.sp_model.decode_pieces(run))
        return "".join(out)

    def _decode(self, token_ids: Any, skip_special_tokens: bool = False, **kwargs: Any) -> str:
        """Decode without the spaces some transformers versions insert around special tokens."""
        ids = [token_ids] if isinstance(token_ids, int) else list(token_ids)
        tokens = self.convert_ids_to_tokens(ids, skip_special_tokens=skip_special_tokens)
        return self.convert_tokens_to_string(tokens)

    # -- saving ---------------------------------------------------------------------------------
    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str]:
        """Copy `tokenizer.model` into `save_directory`."""
        name = (filename_prefix + "-" if filename_prefix else "") + VOCAB_FILE
        target = os.path.join(save_directory, name)
        if os.path.abspath(self.vocab_file) != os.path.abspath(target):
            if os.path.isfile(self.vocab_file):
                shutil.copyfile(self.vocab_file, target)
            else:
                with open(target, "wb") as handle:
                    handle.write(self.sp_model.serialized_model_proto())
        return (target,)


def check_tokenizer(
    tokenizer: Any,
    vocab_file: str | os.PathLike[str],
    strings: Sequence[str] = CHECK_STRINGS,
    *,
    decode: bool = True,
) -> None:
    """Raise `LLMError` unless `tokenizer` gives SentencePiece's ids (and, with `decode`, text back).

    `vocab_file` is the checkpoint's `tokenizer.model`. A handful of short strings: milliseconds.
    The hub's own InternLM2 tokenizer drops or adds a leading space when decoding, so for it only
    the ids (what the model reads) are checked.
    """
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor()
    if not sp.Load(os.fspath(vocab_file)):
        raise LLMError(f"cannot read the SentencePiece model {vocab_file}")
    for text in strings:
        expected = sp.encode(text)
        got = list(tokenizer.encode(text, add_special_tokens=False))
        if got != expected:
            raise LLMError(
                f"the tokenizer {type(tokenizer).__name__} does not tokenize like {vocab_file} "
                f"(SentencePiece): {text!r} gives {got[:16]} instead of {expected[:16]}. The model would "
                "read garbled prompts; load the checkpoint without use_hub_code (inkagent's InternLM2 "
                "tokenizer) or fix the tokenizer files."
            )
        back = (
            tokenizer.decode(got, skip_special_tokens=False, clean_up_tokenization_spaces=False) if decode else None
        )
        if decode and back != sp.decode(expected):
            raise LLMError(
                f"the tokenizer {type(tokenizer).__name__} does not decode like {vocab_file}: "
                f"{text!r} comes back as {back!r}"
            )
