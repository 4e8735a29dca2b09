"""Score one model output against one BFCL record, with the verdict BFCL's official checker gives.

    from inkagent.bench.bfcl import score
    result = score("simple_python", question, answer, "[calculate_triangle_area(base=10, height=5)]")
    result.valid, result.error_type      # True, None

`question` is a record of a `BFCL_v4_<category>.json` file (its `function` list is what the model was
offered) and `answer` the matching record of `possible_answer/` (or its `ground_truth` list); `answer`
is None for irrelevance and relevance records. `raw_output` is what the model produced, read by mode:

- "prompt": BFCL's prompt mode, a Python list of calls as text (Java / JavaScript syntax for the
  simple_java / simple_javascript categories, as BFCL parses them);
- "internlm2": text in the InternLM2 plugin protocol, `<|action_start|><|plugin|>\\n{"name": ...,
  "parameters": {...}}<|action_end|>` (several blocks allowed; interpreter blocks are calls of
  `IPythonInterpreter` with `command`), decoded by `inkagent.protocols.Internlm2Protocol`;
- "hermes" / "react": text in the Hermes `<tool_call>` format or lagent's ReAct fields, decoded by
  `HermesProtocol` / `ReActProtocol` (the agent's own parsers);
- "openai" (alias "native"): OpenAI-style `tool_calls` (`[{"function": {"name", "arguments": "<json>"}}]`),
  already decoded calls `[{name: {args}}]`, or the text answer when the model made no call; decoded by
  `OpenAIToolsProtocol`'s parser. As in BFCL's function-calling mode, names are compared with "."
  replaced by "_" (`underscore_to_dot`).

Irrelevance categories pass when the output decodes to no call (or fails to decode); relevance
(live_relevance) passes when it decodes to at least one call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..protocols.base import openai_delta
from .checker import JAVA, JAVASCRIPT, check_calls, language_of
from .pyparse import DecodeError, decode_python_calls

Mode = Literal["prompt", "internlm2", "openai", "hermes", "react", "native"]
#: `prompt` is BFCL's prompt mode; the others are the agent protocols (`native` = `openai`).
MODES: tuple[str, ...] = ("prompt", "internlm2", "openai", "hermes", "react", "native")
#: The modes in which the model answers with OpenAI `tool_calls`.
NATIVE_MODES = frozenset({"openai", "native"})

#: The records no output can pass (answer defects), per the data README; excluded from parity tests.
IMPOSSIBLE_RECORDS = frozenset(
    {
        "live_simple_106-63-0",
        "live_simple_112-68-0",
        "live_multiple_507-149-4",
        "live_multiple_862-181-3",
        "live_multiple_964-207-0",
    }
)


#: Records that no output can pass under the official checker although the README does not list
#: them: an `ArrayList` of `any` whose answer mixes strings with an int / a bool. BFCL's converter
#: turns every element of such a list into a string, and its type check wants them all to be strings,
#: so the int (42) or bool (true) of the answer can never be matched.
UNPASSABLE_JAVA_RECORDS = frozenset({"simple_java_36", "simple_java_65"})

#: Identical prompts (same messages, same functions) that BFCL scores both ways: the first id of each
#: pair expects a call, the second expects none. A deterministic model passes at most one of each.
CONTRADICTORY_PROMPTS = (
    ("live_simple_29-7-2", "live_irrelevance_118-7-8"),
    ("live_simple_176-102-0", "live_irrelevance_567-175-0"),
    ("live_multiple_262-125-1", "live_irrelevance_565-173-0"),
)


@dataclass(slots=True)
class ScoreResult:
    """The verdict on one record: `valid`, BFCL's `error_type` (None when valid), its messages, and
    the calls the output decoded to (None when decoding failed)."""

    valid: bool
    error_type: str | None = None
    errors: list[Any] = field(default_factory=list)
    decoded: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "error_type": self.error_type, "errors": jsonable(self.errors)}


def is_relevance_category(category: str) -> bool:
    """irrelevance, live_irrelevance and live_relevance are scored on 'was there a call', not by AST."""
    return "relevance" in category


# ---------------------------------------------------------------------------------------------
# decoding
# ---------------------------------------------------------------------------------------------
def decode(raw_output: Any, mode: str = "prompt", language: str = "python") -> Any:
    """The calls in `raw_output` in BFCL's decoded form; raise `DecodeError` where BFCL's decoder fails."""
    if mode == "prompt":
        if not isinstance(raw_output, str):
            raise DecodeError(f"prompt-mode output must be text, got {type(raw_output).__name__}")
        if language == JAVA:
            from .javaparse import decode_java_calls

            return decode_java_calls(raw_output)
        if language == JAVASCRIPT:
            from .jsparse import decode_javascript_calls

            return decode_javascript_calls(raw_output)
        return decode_python_calls(raw_output)
    if mode in NATIVE_MODES:
        return decode_native(raw_output)
    if mode in MODES:
        return decode_text_protocol(raw_output, mode)
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def decode_text_protocol(text: Any, mode: str) -> list[dict[str, dict[str, Any]]]:
    """The calls of an output in a text protocol (internlm2, hermes, react), read by that protocol's
    parser; any malformed call, or no call at all, fails the decode."""
    from ..protocols import get_protocol

    if not isinstance(text, str):
        raise DecodeError(f"{mode}-mode output must be text, got {type(text).__name__}")
    turn = get_protocol(mode).parse(text)
    if turn.errors:
        raise DecodeError("; ".join(turn.errors))
    if not turn.calls:
        raise DecodeError("no tool call in the output")
    return [{call.name: dict(call.arguments)} for call in turn.calls]


def decode_internlm2(text: Any) -> list[dict[str, dict[str, Any]]]:
    """Plugin (and interpreter) calls of an InternLM2 output; any malformed call fails the decode."""
    return decode_text_protocol(text, "internlm2")


def decode_native(output: Any) -> list[dict[str, Any]]:
    """OpenAI `tool_calls` or `[{name: args}]` -> `[{name: {args}}]`, read by `OpenAIToolsProtocol`'s parser
    (names as the model wrote them: the checker compares them BFCL's way)."""
    from ..protocols import OpenAIToolsProtocol

    if output is None or isinstance(output, str):
        raise DecodeError("the model answered with text, not tool calls")
    if isinstance(output, dict):
        output = [output]
    if not isinstance(output, list):
        raise DecodeError(f"expected a list of tool calls, got {type(output).__name__}")
    tool_calls = []
    for item in output:
        if not isinstance(item, dict):
            raise DecodeError(f"a tool call must be an object, got {type(item).__name__}")
        if isinstance(item.get("function"), dict):
            tool_calls.append(item)
        elif len(item) == 1:  # already decoded: {name: arguments}
            name, arguments = next(iter(item.items()))
            tool_calls.append({"function": {"name": name, "arguments": arguments}})
        else:
            raise DecodeError(f"cannot read a tool call from {item!r:.200}")
    parser = OpenAIToolsProtocol().stream_parser(tools=[])  # no name mapping
    for index, call in enumerate(tool_calls):
        parser.feed(openai_delta(call, index))
    parser.close()
    turn = parser.result()
    if turn.errors:
        raise DecodeError("; ".join(turn.errors))
    return [{call.name: dict(call.arguments)} for call in turn.calls]


def is_function_calling_format(decoded: Any) -> bool:
    """BFCL's `is_function_calling_format_output`: a list of `{name: {params}}` with one key each."""
    if type(decoded) is not list:
        return False
    return all(
        type(item) is dict and len(item) == 1 and type(next(iter(item.values()))) is dict for item in decoded
    )


def _is_empty(decoded: Any) -> bool:
    """BFCL's `is_empty_output`: [], [{}] and anything not in function-calling format hold no call."""
    if not is_function_calling_format(decoded):
        return True
    return len(decoded) == 0 or (len(decoded) == 1 and len(decoded[0]) == 0)


# ---------------------------------------------------------------------------------------------
# scoring
# ---------------------------------------------------------------------------------------------
def score(
    category: str,
    question: dict[str, Any],
    answer: dict[str, Any] | list[Any] | None,
    raw_output: Any,
    mode: str = "prompt",
    *,
    underscore_to_dot: bool | None = None,
) -> ScoreResult:
    """BFCL's verdict on one record. See the module docstring for the arguments."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if underscore_to_dot is None:
        underscore_to_dot = mode in NATIVE_MODES
    if is_relevance_category(category):
        return _score_relevance(category, raw_output, mode)

    language = language_of(category)
    try:
        decoded = decode(raw_output, mode, language)
    except DecodeError as exc:
        return ScoreResult(
            False, "ast_decoder:decoder_failed", [f"Invalid syntax. Failed to decode AST. {exc}"]
        )
    if not is_function_calling_format(decoded):
        return ScoreResult(
            False,
            "ast_decoder:decoder_wrong_output_format",
            [
                "Did not output in the specified format. Note: the model_result is wrapped in a string to ensure json serializability."
            ],
            decoded,
        )
    if answer is None:
        raise ValueError(f"category {category!r} needs the record's possible answer")
    ground_truth = answer["ground_truth"] if isinstance(answer, dict) else answer
    verdict = check_calls(category, question["function"], decoded, ground_truth, underscore_to_dot)
    if verdict.valid:
        return ScoreResult(True, None, [], decoded)
    return ScoreResult(False, verdict.error_type, verdict.errors, decoded)


def _score_relevance(category: str, raw_output: Any, mode: str) -> ScoreResult:
    # BFCL decodes relevance outputs as Python whatever the record's language.
    decoded = None
    try:
        decoded = decode(raw_output, mode, "python")
        has_call = not _is_empty(decoded)
        decode_error = ""
    except DecodeError as exc:
        has_call, decode_error = False, str(exc)
    if "irrelevance" in category:
        if not has_call:
            return ScoreResult(True, None, [], decoded)
        return ScoreResult(
            False,
            "irrelevance_error:decoder_success",
            ["Valid syntax. Successfully decode AST when it should not."],
            decoded,
        )
    if has_call:
        return ScoreResult(True, None, [], decoded)
    return ScoreResult(
        False,
        "relevance_error:decoder_failed",
        [f"Invalid syntax. Failed to decode AST when it should have. {decode_error}"],
        decoded,
    )


def jsonable(value: Any) -> Any:
    """Error details hold decoded calls (tuples, None keys); make them JSON-safe for reports."""
    if isinstance(value, dict):
        return {
            ("null" if k is None else k if isinstance(k, str) else repr(k)): jsonable(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)
