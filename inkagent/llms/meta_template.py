"""Meta templates: how chat messages become one prompt string, in lagent's format.

A meta template is a list of role configs (lagent 0.2.4's format, kept so that lagent configs and
`from lagent.llms.meta_template import INTERNLM2_META` port unchanged):

    {"role": "system", "begin": {"with_name": "...{name}...", "without_name": "...", "name": {...}},
     "end": "<|im_end|>\\n", "fallback_role": None, "generate": False}

`begin` may also be a plain string. A message's `name` picks `with_name` (mapped through `name`, so
`name="plugin"` becomes `<|plugin|>`); a role with `fallback_role` renders as that role; after the last
message (when it is not the assistant's) the assistant's `begin` opens the answer.
"""

from __future__ import annotations

import itertools
import operator
import threading
from typing import Any

INTERNLM2_META: list[dict[str, Any]] = [
    {
        "role": "system",
        "begin": {
            "with_name": "<|im_start|>system name={name}\n",
            "without_name": "<|im_start|>system\n",
            "name": {"interpreter": "<|interpreter|>", "plugin": "<|plugin|>"},
        },
        "end": "<|im_end|>\n",
    },
    {
        "role": "user",
        "begin": {"with_name": "<|im_start|>user name={name}\n", "without_name": "<|im_start|>user\n"},
        "end": "<|im_end|>\n",
    },
    {
        "role": "assistant",
        "begin": {
            "with_name": "<|im_start|>assistant name={name}\n",
            "without_name": "<|im_start|>assistant\n",
            "name": {"interpreter": "<|interpreter|>", "plugin": "<|plugin|>"},
        },
        "end": "<|im_end|>\n",
    },
    {
        "role": "environment",
        "begin": {
            "with_name": "<|im_start|>environment name={name}\n",
            "without_name": "<|im_start|>environment\n",
            "name": {"interpreter": "<|interpreter|>", "plugin": "<|plugin|>"},
        },
        "end": "<|im_end|>\n",
    },
]

#: Meta templates a config can name as a string (`meta_template: INTERNLM2`), as lagent configs do.
META_TEMPLATES: dict[str, list[dict[str, Any]]] = {"INTERNLM2": INTERNLM2_META}


def resolve_meta_template(value: str | list[dict] | None) -> list[dict] | None:
    """A meta template given as a list, None (no template) or a name in `META_TEMPLATES`.

    Raises:
        ValueError: an unknown name.
    """
    if isinstance(value, str):
        try:
            return META_TEMPLATES[value.upper()]
        except KeyError:
            raise ValueError(f"unknown meta_template {value!r}; known: {', '.join(META_TEMPLATES)}") from None
    return value


class MetaTemplateParser:
    """Renders messages with a meta template: `parser(messages) -> prompt text`.

    The same text as lagent 0.2.4's `LMTemplateParser` for every template it accepts. Without a
    template, the message contents are joined by newlines.

    Raises:
        ValueError: (at construction) a template that is not a list of role configs with unique roles;
            (when called) a message whose role the template lacks.
    """

    def __init__(self, meta_template: list[dict] | None = None) -> None:
        self.meta_template = meta_template
        self.roles: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._items: list[Any] = []  # the messages rendered last time (held: their ids stay unique)
        self._contents: list[Any] = []  # their content then
        self._pieces: list[str] = []  # and their text
        self._joined = ""  # their text joined
        if not meta_template:
            return
        if not isinstance(meta_template, list):
            raise ValueError(f"a meta template is a list of role configs, not {type(meta_template).__name__}")
        for config in meta_template:
            if not isinstance(config, dict) or "role" not in config:
                raise ValueError(f"every entry of a meta template is a dict with a 'role': {config!r}")
            if config["role"] in self.roles:
                raise ValueError(f"the meta template names the role {config['role']!r} twice")
            self.roles[config["role"]] = dict(config)

    def __call__(self, dialog: str | list[str | dict]) -> str:
        """The prompt text of `dialog` (a string is returned as it is)."""
        if isinstance(dialog, str):
            return dialog
        if not self.meta_template:
            return "\n".join(item if isinstance(item, str) else str(item.get("content", "")) for item in dialog if item)
        if not dialog:
            return ""
        last = len(dialog) - 1
        with self._lock:  # a backend may render for several threads
            prefix = self._prefix(dialog, last)
        item = dialog[last]
        return prefix + (item if isinstance(item, str) else self._render(item, True))

    def _prefix(self, dialog: list[str | dict], last: int) -> str:
        """The text of `dialog[:last]`, each message rendered once: a conversation sent again with more
        messages (the same dicts, their content unchanged) renders only the new ones."""
        items, contents, pieces = self._items, self._contents, self._pieces
        before = len(items)
        keep = self._kept(dialog, last)
        del items[keep:], contents[keep:], pieces[keep:]
        for item in dialog[keep:last]:
            items.append(item)
            contents.append(_content(item))
            pieces.append(item if isinstance(item, str) else self._render(item, False))
        if keep != before or keep != last:
            self._joined = "".join(pieces)
        return self._joined

    def _kept(self, dialog: list[str | dict], last: int) -> int:
        """How many of the messages rendered last time start `dialog[:last]` unchanged (same object,
        same content object)."""
        n = _same_prefix(dialog[: min(last, len(self._items))], self._items)
        try:  # (C-level: dict.get raises on a string item, which the loop below handles)
            return _same_prefix(list(map(dict.get, dialog[:n], itertools.repeat("content"))), self._contents)
        except TypeError:
            pass
        for i, (item, content) in enumerate(zip(dialog[:n], self._contents, strict=False)):
            if _content(item) is not content:
                return i
        return n

    def _config(self, role: str) -> dict[str, Any]:
        try:
            config = self.roles[role]
        except KeyError:
            raise ValueError(f"the meta template has no role {role!r}; it has: {', '.join(self.roles)}") from None
        if config.get("fallback_role"):
            return self._config(config["fallback_role"])
        return config

    def _begin(self, config: dict[str, Any], message: dict) -> str:
        begin = config.get("begin", "")
        if isinstance(begin, str):
            return begin
        name = message.get("name")
        if name is None:
            return begin.get("without_name", "")
        return begin.get("with_name", "").format(name=begin.get("name", {}).get(name, name))

    def _render(self, message: dict, last: bool) -> str:
        config = self._config(message.get("role", ""))
        text = self._begin(config, message) + str(message.get("content", ""))
        if last and config.get("generate", False):
            return text  # the model continues this message
        text += config.get("end", "")
        if last and config["role"] != "assistant" and "assistant" in self.roles:
            text += self._begin(self.roles["assistant"], {})  # open the answer
        return text


def _content(item: str | dict) -> Any:
    return item if isinstance(item, str) else item.get("content")


def _same_prefix(new: list[Any], old: list[Any]) -> int:
    """How many items `new` and `old` share at their start (the same objects). One C-level pass."""
    same = bytes(map(operator.is_, new, old))  # 1 where the same (map stops at the shorter one)
    first_other = same.find(0)
    return len(same) if first_other < 0 else first_other
