"""A glossary of agent terms (a toolkit), and a word counter (a single @tool function)."""

from __future__ import annotations

from inkagent.actions import Action, api, tool
from inkagent.errors import ActionError

TERMS = {
    "agent": "A program that lets a language model act: it calls tools and reads their results until done.",
    "tool call": "A structured request from the model to run a function with arguments.",
    "lora": "Low-Rank Adaptation: fine-tuning by training small low-rank matrices added to frozen weights.",
    "rag": "Retrieval-augmented generation: retrieved documents are put in the prompt before answering.",
}


class Glossary(Action):
    """Definitions of terms used around language-model agents."""

    def __init__(self, extra_terms: dict[str, str] | None = None) -> None:
        self.terms = {**TERMS, **{k.casefold(): v for k, v in (extra_terms or {}).items()}}

    @api
    def define(self, term: str) -> str:
        """Define a term.

        Args:
            term: the term, e.g. "LoRA" or "tool call"
        """
        definition = self.terms.get(term.strip().casefold())
        if definition is None:
            raise ActionError(
                f"{term!r} is not in the glossary; known terms: {', '.join(sorted(self.terms))}"
            )
        return definition

    @api
    def terms_list(self) -> list[str]:
        """List the terms the glossary defines."""
        return sorted(self.terms)


@tool
def count_words(text: str) -> int:
    """Count the words of a text.

    Args:
        text: the text
    """
    return len(text.split())
