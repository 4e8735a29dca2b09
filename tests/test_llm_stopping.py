"""Stop words on text and incremental detokenisation: streamed results equal one-shot results."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny_model import build_tokenizer

from inkagent.llms.detokenize import IncrementalDetokenizer
from inkagent.llms.stopping import StopTextFilter, cut_at_stop, find_stop

STOPS = ["<|im_end|>", "<|action_end|>", "\nObservation:", "ab"]


def stream_through(stop_words, pieces):
    f = StopTextFilter(stop_words)
    out = [f.feed(piece) for piece in pieces]
    return out, f.flush(), f.stopped


@st.composite
def split_text(draw):
    alphabet = st.sampled_from(list("ab<|>_imendObservation:\n 中文") + ["<|im_end|>", "<|action_end|>"])
    text = "".join(draw(st.lists(alphabet, max_size=40)))
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=8)))
    bounds = [0, *cuts, len(text)]
    return text, [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


@given(split_text())
def test_stream_filter_equals_cutting_the_whole_text(case):
    text, pieces = case
    out, tail, stopped = stream_through(STOPS, pieces)
    expected, found = cut_at_stop(text, STOPS)
    assert "".join(out) + tail == expected
    assert stopped == found


def test_a_stop_word_split_over_deltas_never_shows():
    out, tail, stopped = stream_through(["<|im_end|>"], ["Hello <|im", "_e", "nd|> ignored"])
    assert out == ["Hello ", "", ""] and tail == "" and stopped


def test_a_held_back_prefix_is_released_when_it_is_not_a_stop_word():
    out, tail, _ = stream_through(["<|im_end|>"], ["a <|im", "_start|> b <"])
    assert "".join(out) == "a <|im_start|> b " and tail == "<"


def test_the_stop_word_that_ends_first_wins():
    # "bc" is complete before "abcd" is: a model writing left to right would stop there.
    assert find_stop("xabcd", ["abcd", "bc"]) == (2, 4)
    assert cut_at_stop("xabcd", ["abcd", "bc"]) == ("xa", True)
    assert stream_through(["abcd", "bc"], ["xa", "b", "cd"])[0] == ["x", "", "a"]


def test_no_stop_words_pass_everything_through():
    assert stream_through([], ["a", "<|im_end|>"])[0] == ["a", "<|im_end|>"]
    assert stream_through(None, ["x"])[0] == ["x"]


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def _decoder(tokenizer):
    return lambda ids: tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(data=st.data())
def test_incremental_detokenisation_equals_decoding_at_once(tokenizer, data):
    # Any id sequence: partial UTF-8 characters, invalid bytes, special tokens in between.
    ids = data.draw(st.lists(st.integers(0, len(tokenizer) - 1), max_size=60))
    decode = _decoder(tokenizer)
    detok = IncrementalDetokenizer(decode)
    pieces = [detok.add(i) for i in ids] + [detok.flush()]
    assert "".join(pieces) == decode(ids)


def test_a_split_character_is_held_back_until_complete(tokenizer):
    decode = _decoder(tokenizer)
    text = "中文🙂"
    ids = tokenizer.encode(text, add_special_tokens=False)
    detok = IncrementalDetokenizer(decode)
    pieces = [detok.add(i) for i in ids]
    assert "".join(pieces) + detok.flush() == text
    assert all("\ufffd" not in piece for piece in pieces)
    # Byte by byte (the byte-level alphabet): nothing shows until a character is whole.
    byte_ids = [tokenizer.convert_tokens_to_ids(c) for c in "ä¸Ń"]  # the three bytes of 中
    detok = IncrementalDetokenizer(decode)
    assert [detok.add(i) for i in byte_ids] == ["", "", "中"]


def test_work_per_token_stays_constant(tokenizer):
    calls = []

    def decode(ids):
        calls.append(len(ids))
        return tokenizer.decode(ids, skip_special_tokens=False)

    detok = IncrementalDetokenizer(decode)
    ids = tokenizer.encode("The quick brown fox jumps over the lazy dog. " * 50, add_special_tokens=False)
    for i in ids:
        detok.add(i)
    assert max(calls) <= 4  # windows of a few tokens, not the whole output
