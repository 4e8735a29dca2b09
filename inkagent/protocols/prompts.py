"""The InternLM2 system prompts (Chinese as in lagent 0.2.4, and English) and the plugin tool listing."""

from __future__ import annotations

from typing import Any, Protocol

META_ZH = "当开启工具以及代码时，根据需求选择合适的工具进行调用"
INTERPRETER_ZH = (
    "你现在已经能够在一个有状态的 Jupyter 笔记本环境中运行 Python 代码。"
    "当你向 python 发送含有 Python 代码的消息时，它将在该环境中执行。"
    "这个工具适用于多种场景，如数据分析或处理（包括数据操作、统计分析、图表绘制），"
    "复杂的计算问题（解决数学和物理难题），编程示例（理解编程概念或特性），"
    "文本处理和分析（比如文本解析和自然语言处理），"
    "机器学习和数据科学（用于展示模型训练和数据可视化），"
    "以及文件操作和数据导入（处理CSV、JSON等格式的文件）。"
)
PLUGIN_ZH = (
    "你可以使用如下工具：\n{prompt}\n"
    "如果你已经获得足够信息，请直接给出答案. 避免不必要的工具调用! 同时注意你可以使用的工具，不要随意捏造！"
)

META_EN = "When tools and code are enabled, choose the appropriate tool to call as the task requires."
INTERPRETER_EN = (
    "You can now run Python code in a stateful Jupyter notebook environment. "
    "When you send a message containing Python code to python, it is executed in that environment. "
    "This tool suits many tasks: data analysis and processing (data manipulation, statistics, charts), "
    "complex calculations (maths and physics problems), programming examples, text processing and "
    "analysis, machine learning and data science, and file operations (CSV, JSON and other formats)."
)
PLUGIN_EN = (
    "You can use the following tools:\n{prompt}\n"
    "If you already have enough information, answer directly. Avoid unnecessary tool calls! "
    "Use only the tools listed here; do not make tools up!"
)

PROMPTS = {
    "zh": {"meta": META_ZH, "interpreter": INTERPRETER_ZH, "plugin": PLUGIN_ZH},
    "en": {"meta": META_EN, "interpreter": INTERPRETER_EN, "plugin": PLUGIN_EN},
}

# lagent's wording, kept so that models trained on lagent prompts see what they know.
API_PREFIX = (
    "This is the subfunction for tool '{tool_name}', you can use this tool. The description of this function is: \n"
)
PARAMETER_DESCRIPTION = (
    "If you call this tool, you must pass arguments in the JSON format {key: value}, "
    "where the key is the parameter name."
)

# JSON Schema type -> lagent's type names
_LAGENT_TYPES = {
    "string": "STRING",
    "integer": "NUMBER",
    "number": "FLOAT",
    "boolean": "BOOLEAN",
    "array": "Array",
    "object": "OBJECT",
    "null": "NULL",
}
_SCHEMA_EXTRAS = ("enum", "items", "properties", "default", "format", "minimum", "maximum")


class ToolSpecLike(Protocol):
    name: str
    description: str
    parameters: dict[str, Any]


def _lagent_type(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):  # ["string", "null"]
        kind = next((k for k in kind if k != "null"), "string")
    if kind is None:
        options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
        if len(options) == 1:
            return _lagent_type(options[0])
        if "enum" in schema:
            return "STRING"
    return _LAGENT_TYPES.get(kind or "string", "STRING")


def describe_tool(spec: ToolSpecLike | dict[str, Any]) -> dict[str, Any]:
    """One tool in lagent's plugin-prompt format, every parameter included (lagent hid optional ones)."""
    if isinstance(spec, dict):  # already a lagent description (from a lagent ActionExecutor)
        described = dict(spec)
        tool_name = described["name"].split(".")[0]
        described["description"] = API_PREFIX.format(tool_name=tool_name) + described.get("description", "")
        described.setdefault("parameter_description", PARAMETER_DESCRIPTION)
        return described
    schema = spec.parameters or {}
    parameters = []
    for name, prop in (schema.get("properties") or {}).items():
        entry: dict[str, Any] = {"name": name, "type": _lagent_type(prop), "description": prop.get("description", "")}
        if not entry["description"]:
            del entry["description"]
        for key in _SCHEMA_EXTRAS:
            if key in prop:
                entry[key] = prop[key]
        parameters.append(entry)
    return {
        "name": spec.name,
        "description": API_PREFIX.format(tool_name=spec.name.split(".")[0]) + (spec.description or ""),
        "parameters": parameters,
        "required": list(schema.get("required", [])),
        "parameter_description": PARAMETER_DESCRIPTION,
    }


def describe_tools(specs) -> list[dict[str, Any]]:
    return [describe_tool(spec) for spec in specs]
