"""Logging for the `inkagent` command: one line per message, and no flood of hub retries.

Libraries that install a handler of their own (huggingface_hub, transformers) would print each message
twice next to the root handler: a record already handled by a logger's own handler is not printed
again. huggingface_hub retries an unreachable hub five times with backoff, logging two lines per try;
the first failure per URL is shown, the retries are not (the error that ends the load says it all).
"""

from __future__ import annotations

import logging
import re

_RETRY_LOGGER = "huggingface_hub.utils._http"
_URL = re.compile(r"requesting \S+ (\S+)")


class _HandledElsewhere(logging.Filter):
    """Drops records that a handler of a logger below the root has already printed."""

    def filter(self, record: logging.LogRecord) -> bool:
        logger: logging.Logger | None = logging.getLogger(record.name)
        while logger is not None and logger is not logging.root:
            if logger.handlers:
                return False
            if not logger.propagate:
                return True
            logger = logger.parent  # type: ignore[assignment]
        return True


class _OneRetryLine(logging.Filter):
    """Lets the first failure per URL through; drops 'Retrying in ...' and repeated failures."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("Retrying in"):
            return False
        match = _URL.search(message)
        if match is None:
            return True
        if match.group(1) in self.seen:
            return False
        self.seen.add(match.group(1))
        record.msg, record.args = f"{message} (retrying quietly)", None
        return True


def configure_logging(level: int) -> None:
    """The root handler at `level` with the filters above (idempotent)."""
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.root.handlers:
        if not any(isinstance(f, _HandledElsewhere) for f in handler.filters):
            handler.addFilter(_HandledElsewhere())
    retry_logger = logging.getLogger(_RETRY_LOGGER)  # the same object huggingface_hub gets later
    if not any(isinstance(f, _OneRetryLine) for f in retry_logger.filters):
        retry_logger.addFilter(_OneRetryLine())
