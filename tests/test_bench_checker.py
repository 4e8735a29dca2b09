"""The BFCL scorer rule by rule, on hand-made records: each rule, quirk and official error type."""

from __future__ import annotations

import json

import pytest

from inkagent.bench.bfcl import decode, score
from inkagent.bench.checker import standardize_string
from inkagent.bench.typeconv import java_convert, js_convert


def function(name: str, properties: dict, required: list[str]) -> dict:
    return {
        "name": name,
        "description": "",
        "parameters": {"type": "dict", "properties": properties, "required": required},
    }


def question(*functions: dict) -> dict:
    return {"id": "case_0", "question": [[{"role": "user", "content": "?"}]], "function": list(functions)}


def answer(*calls: dict) -> dict:
    return {"id": "case_0", "ground_truth": list(calls)}


WEATHER = function(
    "get_weather",
    {
        "city": {"type": "string", "description": ""},
        "days": {"type": "integer", "description": ""},
        "unit": {"type": "string", "description": ""},
        "temperature": {"type": "float", "description": ""},
    },
    ["city"],
)
WEATHER_Q = question(WEATHER)
WEATHER_A = answer(
    {"get_weather": {"city": ["New York, NY", "NYC"], "days": [3, ""], "unit": ["celsius", ""]}}
)


def verdict(output, category="simple_python", q=WEATHER_Q, a=WEATHER_A, mode="prompt"):
    result = score(category, q, a, output, mode)
    return result.error_type if not result.valid else "valid"


# -- simple calls -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("[get_weather(city='New York, NY', days=3)]", "valid"),
        ("get_weather(city='NYC')", "valid"),  # brackets added, optional parameters omitted
        ("```\n[get_weather(city='NYC', unit='celsius')]\n```", "valid"),  # backticks stripped
        ("[get_weather(city='new york ny')]", "valid"),  # case, spaces and commas do not count
        ('[get_weather(city="NEW-YORK,NY")]', "valid"),
        ("[get_weather(city='Boston')]", "value_error:string"),
        ("[get_weather(days=3)]", "simple_function_checker:missing_required"),
        ("[get_weather('NYC')]", "simple_function_checker:missing_required"),  # positional args are dropped
        ("[get_weather(city='NYC', country='US')]", "simple_function_checker:unexpected_param"),  # not in doc
        (
            "[get_weather(city='NYC', temperature=20.0)]",
            "simple_function_checker:unexpected_param",
        ),  # not in answer
        ("[get_weather(city='NYC', days='3')]", "type_error:simple"),
        ("[get_weather(city='NYC', days=True)]", "type_error:simple"),  # bool is not int
        ("[get_weather(city='NYC', days=3.0)]", "type_error:simple"),  # float is not int
        ("[get_weather(city='NYC', days=4)]", "value_error:others"),
        ("[get_forecast(city='NYC')]", "simple_function_checker:wrong_func_name"),
        ("[]", "simple_function_checker:wrong_count"),
        ("[get_weather(city='NYC'), get_weather(city='NYC')]", "simple_function_checker:wrong_count"),
        ("Sure, I'll call get_weather for NYC.", "ast_decoder:decoder_failed"),
        ("[get_weather(city=math.pi)]", "ast_decoder:decoder_failed"),  # attributes are not values
        ("[get_weather(city=f'{x}')]", "ast_decoder:decoder_failed"),
        ("[get_weather(city='NYC', days=2**100000)]", "ast_decoder:decoder_failed"),  # refused, not computed
    ],
)
def test_simple_function_rules(output, expected):
    assert verdict(output) == expected


def test_standardize_string_drops_spaces_and_punctuation_and_unifies_quotes():
    assert standardize_string("New York, NY") == standardize_string("newyork-ny") == "newyorkny"
    assert standardize_string("it's a/b_c*d^e.") == 'it"sabcde'
    # a quote is not removed, only unified: 'x' and "x" agree, x and "x" do not
    assert verdict("[get_weather(city=\"'NYC'\")]") == "value_error:string"
    a = answer({"get_weather": {"city": ["it's"]}})
    assert verdict("[get_weather(city='it\"s')]", a=a) == "valid"


def test_missing_optional_parameter_without_empty_alternative_fails():
    a = answer({"get_weather": {"city": ["NYC"], "unit": ["celsius"]}})
    assert verdict("[get_weather(city='NYC')]", a=a) == "simple_function_checker:missing_optional"
    assert verdict("[get_weather(city='NYC', unit='Celsius')]", a=a) == "valid"


def test_int_is_accepted_for_float_in_python_only():
    a = answer({"get_weather": {"city": ["NYC"], "temperature": [20.0]}})
    assert verdict("[get_weather(city='NYC', temperature=20)]", a=a) == "valid"
    assert verdict("[get_weather(city='NYC', temperature=21)]", a=a) == "value_error:others"
    assert verdict("[get_weather(city='NYC', temperature='20')]", a=a) == "type_error:simple"


def test_decoder_quirks_unary_operators_negate_and_arithmetic_is_evaluated():
    a = answer({"get_weather": {"city": ["NYC"], "days": [-5]}})
    # BFCL computes -operand for every unary operator, so +5 decodes to -5
    assert verdict("[get_weather(city='NYC', days=+5)]", a=a) == "valid"
    assert verdict("[get_weather(city='NYC', days=-5)]", a=a) == "valid"
    assert verdict("[get_weather(city='NYC', days=-10+5)]", a=a) == "valid"
    assert decode("[f(a=x, b=g(1), c=g(k=2), d=t[0], e=(1, 2), f=...)]") == [
        {"f": {"a": "x", "b": "g(1)", "c": {"g": {"k": 2}}, "d": "t[0]", "e": (1, 2), "f": "..."}}
    ]


def test_a_bare_name_is_a_variable_compared_verbatim():
    q = question(function("scale", {"factor": {"type": "integer", "description": ""}}, ["factor"]))
    a = answer({"scale": {"factor": ["n"]}})  # the answer expects a variable name, not an int
    assert verdict("[scale(factor=n)]", q=q, a=a) == "valid"
    assert verdict("[scale(factor='n')]", q=q, a=a) == "valid"
    assert verdict("[scale(factor='N')]", q=q, a=a) == "value_error:others"  # verbatim: no normalisation
    assert verdict("[scale(factor=3)]", q=q, a=a) == "value_error:others"


# -- collections ------------------------------------------------------------------------------------
LISTS = question(
    function(
        "plot",
        {
            "points": {"type": "array", "items": {"type": "integer"}, "description": ""},
            "size": {"type": "tuple", "items": {"type": "integer"}, "description": ""},
            "labels": {"type": "array", "items": {"type": "string"}, "description": ""},
        },
        [],
    )
)
LISTS_A = answer({"plot": {"points": [[1, 2, 3]], "size": [[4, 5], ""], "labels": [["North Pole", "x"], ""]}})


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("[plot(points=[1, 2, 3])]", "valid"),
        ("[plot(points=[1, 2, 3], size=(4, 5))]", "valid"),  # a tuple counts as a list for a tuple parameter
        ("[plot(points=(1, 2, 3))]", "type_error:simple"),  # ...but not for an array parameter
        ("[plot(points=[3, 2, 1])]", "value_error:list/tuple"),  # order matters
        ("[plot(points=[1, 2])]", "value_error:list/tuple"),
        ("[plot(points=[1, 2, '3'])]", "type_error:nested"),
        ("[plot(points=[1, 2, 3], labels=['north pole', 'X'])]", "valid"),  # items are normalised too
    ],
)
def test_list_rules(output, expected):
    assert verdict(output, q=LISTS, a=LISTS_A) == expected


DICTS = question(
    function(
        "book",
        {
            "guest": {"type": "dict", "description": "", "properties": {}},
            "rooms": {"type": "array", "items": {"type": "dict"}, "description": ""},
        },
        [],
    )
)
DICTS_A = answer(
    {
        "book": {
            "guest": [{"name": ["Ann Lee"], "age": [30], "vip": ["", False]}],
            "rooms": [[{"kind": ["double"]}, {"kind": ["single"]}], ""],
        }
    }
)


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("[book(guest={'name': 'ann lee', 'age': 30})]", "valid"),
        ("[book(guest={'name': 'Ann Lee', 'age': 30, 'vip': False})]", "valid"),
        ("[book(guest={'name': 'Ann Lee', 'age': 30, 'floor': 2})]", "value_error:dict_key"),
        ("[book(guest={'name': 'Ann Lee', 'age': 31})]", "value_error:dict_value"),
        ("[book(guest={'name': 'Ann Lee'})]", "value_error:dict_key"),  # missing key
        # quirk: after a wrong value the missing-key check still runs and overwrites the error type
        ("[book(guest={'name': 'Bob'})]", "value_error:dict_key"),
        (
            "[book(guest={'name': 'Ann Lee', 'age': 30}, rooms=[{'kind': 'double'}, {'kind': 'single'}])]",
            "valid",
        ),
        (
            "[book(guest={'name': 'Ann Lee', 'age': 30}, rooms=[{'kind': 'double'}])]",
            "value_error:list_dict_count",
        ),
        # quirk: each alternative overwrites the error; the last one ("") fails on the count
        (
            "[book(guest={'name': 'Ann Lee', 'age': 30}, rooms=[{'kind': 'single'}, {'kind': 'double'}])]",
            "value_error:list_dict_count",
        ),
    ],
)
def test_dict_rules(output, expected):
    assert verdict(output, q=DICTS, a=DICTS_A) == expected


# -- several calls ------------------------------------------------------------------------------------
PICK = function("pick", {"x": {"type": "integer", "description": ""}}, ["x"])
OTHER = function("other", {"y": {"type": "integer", "description": ""}}, ["y"])


def test_parallel_matching_is_order_free():
    a = answer({"pick": {"x": [1]}}, {"other": {"y": [2]}})
    q = question(PICK, OTHER)
    assert verdict("[other(y=2), pick(x=1)]", "parallel_multiple", q, a) == "valid"
    assert (
        verdict("[pick(x=1)]", "parallel_multiple", q, a) == "parallel_function_checker_no_order:wrong_count"
    )
    result = score("parallel_multiple", q, a, "[pick(x=1), other(y=3)]")
    assert result.error_type == "parallel_function_checker_no_order:cannot_find_match"
    sub = result.errors[1]["Model Result Index 1"]
    assert sub["sub_error_type"] == "value_error:others"


def test_parallel_matching_is_greedy_first_fit_without_backtracking():
    # Answer 0 accepts x=1 or x=2, answer 1 only x=1. A matching exists (0<-2, 1<-1), but answer 0
    # takes the first call that fits (x=1), leaving x=2 for answer 1: BFCL fails the record.
    a = answer({"pick": {"x": [1, 2]}}, {"pick": {"x": [1]}})
    q = question(PICK)
    assert verdict("[pick(x=2), pick(x=1)]", "parallel", q, a) == "valid"
    assert (
        verdict("[pick(x=1), pick(x=2)]", "parallel", q, a)
        == "parallel_function_checker_no_order:cannot_find_match"
    )


def test_multiple_compares_only_the_first_call_against_the_chosen_function():
    a = answer({"other": {"y": [2]}})
    q = question(PICK, OTHER)
    assert verdict("[other(y=2)]", "multiple", q, a) == "valid"
    assert verdict("[pick(x=2)]", "multiple", q, a) == "simple_function_checker:wrong_func_name"
    assert verdict("[other(y=2), pick(x=1)]", "multiple", q, a) == "multiple_function_checker:wrong_count"


# -- relevance ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("category", "output", "expected"),
    [
        ("irrelevance", "None of the functions can answer this.", "valid"),  # fails to decode: no call
        ("irrelevance", "[]", "valid"),  # decodes to no call
        ("irrelevance", "[pick(x=1)]", "irrelevance_error:decoder_success"),
        ("irrelevance", "[pick()]", "irrelevance_error:decoder_success"),
        ("live_irrelevance", "pick(x=1)", "irrelevance_error:decoder_success"),
        ("live_relevance", "[pick(x=99)]", "valid"),  # any call will do
        ("live_relevance", "I need more information.", "relevance_error:decoder_failed"),
        ("live_relevance", "[]", "relevance_error:decoder_failed"),
    ],
)
def test_relevance_rules(category, output, expected):
    assert verdict(output, category, question(PICK), None) == expected


# -- the other modes ----------------------------------------------------------------------------------------
FACTORIAL = question(
    function("math.factorial", {"number": {"type": "integer", "description": ""}}, ["number"])
)
FACTORIAL_A = answer({"math.factorial": {"number": [5]}})


def tool_call(name, arguments):
    return {"id": "call_0", "type": "function", "function": {"name": name, "arguments": arguments}}


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ([tool_call("math_factorial", '{"number": 5}')], "valid"),  # "." is written "_" in function calling
        ([tool_call("math.factorial", '{"number": 5}')], "simple_function_checker:wrong_func_name"),
        ([{"math_factorial": {"number": 5}}], "valid"),  # already decoded
        ([{"math_factorial": '{"number": 5}'}], "valid"),
        ([tool_call("math_factorial", '{"number": "5"}')], "type_error:simple"),
        ([tool_call("math_factorial", '{"number": 5')], "ast_decoder:decoder_failed"),
        ("The factorial of 5 is 120.", "ast_decoder:decoder_failed"),  # answered without a call
        ([], "simple_function_checker:wrong_count"),
    ],
)
def test_native_mode(output, expected):
    assert verdict(output, q=FACTORIAL, a=FACTORIAL_A, mode="native") == expected


def plugin(payload: dict) -> str:
    return f"<|action_start|><|plugin|>\n{json.dumps(payload)}<|action_end|>\n"


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("I'll compute it." + plugin({"name": "math.factorial", "parameters": {"number": 5}}), "valid"),
        (plugin({"name": "math.factorial", "arguments": {"number": 5}}) + "<|im_end|>", "valid"),
        (plugin({"name": "math.factorial", "parameters": {"number": 6}}), "value_error:others"),
        (
            plugin({"name": "factorial", "parameters": {"number": 5}}),
            "simple_function_checker:wrong_func_name",
        ),
        (
            '<|action_start|><|plugin|>\n{"name": "math.factorial", "parameters": {"number": 5}',
            "ast_decoder:decoder_failed",
        ),
        ("The answer is 120.", "ast_decoder:decoder_failed"),
        (
            plugin({"name": "math.factorial", "parameters": {"number": 5}}) * 2,
            "simple_function_checker:wrong_count",
        ),
    ],
)
def test_internlm2_mode(output, expected):
    assert verdict(output, q=FACTORIAL, a=FACTORIAL_A, mode="internlm2") == expected


def test_internlm2_mode_relevance_and_interpreter_calls():
    assert verdict("Hello! How can I help?", "irrelevance", FACTORIAL, None, "internlm2") == "valid"
    assert verdict(plugin({"name": "x", "parameters": {}}), "irrelevance", FACTORIAL, None, "internlm2") == (
        "irrelevance_error:decoder_success"
    )
    q = question(
        function("IPythonInterpreter", {"command": {"type": "string", "description": ""}}, ["command"])
    )
    a = answer({"IPythonInterpreter": {"command": ["print(17 * 23)"]}})
    code = "<|action_start|><|interpreter|>\n```python\nprint(17*23)\n```<|action_end|>"
    assert verdict(code, q=q, a=a, mode="internlm2") == "valid"


# -- Java and JavaScript -------------------------------------------------------------------------------------
JAVA_Q = question(
    function(
        "Repo.save",
        {
            "name": {"type": "String", "description": ""},
            "count": {"type": "integer", "description": ""},
            "size": {"type": "long", "description": ""},
            "ratio": {"type": "double", "description": ""},
            "flag": {"type": "boolean", "description": ""},
            "tags": {"type": "Array", "items": {"type": "String"}, "description": ""},
            "ids": {"type": "ArrayList", "items": {"type": "integer"}, "description": ""},
            "meta": {"type": "HashMap", "description": ""},
        },
        ["name"],
    )
)
JAVA_A = answer(
    {
        "Repo.save": {
            "name": ["Daily Report"],
            "count": [3, ""],
            "size": [42, ""],
            "ratio": [0.5, ""],
            "flag": [True, ""],
            "tags": [["a", "b"], ""],
            "ids": [[1, 2], ""],
            "meta": [{"k": ["v"]}, ""],
        }
    }
)


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ('[Repo.save(name="daily report", count=3, size=42L, ratio=0.5, flag=true)]', "valid"),
        ("[Repo.save(name=DailyReport)]", "valid"),  # an identifier is its own text
        ('[Repo.save(name="Daily Report", ratio=0.5f)]', "type_error:simple"),  # a float literal is no double
        ('[Repo.save(name="Daily Report", size=42)]', "type_error:simple"),  # a long needs its L
        ('[Repo.save(name="Daily Report", ids=new ArrayList<>(Arrays.asList(1, 2)))]', "valid"),
        # quirk: String elements of an Array keep their quotes, so the natural spelling fails...
        ('[Repo.save(name="Daily Report", tags=new String[]{"a", "b"})]', "value_error:list/tuple"),
        # ...while the same text inside a string literal (quotes stripped) passes
        ('[Repo.save(name="Daily Report", tags="new String[]{a, b}")]', "valid"),
        # quirk: the body of an anonymous HashMap is dropped, leaving an empty map...
        (
            '[Repo.save(name="Daily Report", meta=new HashMap<String, String>() {{ put("k", "v"); }})]',
            "value_error:dict_key",
        ),
        # ...unless it sits inside a call, whose text is kept verbatim
        (
            '[Repo.save(name="Daily Report", meta=Map.copyOf(new HashMap<String, String>() {{ put("k", "v"); }}))]',
            "valid",
        ),
        ('[Repo.save(name="Daily Report"); Other.call(x=1);]', "valid"),  # only the first call counts
        ('[Repo.save(name="Daily Report", name="x")]', "ast_decoder:decoder_failed"),
        ("[Repo.save(name='Daily Report')]", "ast_decoder:decoder_failed"),  # 'x' is a char literal
        ("[Repo.save(name=new int[3])]", "ast_decoder:decoder_failed"),
        ("[]", "ast_decoder:decoder_wrong_output_format"),  # no invocation decodes to {}
    ],
)
def test_java_prompt_mode(output, expected):
    assert verdict(output, "simple_java", JAVA_Q, JAVA_A) == expected


def test_java_values_must_arrive_as_source_text():
    call = [{"Repo_save": {"name": "Daily Report", "count": 3}}]
    assert verdict(call, "simple_java", JAVA_Q, JAVA_A, "native") == "type_error:java"
    call = [{"Repo_save": {"name": "Daily Report", "count": "3", "flag": "true"}}]
    assert verdict(call, "simple_java", JAVA_Q, JAVA_A, "native") == "valid"


JS_Q = question(
    function(
        "render",
        {
            "id": {"type": "String", "description": ""},
            "scale": {"type": "float", "description": ""},
            "on": {"type": "Boolean", "description": ""},
            "names": {"type": "array", "items": {"type": "String"}, "description": ""},
            "opts": {"type": "dict", "description": ""},
        },
        ["id"],
    )
)
JS_A = answer(
    {
        "render": {
            "id": ["main"],
            "scale": [2.0, ""],
            "on": [True, ""],
            "names": [["a b", "c"], ""],
            "opts": [{"x": [1]}, ""],
        }
    }
)


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("[render(id='main', scale=2, on=true, names=['a b', \"c\"], opts={x: 1})]", "valid"),
        ("[render(id=main)]", "valid"),
        ("[render(id='main', on=True)]", "type_error:simple"),  # True is not a JavaScript boolean
        ("[render(id='main', scale=2.5)]", "value_error:others"),
        ("[render(id='main', opts={x: 2})]", "value_error:dict_value"),
        (
            "render(id='main'), render(id='other')",
            "ast_decoder:decoder_wrong_output_format",
        ),  # a sequence, no call
        ("[render(id='main' on=true)]", "ast_decoder:decoder_failed"),
    ],
)
def test_javascript_prompt_mode(output, expected):
    assert verdict(output, "simple_javascript", JS_Q, JS_A) == expected


# BFCL's own converter examples (from its java/js type-converter tests).
@pytest.mark.parametrize(
    ("text", "kind", "items", "value"),
    [
        ("true", "boolean", None, True),
        ("-123", "integer", None, -123),
        ("3.14f", "float", None, 3.14),
        ("3e-3F", "float", None, 3e-3),
        ("3.14e2", "double", None, 314.0),
        ("123L", "long", None, 123),
        ("123", "any", None, "123"),
        ("new int[]{1, 2, 3}", "Array", None, [1, 2, 3]),
        ("new int[] { 1, 2, 3 }", "Array", None, [1, 2, 3]),
        ('new Object[]{1, "abc", true}', "Array", None, [1, "abc", True]),
        ("new long[]{1L, 2, 3L}", "Array", "long", [1, "2", 3]),
        ('new ArrayList<>(Arrays.asList("a", "b"))', "ArrayList", None, ["a", "b"]),
        ("new ArrayList<Float>() {{ add(1.0f); add(2.0f); }}", "ArrayList", "float", [1.0, 2.0]),
        ("new ArrayList<Character>() {{ add('a'); add('b'); }}", "ArrayList", "char", ["a", "b"]),
        ("new ArrayList<>()", "ArrayList", None, []),
        (
            'new HashMap<String, Object>() {{ put("key1", 1); put("key2", "value"); put("key3", true); }}',
            "HashMap",
            None,
            {"key1": 1, "key2": "value", "key3": True},
        ),
        ("new HashMap<>() {{ }}", "HashMap", None, {}),
        ("3.14", "float", None, "3.14"),  # not a Java float literal: stays text
    ],
)
def test_java_converter_matches_bfcl_examples(text, kind, items, value):
    assert java_convert(text, kind, items) == value


@pytest.mark.parametrize(
    ("text", "kind", "items", "value"),
    [
        ("true", "Boolean", None, True),
        ("123n", "Bigint", None, 123),
        ("'abc'", "String", None, "abc"),
        ("[1, 'two', true]", "array", None, [1, "two", True]),
        ("new Array(4, 5, 6)", "array", "integer", [4, 5, 6]),
        ('["hello", "world"]', "array", "String", ["hello", "world"]),
        (" [ [ 1, 2 ], [ 3,   4], [5, 6]]", "array", "array", [[1, 2], [3, 4], [5, 6]]),
        (
            "{'key1': 123, 'key2': 'value', 'key3': false}",
            "dict",
            None,
            {"key1": 123, "key2": "value", "key3": False},
        ),
        ('{"a": x, "b": ["y", "z"]}', "dict", None, {"a": "x", "b": ["y", "z"]}),
        ("{}", "dict", None, {}),
        ("123.45", "integer", None, "123.45"),
    ],
)
def test_javascript_converter_matches_bfcl_examples(text, kind, items, value):
    assert js_convert(text, kind, items) == value
