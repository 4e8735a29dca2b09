"""Follows `model.generate()` token by token: text deltas, stop words, cancellation.

`GenerationTracker` is a public transformers `StoppingCriteria`. `generate()` calls it once per step
with the sequences so far; it reads the new token of each row, turns it into text incrementally
(`IncrementalDetokenizer`), filters stop words out of that text (`StopTextFilter`) and hands the
visible text to a callback. Its answer tells `generate()` which rows are finished: a row that wrote a
stop word, and every row once `cancel()` was called (a consumer closed the stream). Doing this in the
stopping criterion, rather than in a `BaseStreamer`, makes the stop decision land on the very token
that completed the stop word on every transformers version (streamers are called before the stopping
criteria on some versions and after on others).

Imports torch and transformers: import this module only where a model runs.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence

import torch
from transformers import StoppingCriteria

from .detokenize import IncrementalDetokenizer
from .stopping import StopTextFilter

#: Called with (row index, visible text delta).
DeltaCallback = Callable[[int, str], None]


class RowTracker:
    """The state of one sequence of the batch."""

    def __init__(
        self,
        decode: Callable[[list[int]], str],
        stop_words: Sequence[str],
        end_ids: Collection[int],
        skip_ids: Collection[int],
    ):
        self.detokenizer = IncrementalDetokenizer(decode)
        self.filter = StopTextFilter(stop_words)
        self.end_ids = end_ids
        self.skip_ids = skip_ids
        self.done = False
        self.tokens: list[int] = []  # generated ids up to and including the one that ended the row

    def consume(self, token_ids: Sequence[int]) -> str:
        """Take newly generated ids; return the visible text they add."""
        out = []
        for token_id in token_ids:
            if self.done:
                break
            self.tokens.append(token_id)
            if token_id in self.end_ids:  # EOS or a single-token stop word: ends the row, shows nothing
                self.done = True
                break
            if token_id in self.skip_ids:
                continue
            out.append(self.filter.feed(self.detokenizer.add(token_id)))
            if self.filter.stopped:
                self.done = True
        return "".join(out)

    def finish(self) -> str:
        """End of generation: the text still held back (incomplete characters, a stop-word prefix)."""
        if self.filter.stopped:
            return ""
        return self.filter.feed(self.detokenizer.flush()) + self.filter.flush()


class GenerationTracker(StoppingCriteria):
    """Stopping criterion that detokenises, enforces text stop words and honours cancellation.

    Args:
        prompt_length: width of the (left-padded) prompt tensor; generated tokens start after it.
        batch_size: number of rows.
        decode: token ids -> text (special tokens kept).
        stop_words: text stop words (searched across token boundaries).
        end_ids: ids that end a row without showing text (EOS, single-token stop words).
        skip_ids: ids that show no text (BOS, padding).
        on_delta: receives each row's visible text as it grows.
    """

    def __init__(
        self,
        prompt_length: int,
        batch_size: int,
        decode: Callable[[list[int]], str],
        stop_words: Sequence[str],
        end_ids: Collection[int],
        skip_ids: Collection[int],
        on_delta: DeltaCallback | None = None,
    ):
        self.rows = [
            RowTracker(decode, stop_words, frozenset(end_ids), frozenset(skip_ids)) for _ in range(batch_size)
        ]
        self.on_delta = on_delta
        self._seen = prompt_length
        self._cancelled = threading.Event()
        self._start = time.perf_counter()
        self.first_token_s: float | None = None

    def cancel(self) -> None:
        """Make `generate()` stop at its next step (called from the consumer's thread)."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor | None = None, **kwargs
    ) -> torch.BoolTensor:
        if self.first_token_s is None:
            self.first_token_s = time.perf_counter() - self._start
        # Usually one new column; reading every column since the last call keeps us right if a
        # generation mode ever adds several tokens per step.
        new_tokens = input_ids[:, self._seen :].tolist()
        self._seen = input_ids.shape[1]
        for index, (row, tokens) in enumerate(zip(self.rows, new_tokens, strict=True)):
            if row.done:
                continue
            delta = row.consume(tokens)
            if delta and self.on_delta is not None:
                self.on_delta(index, delta)
        if self._cancelled.is_set():
            done = [True] * len(self.rows)
        else:
            done = [row.done for row in self.rows]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    def finish(self) -> list[str]:
        """Per row, the text held back until the end of generation."""
        return [row.finish() for row in self.rows]


def stream_on_worker(tracker: GenerationTracker, generate: Callable[[], object], name: str) -> Iterator[str]:
    """Run `generate` (a `model.generate` call that `tracker` follows) on a daemon thread named `name`
    and yield row 0's text deltas as they come, then its held-back tail.

    An exception in `generate` is raised here, in the consumer. Closing the iterator early cancels the
    tracker, so the model stops at its next token, and waits for the worker before returning.
    """
    deltas: queue.SimpleQueue = queue.SimpleQueue()
    done = object()
    tracker.on_delta = lambda _row, text: deltas.put(text)
    failure: list[BaseException] = []

    def work() -> None:
        try:
            generate()
        except BaseException as exc:  # handed to the consumer, raised there
            failure.append(exc)
        finally:
            deltas.put(done)

    worker = threading.Thread(target=work, name=name, daemon=True)
    worker.start()
    try:
        while (item := deltas.get()) is not done:
            yield item
        worker.join()
        if failure:
            raise failure[0]
        tail = tracker.finish()[0]
        if tail:
            yield tail
    finally:
        if worker.is_alive():  # the consumer stopped reading: stop the model, then wait for it
            tracker.cancel()
            worker.join()
