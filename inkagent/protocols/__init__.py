"""How agents talk to models: `Internlm2Protocol` formats prompts and parses tool calls."""

from .internlm2 import Internlm2Protocol
from .internlm2_parser import Internlm2StreamParser, normalize_special_tokens

__all__ = ["Internlm2Protocol", "Internlm2StreamParser", "normalize_special_tokens"]
