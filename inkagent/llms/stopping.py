"""Stop words on text: find them in a finished output, or filter them out of a stream of deltas.

Every backend uses the same rule so that streamed and non-streamed outputs agree: the output ends where
the first stop word *ends* (the point at which a model, generating left to right, has finished writing
it); among stop words ending at the same place the one starting earliest wins. The stop word itself and
everything after it are removed. This module is pure Python (no torch), so API backends can use it.
"""

from __future__ import annotations

from collections.abc import Iterable


def normalize_stop_words(stop_words: str | Iterable[str] | None) -> tuple[str, ...]:
    """Stop words as a tuple without empties or duplicates (order kept)."""
    if stop_words is None:
        return ()
    if isinstance(stop_words, str):
        stop_words = [stop_words]
    return tuple(dict.fromkeys(word for word in stop_words if word))


def find_stop(text: str, stop_words: Iterable[str]) -> tuple[int, int] | None:
    """`(start, end)` of the stop word occurrence that ends first in `text`, or None."""
    best: tuple[int, int] | None = None
    for word in stop_words:
        start = text.find(word)
        if start < 0:
            continue
        # The first occurrence of a word is also the one that ends first.
        end = start + len(word)
        if best is None or (end, start) < (best[1], best[0]):
            best = (start, end)
    return best


def cut_at_stop(text: str, stop_words: Iterable[str]) -> tuple[str, bool]:
    """`text` up to the first stop word (see the module rule), and whether one was found."""
    found = find_stop(text, stop_words)
    return (text, False) if found is None else (text[: found[0]], True)


class StopTextFilter:
    """Removes stop words from a stream of text deltas.

    `feed(delta)` returns the text that is safe to show now: a tail that could still become a stop word
    (say `<|im_` while waiting for `end|>`) is held back until the next delta decides it, and once a stop
    word is complete nothing more is returned (`stopped` turns true). `flush()` at the end of the stream
    returns what was held back. Work per delta is bounded by the length of the longest stop word, so a
    long stream costs linear time.
    """

    def __init__(self, stop_words: str | Iterable[str] | None):
        self.stop_words = normalize_stop_words(stop_words)
        self.stopped = False
        self._held = ""

    def feed(self, delta: str) -> str:
        """Take the next piece of text; return the part that can be emitted."""
        if self.stopped or not delta:
            return ""
        if not self.stop_words:
            return delta
        text = self._held + delta
        found = find_stop(text, self.stop_words)
        if found is not None:
            self.stopped = True
            self._held = ""
            return text[: found[0]]
        keep = self._possible_stop_prefix(text)
        self._held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        """End of stream: return the held-back tail (it never became a stop word)."""
        held, self._held = self._held, ""
        return "" if self.stopped else held

    def _possible_stop_prefix(self, text: str) -> int:
        """Length of the longest suffix of `text` that is a proper prefix of some stop word."""
        longest = 0
        for word in self.stop_words:
            for size in range(min(len(word) - 1, len(text)), longest, -1):
                if text.endswith(word[:size]):
                    longest = size
                    break
        return longest
