"""Example plugin file: actions an agent can use, written without touching inkagent.

Reference them from a config by path (see config.yaml next to this file):

    actions:
      - ./my_tools.py:convert_length
      - ./my_tools.py:roll_dice
      - ./my_tools.py:TodoList

or list their schemas with `inkagent actions ./my_tools.py:TodoList`.
"""

from __future__ import annotations

import random
from datetime import date
from typing import Annotated, Literal

from pydantic import Field

from inkagent.actions import Action, api, tool
from inkagent.errors import ActionError

_METRES = {"mm": 0.001, "cm": 0.01, "m": 1.0, "km": 1000.0, "in": 0.0254, "ft": 0.3048, "mi": 1609.344}
Unit = Literal["mm", "cm", "m", "km", "in", "ft", "mi"]


@tool
def convert_length(value: float, from_unit: Unit, to_unit: Unit = "m") -> str:
    """Convert a length between metric and imperial units.

    Args:
        value: the length to convert
        from_unit: the unit of `value`
        to_unit: the unit to convert to
    """
    result = value * _METRES[from_unit] / _METRES[to_unit]
    return f"{value:g} {from_unit} = {result:.6g} {to_unit}"


@tool
async def roll_dice(
    sides: Annotated[int, Field(ge=2, le=100)] = 6,
    count: Annotated[int, Field(ge=1, le=20)] = 1,
    seed: int | None = None,
) -> list[int]:
    """Roll dice and return the faces. An async tool: inkagent awaits it.

    Parameters
    ----------
    sides
        faces per die
    count
        how many dice to roll
    seed
        a seed, for repeatable rolls
    """
    rng = random.Random(seed)
    return [rng.randint(1, sides) for _ in range(count)]


class TodoList(Action):
    """A to-do list kept for the session: add items and list what is still open."""

    def __init__(self) -> None:
        self.items: list[tuple[str, date | None]] = []

    @api
    def add(self, item: str, due: date | None = None) -> str:
        """Add an item to the to-do list.

        Args:
            item: what is to be done
            due: when it is due (YYYY-MM-DD)
        """
        if any(existing == item for existing, _ in self.items):
            raise ActionError(f"{item!r} is already on the list")  # the model reads this and moves on
        self.items.append((item, due))
        return f"added {item!r}; {len(self.items)} item(s) on the list"

    @api
    def show(self) -> list[dict]:
        """Show the open items, soonest due first."""
        ordered = sorted(self.items, key=lambda entry: (entry[1] is None, entry[1] or date.max))
        return [{"item": item, "due": due.isoformat() if due else None} for item, due in ordered]
