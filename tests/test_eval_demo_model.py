"""The validation measure of scripts/eval_demo_model.py scores exact calls, and no call where none is due."""

from __future__ import annotations

import sys

import pytest
from conftest import ROOT

from inkagent.llms import ScriptedLLM
from inkagent.llms.base import LLM
from inkagent.protocols import Internlm2Protocol

sys.path.insert(0, str(ROOT / "scripts"))
import eval_demo_model  # noqa: E402


class Oracle(LLM):
    """Answers each prompt with the calls of the request the evaluation generated last."""

    def __init__(self, generated: list) -> None:
        super().__init__(path="oracle")
        self.generated = generated
        self.protocol = Internlm2Protocol()

    def chat(self, messages, **kwargs) -> str:
        request = self.generated[-1]
        calls = "".join(self.protocol.format_call(call) for call in request.calls)
        return calls or "I cannot do that with these tools."


@pytest.fixture
def recorded(monkeypatch) -> list:
    """Every request the evaluation's generator hands out, in order."""
    generated: list = []

    class Recording(eval_demo_model.RequestGenerator):
        def _record(self, request):
            if request is not None:
                generated.append(request)
            return request

        def servable(self, *args, **kwargs):
            return self._record(super().servable(*args, **kwargs))

        def sample(self, *args, **kwargs):
            return self._record(super().sample(*args, **kwargs))

        def missing_tool(self, *args, **kwargs):
            return self._record(super().missing_tool(*args, **kwargs))

    monkeypatch.setattr(eval_demo_model, "RequestGenerator", Recording)
    return generated


def test_the_right_calls_score_everything(recorded):
    report = eval_demo_model.eval_validation(Oracle(recorded), 40, seed=1)
    assert report["examples"] == 40 and report["accuracy"] == 1.0
    assert report["per_kind"]["multi_call"]["n"] > 0  # several calls in one turn are scored too


def test_a_plain_answer_is_right_only_where_no_call_is_due(recorded):
    report = eval_demo_model.eval_validation(ScriptedLLM(["Sorry, I can't."], cycle=True), 40, seed=1)
    kinds = report["per_kind"]
    assert kinds["multi_call"]["accuracy"] == 0
    singles = [kind for kind in kinds if kind != "multi_call"]
    no_call = [kind for kind in singles if not any(r.calls for r in recorded if r.kind == kind)]
    assert no_call and all(kinds[kind]["accuracy"] == 1 for kind in no_call)
    assert 0 < report["accuracy"] < 1


def test_a_malformed_call_is_wrong_even_where_no_call_is_due(recorded):
    broken = '<|action_start|><|plugin|>\n{"name": "Weather.current", "parameters": {<|action_end|>'
    report = eval_demo_model.eval_validation(ScriptedLLM([broken], cycle=True), 20, seed=1)
    assert report["accuracy"] == 0


def _reply(turn):
    """The reference reply of a generated turn: the calls it makes and its final answer."""
    calls = [c for m in turn.messages if m.role == "assistant" for c in (m.tool_calls or [])]
    return calls, turn.messages[-1].content


def test_conversation_scorer_accepts_the_reference_and_rejects_wrong_replies():
    import demo_conversations as dc

    generator = dc.ConversationGenerator(5, split="eval", offline=1.0)
    seen: set[str] = set()
    for _ in range(80):
        previous = None
        for turn in generator.conversation(turns=3).turns:
            calls, answer = _reply(turn)
            ok, why = dc.score_turn(turn, calls, answer)
            assert ok, (turn.kind, turn.user, why)
            seen.add(turn.kind + ("+" if turn.followup else ""))
            assert not dc.score_turn(turn, calls, "")[0]  # no answer
            if turn.calls:
                assert not dc.score_turn(turn, [], answer)[0]  # answered without running anything
            else:
                assert not dc.score_turn(
                    turn, [dc.ToolCall(name="Weather.current", arguments={"city": "X"})], answer
                )[0]
            if turn.kind == "arithmetic" and turn.expected[0].lstrip("-").isdigit():
                wrong = str(int(turn.expected[0]) + 1)
                assert not dc.score_turn(turn, calls, f"The answer is {wrong}.")[0]
                if turn.followup and previous is not None and previous.value not in (None, turn.expected[0]):
                    # the value of the turn before is not the answer to its follow-up
                    assert not dc.score_turn(turn, calls, f"The answer is {previous.value}.")[0]
            if turn.kind == "tool":
                moved = [
                    c.model_copy(update={"arguments": {**c.arguments, "city": "Nowhere"}}) for c in calls
                ]
                if "city" in calls[0].arguments:
                    assert not dc.score_turn(turn, moved, answer)[0]  # the place not copied
            if turn.kind in ("code", "code_timeout"):
                edited = [
                    calls[0].model_copy(
                        update={"arguments": {"command": calls[0].arguments["command"] + " + 1"}}
                    )
                ]
                assert not dc.score_turn(turn, edited, answer)[0]  # not run as given
            previous = turn
    assert {
        "arithmetic",
        "arithmetic+",
        "tool",
        "tool+",
        "code",
        "code_timeout",
        "small_talk",
        "out_of_scope",
    } <= seen


def test_follow_ups_refer_back_and_held_out_values_stay_out_of_training():
    import demo_conversations as dc
    from demo_dialogues import held_out

    for split in ("train", "eval"):
        generator = dc.ConversationGenerator(9, split=split)
        follow_ups = 0
        for _ in range(150):
            turns = generator.conversation(turns=3).turns
            for before, turn in zip(turns, turns[1:], strict=False):
                command = turn.calls[0].arguments.get("command", "") if turn.calls else ""
                if turn.kind == "arithmetic" and command:
                    assert held_out(command[len("print(") : -1].replace(" ", "")) == (split == "eval")
                if turn.followup and before.value is not None:
                    follow_ups += 1  # computes on the value the turn before printed
                    assert command.startswith(f"print({before.value} ")
                if turn.followup and before.place_call is not None:
                    follow_ups += 1
                    city = turn.calls[0].arguments["city"]
                    assert city == before.place_call.arguments["city"] or city in turn.user
        assert follow_ups > 20


def test_varied_code_turns_stay_out_of_the_held_out_snippets_and_keep_the_eval_set():
    import demo_conversations as dc
    from demo_dialogues import held_out

    def codes(generator: dc.ConversationGenerator, count: int) -> list[tuple[str, str]]:
        found = []
        for _ in range(count):
            for turn in generator.conversation(turns=3).turns:
                if turn.kind in ("code", "code_timeout"):
                    found.append((turn.kind, turn.calls[0].arguments["command"]))
        return found

    weights = {"code": 0.4, "code_timeout": 0.4}
    varied = codes(dc.ConversationGenerator(3, weights=weights, code_variety=1.0), 150)
    plain = codes(dc.ConversationGenerator(3, weights=weights), 150)
    assert len(varied) > 100
    # the breadth is new code, never a held-out snippet, and every time-out is relayed as one
    assert len({c for _, c in varied} - {c for _, c in plain}) > 0.8 * len({c for _, c in varied})
    assert not any(held_out(code.replace(" ", "")) for _, code in varied)
    assert "while True: pass" not in {c for _, c in varied}
    assert any(kind == "code_timeout" and code.startswith("while") for kind, code in varied)
    # the option's default draws nothing more: the held-out conversations do not change
    eval_default = codes(dc.ConversationGenerator(7, split="eval", offline=1.0), 60)
    eval_zero = codes(dc.ConversationGenerator(7, split="eval", offline=1.0, code_variety=0.0), 60)
    assert eval_default == eval_zero
