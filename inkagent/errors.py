"""inkagent's exceptions: one small hierarchy, so callers can catch `InkAgentError`."""

from __future__ import annotations


class InkAgentError(Exception):
    """Base class of every error inkagent raises on purpose."""


class ConfigError(InkAgentError):
    """A config file is invalid. The message names the file, the key path and what was expected."""

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None):
        self.path, self.key = path, key
        prefix = ": ".join(p for p in (path, key) if p)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class LLMError(InkAgentError):
    """The model backend failed (server down, out of retries, missing weights...)."""


class ActionError(InkAgentError):
    """An action failed in a way the model should hear about (raised by actions, caught by the executor)."""


class MissingDependency(InkAgentError, ImportError):
    """An optional backend is not installed; the message gives the pip command."""


def require(module: str, extra_hint: str) -> object:
    """Import `module` or raise `MissingDependency` naming what to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(f"{module} is not installed: pip install {extra_hint}") from exc
