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
