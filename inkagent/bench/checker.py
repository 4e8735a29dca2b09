"""BFCL's AST checker, rule for rule: does a decoded list of calls match a record's possible answers?

The Berkeley Function Calling Leaderboard scores single-turn records with an "AST checker" whose
verdicts (and error-type strings) are the reference the field compares against. Third-party copies
drift, so this module reproduces its rules *including the quirks*, each noted where it appears:

- the checker is chosen by the category name: "parallel" -> order-free matching, greedy first fit in
  answer order without backtracking; else "multiple" -> only the first call is compared; else
  simple (exactly one call);
- types are exact (`bool` is not `int`); Python alone accepts an `int` where a float is expected; a
  tuple becomes a list where a tuple is expected; a value whose type equals the answer's recorded
  type instead of the documented one counts as a "variable" and is compared verbatim;
- strings compare after `standardize_string` (drop spaces and `,./-_*^`, lower-case, `'` -> `"`);
- every parameter passed must be in the function doc *and* in the answer; every answer parameter
  whose alternatives do not contain `""` must be passed.

Java and JavaScript values arrive as source text and are converted by `typeconv` first, as BFCL does.
The inputs are the decoded calls `[{name: {param: value}}]`, the record's function docs and its
`ground_truth`. Nothing here raises on odd input: where BFCL's own code would crash (e.g. a
`str.items()` on a malformed answer), the result is invalid with error type `checker_error:<Exc>`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import typeconv

PYTHON, JAVA, JAVASCRIPT = "python", "java", "javascript"

#: BFCL's mapping of documented Python types to the runtime type a value must have.
PYTHON_TYPES: dict[str, type] = {
    "string": str,
    "integer": int,
    "float": float,
    "boolean": bool,
    "array": list,
    "tuple": list,
    "dict": dict,
    "any": str,
}
#: Documented types whose items are type-checked one level deep (Python).
PYTHON_NESTED = ("array", "tuple")
#: Java / JavaScript collection types whose element type comes from `items.type`.
NESTED_CONVERSION = ("Array", "ArrayList", "array")

# str.translate table for standardize_string: deleting these is what BFCL's regex
# r"[ \,\.\/\-\_\*\^]" does, at a fraction of the cost.
_STRIP_TABLE = str.maketrans("", "", " ,./-_*^")


@dataclass(slots=True)
class CheckResult:
    """One verdict: `valid`, BFCL's `error_type` string (None when valid) and its error messages."""

    valid: bool
    error_type: str | None = None
    errors: list[Any] = field(default_factory=list)
    #: set by the type check: the value was taken as a variable name (compared verbatim)
    is_variable: bool = False


_VALID = CheckResult(True)


def _ok(is_variable: bool = False) -> CheckResult:
    return CheckResult(True, is_variable=is_variable) if is_variable else _VALID


def standardize_string(text: str) -> str:
    """BFCL's string normalisation: drop spaces and `,./-_*^`, lower-case, turn `'` into `"`."""
    return text.translate(_STRIP_TABLE).lower().replace("'", '"')


def language_of(category: str) -> str:
    """The language BFCL assigns to a category: java / javascript / python (everything else)."""
    if "javascript" in category:
        return JAVASCRIPT
    if "java" in category:
        return JAVA
    return PYTHON


def convert_func_name(name: str, underscore_to_dot: bool) -> str:
    """Function-calling APIs forbid "." in names, so BFCL compares `a.b` as `a_b` for such models."""
    return name.replace(".", "_") if underscore_to_dot and "." in name else name


# ---------------------------------------------------------------------------------------------
# value checks
# ---------------------------------------------------------------------------------------------
def _possible_answer_type(alternatives: Any) -> type | None:
    for alternative in alternatives:
        if alternative != "":  # "" marks an optional parameter
            return type(alternative)
    return None


def type_check(
    param: str,
    value: Any,
    alternatives: Any,
    type_description: str,
    expected: type,
    nested: type | None,
) -> CheckResult:
    """BFCL's `type_checker`: exact type, one level of item checks, and the 'variable' escape."""
    answer_type = _possible_answer_type(alternatives)
    is_variable = answer_type is not None and answer_type is not expected
    errors: list[Any] = []
    error_type = "type_error:simple"
    if type(value) is expected:
        if nested is None:
            return _ok(is_variable)
        for alternative in alternatives:
            matched = True  # an alternative that is not a list ("" included) matches any items
            if type(alternative) is list:
                for item in value:
                    if not type_check(param, item, alternative, str(nested), nested, None).valid:
                        matched = False
                        break
            if matched:
                return _ok(is_variable)
        # Quirk: BFCL records the nested failure, then still runs the variable check below, which
        # either returns that (invalid) result or overwrites its error type with type_error:simple.
        errors = [
            f"Nested type checking failed for parameter {param!r}. Expected outer type "
            f"{type_description} with inner type {nested}. Parameter value: {value!r}."
        ]
        error_type = "type_error:nested"
    if answer_type is not None and type(value) is answer_type:
        return CheckResult(False, error_type, errors, is_variable=True) if errors else _ok(True)
    errors.append(
        f"Incorrect type for parameter {param!r}. Expected type {type_description}, "
        f"got {type(value).__name__}. Parameter value: {value!r}."
    )
    return CheckResult(False, "type_error:simple", errors)


def _standardize_items(items: Any) -> list[Any]:
    # BFCL walks alternatives by index, so a string alternative is walked character by character.
    return [standardize_string(x) if type(x) is str else x for x in (items[j] for j in range(len(items)))]


def string_check(param: str, value: str, alternatives: list[Any]) -> CheckResult:
    wanted = [standardize_string(a) for a in alternatives if type(a) is str]
    if standardize_string(value) not in wanted:
        return CheckResult(
            False,
            "value_error:string",
            [
                f"Invalid value for parameter {param!r}: {value!r}. "
                f"Expected one of {alternatives}. Case insensitive."
            ],
        )
    return _VALID


def list_check(param: str, value: list[Any], alternatives: list[Any]) -> CheckResult:
    got = [standardize_string(x) if type(x) is str else x for x in value]
    wanted = [_standardize_items(alternative) for alternative in alternatives]
    if got not in wanted:
        return CheckResult(
            False,
            "value_error:list/tuple",
            [f"Invalid value for parameter {param!r}: {value!r}. Expected one of {alternatives}."],
        )
    return _VALID


def dict_check(param: str, value: dict[Any, Any], alternatives: list[Any]) -> CheckResult:
    """BFCL's `dict_checker` (flat dicts): keys must be known, values match, required keys present."""
    result = CheckResult(False, "dict_checker:unclear")
    for alternative in alternatives:
        if alternative == "":
            continue
        result = CheckResult(False, "dict_checker:unclear")
        matched = True
        for key, item in value.items():
            if key not in alternative:
                result.errors.append(f"Unexpected dict key parameter: '{key}'.")
                result.error_type = "value_error:dict_key"
                matched = False
                break
            got = standardize_string(item) if type(item) is str else item
            wanted = _standardize_items(alternative[key])
            if got not in wanted:
                result.errors.append(
                    f"Invalid value for parameter {key!r}: {item!r}. Expected one of {wanted}."
                )
                result.error_type = "value_error:dict_value"
                matched = False
                break
        # Quirk: runs even after a value error, and a missing key then overwrites the error type.
        for key, options in alternative.items():
            if key not in value and "" not in options:
                result.errors.append(f"Missing dict key parameter: '{key}'.")
                result.error_type = "value_error:dict_key"
                matched = False
                break
        if matched:
            return _VALID
    return result


def list_dict_check(param: str, value: list[Any], alternatives: list[Any]) -> CheckResult:
    """A list of dicts, compared position by position with each alternative list."""
    result = CheckResult(False, "list_dict_checker:unclear")
    for alternative in alternatives:
        if len(value) != len(alternative):
            result = CheckResult(
                False, "value_error:list_dict_count", ["Wrong number of dictionaries in the list."]
            )
            continue
        matched = True
        for index in range(len(value)):
            result = dict_check(param, value[index], [alternative[index]])
            if not result.valid:
                matched = False
                break
        if matched:
            return _VALID
    return result


# ---------------------------------------------------------------------------------------------
# call checks
# ---------------------------------------------------------------------------------------------
def check_call(
    func_doc: dict[str, Any],
    call: dict[str, Any],
    answer: dict[str, Any],
    language: str = PYTHON,
    underscore_to_dot: bool = False,
) -> CheckResult:
    """BFCL's `simple_function_checker`: one decoded call `{name: params}` against one answer."""
    try:
        return _check_call(func_doc, call, answer, language, underscore_to_dot)
    except Exception as exc:  # BFCL itself would crash here; score the record as failed, say why
        return CheckResult(False, f"checker_error:{type(exc).__name__}", [f"{type(exc).__name__}: {exc}"])


def _check_call(
    func_doc: dict[str, Any],
    call: dict[str, Any],
    answer: dict[str, Any],
    language: str,
    underscore_to_dot: bool,
) -> CheckResult:
    expected_params = next(iter(answer.values()))
    func_name = convert_func_name(func_doc["name"], underscore_to_dot)
    properties = func_doc["parameters"]["properties"]
    if func_name not in call:
        return CheckResult(
            False,
            "simple_function_checker:wrong_func_name",
            [f"Function name {func_name!r} not found in model output."],
        )
    params = call[func_name]
    for param in func_doc["parameters"]["required"]:
        if param not in params:
            return CheckResult(
                False, "simple_function_checker:missing_required", [f"Missing required parameter: {param!r}."]
            )

    for param, raw_value in params.items():
        if param not in properties or param not in expected_params:
            return CheckResult(
                False, "simple_function_checker:unexpected_param", [f"Unexpected parameter: {param!r}."]
            )
        value = raw_value
        type_description = properties[param]["type"]
        nested: type | None = None
        if language == PYTHON:
            expected = PYTHON_TYPES[type_description]
            if type_description in PYTHON_NESTED:
                nested = PYTHON_TYPES[properties[param]["items"]["type"]]
        else:
            table = typeconv.JAVA_TYPES if language == JAVA else typeconv.JS_TYPES
            expected = table[type_description]
            if type(value) is not str:
                label = "java" if language == JAVA else "js"
                return CheckResult(
                    False,
                    f"type_error:{label}",
                    [
                        f"Incorrect type for parameter {param!r}. Expected type String, "
                        f"got {type(value).__name__}. Parameter value: {value!r}."
                    ],
                )
            convert = typeconv.java_convert if language == JAVA else typeconv.js_convert
            if type_description in NESTED_CONVERSION:
                item_type = properties[param]["items"]["type"]
                nested = table[item_type]
                value = convert(value, type_description, item_type)
            else:
                value = convert(value, type_description)

        if type_description == "tuple" and type(value) is tuple:
            value = list(value)
        if language == PYTHON and type_description == "float" and type(value) is int:
            value = float(value)

        alternatives = expected_params[param]
        typed = type_check(param, value, alternatives, type_description, expected, nested)
        if not typed.valid:
            return typed
        if not typed.is_variable:
            if expected is dict:
                verdict = dict_check(param, value, alternatives)
            elif expected is list and nested is dict:
                verdict = list_dict_check(param, value, alternatives)
            elif expected is str:
                verdict = string_check(param, value, alternatives)
            elif expected is list:
                verdict = list_check(param, value, alternatives)
            else:
                verdict = None
            if verdict is not None:
                if not verdict.valid:
                    return verdict
                continue
        if value not in alternatives:
            return CheckResult(
                False,
                "value_error:others",
                [f"Invalid value for parameter {param!r}: {value!r}. Expected one of {alternatives}."],
            )

    for param, alternatives in expected_params.items():
        if param not in params and "" not in alternatives:
            return CheckResult(
                False,
                "simple_function_checker:missing_optional",
                [f"Optional parameter {param!r} not provided and not marked as optional."],
            )
    return _VALID


def _find_doc(func_docs: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    for doc in func_docs:
        if doc["name"] == name:
            return doc
    return None


def check_calls(
    category: str,
    func_docs: list[dict[str, Any]],
    calls: list[dict[str, Any]],
    ground_truth: list[dict[str, Any]],
    underscore_to_dot: bool = False,
) -> CheckResult:
    """BFCL's `ast_checker`: the decoded `calls` of one record against its `ground_truth`."""
    language = language_of(category)
    if "parallel" in category:
        return _check_parallel(func_docs, calls, ground_truth, language, underscore_to_dot)
    if "multiple" in category:
        if len(calls) != len(ground_truth):
            return CheckResult(False, "multiple_function_checker:wrong_count", ["Wrong number of functions."])
        # Quirk: only the first call is compared (the category's answers have one call).
        doc = _find_doc(func_docs, next(iter(ground_truth[0])))
        return check_call(doc, calls[0], ground_truth[0], language, underscore_to_dot)
    if len(calls) != 1:
        return CheckResult(False, "simple_function_checker:wrong_count", ["Wrong number of functions."])
    return check_call(func_docs[0], calls[0], ground_truth[0], language, underscore_to_dot)


def _check_parallel(
    func_docs: list[dict[str, Any]],
    calls: list[dict[str, Any]],
    ground_truth: list[dict[str, Any]],
    language: str,
    underscore_to_dot: bool,
) -> CheckResult:
    """Greedy first fit: each answer, in order, takes the first unmatched call that passes."""
    if len(calls) != len(ground_truth):
        return CheckResult(
            False, "parallel_function_checker_no_order:wrong_count", ["Wrong number of functions."]
        )
    matched: set[int] = set()
    for answer_index, answer in enumerate(ground_truth):
        doc = _find_doc(func_docs, next(iter(answer)))
        errors: list[Any] = []
        result = _VALID
        for index, call in enumerate(calls):
            if index in matched:
                continue
            result = check_call(doc, call, answer, language, underscore_to_dot)
            if result.valid:
                matched.add(index)
                break
            errors.append(
                {
                    f"Model Result Index {index}": {
                        "sub_error": result.errors,
                        "sub_error_type": result.error_type,
                        "model_output_item": call,
                        "possible_answer_item": answer,
                    }
                }
            )
        if not result.valid:
            considered = [i for i in range(len(calls)) if i not in matched]
            errors.insert(
                0,
                f"Could not find a matching function among index {considered} of model output "
                f"for index {answer_index} of possible answers.",
            )
            return CheckResult(False, "parallel_function_checker_no_order:cannot_find_match", errors)
    return _VALID
