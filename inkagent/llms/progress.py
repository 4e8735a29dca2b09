"""`quiet_weight_loading()`: no "Loading weights" bar from transformers while a model loads.

transformers 5 draws a progress bar over the tensors of every checkpoint it loads, a few hundred
lines of redraws in a log and noise on every start of a small local model. Inside this context that
bar (and only that one: hub download bars stay) is disabled, through transformers' public
`set_tqdm_hook`; inkagent logs the load and its duration itself. Older transformers without the hook
are left as they are.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

_LOCK = threading.Lock()
_QUIET_DESCRIPTIONS = ("Loading weights", "Loading checkpoint shards")


@contextlib.contextmanager
def quiet_weight_loading() -> Iterator[None]:
    try:
        from transformers.utils.logging import set_tqdm_hook
    except ImportError:  # transformers < 5: nothing to do
        yield
        return

    with _LOCK:
        previous = set_tqdm_hook(None)

        def hook(factory: Any, args: tuple, kwargs: dict) -> Any:
            if str(kwargs.get("desc", "")).startswith(_QUIET_DESCRIPTIONS):
                kwargs = {**kwargs, "disable": True}
            return previous(factory, args, kwargs) if previous is not None else factory(*args, **kwargs)

        set_tqdm_hook(hook)
    try:
        yield
    finally:
        with _LOCK:
            set_tqdm_hook(previous)
