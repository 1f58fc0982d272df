"""Emulation movements (phong trào thi đua): defined in chat or imported from YAML."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.folding import fold
from models.tables import Movement, NomineeGroup

SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$")
DATE_RULES: tuple[tuple[str, Literal["before", "after"], str], ...] = (
    ("ends_on", "before", "starts_on"),
    ("interim_review_on", "before", "starts_on"),
    ("interim_review_on", "after", "ends_on"),
    ("final_review_on", "before", "starts_on"),
    ("final_review_on", "before", "interim_review_on"),
    ("reminders", "before", "starts_on"),
    ("reminders", "after", "ends_on"),
)
"""(field, relation, other): the field's date must not be `relation` the other's.

Announcements outside the movement, or reviews in the wrong order, would be scheduled
and then never make sense (or never be sent), so they are refused when the movement is saved.
"""


@dataclass(frozen=True, slots=True)
class DateConflict:
    """`field`'s date `day` is `relation` the date of `other`, which is not allowed."""

    field: str
    day: date
    relation: Literal["before", "after"]
    other: str
    other_day: date

    def __str__(self) -> str:
        return f"{self.field} ({self.day}) is {self.relation} {self.other} ({self.other_day})"


def date_conflicts(
    dates: Mapping[str, date | None], reminders: Sequence[date] = ()
) -> list[DateConflict]:
    """Every date of a movement checked against the others; missing dates are not checked.

    `dates` holds starts_on, ends_on, interim_review_on and final_review_on (or some of
    them, while a movement is being written in chat).
    """
    days = [(field, day) for field, day in dates.items() if day is not None]
    days += [("reminders", day) for day in reminders]
    conflicts = []
    for field, day in days:
        for rule_field, relation, other in DATE_RULES:
            other_day = dates.get(other)
            if rule_field != field or other_day is None:
                continue
            if (day < other_day) if relation == "before" else (day > other_day):
                conflicts.append(DateConflict(field, day, relation, other, other_day))
    return conflicts


class MovementSpec(BaseModel):
    """A movement as an admin writes it (YAML import, or the guided creation in chat)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    slug: str = ""
    name: str = Field(min_length=3, max_length=256)
    short_name: str = Field(min_length=2, max_length=64)
    slogan: str = Field(default="", max_length=256)
    description: str = Field(default="", max_length=4000)
    criteria: list[str] = Field(min_length=1, max_length=20)
    starts_on: date
    ends_on: date
    target_groups: list[NomineeGroup] = Field(default_factory=list)
    reminders: list[date] = Field(default_factory=list)
    interim_review_on: date | None = None
    final_review_on: date | None = None

    @field_validator("criteria")
    @classmethod
    def _non_empty(cls, value: list[str]) -> list[str]:
        cleaned = [item.strip() for item in value if item.strip()]
        if not cleaned:
            raise ValueError("at least one criterion")
        return cleaned

    @model_validator(mode="after")
    def _consistent(self) -> MovementSpec:
        if not self.slug:
            self.slug = slug_for(self.short_name)
        if not SLUG_PATTERN.match(self.slug):
            raise ValueError(f"slug {self.slug!r}: lowercase letters, digits and dashes")
        conflicts = date_conflicts(self.dates(), self.reminders)
        if conflicts:
            raise ValueError("; ".join(str(conflict) for conflict in conflicts))
        return self

    def dates(self) -> dict[str, date | None]:
        return {
            "starts_on": self.starts_on,
            "ends_on": self.ends_on,
            "interim_review_on": self.interim_review_on,
            "final_review_on": self.final_review_on,
        }


def slug_for(short_name: str) -> str:
    """ "Dân vận khéo 2026" → "dan-van-kheo-2026" (for deep links ?start=movement_<slug>)."""
    words = re.sub(r"[^a-z0-9]+", "-", fold(short_name)).strip("-")
    return words[:48].rstrip("-")


def load_specs(path: Path) -> list[MovementSpec]:
    """Movements from a YAML file: a list, or a mapping with a `movements` list."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    items = document.get("movements", []) if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise ValueError("expected a list of movements")
    return [_spec(number, item) for number, item in enumerate(items, 1)]


def _spec(number: int, item: Any) -> MovementSpec:
    """One movement of a file; its errors name it (number and short name) and the field."""
    try:
        return MovementSpec.model_validate(item)
    except ValidationError as error:
        names = item if isinstance(item, dict) else {}
        label = names.get("short_name") or names.get("name") or "?"
        problems = "; ".join(
            ": ".join([*map(str, e["loc"]), e["msg"].removeprefix("Value error, ")])
            for e in error.errors()
        )
        raise ValueError(f"movement {number} ({label}): {problems}") from None


async def save_movement(
    session: AsyncSession, spec: MovementSpec, now: datetime, created_by_id: int | None = None
) -> tuple[Movement, bool]:
    """Create the movement, or update the one with the same slug; returns (it, created)."""
    movement = await movement_by_slug(session, spec.slug)
    created = movement is None
    if movement is None:
        movement = Movement(
            slug=spec.slug,
            name=spec.name,
            short_name=spec.short_name,
            starts_on=spec.starts_on,
            ends_on=spec.ends_on,
            created_by_id=created_by_id,
        )
    fields = spec.model_dump(exclude={"slug"})
    fields["target_groups"] = [str(group) for group in spec.target_groups]
    fields["reminders"] = [day.isoformat() for day in spec.reminders]
    for name, value in fields.items():
        setattr(movement, name, value)
    movement.updated_at = now
    session.add(movement)
    await session.flush()
    return movement, created


async def movement_by_slug(session: AsyncSession, slug: str) -> Movement | None:
    return (await session.exec(select(Movement).where(Movement.slug == slug))).first()


async def active_movements(session: AsyncSession, today: date) -> list[Movement]:
    query = (
        select(Movement)
        .where(col(Movement.starts_on) <= today, col(Movement.ends_on) >= today)
        .order_by(col(Movement.starts_on), col(Movement.id))
    )
    return list((await session.exec(query)).all())


async def current_and_coming(session: AsyncSession, today: date) -> list[Movement]:
    query = (
        select(Movement)
        .where(col(Movement.ends_on) >= today)
        .order_by(col(Movement.starts_on), col(Movement.id))
    )
    return list((await session.exec(query)).all())
