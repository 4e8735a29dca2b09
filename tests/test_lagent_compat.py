"""lagent 0.2.4 code runs on inkagent by renaming `lagent` to `inkagent` (issue 15).

Where it can, each test runs lagent's own object next to inkagent's on the same input and compares what a
lagent user reads: prompts, `AgentStatusCode`s, `response`, `ActionReturn`s, `inner_steps`.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap
import threading
from copy import deepcopy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from lagent.actions import BaseAction, tool_api

from inkagent.actions import ActionExecutor, ArxivSearch, IPythonInterpreter, tool
from inkagent.agents.internlm2_agent import (
    INTERPRETER_CN,
    META_CN,
    PLUGIN_CN,
    Internlm2Agent,
    Internlm2Protocol,
)
from inkagent.llms import ScriptedLLM
from inkagent.schema import AgentStatusCode

CODE_CALL = "Let me compute.<|action_start|><|interpreter|>\n```python\nprint(6 * 7)\n```<|action_end|>\n"


def plugin_call(name: str, args: dict, thought: str = "") -> str:
    body = json.dumps({"name": name, "parameters": args}, ensure_ascii=False)
    return f"{thought}<|action_start|><|plugin|>\n{body}<|action_end|>\n"


class EchoCode(BaseAction):
    """Runs nothing: answers with the code it was given (a stand-in for a code interpreter)."""

    @tool_api
    def run(self, command: str):
        """Echo the code.

        Args:
            command (str): the code
        """
        return f"ran {command.count('print')} print call(s)"


class CompatShop(BaseAction):
    """A shop."""

    @tool_api
    def price(self, item: str):
        """The price of an item.

        Args:
            item (str): the item
        """
        return f"{item}: 3 yuan"


@tool
def weather(city: str) -> str:
    """The weather of a city.

    Args:
        city: the city
    """
    return f"sunny in {city}"


# -- 1. the import block ------------------------------------------------------------------------


def test_lagents_import_block_works_with_inkagent_and_the_cn_prompts_are_lagents():
    namespace: dict = {}
    exec(  # the six lines of lagent's demos, `lagent` renamed
        textwrap.dedent(
            """
            from inkagent.actions import ActionExecutor, ArxivSearch, IPythonInterpreter
            from inkagent.agents.internlm2_agent import INTERPRETER_CN, META_CN, PLUGIN_CN, Internlm2Agent, Internlm2Protocol
            from inkagent.llms import HFTransformer
            from inkagent.llms.lmdeploy_wrapper import LMDeployClient
            from inkagent.llms.meta_template import INTERNLM2_META as META
            from inkagent.schema import AgentStatusCode
            """
        ),
        namespace,
    )
    import lagent.agents.internlm2_agent as lagent_agent
    import lagent.llms.meta_template as lagent_meta
    import lagent.schema

    assert namespace["META_CN"] == lagent_agent.META_CN
    assert namespace["INTERPRETER_CN"] == lagent_agent.INTERPRETER_CN
    assert namespace["PLUGIN_CN"] == lagent_agent.PLUGIN_CN
    assert namespace["META"] == lagent_meta.INTERNLM2_META
    assert namespace["AgentStatusCode"] is lagent.schema.AgentStatusCode
    assert namespace["LMDeployClient"].__name__ == "LMDeployClient"


@pytest.mark.parametrize(
    "dialog",
    [
        [{"role": "user", "content": "hi"}],
        [
            {"role": "system", "content": "meta"},
            {"role": "system", "content": "tools", "name": "plugin"},
            {"role": "user", "content": "q", "name": "file"},
            {"role": "assistant", "content": "a"},
            {"role": "environment", "content": "r", "name": "interpreter"},
        ],
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": "partial"}],
        ["raw text ", {"role": "user", "content": "q"}],
    ],
)
def test_meta_template_renders_as_lagents_parser(dialog):
    from lagent.llms.base_llm import LMTemplateParser

    from inkagent.llms.meta_template import INTERNLM2_META, MetaTemplateParser

    assert MetaTemplateParser(INTERNLM2_META)(dialog) == LMTemplateParser(INTERNLM2_META)(dialog)
    generating = [*INTERNLM2_META[:2], {**INTERNLM2_META[2], "generate": True}, INTERNLM2_META[3]]
    assert MetaTemplateParser(generating)(dialog) == LMTemplateParser(generating)(dialog)


def test_an_unknown_role_names_the_role_and_the_template_roles():
    from inkagent.llms.meta_template import INTERNLM2_META, MetaTemplateParser

    with pytest.raises(ValueError, match="no role 'tool'.*system, user, assistant, environment"):
        MetaTemplateParser(INTERNLM2_META)([{"role": "tool", "content": "x"}])


# -- 2. a list is the whole conversation --------------------------------------------------------


def lagent_and_inkagent(responses: list[str]):
    """lagent's real agent and inkagent's, each with a scripted model and the same code-running action."""
    from lagent.actions import ActionExecutor as LagentExecutor
    from lagent.agents.internlm2_agent import Internlm2Agent as LagentAgent
    from lagent.llms.base_llm import BaseModel
    from lagent.llms.meta_template import INTERNLM2_META
    from lagent.schema import ModelStatusCode

    class LagentScripted(BaseModel):
        def __init__(self):
            super().__init__(path="scripted", meta_template=INTERNLM2_META)
            self.prompts: list[str] = []

        def stream_chat(self, inputs, **kwargs):
            self.prompts.append(self.template_parser(inputs))
            response = responses[len(self.prompts) - 1]
            for end in range(4, len(response) + 4, 4):
                yield ModelStatusCode.STREAM_ING, response[:end], None
            yield ModelStatusCode.END, response, None

    lagent_llm, inkagent_llm = LagentScripted(), ScriptedLLM(responses)
    lagent = LagentAgent(lagent_llm, interpreter_executor=LagentExecutor([EchoCode()]), max_turn=4)
    inkagent = Internlm2Agent(inkagent_llm, interpreter_executor=ActionExecutor([EchoCode()]), max_turn=4)
    return (lagent, lagent_llm), (inkagent, inkagent_llm)


def converse(agent, turns: list[str]) -> list:
    """lagent's demo loop: the caller keeps the history."""
    history, returns = [], []
    for text in turns:
        history.append({"role": "user", "content": text})
        *_, agent_return = agent.stream_chat(history)
        history.extend(agent_return.inner_steps)
        returns.append(agent_return)
    return returns


def test_a_history_list_gives_the_model_the_prompts_lagent_gives_it(capsys):
    responses = [CODE_CALL, "It is 42.", "Doubled: 84."]
    (lagent, lagent_llm), (inkagent, inkagent_llm) = lagent_and_inkagent(responses)
    lagent_returns = converse(lagent, ["What is 6*7?", "Double it."])
    capsys.readouterr()  # lagent prints its debug output
    inkagent_returns = converse(inkagent, ["What is 6*7?", "Double it."])
    assert inkagent_llm.prompts == lagent_llm.prompts  # every earlier turn once, in lagent's form
    assert inkagent_llm.prompts[2].count("What is 6*7?") == 1 and inkagent_llm.prompts[2].count("print(6 * 7)") == 1
    assert [r.inner_steps for r in inkagent_returns] == [r.inner_steps for r in lagent_returns]
    assert inkagent.memory == []  # a list call leaves the session alone
    assert capsys.readouterr().out == ""  # inkagent prints nothing


def test_a_string_continues_the_session_and_a_list_does_not_touch_it():
    agent = Internlm2Agent(ScriptedLLM(["A.", "B.", "C."]))
    agent.chat("first")
    agent.chat([{"role": "user", "content": "alone"}])
    agent.chat("second")
    assert [m.content for m in agent.memory] == ["first", "A.", "second", "C."]
    assert "alone" not in agent.llm.prompts[2] and "first" in agent.llm.prompts[2]
    assert "first" not in agent.llm.prompts[1]


def test_a_list_with_an_unknown_role_is_a_clear_error():
    agent = Internlm2Agent(ScriptedLLM(["A."]))
    with pytest.raises(ValueError, match="message 1 has the role 'bot'"):
        agent.chat([{"role": "user", "content": "x"}, {"role": "bot", "content": "y"}])


# -- 3. attributes ------------------------------------------------------------------------------


def test_lagents_attributes_are_readable_and_setting_them_takes_effect():
    llm = ScriptedLLM(["A.", "B.", "C.", "D."])
    agent = Internlm2Agent(llm=llm, max_turn=2)
    assert agent._llm is llm and agent._protocol is agent.protocol
    assert agent._action_executor is None and agent._plugin_executor is None and agent._interpreter_executor is None

    agent._action_executor = ActionExecutor([weather])
    agent._interpreter_executor = ActionExecutor([EchoCode()])
    agent.chat("one")
    assert "weather" in llm.prompts[0] and "name=<|interpreter|>" in llm.prompts[0]

    agent._plugin_executor = None
    agent._interpreter_executor = None
    agent._protocol.plugin_prompt = "TOOLS {prompt}"
    agent.chat("two")
    assert "weather" not in llm.prompts[1] and "name=<|interpreter|>" not in llm.prompts[1]

    agent.add_action(weather)  # no executor yet: one is made
    agent._protocol._meta_template = "EDITED META"  # lagent's web demo sets this name
    agent.chat("three")
    assert "<|im_start|>system\nEDITED META<|im_end|>" in llm.prompts[2] and "TOOLS [" in llm.prompts[2]
    assert agent._protocol.meta_prompt == "EDITED META"

    other = ScriptedLLM(["from the new model"])
    agent._llm = other
    agent._protocol = Internlm2Protocol(meta_prompt="NEW PROTOCOL")
    agent.del_action("weather")
    assert agent.chat("four").response == "from the new model"
    assert "NEW PROTOCOL" in other.prompts[0] and "weather" not in other.prompts[0]


def test_editing_the_meta_prompt_after_a_chat_is_seen_and_the_listing_stays_cached():
    llm = ScriptedLLM(["A.", "B.", "C."])
    protocol = Internlm2Protocol()
    agent = Internlm2Agent(llm, plugin_executor=ActionExecutor([weather]), protocol=protocol)
    agent.chat([{"role": "user", "content": "x"}])
    first = protocol._system_cache
    agent.chat([{"role": "user", "content": "y"}])
    assert protocol._system_cache is first  # same prompts and tools: not rendered again
    protocol.meta_prompt = "You are a weather bot."
    agent.chat([{"role": "user", "content": "z"}])
    assert llm.prompts[2].startswith("<|im_start|>system\nYou are a weather bot.<|im_end|>")
    assert META_CN in llm.prompts[0] and PLUGIN_CN.split("{prompt}")[0] in llm.prompts[0]


def test_a_lagent_protocol_object_is_taken_with_its_prompts():
    from lagent.agents.internlm2_agent import Internlm2Protocol as LagentProtocol

    llm = ScriptedLLM(["A."])
    agent = Internlm2Agent(llm, interpreter_executor=ActionExecutor([EchoCode()]))
    agent._protocol = LagentProtocol(meta_prompt="LAGENT META", interpreter_prompt=INTERPRETER_CN)
    agent.chat("x")
    assert llm.prompts[0].startswith("<|im_start|>system\nLAGENT META<|im_end|>") and INTERPRETER_CN in llm.prompts[0]


# -- 4. streaming states ------------------------------------------------------------------------


def live(stream) -> tuple[list, object]:
    """(state, response) of each snapshot as it is yielded (lagent mutates some snapshots later), and the last."""
    seen, last = [], None
    for last in stream:
        seen.append((int(last.state), deepcopy(last.response)))
    return seen, last


def transitions(seen) -> list:
    """(state, response) at each change of state, with the last response of each state."""
    out: list = []
    for state, response in seen:
        if out and out[-1][0] == state:
            out[-1] = (state, response)
        else:
            out.append((state, response))
    return out


def test_stream_chat_states_and_responses_are_lagents(capsys):
    responses = [CODE_CALL, plugin_call("CompatShop.price", {"item": "tea"}, "Now the price."), "42, and tea is 3 yuan."]
    (lagent, _), (inkagent, _) = lagent_and_inkagent(responses)
    lagent._action_executor = __import__("lagent").actions.ActionExecutor([CompatShop()])
    inkagent._action_executor = ActionExecutor([CompatShop()])
    message = [{"role": "user", "content": "go"}]
    lagent_seen, lagent_last = live(lagent.stream_chat(message))
    capsys.readouterr()
    seen, last = live(inkagent.stream_chat(message))

    def readable(seen):  # lagent also shows half-written special tokens as language; inkagent holds them back
        return [(s, r) for s, r in transitions(seen) if not (isinstance(r, str) and "<|" in r)]

    assert readable(seen) == readable(lagent_seen)
    codes = [s for s, _ in transitions(seen)]
    assert codes == [
        AgentStatusCode.STREAM_ING, AgentStatusCode.CODING, AgentStatusCode.CODE_END, AgentStatusCode.CODE_RETURN,
        AgentStatusCode.STREAM_ING, AgentStatusCode.PLUGIN_START, AgentStatusCode.PLUGIN_END,
        AgentStatusCode.PLUGIN_RETURN, AgentStatusCode.STREAM_ING, AgentStatusCode.END,
    ]
    # the growing call: a dict for the interpreter, the raw JSON text for a plugin
    coding = [r for s, r in seen if s == AgentStatusCode.CODING]
    assert coding[0] == {"name": "EchoCode", "parameters": {"command": ""}}
    assert len({c["parameters"]["command"] for c in coding}) > 3
    plugin_text = [r for s, r in seen if s == AgentStatusCode.PLUGIN_START]
    assert all(isinstance(t, str) for t in plugin_text) and plugin_text[-1].strip().startswith('{"name": "CompatShop.price"')
    # once with the thought when the state changes
    before_code = seen[[s for s, _ in seen].index(AgentStatusCode.CODING) - 1]
    assert before_code == (AgentStatusCode.STREAM_ING, "Let me compute.")
    for mine, theirs in zip(last.actions, lagent_last.actions, strict=True):
        assert (mine.type, mine.args, mine.thought, mine.state, mine.result) == (
            theirs.type, theirs.args, theirs.thought, theirs.state, theirs.result)
    assert last.actions[0].args == {"command": "```python\nprint(6 * 7)\n```"}  # a lagent action's own args
    assert last.inner_steps == lagent_last.inner_steps


def test_the_interpreters_action_return_args_is_text_as_in_lagent(tmp_path):
    executor = ActionExecutor([IPythonInterpreter(work_dir=tmp_path)])
    try:
        agent = Internlm2Agent(ScriptedLLM([CODE_CALL, "42."]), interpreter_executor=executor)
        result = agent.chat([{"role": "user", "content": "6*7?"}])
        action = result.actions[0]
        assert action.type == "IPythonInterpreter" and action.args == {"text": "```python\nprint(6 * 7)\n```"}
        assert action.result == [{"type": "text", "content": "42"}] and action.thought == "Let me compute."
        direct = executor("IPythonInterpreter", {"command": "print(1 + 1)"})  # lagent's calling convention
        assert direct.args == {"text": "print(1 + 1)"} and direct.result[0]["content"] == "2"
    finally:
        executor.close()


def test_a_malformed_call_is_shown_with_its_error_and_goes_back_to_the_model(capsys):
    llm = ScriptedLLM(['<|action_start|><|plugin|>\n{"name": "weather", "parameters": {"city": <|action_end|>\n', "Sorry."])
    agent = Internlm2Agent(llm, plugin_executor=ActionExecutor([weather]))
    seen, last = live(agent.stream_chat([{"role": "user", "content": "weather?"}]))
    codes = [s for s, _ in transitions(seen)]
    assert codes[-4:] == [AgentStatusCode.PLUGIN_END, AgentStatusCode.PLUGIN_RETURN, AgentStatusCode.STREAM_ING,
                          AgentStatusCode.END]
    bad = last.actions[0]
    assert bad.state == -1001 and "not valid JSON" in bad.errmsg and bad.type == "InvalidAction"
    assert "not valid JSON" in llm.prompts[1]  # the model was told
    steps = last.inner_steps
    assert steps[-2]["role"] == "environment" and "not valid JSON" in steps[-2]["content"]
    assert capsys.readouterr().out == ""


# -- 6. lagent's keywords and methods -------------------------------------------------------------


def _lagent_keywords(cls) -> list[str]:
    """A lagent class's constructor keywords, following `**kwargs` into its bases (as lagent passes them)."""
    from lagent.llms import BaseModel, LMDeployClient

    names: list[str] = []
    chain = [LMDeployClient, BaseModel] if cls is LMDeployClient else cls.__mro__  # it skips LMDeployServer
    for klass in chain:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(vars(klass)["__init__"]).parameters.values()
        names += [p.name for p in params if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return list(dict.fromkeys(names))


def _accepts(cls, name: str) -> bool:
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(vars(klass)["__init__"]).parameters
        if name in params and params[name].kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
            return True
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            return False
    return False


def _pairs():
    import lagent.actions
    import lagent.agents.internlm2_agent
    import lagent.llms

    import inkagent.llms

    return [
        (lagent.actions.IPythonInterpreter, IPythonInterpreter),
        (lagent.actions.ArxivSearch, ArxivSearch),
        (lagent.actions.ActionExecutor, ActionExecutor),
        (lagent.agents.internlm2_agent.Internlm2Agent, Internlm2Agent),
        (lagent.agents.internlm2_agent.Internlm2Protocol, Internlm2Protocol),
        (lagent.llms.HFTransformer, inkagent.llms.HFTransformer),
        (lagent.llms.LMDeployClient, inkagent.llms.LMDeployClient),
    ]


@pytest.mark.parametrize("lagent_cls, inkagent_cls", _pairs(), ids=lambda c: c.__module__.split(".")[0] + "." + c.__name__)
def test_every_lagent_keyword_is_a_real_parameter(lagent_cls, inkagent_cls):
    keywords = _lagent_keywords(lagent_cls)
    assert keywords  # read from the installed lagent
    missing = [k for k in keywords if not _accepts(inkagent_cls, k)]
    assert missing == [], f"{inkagent_cls.__name__} lacks lagent's {missing}"


def test_lagent_action_keywords_keep_their_meaning(tmp_path):
    from lagent.actions import JsonParser, TupleParser

    interpreter = IPythonInterpreter(timeout=7, user_data_dir=str(tmp_path / "data" / "file.csv"), work_dir=tmp_path / "w",
                                     description={"name": "Python", "description": "Runs Python."},
                                     parser=JsonParser, enable=True)
    try:
        (tmp_path / "data").mkdir()
        assert interpreter.timeout_s == 7 and interpreter.name == "Python"
        assert ActionExecutor([interpreter]).specs()[0].description == "Runs Python."
        ret = interpreter('{"command": "import os; print(os.getcwd())"}')  # lagent's __call__: JSON text in
        assert ret.result[0]["content"] == str(tmp_path / "data")  # lagent runs code in dirname(user_data_dir)
        assert ret.args == {"text": "import os; print(os.getcwd())"} and ret.type == "Python"
    finally:
        interpreter.close()
    assert ActionExecutor([IPythonInterpreter(enable=False)]).specs() == []

    arxiv = ArxivSearch(top_k_results=5, max_query_len=20, doc_content_chars_max=100)
    assert arxiv.max_query_len == 20 and arxiv.doc_content_chars_max == 100
    api = arxiv.apis()[0]
    assert api.arguments_model(query="x").max_results == 5 and api.spec.parameters["properties"]["max_results"]["default"] == 5

    class Pair(BaseAction):
        """Adds."""

    from inkagent.actions import Action

    class Add(Action):
        """Adds two numbers."""

        def run(self, a: int, b: int = 1) -> int:
            """Add.

            Args:
                a: first
                b: second
            """
            return a + b

    assert Add()('{"a": 2, "b": 3}').result == [{"type": "text", "content": "5"}]
    assert Add()("```json\n{\"a\": 2}\n```").result[0]["content"] == "3"
    add_tuple = Add()
    add_tuple.lagent_options(parser=TupleParser)
    assert add_tuple("(4, 5)").result[0]["content"] == "9"
    bad = Add()("not json")
    assert bad.state == -1001 and bad.errmsg == "invalid json format: not json"
    assert Add()('{"a": "x"}').state == -1001
    assert Add()("{}", "nope").state == -1002


def test_action_executor_lagent_keywords():
    from lagent.actions import FinishAction, InvalidAction, NoAction

    executor = ActionExecutor([weather], invalid_action=InvalidAction("no such tool"), no_action=NoAction(),
                              finish_action=FinishAction(), finish_in_action=True)
    assert executor.action_names() == ["weather", "FinishAction"] and executor.is_valid("weather")
    assert executor("nope", "").errmsg == "no such tool"  # lagent's InvalidAction, as lagent calls it
    assert executor("FinishAction", "done").result[0]["content"] == "done"
    assert executor("weather", {"city": "Paris"}).result[0]["content"] == "sunny in Paris"


def test_add_del_action_and_batch_chat():
    llm = ScriptedLLM([plugin_call("weather", {"city": "Rome"}), "Sunny.", "Hello."])
    agent = Internlm2Agent(llm, plugin_executor=ActionExecutor([]))
    agent.add_action(weather)
    results = agent.batch_chat(["weather in Rome?", [{"role": "user", "content": "hi"}]])
    assert [r.response for r in results] == ["Sunny.", "Hello."]
    assert results[0].actions[0].result[0]["content"] == "sunny in Rome"
    assert "weather in Rome?" not in llm.prompts[2]  # each conversation stands alone
    agent.del_action("weather")
    assert agent._action_executor.api_names() == []
    with pytest.raises(TypeError):
        agent.batch_chat("not a list")


# -- LMDeployClient --------------------------------------------------------------------------------


def test_lmdeploy_client_streams_from_an_api_server_with_lagents_arguments():
    requests: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            requests.append({"path": self.path, "json": json.loads(self.rfile.read(int(self.headers["Content-Length"])))})
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for piece in ["It is ", "sunny.", "<|im_end|>"]:
                chunk = {"choices": [{"index": 0, "text": piece, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        from inkagent.llms.lmdeploy_wrapper import LMDeployClient
        from inkagent.llms.meta_template import INTERNLM2_META

        llm = LMDeployClient(model_name="internlm2-chat-7b", url=f"http://127.0.0.1:{server.server_address[1]}",
                             meta_template=INTERNLM2_META, max_new_tokens=1024, top_p=0.8, top_k=100, temperature=0,
                             repetition_penalty=1.0, stop_words=["<|im_end|>"])
        states = list(llm.stream_chat([{"role": "user", "content": "weather?"}]))
        assert states[-1][1] == "It is sunny." and int(states[-1][0]) == 0
        sent = requests[0]
        assert sent["path"] == "/v1/completions"
        assert sent["json"]["prompt"] == "<|im_start|>user\nweather?<|im_end|>\n<|im_start|>assistant\n"
        assert sent["json"]["model"] == "internlm2-chat-7b" and sent["json"]["skip_special_tokens"] is False
        assert (sent["json"]["top_k"], sent["json"]["repetition_penalty"], sent["json"]["max_tokens"]) == (100, 1.0, 1024)
    finally:
        server.shutdown()
        server.server_close()


# -- 7. lagent is not imported on a plain run ---------------------------------------------------------


def test_a_plain_stream_run_does_not_import_lagent():
    code = textwrap.dedent(
        """
        import sys
        from inkagent.actions import ActionExecutor, tool
        from inkagent.agents import Internlm2Agent
        from inkagent.llms import ScriptedLLM

        @tool
        def add(a: int, b: int) -> int:
            '''Add two numbers.'''
            return a + b

        call = '<|action_start|><|plugin|>\\n{"name": "add", "parameters": {"a": 1, "b": 2}}<|action_end|>\\n'
        agent = Internlm2Agent(ScriptedLLM([call, "3.<|im_end|>"]), plugin_executor=ActionExecutor([add]))
        events = list(agent.stream("1+2?"))
        assert events[-1].text == "3.", events[-1]
        print(sorted(m for m in sys.modules if m == "lagent" or m.startswith("lagent.")))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_hftransformer_takes_lagents_keywords_with_their_meaning(tiny_model_dir):
    from lagent.llms.base_llm import LMTemplateParser

    from inkagent.llms import HFTransformer
    from inkagent.llms.meta_template import INTERNLM2_META as META

    llm = HFTransformer(path=str(tiny_model_dir), tokenizer_path=str(tiny_model_dir), tokenizer_kwargs={},
                        tokenizer_only=True, model_kwargs={"device_map": None}, meta_template=META,
                        stop_words_id=None, template_parser=LMTemplateParser, max_new_tokens=16, top_p=0.5,
                        top_k=None, temperature=0.1, repetition_penalty=1.1, stop_words=["<|im_end|>"])
    assert llm.gen_params == {**llm.gen_params, "max_new_tokens": 16, "top_p": 0.5, "top_k": None,
                              "temperature": 0.1, "repetition_penalty": 1.1, "stop_words": ["<|im_end|>"]}
    assert isinstance(llm.template_parser, LMTemplateParser) and llm.tokenizer_only and llm.path == str(tiny_model_dir)
    assert llm.update_gen_params(top_p=0.9)["top_p"] == 0.9 and llm.gen_params["top_p"] == 0.5
    assert llm.render([{"role": "user", "content": "hi"}]) == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
