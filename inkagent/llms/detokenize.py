"""Incremental detokenisation: token ids in, text deltas out, with constant work per token.

Decoding the whole output again at every token (what lagent 0.2.4 does) costs O(n) per token, O(n²) per
answer. Decoding a token alone is wrong: byte-level tokens can hold part of a UTF-8 character, and
SentencePiece tokenizers drop or add a leading space depending on what comes before. So, as
text-generation-inference and vLLM do, we decode a short window: the tokens already shown last time
(for context) plus the new ones, and emit what the new ones added. While the window's text ends in an
incomplete character (U+FFFD), the new tokens are held back until the character is complete.

Pure Python: it only needs a `decode(ids) -> str` callable, so it works with fast and slow tokenizers.
"""

from __future__ import annotations

from collections.abc import Callable

REPLACEMENT_CHAR = "\ufffd"


class IncrementalDetokenizer:
    """Turns a stream of token ids into text deltas whose concatenation equals `decode(all_ids)`.

    `max_pending` bounds the window: if that many tokens in a row still end in an incomplete
    character (a model emitting invalid UTF-8), they are emitted as they are, replacement characters
    included, so a broken stream cannot make the work per token grow.
    """

    def __init__(self, decode: Callable[[list[int]], str], *, max_pending: int = 32):
        self._decode = decode
        self.max_pending = max_pending
        self.ids: list[int] = []
        self._prefix = 0  # start of the context window (tokens shown by the previous delta)
        self._read = 0  # end of what has been shown
        self._prefix_text = ""  # decode(ids[_prefix:_read]), cached

    def add(self, token_id: int) -> str:
        """Take one token; return the text it completes ('' while a character is incomplete)."""
        self.ids.append(token_id)
        text = self._decode(self.ids[self._prefix :])
        pending = len(self.ids) - self._read
        complete = len(text) > len(self._prefix_text) and not text.endswith(REPLACEMENT_CHAR)
        if not (complete or pending >= self.max_pending):
            return ""
        return self._advance(text)

    def flush(self) -> str:
        """End of stream: return whatever is still held back (incomplete characters included)."""
        if self._read == len(self.ids):
            return ""
        return self._advance(self._decode(self.ids[self._prefix :]))

    def _advance(self, text: str) -> str:
        delta = text[len(self._prefix_text) :]
        self._prefix, self._read = self._read, len(self.ids)
        # The next window starts where this delta's tokens start; its text is not always the delta
        # itself (a SentencePiece decoder drops the leading space of a window), so decode it.
        self._prefix_text = self._decode(self.ids[self._prefix : self._read])
        return delta
