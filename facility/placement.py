"""The one rule of rack units, as pure functions: what a placement must meet, and where free space is.

``facility.services`` (the admin's placement) and ``facility.importing`` (a
whole floor from a file) both check through ``placement_check``, so they
refuse the same things with the same words; ``facility.selectors`` finds free
runs with ``free_runs`` for the capacity question.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Occupant:
    """A host filling units ``unit`` .. ``unit + height_u - 1`` of a rack."""

    hostname: str
    unit: int
    height_u: int

    @property
    def top(self) -> int:
        return self.unit + self.height_u - 1


def units_text(unit: int, height_u: int) -> str:
    """``U12`` for one unit, ``U12-U13`` for several."""
    return f"U{unit}" if height_u == 1 else f"U{unit}-U{unit + height_u - 1}"


def placement_check(
    *, rack: str, rack_height_u: int, hostname: str, unit: int, height_u: int, occupants: Iterable[Occupant]
) -> str | None:
    """Why ``hostname`` cannot fill ``unit`` .. ``unit + height_u - 1`` of ``rack``, or None if it can.

    Units are numbered 1 (bottom) to the rack's height. A host is taken as
    full depth: it fills its units on both faces, so a rear-mounted host
    overlaps a front-mounted one in the same units. The host's own earlier
    place does not count against it (a move within its rack).
    """
    if unit < 1 or height_u < 1:
        return f"unit and height must be at least 1 (got unit {unit}, height {height_u}U)."
    top = unit + height_u - 1
    if top > rack_height_u:
        return f"{hostname}: {units_text(unit, height_u)} does not fit in rack {rack}, which has {rack_height_u} units."
    for other in occupants:
        if other.hostname != hostname and other.unit <= top and unit <= other.top:
            return (
                f"{units_text(unit, height_u)} of rack {rack} overlaps {other.hostname}"
                f" at {units_text(other.unit, other.height_u)}."
            )
    return None


def free_runs(*, rack_height_u: int, occupants: Iterable[Occupant]) -> list[tuple[int, int]]:
    """The rack's free units as runs ``(first unit, length)``, bottom up."""
    taken = bytearray(rack_height_u + 2)
    for o in occupants:
        for u in range(max(1, o.unit), min(rack_height_u, o.top) + 1):
            taken[u] = 1
    runs: list[tuple[int, int]] = []
    start = None
    for u in range(1, rack_height_u + 2):
        if u <= rack_height_u and not taken[u]:
            if start is None:
                start = u
        elif start is not None:
            runs.append((start, u - start))
            start = None
    return runs
