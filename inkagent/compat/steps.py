"""lagent's message lists <-> inkagent `Message`s.

lagent 0.2.4 agents are stateless: the caller passes the whole conversation, and extends it with the
`inner_steps` of each answer. Those steps use two roles of lagent's own besides `user`, `system`,
`assistant` and `environment` (see `lagent.agents.internlm2_agent.Internlm2Protocol.format_sub_role`):

    {"role": "language", "content": "thought or answer"}
    {"role": "tool", "name": "plugin", "content": {"name": "ArxivSearch.get_arxiv_article_information",
                                                   "parameters": {"query": "..."}}}
    {"role": "tool", "name": "interpreter", "content": {"name": "IPythonInterpreter",
                                                        "parameters": {"command": "```python\\n...\\n```"}}}
    {"role": "environment", "name": "plugin", "content": "the tool's result"}

`language` and the `tool` steps after it are one assistant message (its text and its calls).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..schema import Message, ToolCall

#: Roles a lagent message list may hold.
LAGENT_ROLES = ("user", "system", "assistant", "environment", "language", "tool")


def fence_code(code: str) -> str:
    """Code as the InternLM2 model writes it in an interpreter call (lagent keeps the fence)."""
    return f"```python\n{code}\n```"


def messages_from_steps(steps: Iterable[Message | dict]) -> list[Message]:
    """inkagent `Message`s from lagent messages (any of `LAGENT_ROLES`) or `Message`s.

    Raises:
        ValueError: a step that is not a dict, or whose role is not one of `LAGENT_ROLES` (the message
            names its position).
    """
    messages: list[Message] = []
    for index, step in enumerate(steps):
        if isinstance(step, Message):
            messages.append(step)
            continue
        if not isinstance(step, dict):
            raise ValueError(f"message {index} is a {type(step).__name__}; lagent messages are dicts with a 'role'")
        role = step.get("role", "user")
        if role not in LAGENT_ROLES:
            raise ValueError(f"message {index} has the role {role!r}; expected one of {', '.join(LAGENT_ROLES)}")
        content = step.get("content", "")
        if role == "language":
            messages.append(Message(role="assistant", content=str(content or "")))
        elif role == "tool":
            kind = "interpreter" if step.get("name") == "interpreter" else "plugin"
            if isinstance(content, dict):
                name = str(content.get("name", ""))
                arguments = content.get("parameters", content.get("arguments", {}))
            else:  # lagent's format_sub_role also takes the call's text
                name, arguments = "IPythonInterpreter", {"command": str(content)}
                if kind == "plugin":
                    try:
                        parsed = json.loads(str(content))
                        name, arguments = parsed.get("name", ""), parsed.get("parameters", {})
                    except (json.JSONDecodeError, AttributeError):
                        raise ValueError(f"message {index}: a plugin call must be a dict or its JSON text") from None
            if kind == "interpreter":
                from ..protocols.internlm2_parser import decode_interpreter_call  # (a cycle at import time)

                decoded = decode_interpreter_call(str(arguments.get("command", "")), name or "IPythonInterpreter")
                if isinstance(decoded, ToolCall):  # lagent keeps the ``` fence; inkagent keeps the code
                    arguments = decoded.arguments
            call = ToolCall(kind=kind, name=name, arguments=dict(arguments or {}))
            if messages and messages[-1].role == "assistant":
                messages[-1].tool_calls.append(call)
            else:
                messages.append(Message(role="assistant", tool_calls=[call]))
        else:
            messages.append(
                Message(role=role, content=str(content or ""), name=step.get("name"), tool_call_id=step.get("tool_call_id"))
            )
    return messages


def steps_from_messages(messages: Iterable[Message]) -> list[dict[str, Any]]:
    """lagent's `inner_steps` for inkagent `Message`s (the inverse of `messages_from_steps`)."""
    steps: list[dict[str, Any]] = []
    for message in messages:
        if message.role != "assistant":
            step: dict[str, Any] = {"role": message.role, "content": message.content}
            if message.name:
                step["name"] = message.name
            steps.append(step)
            continue
        steps.append({"role": "language", "content": message.content})
        for call in message.tool_calls:
            parameters = call.arguments
            if call.kind == "interpreter":
                parameters = {"command": fence_code(str(call.arguments.get("command", "")))}
            steps.append({"role": "tool", "content": {"name": call.name, "parameters": parameters}, "name": call.kind})
    return steps
