"""Writing and finding actions: @tool schemas and coercion, plugin files, entry points, `inkagent actions`."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import subprocess
import sys
import textwrap
from datetime import date
from enum import Enum
from typing import Annotated, Literal

import pytest
import yaml
from conftest import ROOT, run_cli
from pydantic import BaseModel, Field

from inkagent.actions import ActionExecutor, ArxivSearch, IPythonInterpreter, tool
from inkagent.errors import ConfigError, InkAgentError
from inkagent.registry import LookupFailed, action_names, entry_point_sources, load_object
from inkagent.runners.config import build_actions, load_config
from inkagent.schema import ToolCall

EXAMPLES = ROOT / "examples" / "plugins"


# -- @tool: schemas -------------------------------------------------------------------------------
class Priority(Enum):
    LOW = "low"
    HIGH = "high"


class Section(BaseModel):
    """A part of a document."""

    title: str
    sections: list[Section] = []


@dataclasses.dataclass
class Size:
    width: int
    height: int


@tool
def publish(
    title: str,
    outline: Section,
    size: Size,
    priority: Priority = Priority.LOW,
    tags: list[str] | None = None,
    when: date | None = None,
) -> dict:
    """Publish a document.

    :param title: the document's title
    :param outline: its sections, nested
    :param size: page size in points
    :param priority: how urgent it is
    """
    return {
        "title": title,
        "top": [s.title for s in outline.sections],
        "area": size.width * size.height,
        "priority": priority.value,
        "when": when.isoformat() if when else None,
    }


def test_sphinx_docstring_and_a_parameter_named_title_survive():
    props = publish.spec.parameters["properties"]
    assert list(props) == ["title", "outline", "size", "priority", "tags", "when"]
    assert props["title"] == {"type": "string", "description": "the document's title"}
    assert publish.spec.parameters["required"] == ["title", "outline", "size"]


def test_recursive_models_keep_a_reference_instead_of_looping():
    outline = publish.spec.parameters["properties"]["outline"]
    assert outline["description"] == "its sections, nested"
    assert outline["properties"]["sections"]["items"] == {"$ref": "#/$defs/Section"}
    section = publish.spec.parameters["$defs"]["Section"]
    assert section["properties"]["title"] == {"type": "string"}  # the property, not a pydantic title
    assert section["properties"]["sections"]["items"] == {"$ref": "#/$defs/Section"}


def test_dataclasses_enums_optionals_and_dates_in_the_schema():
    props = publish.spec.parameters["properties"]
    assert props["size"]["properties"] == {"width": {"type": "integer"}, "height": {"type": "integer"}}
    assert props["priority"] == {
        "enum": ["low", "high"],
        "type": "string",
        "description": "how urgent it is",
        "default": "low",
    }
    assert props["tags"]["anyOf"] == [{"items": {"type": "string"}, "type": "array"}, {"type": "null"}]
    assert {"type": "string", "format": "date"} in props["when"]["anyOf"]


def test_openai_and_lagent_forms():
    openai = publish.openai_tool()
    assert openai["type"] == "function" and openai["function"]["name"] == "publish"
    assert (
        openai["function"]["parameters"] is publish.spec.parameters
        or openai["function"]["parameters"] == publish.spec.parameters
    )
    lagent = publish.lagent_description()
    assert lagent["description"] == "Publish a document."
    assert [p["name"] for p in lagent["parameters"]] == [
        "title",
        "outline",
        "size",
        "priority",
        "tags",
        "when",
    ]
    assert lagent["parameters"][3]["type"] == "STRING" and lagent["required"] == ["title", "outline", "size"]


def test_google_numpy_and_annotated_descriptions():
    @tool
    def google(city: str, days: int = 3) -> str:
        """Forecast.

        Args:
            city (str): the city, e.g. Paris
            days: how many days
        """
        return city

    @tool
    def numpy_style(city: str, days: int = 3) -> str:
        """Forecast.

        Parameters
        ----------
        city : str
            the city, e.g. Paris
        days : int
            how many days
        """
        return city

    @tool
    def annotated(
        city: Annotated[str, "the city, e.g. Paris"], days: Annotated[int, Field(ge=1, le=16)] = 3
    ) -> str:
        """Forecast."""
        return city

    for fn in (google, numpy_style):
        props = fn.spec.parameters["properties"]
        assert (
            props["city"]["description"] == "the city, e.g. Paris"
            and props["days"]["description"] == "how many days"
        )
    props = annotated.spec.parameters["properties"]
    assert props["city"]["description"] == "the city, e.g. Paris"
    assert (props["days"]["minimum"], props["days"]["maximum"], props["days"]["default"]) == (1, 16, 3)


def test_description_joins_wrapped_lines_and_overrides_apply():
    @tool(name="lookup", description="Look a word up.")
    def find(word: str) -> str:
        """Ignored here."""
        return word

    @tool
    def wrapped(word: str) -> str:
        """Look a word up in the dictionary
        of the session.

        Args:
            word: the word
        """
        return word

    assert (find.spec.name, find.spec.description) == ("lookup", "Look a word up.")
    assert wrapped.spec.description == "Look a word up in the dictionary of the session."


def test_a_hint_without_a_schema_is_an_error_naming_the_parameter():
    class Opaque:
        pass

    def broken(good: int, bad: Opaque) -> str:
        """Has a parameter pydantic cannot describe."""
        return ""

    with pytest.raises(TypeError, match="tool 'broken' parameter 'bad'"):
        tool(broken)


# -- @tool: validation and calling ----------------------------------------------------------------
def run(fn, **arguments):
    return ActionExecutor([fn]).run(ToolCall(name=fn.name, arguments=arguments))


def test_nested_arguments_arrive_as_typed_objects():
    result = run(
        publish,
        title="Guide",
        outline={"title": "Guide", "sections": [{"title": "Intro"}]},
        size={"width": "595", "height": 842},
        priority="high",
        when="2025-01-31",
    )
    assert result.ok, result.error
    assert json.loads(result.output) == {
        "title": "Guide",
        "top": ["Intro"],
        "area": 595 * 842,
        "priority": "high",
        "when": "2025-01-31",
    }


def test_objects_sent_as_json_text_are_decoded_but_strings_stay_strings():
    result = run(
        publish,
        title='{"not": "decoded"}',
        outline='{"title": "Guide", "sections": []}',
        size='{"width": 1, "height": 2}',
    )
    assert result.ok, result.error
    assert (
        json.loads(result.output)["title"] == '{"not": "decoded"}' and json.loads(result.output)["area"] == 2
    )


def test_lossy_or_wrong_values_are_refused_with_the_reason():
    result = run(
        publish, title="x", outline={"title": "x"}, size={"width": 1.5, "height": 2}, priority="urgent"
    )
    assert result.error_type == "invalid_arguments"
    assert (
        "'size.width'" in result.error and "'priority'" in result.error and "'low' or 'high'" in result.error
    )


def test_untyped_defaults_and_positional_only_parameters():
    @tool
    def scale(value, /, factor=2):
        """Multiply.

        Args:
            value: what to scale
            factor: by how much
        """
        return value * factor

    assert scale.spec.parameters["properties"]["factor"] == {
        "default": 2,
        "description": "by how much",
        "type": "integer",
    }
    assert run(scale, value=3, factor="4").output == "12"
    assert scale(5) == 10  # still a plain function


def test_async_tools_run_even_when_the_caller_is_async():
    @tool
    async def later(n: int) -> int:
        """Add one, later."""
        await asyncio.sleep(0)
        return n + 1

    from inkagent.actions.tool import call_maybe_async

    async def caller():
        return call_maybe_async(later.fn, n=1)

    assert asyncio.run(caller()) == 2
    assert run(later, n=41).output == "42"


# -- finding actions -------------------------------------------------------------------------------
def test_builtins_by_name_are_inkagent_actions_that_coexist_with_lagents():
    import lagent.actions

    assert load_object("ArxivSearch", table=action_names()) is ArxivSearch
    assert load_object("IPythonInterpreter", table=action_names()) is IPythonInterpreter
    assert not issubclass(ArxivSearch, lagent.actions.BaseAction)
    assert lagent.actions.ArxivSearch is not ArxivSearch


def test_plugin_files_and_modules_by_path(tmp_path):
    (tmp_path / "helpers.py").write_text("PREFIX = '>> '\n")
    (tmp_path / "tools.py").write_text(
        textwrap.dedent('''\
        from helpers import PREFIX
        from inkagent.actions import tool

        @tool
        def shout(text: str) -> str:
            """Shout."""
            return PREFIX + text.upper()
        ''')
    )
    shout = load_object("./tools.py:shout", base_dir=tmp_path)
    assert shout("hi") == ">> HI"
    assert load_object("./tools.py:shout", base_dir=tmp_path) is shout  # imported once
    assert load_object("inkagent.actions.weather:Weather").__name__ == "Weather"
    with pytest.raises(LookupFailed, match="no such file"):
        load_object("./missing.py:x", base_dir=tmp_path)
    with pytest.raises(LookupFailed, match="has no attribute 'nope'"):
        load_object("./tools.py:nope", base_dir=tmp_path)
    with pytest.raises(LookupFailed, match="unknown name 'Nope'"):
        load_object("Nope", table=action_names())


def test_a_plugin_file_that_fails_to_import_says_why(tmp_path):
    (tmp_path / "bad.py").write_text(
        "import lagent.actions\nclass ArxivSearch(lagent.actions.BaseAction):\n    '''Clashes.'''\n"
    )
    with pytest.raises(LookupFailed, match=r"bad\.py failed to import: .*ArxivSearch.*already registered"):
        load_object("./bad.py:ArxivSearch", base_dir=tmp_path)


def make_distribution(
    site, dist: str, entry_points: dict[str, str], module: str | None = None, code: str = ""
):
    """A minimal installed distribution: metadata, entry points and (optionally) a module."""
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[inkagent.actions]\n{lines}\n")
    if module:
        (site / f"{module}.py").write_text(textwrap.dedent(code))


ECHO_MODULE = '''\
    from inkagent.actions import tool

    @tool
    def echo(text: str) -> str:
        """Say it back.

        Args:
            text: what to say
        """
        return text
    '''


@pytest.fixture
def site(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    entry_point_sources.cache_clear()
    yield site
    entry_point_sources.cache_clear()


def test_entry_point_actions_are_found_by_name(site, tmp_path):
    make_distribution(site, "echo-plugin", {"Echo": "echo_plugin_mod:echo"}, "echo_plugin_mod", ECHO_MODULE)
    table = action_names()
    assert table["Echo"] == "echo_plugin_mod:echo" and "Weather" in table
    config = tmp_path / "config.yaml"
    config.write_text("llm: {type: ScriptedLLM}\nactions: [Echo]\n")
    (echo,) = build_actions(load_config(config))
    assert ActionExecutor([echo]).run(ToolCall(name="echo", arguments={"text": "hi"})).output == "hi"


def test_two_packages_registering_one_name_is_a_clear_error_when_used(site, tmp_path):
    make_distribution(site, "first-plugin", {"Echo": "first_mod:echo", "Weather": "first_mod:echo"})
    make_distribution(site, "second-plugin", {"Echo": "second_mod:echo"})
    table = action_names()  # listing still works; only the clashing names refuse to resolve
    with pytest.raises(LookupFailed) as error:
        table["Echo"]
    message = str(error.value)
    assert "two actions are registered as 'Echo'" in message
    assert "first_mod:echo (entry point of first-plugin 1.0)" in message and "second-plugin" in message
    with pytest.raises(
        LookupFailed, match="inkagent.actions.weather:Weather \\(builtin\\) and first_mod:echo"
    ):
        table["Weather"]
    config = tmp_path / "config.yaml"
    config.write_text("llm: {type: ScriptedLLM}\nactions: [Echo]\n")
    with pytest.raises(ConfigError, match=r"actions\[0\]\.type: two actions are registered as 'Echo'"):
        build_actions(load_config(config))
    assert issubclass(LookupFailed, InkAgentError)  # the CLI reports it without a traceback


# -- the CLI ---------------------------------------------------------------------------------------
def test_inkagent_actions_lists_builtins_and_entry_points_with_schemas(tmp_path):
    site = tmp_path / "site"
    make_distribution(site, "echo-plugin", {"Echo": "echo_plugin_mod:echo"}, "echo_plugin_mod", ECHO_MODULE)
    proc = run_cli("actions", "--json", env={"PYTHONPATH": str(site)})
    assert proc.returncode == 0, proc.stderr
    entries = {entry["name"]: entry for entry in json.loads(proc.stdout)}
    assert {"IPythonInterpreter", "ArxivSearch", "Weather", "echo"} <= entries.keys()
    echo = entries["echo"]
    assert echo["origin"] == "entry point of echo-plugin 1.0"
    assert echo["apis"][0]["parameters"]["properties"]["text"] == {
        "type": "string",
        "description": "what to say",
    }
    weather = {api["name"]: api for api in entries["Weather"]["apis"]}
    assert weather["Weather.forecast"]["parameters"]["properties"]["days"]["maximum"] == 16

    text = run_cli("actions", "Weather", "./examples/plugins/my_tools.py:TodoList")
    assert text.returncode == 0, text.stderr
    assert 'Weather.current(city: string, units: "metric" | "imperial" | null = null)' in text.stdout
    assert "TodoList.add(item: string, due: string | null = null)" in text.stdout


def test_inkagent_actions_reports_what_cannot_be_loaded(tmp_path):
    proc = run_cli("actions", "./nowhere.py:thing", "ArxivSearch")
    assert proc.returncode == 1
    assert "unavailable: no such file: ./nowhere.py" in proc.stdout
    assert "ArxivSearch.get_arxiv_article_information(" in proc.stdout  # the others are still listed
    bad = tmp_path / "bad.yaml"
    bad.write_text("llm: {type: ScriptedLLM}\nactions: [NoSuchAction]\n")
    proc = run_cli("actions", "--config", str(bad))
    assert proc.returncode == 2 and "actions[0].type" in proc.stderr and "Traceback" not in proc.stderr


def test_inkagent_actions_for_a_config():
    proc = run_cli("actions", "--config", "examples/plugins/config.yaml", "--json")
    assert proc.returncode == 0, proc.stderr
    names = [api["name"] for entry in json.loads(proc.stdout) for api in entry["apis"]]
    assert names == ["convert_length", "roll_dice", "TodoList.add", "TodoList.show"]


# -- the worked example ----------------------------------------------------------------------------
def test_the_example_plugin_config_runs_in_inkagent_run(tmp_path):
    proc = run_cli("run", "examples/plugins/config.yaml", "--json", "--trace", str(tmp_path / "t.jsonl"))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["state"] == "answered"
    assert [call["output"] for call in result["tool_calls"]] == [
        "26.2 mi = 42.1648 km",
        "added 'run 42.2 km'; 1 item(s) on the list",
    ]


def test_the_example_plugins_async_tool_and_toolkit_state():
    roll_dice = load_object("./my_tools.py:roll_dice", base_dir=EXAMPLES)
    todo = load_object("./my_tools.py:TodoList", base_dir=EXAMPLES)()
    executor = ActionExecutor([roll_dice, todo])
    rolls = executor.run(ToolCall(name="roll_dice", arguments={"sides": 6, "count": 3, "seed": 7}))
    assert rolls.ok and len(json.loads(rolls.output)) == 3
    executor.run(ToolCall(name="TodoList.add", arguments={"item": "later", "due": None}))
    executor.run(ToolCall(name="TodoList.add", arguments={"item": "soon", "due": "2025-01-01"}))
    again = executor.run(ToolCall(name="TodoList.add", arguments={"item": "soon"}))
    assert again.error == "TodoList.add failed: 'soon' is already on the list"
    shown = json.loads(executor.run(ToolCall(name="TodoList.show")).output)
    assert [entry["item"] for entry in shown] == ["soon", "later"]


def test_the_installable_example_package_registers_its_actions(tmp_path):
    source = tmp_path / "src-copy"
    shutil.copytree(EXAMPLES / "inkagent-example-plugin", source)  # building writes into the source tree
    site = tmp_path / "site"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(site),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert install.returncode == 0, install.stderr
    env = {"PYTHONPATH": str(site)}
    listing = run_cli("actions", "Glossary", "count_words", "--json", env=env)
    assert listing.returncode == 0, listing.stdout + listing.stderr
    apis = [api["name"] for entry in json.loads(listing.stdout) for api in entry["apis"]]
    assert apis == ["Glossary.define", "Glossary.terms_list", "count_words"]

    call = '<|action_start|><|plugin|>\n{"name": "Glossary.define", "parameters": {"term": "LoRA"}}<|action_end|>'
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "llm": {
                    "type": "ScriptedLLM",
                    "responses": [call, "LoRA trains small low-rank matrices.<|im_end|>"],
                },
                "actions": [{"type": "Glossary", "extra_terms": {"MoE": "Mixture of experts."}}],
            }
        )
    )
    proc = run_cli(
        "run", str(config), "--task", "What is LoRA?", "--json", "--trace", str(tmp_path / "t.jsonl"), env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["tool_calls"][0]["output"].startswith("Low-Rank Adaptation")


def test_literal_choices_reach_the_tool_unchanged():
    @tool
    def pick(mode: Literal["fast", "safe"] = "safe") -> str:
        """Pick a mode."""
        return mode

    assert run(pick).output == "safe" and run(pick, mode="fast").output == "fast"
    assert run(pick, mode="FAST").error_type == "invalid_arguments"
