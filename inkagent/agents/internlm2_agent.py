"""`Internlm2Agent`: the `ToolAgent` loop with the InternLM2 protocol by default (plugin + interpreter calls).

lagent's names of this module are here too, so that `from lagent.agents.internlm2_agent import
INTERPRETER_CN, META_CN, PLUGIN_CN, Internlm2Agent, Internlm2Protocol` ports by renaming the package.
"""

from __future__ import annotations

from ..compat.lagent_agent import as_executor
from ..protocols.internlm2 import Internlm2Protocol
from ..protocols.prompts import INTERPRETER_ZH as INTERPRETER_CN
from ..protocols.prompts import META_ZH as META_CN
from ..protocols.prompts import PLUGIN_ZH as PLUGIN_CN
from .tool_agent import ToolAgent

__all__ = ["INTERPRETER_CN", "META_CN", "PLUGIN_CN", "Internlm2Agent", "Internlm2Protocol", "ToolAgent", "as_executor"]


class Internlm2Agent(ToolAgent):
    """lagent's `Internlm2Agent`: a `ToolAgent` whose protocol is `Internlm2Protocol()` unless given
    (same constructor arguments; any `ToolProtocol` or a lagent `Internlm2Protocol` is accepted)."""
