"""API keys: read from the variable a config names, never from the file, never shown in a message."""

from __future__ import annotations

import os
import re

from ..errors import ConfigError

#: The message for `api_key:` in a config (secrets stay out of files).
API_KEY_IN_CONFIG = (
    "api_key is not read from configs (a key in a file ends up in repositories and logs): put the key in "
    "an environment variable and name the variable with api_key_env, e.g. api_key_env: OPENAI_API_KEY"
)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def read_api_key(api_key_env: str | None) -> str | None:
    """The key held by the variable `api_key_env` names; a `ConfigError` that never shows a key."""
    if not api_key_env:
        return None
    if not isinstance(api_key_env, str) or not _ENV_NAME.fullmatch(api_key_env):
        raise ConfigError(
            "api_key_env must be the NAME of an environment variable that holds the key (e.g. OPENAI_API_KEY), "
            "not the key itself; the value given is not shown, since it may be a key"
        )
    key = os.environ.get(api_key_env)
    if key:
        return key
    # a name like sk_live_... may be a key written in the wrong place: only show conventional names
    shown = api_key_env if api_key_env.isupper() and len(api_key_env) <= 64 else "named by api_key_env (not shown)"
    raise ConfigError(f"the API key variable {shown} is not set in the environment")
