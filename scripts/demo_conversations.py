"""Multi-turn conversations on the demo config's tools, for training and evaluating the demo model.

A `Conversation` is 2-4 user turns, in English or Chinese, the way a user of `inkagent chat
configs/demo.yaml` talks: arithmetic and small programs, weather, arXiv, Python code given as is
(run as given; a time-out relayed), small talk and out-of-scope requests, and follow-ups that refer back
("And times 3?", "What about tomorrow?", "那上海呢？") with the value or the place of the turn before. A
new topic after a tool turn is common, so that the last turn never takes over the next.

Each `Turn` holds what a scorer needs (its kind, the calls it must make, the values its answer must
contain) and, for training, its messages as the agent's memory holds them (user, the assistant's call,
the tool's answer, the final answer), written with `ToolWorld` (the real actions' texts, offline). A
follow-up's expected values are computed from the right answers of the turns before.

Conversations can be rendered for training in two ways: the real tools' answers (`failure=None`, the
service answers) or the offline ones (`ToolWorld` raising the network errors the real actions turn into
text), in the mix `ConversationGenerator` draws.
"""

from __future__ import annotations

import json
import random
import re
import string
from dataclasses import dataclass, field
from typing import Any

from demo_dialogues import (
    ARXIV,
    INTERPRETER,
    WEATHER_FORECAST,
    WEATHER_NOW,
    WORDS,
    Request,
    RequestGenerator,
    ToolWorld,
    _say,
    dialogue,
    held_out,
    run_python,
)
from demo_snippets import varied_long_snippet, varied_snippet

from inkagent.schema import Message, ToolCall

#: the interpreter's time limit in configs/demo.yaml (`interpreter.timeout_s`)
DEMO_TIME_LIMIT_S = 20
TIME_LIMIT_INTERRUPTED = (
    "Time limit: the code did not finish within {s} s; it was interrupted; variables defined before are kept."
)
TIME_LIMIT_RESTARTED = (
    "Time limit: the code did not finish within {s} s; it did not stop when interrupted, so the kernel was "
    "restarted: variables and imports are lost."
)
SCORED_KINDS = ("arithmetic", "program", "tool", "code", "code_timeout", "small_talk", "out_of_scope")
_INT = re.compile(r"-?\d{1,10}")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?")


@dataclass
class Turn:
    """One user turn and what a right reply does.

    `kind` (one of `SCORED_KINDS`) says how it is scored: arithmetic / program — the `expected` value in
    the answer; tool — exactly `calls` (weather, arXiv), the answer relaying the offline failure; code /
    code_timeout — `calls` (the user's code as given), the answer with the output or the time-out;
    small_talk / out_of_scope — no call, an answer (out of scope: a short refusal). `followup` marks a turn
    that refers back. `value` is the turn's result a follow-up may use (arithmetic).
    """

    kind: str
    lang: str
    user: str
    calls: list[ToolCall] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)
    followup: bool = False
    value: str | None = None
    place_call: ToolCall | None = None
    topic_call: ToolCall | None = None
    messages: list[Message] = field(default_factory=list)


@dataclass
class Conversation:
    lang: str
    turns: list[Turn]

    @property
    def messages(self) -> list[Message]:
        return [m for turn in self.turns for m in turn.messages]


class ConversationGenerator:
    """Random conversations from a seed; `split="eval"` draws values only from the held-out partition.

    `offline` is the share of network-tool turns whose tool fails as it does with no network (the demo's
    usual case); the rest get the simulated service's answers (or, rarely, another failure).
    """

    FRESH = {
        "arithmetic": 0.22,
        "worded": 0.04,
        "program": 0.08,
        "weather": 0.11,
        "forecast": 0.06,
        "arxiv": 0.09,
        "code": 0.12,
        "code_timeout": 0.05,
        "expression": 0.05,
        "small_talk": 0.09,
        "out_of_scope": 0.09,
    }

    def __init__(
        self,
        seed: int,
        split: str = "train",
        offline: float = 0.6,
        world: ToolWorld | None = None,
        weights: dict[str, float] | None = None,
        follow_ups: float = 0.45,
        code_variety: float = 0.0,
    ):
        """`weights` changes the mixture of fresh turns (`FRESH`'s keys); `follow_ups` is the chance that a
        turn after one that can be followed up refers back to it; `code_variety` is the share of user-code
        turns whose code comes from `demo_snippets` (training breadth) instead of `snippet` and
        `long_snippet` (0: the stream of stages 4-5 and of the held-out conversations, unchanged)."""
        unknown = set(weights or {}) - set(self.FRESH)
        if unknown:
            raise ValueError(f"unknown kinds of turn {sorted(unknown)}; known: {sorted(self.FRESH)}")
        self.fresh_weights = {**self.FRESH, **(weights or {})}
        self.follow_ups = follow_ups
        self.code_variety = code_variety
        self.rng = random.Random(seed)
        self.split = split
        self.offline = offline
        self.requests = RequestGenerator(seed + 7919, split=split)
        self.world = world or ToolWorld(random.Random(seed + 1))

    def pick(self, items: Any) -> Any:
        return self.rng.choice(items)

    # -- conversations -------------------------------------------------------------------------------------
    def conversation(self, turns: int | None = None, lang: str | None = None) -> Conversation:
        lang = lang or ("en" if self.rng.random() < 0.6 else "zh")
        count = turns or self.rng.choices([2, 3, 4], weights=[0.35, 0.4, 0.25])[0]
        done: list[Turn] = []
        while len(done) < count:
            turn = None
            if done and self.rng.random() < self.follow_ups:
                # a family's values may be drawn from the other split's partition: draw again (up to 50
                # times), so that the held-out conversations have the same mixture as the training ones
                for _ in range(50):
                    turn = self.followup(done[-1], lang)
                    if turn is not None or not self._can_follow(done[-1]):
                        break
            if turn is None:
                family = self.rng.choices(
                    list(self.fresh_weights), weights=list(self.fresh_weights.values())
                )[0]
                for _ in range(50):
                    turn = self.fresh(lang, family)
                    if turn is not None:
                        break
            if turn is not None:
                done.append(turn)
        return Conversation(lang, done)

    @staticmethod
    def _can_follow(turn: Turn) -> bool:
        return turn.value is not None or turn.place_call is not None or turn.topic_call is not None

    def fresh(self, lang: str, family: str) -> Turn | None:
        if family in ("code", "code_timeout", "expression"):
            return self.user_code(lang, timeout=family == "code_timeout", expression=family == "expression")
        request = self.requests.single(family, lang)
        if request is None:
            return None
        return self._from_request(request, family)

    def _from_request(self, request: Request, family: str, followup: bool = False) -> Turn:
        failure = None
        if request.needs & {WEATHER_NOW, WEATHER_FORECAST, ARXIV}:
            r = self.rng.random()
            failure = (
                "network"
                if r < self.offline
                else self.pick(["unknown", "timeout"])
                if r < self.offline + 0.05
                else None
            )
        messages = dialogue(request, self.world, failure)
        kind = {
            "arithmetic": "arithmetic",
            "worded": "arithmetic",
            "program": "program",
            "small_talk": "small_talk",
            "out_of_scope": "out_of_scope",
        }.get(family, "tool")
        expected = list(request.expected)
        value = None
        if kind == "arithmetic" and len(messages) == 4 and messages[2].content.strip():
            # what the kernel printed: a follow-up computes on it
            printed = messages[2].content.strip()
            if _INT.fullmatch(printed) or (len(printed) <= 12 and _is_number(printed)):
                value = printed
        turn = Turn(
            kind,
            request.lang,
            request.user,
            list(request.calls),
            expected,
            followup,
            value,
            messages=messages,
        )
        if kind == "tool" and len(request.calls) == 1:
            call = request.calls[0]
            if call.name in (WEATHER_NOW, WEATHER_FORECAST):
                turn.place_call = call
            elif call.name == ARXIV:
                turn.topic_call = call
        return turn

    # -- follow-ups ------------------------------------------------------------------------------------
    def followup(self, previous: Turn, lang: str) -> Turn | None:
        if previous.value is not None:
            return self.arithmetic_followup(previous.value, lang)
        if previous.place_call is not None:
            return self.weather_followup(previous.place_call, lang)
        if previous.topic_call is not None:
            return self.arxiv_followup(previous.topic_call, lang)
        if previous.kind == "arithmetic" and self.rng.random() < 0.5:
            return self.elliptic_arithmetic(lang)
        return None

    def arithmetic_followup(self, value: str, lang: str) -> Turn | None:
        k = str(self.rng.randint(2, 12) if self.rng.random() < 0.7 else self.rng.randint(13, 999))
        op, en, zh = self.pick(
            [
                (
                    "* " + k,
                    [
                        "And times {k}?",
                        "Now multiply that by {k}.",
                        "What about times {k}?",
                        "Multiply it by {k}.",
                    ],
                    ["再乘以 {k} 呢？", "那乘以 {k} 是多少？", "结果再乘 {k}"],
                ),
                (
                    "/ " + k,
                    ["And divided by {k}?", "Now divide that by {k}.", "What if we divide it by {k}?"],
                    ["再除以 {k} 呢？", "那除以 {k} 是多少？"],
                ),
                (
                    "+ " + k,
                    ["Add {k} to that.", "And plus {k}?", "What about adding {k}?"],
                    ["再加上 {k} 呢？", "结果加 {k} 是多少？"],
                ),
                (
                    "- " + k,
                    ["And minus {k}?", "Now subtract {k}.", "What is that minus {k}?"],
                    ["再减去 {k} 呢？", "减 {k} 是多少？"],
                ),
                ("* 2", ["Double it.", "What is twice that?"], ["翻倍是多少？", "乘以二呢？"]),
                (
                    "** 2",
                    ["What is that squared?", "And its square?"],
                    ["那它的平方呢？", "结果的平方是多少？"],
                ),
            ]
        )
        expr = f"{value} {op}"
        if not self._keep(expr):
            return None
        user = self.pick(en if lang == "en" else zh).format(k=k)
        return self._computed(lang, user, expr, followup=True)

    def elliptic_arithmetic(self, lang: str) -> Turn | None:
        expr = self.requests.expression()
        if not self._keep(expr):
            return None
        user = self.pick(
            ["And {e}?", "What about {e}?", "And {e}", "Now {e}?", "How about {e}?"]
            if lang == "en"
            else ["那 {e} 呢？", "{e} 呢？", "再算 {e}", "那{e}等于多少？"]
        ).format(e=expr)
        return self._computed(lang, user, expr, followup=True)

    def _computed(self, lang: str, user: str, expr: str, followup: bool) -> Turn | None:
        stdout, error = run_python(f"print({expr})")
        if error is not None or len(stdout) > 30:
            return None
        request = self.requests._compute("arithmetic", lang, user, expr, expr)
        return self._from_request(request, "arithmetic", followup=followup)

    def weather_followup(self, call: ToolCall, lang: str) -> Turn | None:
        place = call.arguments["city"]
        r = self.rng.random()
        if r < 0.35:
            args: dict[str, Any] = {"city": place, "days": 2}
            user = self.pick(
                ["What about tomorrow?", "And tomorrow?", "Will it rain tomorrow?", "How about tomorrow?"]
                if lang == "en"
                else ["明天呢？", "明天天气怎么样？", "那明天呢？", "明天会下雨吗？"]
            )
            name = WEATHER_FORECAST
        elif r < 0.55:
            days = self.rng.randint(3, 7)
            args = {"city": place, "days": days}
            user = self.pick(
                [
                    f"And the next {days} days?",
                    f"What about the next {days} days?",
                    f"Give me the {days}-day forecast.",
                ]
                if lang == "en"
                else [f"未来 {days} 天呢？", f"那接下来 {days} 天呢？", f"给我 {days} 天的预报"]
            )
            name = WEATHER_FORECAST
        else:
            other = self.requests.place(lang)
            if other == place:
                return None
            args = {**call.arguments, "city": other}
            user = self.pick(
                [f"What about {other}?", f"And in {other}?", f"How about {other}?", f"And {other}?"]
                if lang == "en"
                else [f"那{other}呢？", f"{other}呢？", f"{other}的呢？", f"那{other}的天气呢？"]
            )
            name = call.name
            place = other
        new = ToolCall(name=name, arguments=args)
        request = Request(
            "weather",
            lang,
            user,
            [new],
            finish=lambda results: self.requests._weather_answer(lang, [place], results),
        )
        return self._from_request(request, "weather", followup=True)

    def arxiv_followup(self, call: ToolCall, lang: str) -> Turn | None:
        topic = call.arguments["query"]
        if self.rng.random() < 0.6:
            other = self.requests.topic(lang)
            if other == topic:
                return None
            args = {**call.arguments, "query": other}
            user = self.pick(
                [f"What about {other}?", f"And papers on {other}?", f"Now search for {other}."]
                if lang == "en"
                else [f"那{other}呢？", f"{other}方面的呢？", f"再搜一下{other}"]
            )
            topic = other
        else:
            count = self.pick([2, 3, 5, 10])
            args = {"query": topic, "max_results": count}
            user = self.pick(
                [
                    f"Show me {count} of them.",
                    f"Find {count} papers on that.",
                    f"Can you get {count} results?",
                ]
                if lang == "en"
                else [f"给我 {count} 篇", f"找 {count} 篇这方面的论文", f"要 {count} 篇结果"]
            )
        request = Request(
            "arxiv",
            lang,
            user,
            [ToolCall(name=ARXIV, arguments=args)],
            finish=lambda results: self.requests._arxiv_answer(lang, [topic], results),
        )
        return self._from_request(request, "arxiv", followup=True)

    # -- code given by the user ------------------------------------------------------------------------------
    def snippet(self) -> str:
        a, b = self.rng.randint(1, 9999), self.rng.randint(1, 999)
        n = self.rng.randint(2, 12)
        w = (
            self.pick(WORDS)
            if self.rng.random() < 0.7
            else "".join(self.pick(string.ascii_lowercase) for _ in range(self.rng.randint(3, 8)))
        )
        return self.pick(
            [
                f"print({a} * {b})",
                f"x = {a}; y = {b}; print(x + y)",
                f"x = {a}\ny = {b}\nprint(x - y)",
                f"for i in range({n}): print(i)",
                f"print('{w}'.upper())",
                f"print(len('{w}'))",
                f"s = '{w}'; print(s[::-1])",
                f"import math; print(math.sqrt({a}))",
                f"print([i * i for i in range({n})])",
                f"print(sum(range({a})))",
                f"print({a} // {b}, {a} % {b})",
                f"def f(x):\n    return x * {n}\n\nprint(f({a}))",
                f"nums = [{a}, {b}, {n}]\nprint(max(nums), min(nums))",
                f"x = {a}",
                f"print({a} / 0)",
                f"print(undefined_{w})",
                f"print('{w}' * {min(n, 4)})",
                f"import math\nprint(math.factorial({n}))",
            ]
        )

    def long_snippet(self) -> tuple[str, bool]:
        """Code that runs past the time limit, and whether an interrupt stops it (else the kernel restarts)."""
        s = self.rng.randint(25, 600)
        k = self.rng.randint(10, 14)
        return self.pick(
            [
                (f"import time; time.sleep({s})", True),
                (f"import time\ntime.sleep({s})\nprint('done')", True),
                ("while True: pass", True),
                ("x = 0\nwhile x >= 0:\n    x += 1", True),
                (f"print(sum(range(10**{k})))", False),
                (f"print(len(list(range(10**{k}))))", False),
                (f"print(2 ** (10 ** {k}))", False),
            ]
        )

    def user_code(self, lang: str, timeout: bool, expression: bool = False) -> Turn | None:
        if expression:
            k = (
                self.rng.randint(1, 7)
                if not timeout and self.rng.random() < 0.6
                else self.rng.randint(10, 13)
            )
            expr = self.pick(
                [
                    f"sum(range(10**{k}))",
                    f"len(str(2**{k * 10}))",
                    f"sum(range({self.rng.randint(2, 99999)}))",
                ]
            )
            code = f"print({expr})"
            stops = False
            slow = "10**1" in expr and k >= 10
            user = self.pick(
                [f"What is {expr}?", f"Compute {expr}.", f"Evaluate {expr} in Python."]
                if lang == "en"
                else [f"{expr} 等于多少？", f"计算 {expr}", f"用 Python 算一下 {expr}"]
            )
            shown = code
        else:
            varied = self.code_variety > 0 and self.rng.random() < self.code_variety
            if timeout:
                code, stops = varied_long_snippet(self.rng) if varied else self.long_snippet()
                slow = True
            else:
                code, stops, slow = varied_snippet(self.rng) if varied else self.snippet(), True, False
            multiline = "\n" in code
            if multiline or self.rng.random() < 0.3:
                shown = f"\n```python\n{code}\n```"
            else:
                shown = " " + code
            user = self.pick(
                [
                    "Run this Python code:{c}",
                    "Run this code:{c}",
                    "Execute this:{c}",
                    "What does this print?{c}",
                    "Please run:{c}",
                ]
                if lang == "en"
                else [
                    "运行这段 Python 代码：{c}",
                    "执行这段代码：{c}",
                    "帮我运行：{c}",
                    "这段代码输出什么？{c}",
                ]
            ).format(c=shown)
        if not self._keep(code):
            return None
        call = ToolCall(kind="interpreter", name=INTERPRETER, arguments={"command": code})
        if slow:
            text = (TIME_LIMIT_INTERRUPTED if stops else TIME_LIMIT_RESTARTED).format(s=DEMO_TIME_LIMIT_S)
            answer = _say(
                lang,
                f"The code did not finish within the interpreter's {DEMO_TIME_LIMIT_S} s time limit, so it was stopped.",
                f"这段代码在解释器 {DEMO_TIME_LIMIT_S} 秒的时间限制内没有运行完，已被中断。",
            )
            expected = [str(DEMO_TIME_LIMIT_S)]
            kind = "code_timeout"
            ok = False
        else:
            text, ok = self.world.run_python(code)
            expected = [text.strip()] if ok and text.strip() else []
            kind = "code"
            if ok and text.strip():
                answer = self.pick(
                    [f"The code printed:\n{text}", f"Output:\n{text}", f"It prints:\n{text}"]
                    if lang == "en"
                    else [f"运行结果：\n{text}", f"输出：\n{text}"]
                )
            elif ok:
                answer = _say(
                    lang, "The code ran without errors and printed nothing.", "代码运行成功，没有输出。"
                )
            else:
                answer = self.requests._python_failure(lang, text)
                expected = [_error_name(text)]
        thought = "" if self.rng.random() < 0.5 else _say(lang, "Let me run it.", "我来运行这段代码。")
        messages = [
            Message(role="user", content=user),
            Message(role="assistant", content=thought, tool_calls=[call]),
            Message(role="environment", content=text, name="interpreter"),
            Message(role="assistant", content=answer),
        ]
        return Turn(kind, lang, user, [call], expected, messages=messages)

    def _keep(self, key: str) -> bool:
        return held_out(key.replace(" ", "")) == (self.split == "eval")


def _error_name(text: str) -> str:
    """The exception's name on a traceback's last line ("ZeroDivisionError: division by zero" -> its name)."""
    last = text.strip().splitlines()[-1] if text.strip() else ""
    return last.partition(":")[0].strip()


# -- scoring ---------------------------------------------------------------------------------------------------
_FAILURE = re.compile(r"sorry|could not|cannot|can't|failed|unable|抱歉|无法|失败|不能", re.IGNORECASE)
_TIME_LIMIT = re.compile(r"time limit|did not finish|timed out|时间限制|超时|没有运行完", re.IGNORECASE)


def call_keys(calls: list[ToolCall]) -> list[str]:
    """Calls as sorted text (name and arguments), to compare regardless of their order."""
    return sorted(json.dumps({c.name: c.arguments}, sort_keys=True, ensure_ascii=False) for c in calls)


def score_turn(turn: Turn, calls: list[ToolCall], answer: str) -> tuple[bool, str]:
    """Whether the agent's reply to `turn` is right (and why not), from the calls it made in the turn and
    its final answer. See `Turn` for what each kind requires."""
    answer = answer.strip()
    if not answer:
        return False, "no answer"
    if turn.kind in ("small_talk", "out_of_scope"):
        if calls:
            return False, f"called {[c.name for c in calls]}"
        if turn.kind == "out_of_scope" and (len(answer) > 300 or not _FAILURE.search(answer)):
            return False, "not a short refusal"
        return True, ""
    if turn.kind in ("arithmetic", "program"):
        reference = turn.messages[-1].content if turn.messages else ""
        if not calls:
            return False, "no call"
        if turn.expected and (contains_number(answer, turn.expected[0]) or answer == reference):
            return True, ""
        return False, f"expected {turn.expected[:1]}"
    if call_keys(calls) != call_keys(turn.calls):
        return False, f"calls {call_keys(calls)} != {call_keys(turn.calls)}"
    if turn.kind == "tool":
        return (True, "") if _FAILURE.search(answer) else (False, "failure not relayed")
    if turn.kind == "code_timeout":
        ok = _TIME_LIMIT.search(answer) and str(DEMO_TIME_LIMIT_S) in answer
        return (True, "") if ok else (False, "time-out not relayed")
    # code: the output (or the error's name) in the answer
    if turn.expected and turn.expected[0] not in answer and not contains_number(answer, turn.expected[0]):
        return False, f"output {turn.expected[0][:40]!r} not relayed"
    return True, ""


def contains_number(answer: str, expected: str) -> bool:
    """Whether the answer states the expected value (as written, or as an equal number)."""
    if expected in answer:
        return True
    try:
        want = float(expected)
    except ValueError:
        return False
    for found in _NUMBER.findall(answer.replace(",", "")):
        value = float(found)
        if value == want or (want != 0 and abs(value - want) / abs(want) < 1e-9):
            return True
    return False


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
