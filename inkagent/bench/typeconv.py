"""BFCL's Java and JavaScript value converters: source text of a value -> a Python value.

BFCL scores its Java and JavaScript categories by turning the text of each argument into a Python
value according to the documented type, then running the Python checker on the result. Text that does
not look like the documented type stays a string (and is then usually a type error, or a "variable"
when the answer expects a variable name). These functions reproduce BFCL's regular expressions and
their blind spots on purpose, e.g. an `Array` of `String` keeps the quotes of its elements and a
JavaScript object is read up to its first `}`; see the data README and tests for the consequences.
"""

from __future__ import annotations

import re
from typing import Any

#: Documented Java type -> the Python type the converted value must have.
JAVA_TYPES: dict[str, type] = {
    "byte": int,
    "short": int,
    "integer": int,
    "float": float,
    "double": float,
    "long": int,
    "boolean": bool,
    "char": str,
    "Array": list,
    "ArrayList": list,
    "Set": set,
    "HashMap": dict,
    "Hashtable": dict,
    "Queue": list,
    "Stack": list,
    "String": str,
    "any": str,
}

#: Documented JavaScript type -> the Python type the converted value must have.
JS_TYPES: dict[str, type] = {
    "String": str,
    "integer": int,
    "float": float,
    "Bigint": int,
    "Boolean": bool,
    "dict": dict,
    "array": list,
    "any": str,
}

_INT = re.compile(r"^-?\d+$")
_JAVA_FLOAT = re.compile(r"^-?\d+(\.\d+)?([eE][+-]?\d+)?[fF]$")
_JAVA_DOUBLE = re.compile(r"^-?\d+(\.\d+)?([eE][+-]?\d+)?$")
_JAVA_LONG = re.compile(r"^-?\d+[lL]$")
_ARRAYLIST_ASLIST = re.compile(r"new\s+ArrayList<\w*>\(Arrays\.asList\((.+?)\)\)")
_ARRAYLIST_ADD = re.compile(r"new\s+ArrayList<\w*>\(\)\s*\{\{\s*(.+?)\s*\}\}", re.DOTALL)
_ARRAYLIST_ADD_ITEM = re.compile(r"add\((.+?)\)")
_ARRAYLIST_EMPTY = re.compile(r"new\s+ArrayList<\w*>\(\)")
_ARRAY = re.compile(r"new\s+\w+\[\]\s*\{(.*?)\}")
_HASHMAP = re.compile(r"new\s+HashMap<.*?>\s*\(\)\s*\{\s*\{?\s*(.*?)\s*\}?\s*\}", re.DOTALL)
_HASHMAP_PUT = re.compile(r"put\(\"(.*?)\",\s*(.*?)\)")
_HASHMAP_EMPTY = re.compile(r"new\s+HashMap<.*?>\s*\(\)")


class UnsupportedConversion(ValueError):
    """A documented type BFCL has no converter for (BFCL raises too)."""


# ---------------------------------------------------------------------------------------------
# Java
# ---------------------------------------------------------------------------------------------
def java_convert(value: str, type_name: str, item_type: str | None = None) -> Any:
    """Convert Java source text `value` of documented type `type_name` as BFCL does."""
    if type_name not in JAVA_TYPES:
        raise UnsupportedConversion(f"Unsupported type: {type_name}")
    if type_name in ("byte", "short", "integer"):
        return int(value) if _INT.match(value) else value
    if type_name == "float":
        return float(value[:-1]) if _JAVA_FLOAT.match(value) else value
    if type_name == "double":
        return float(value) if _JAVA_DOUBLE.match(value) else value
    if type_name == "long":
        return int(value[:-1]) if _JAVA_LONG.match(value) else value
    if type_name == "boolean":
        return value == "true" if value in ("true", "false") else value
    if type_name == "char":
        return value  # BFCL's char pattern r"^\'.$\'" can never match, so a char stays as written
    if type_name == "ArrayList":
        return _java_arraylist(value, item_type)
    if type_name == "Array":
        return _java_array(value, item_type)
    if type_name == "HashMap":
        return _java_hashmap(value)
    if type_name in ("String", "any"):
        return value
    raise UnsupportedConversion(f"{type_name} conversion is not implemented")


def _java_element(text: str, item_type: str | None) -> Any:
    # ArrayList elements: char and String lose their first and last character (the quotes).
    if item_type in ("char", "String"):
        return text[1:-1]
    return java_convert(text, item_type) if item_type else java_value(text)


def _java_arraylist(text: str, item_type: str | None) -> Any:
    match = _ARRAYLIST_ASLIST.search(text)
    if match:
        return [_java_element(part.strip(), item_type) for part in match.group(1).split(",")]
    match = _ARRAYLIST_ADD.search(text)
    if match:
        return [
            _java_element(part.strip(), item_type) for part in _ARRAYLIST_ADD_ITEM.findall(match.group(1))
        ]
    if _ARRAYLIST_EMPTY.search(text):
        return []
    return text


def _java_array(text: str, item_type: str | None) -> Any:
    match = _ARRAY.search(text)
    if not match:
        return text
    parts = [part.strip() for part in match.group(1).split(",") if part.strip()]
    # Quirk: String elements go through the String converter, which keeps their quotes.
    return [java_convert(part, item_type) if item_type else java_value(part) for part in parts]


def _java_hashmap(text: str) -> Any:
    match = _HASHMAP.search(text)
    if match:
        body = match.group(1)
        return (
            {key: java_value(item.strip()) for key, item in _HASHMAP_PUT.findall(body)}
            if body.strip()
            else {}
        )
    if _HASHMAP_EMPTY.search(text):
        return {}
    return text


def java_value(text: str) -> Any:
    """A Java literal without a declared type: boolean, string, long, float, int, double, or text."""
    if text == "true":
        return True
    if text == "false":
        return False
    if text.startswith('"') and text.endswith('"'):
        return text[1:-1]
    if _JAVA_LONG.match(text):
        return int(text[:-1])
    if _JAVA_FLOAT.match(text):
        return float(text[:-1])
    return _int_or_float(text)


def _int_or_float(text: str) -> Any:
    # Python's int()/float() accept what BFCL's try/except chain accepts (" 1", "1_0", "inf", ...).
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


# ---------------------------------------------------------------------------------------------
# JavaScript
# ---------------------------------------------------------------------------------------------
_JS_FLOAT = re.compile(r"^-?\d+(\.\d+)?$")
_JS_BIGINT = re.compile(r"^-?\d+n$")
_JS_ARRAY_2D = re.compile(
    r"\[\s*\[.*?\]\s*(,\s*\[.*?\]\s*)*\]|\bnew\s+Array\(\s*\[.*?\]\s*(,\s*\[.*?\]\s*)*\)"
)
_JS_ARRAY = re.compile(r"\[(.*?)\]|\bnew\s+Array\((.*?)\)")
_JS_INNER_ARRAY = re.compile(r"\[(.*?)\]")
_JS_DICT = re.compile(r"\{(.*?)\}")
_JS_PAIR = re.compile(r"([^:]+):\s*(.*?)(?:,\s*(?=[^,]+:)|$)")


def js_convert(value: str, type_name: str, item_type: str | None = None) -> Any:
    """Convert JavaScript source text `value` of documented type `type_name` as BFCL does."""
    if type_name not in JS_TYPES:
        raise UnsupportedConversion(f"Unsupported type: {type_name}")
    if type_name == "String":
        quoted = (value.startswith('"') and value.endswith('"')) or (
            value.startswith("'") and value.endswith("'")
        )
        return value[1:-1] if quoted else value
    if type_name == "integer":
        return int(value) if _INT.match(value) else value
    if type_name == "float":
        return float(value) if _JS_FLOAT.match(value) else value
    if type_name == "Bigint":
        return int(value[:-1]) if _JS_BIGINT.match(value) else value
    if type_name == "Boolean":
        return value == "true" if value in ("true", "false") else value
    if type_name == "dict":
        return _js_dict(value.strip())
    if type_name == "array":
        return _js_array(value.strip(), item_type)
    return value  # any


def _js_array(code: str, item_type: str | None) -> Any:
    try:
        match = _JS_ARRAY_2D.match(code)
        if match:
            rows = []
            for index, inner in enumerate(_JS_INNER_ARRAY.findall(match.group(0))):
                inner = inner.strip()
                if index == 0 and inner.startswith("["):
                    inner = inner[1:]
                rows.append([js_value(part.strip()) for part in inner.split(",")])
            return rows
        match = _JS_ARRAY.match(code)
        if not match:
            return code
        body = match.group(1) if match.group(1) is not None else match.group(2)
        body = (body or "").strip()
        parts = body.split(",") if body else []
        if item_type:
            # BFCL passes "String" as the element's own item type only when the element is quoted.
            return [
                js_convert(part.strip(), item_type, "String" if part.strip()[:1] in ("'", '"') else None)
                for part in parts
            ]
        return [js_value(part.strip()) for part in parts]
    except Exception:  # BFCL's bare `except:` falls back to the raw text; so do we
        return code


def _js_dict(code: str) -> Any:
    if code == "{}":
        return {}
    match = _JS_DICT.match(code)
    if not match:
        return code
    result: dict[str, Any] = {}
    for key, item in _JS_PAIR.findall(match.group(1)):
        key = key.strip().strip("'\"")
        item = item.strip()
        if item.startswith("[") and item.endswith("]"):
            result[key] = _js_array(item, None)
        elif item.startswith("{") and item.endswith("}"):
            result[key] = _js_dict(item)
        else:
            result[key] = js_value(item.strip("'\""))
    return result


def js_value(text: str) -> Any:
    """A JavaScript literal without a declared type: boolean, quoted string, int, float, or text."""
    text = text.strip()
    if text == "true":
        return True
    if text == "false":
        return False
    if (text.startswith('"') and text.endswith('"')) or (text.startswith("'") and text.endswith("'")):
        return text[1:-1]
    return _int_or_float(text)
