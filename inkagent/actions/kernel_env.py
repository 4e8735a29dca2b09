"""The environment of the interpreter's kernel: an allowlist, never the agent's whole environment.

Model-written code must not read the agent's secrets (the variable `api_key_env` names, `HF_TOKEN`, cloud
credentials): the kernel gets only what programs, Python, locales and numeric libraries need, `HOME`
set to its working directory, and what the config names under `interpreter.env`.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Variables the kernel inherits from the agent: what programs, Python, locales and numeric libraries
#: need, and nothing that may hold a secret (API keys, tokens, cloud credentials stay with the agent).
KERNEL_ENV_ALLOWLIST = frozenset({
    "PATH", "LANG", "LANGUAGE", "TZ", "TERM", "TMPDIR", "TEMP", "TMP", "SYSTEMROOT", "USER", "LOGNAME",
    "SSL_CERT_FILE", "SSL_CERT_DIR",
    "PYTHONPATH", "PYTHONHOME", "PYTHONIOENCODING", "PYTHONUTF8", "PYTHONHASHSEED",
    "VIRTUAL_ENV", "CONDA_PREFIX", "LD_LIBRARY_PATH", "MPLCONFIGDIR", "IPYTHONDIR",
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CUDA_VISIBLE_DEVICES",
})


def kernel_environment(work_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The kernel's environment: the allowlisted variables of the agent (`KERNEL_ENV_ALLOWLIST`, `LC_*`),
    HOME set to the working directory, matplotlib's inline backend, plus `extra` (from `env=`)."""
    env = {k: v for k, v in os.environ.items() if k in KERNEL_ENV_ALLOWLIST or k.startswith("LC_")}
    home = Path.home()
    env.update(
        HOME=str(work_dir),
        # caches stay where the agent keeps them: matplotlib's font cache is not rebuilt at every start
        MPLCONFIGDIR=os.environ.get("MPLCONFIGDIR") or str(home / ".cache" / "matplotlib"),
        IPYTHONDIR=os.environ.get("IPYTHONDIR") or str(home / ".ipython"),
        MPLBACKEND="module://matplotlib_inline.backend_inline",  # figures come back as PNG displays
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    env.update(extra or {})
    return env


def extra_env(env: list[str] | dict[str, str] | None) -> dict[str, str]:
    """`env=` as variables: names are copied from the agent's environment (if set), a mapping as given."""
    if env is None:
        return {}
    if isinstance(env, dict):
        return {str(k): str(v) for k, v in env.items()}
    if isinstance(env, str):
        env = [env]
    return {name: os.environ[name] for name in env if name in os.environ}
