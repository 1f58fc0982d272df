"""The configured province's communes and wards, with their area tags.

Names and codes come from the `vietnam-provinces` package (the post-July-2025 list).
Area tags (highland, border, especially difficult, ethnic-minority) are not in any
official machine-readable list, so they come from a YAML file the office edits.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import yaml
from vietnam_provinces import Province, ProvinceCode, Ward

from models.folding import fold

_DIVISION_PREFIXES = ("xa ", "phuong ", "dac khu ", "thi tran ")
LOOK_ALIKE_CUTOFF = 0.8
"""difflib's similarity (0..1) a name needs to be offered for a query it does not contain."""


class AreaTag(StrEnum):
    HIGHLAND = "highland"
    BORDER = "border"
    ESPECIALLY_DIFFICULT = "especially_difficult"
    ETHNIC_MINORITY = "ethnic_minority"


@dataclass(frozen=True, slots=True)
class Commune:
    code: int
    name: str
    area_tags: tuple[AreaTag, ...]
    folded: str


class CommuneDirectory:
    """Finds a commune by a fragment of its name, however it was typed."""

    def __init__(self, province_code: int, area_tags: dict[int, tuple[AreaTag, ...]]) -> None:
        province = Province.from_code(ProvinceCode(province_code))
        self.province_code = province_code
        self.province_name = _without_division(province.name)
        self._by_code: dict[int, Commune] = {}
        for ward in Ward.iter_by_province(ProvinceCode(province_code)):
            code = int(ward.code)
            name = _tidy_name(ward.name)
            self._by_code[code] = Commune(code, name, area_tags.get(code, ()), fold(name))

    @property
    def example_query(self) -> str:
        """What a user might type to find the first commune: its bare name, unaccented."""
        first = next(iter(self._by_code.values()))
        return _strip_prefix(first.folded)

    def __len__(self) -> int:
        return len(self._by_code)

    def get(self, code: int) -> Commune | None:
        return self._by_code.get(code)

    def search(self, query: str, limit: int = 8) -> list[Commune]:
        """Communes whose folded name contains the folded query, exact names first.

        When none does, the names that look most like the query ("huu lumg" finds
        Hữu Lũng): people type on small keyboards.
        """
        needle = _strip_prefix(fold(query))
        if not needle:
            return []
        found = [c for c in self._by_code.values() if needle in c.folded]
        if not found:
            return self._look_alikes(needle, limit)
        found.sort(key=lambda c: (_strip_prefix(c.folded) != needle, c.folded))
        return found[:limit]

    def _look_alikes(self, needle: str, limit: int) -> list[Commune]:
        by_name = {_strip_prefix(c.folded): c for c in self._by_code.values()}
        names = difflib.get_close_matches(needle, by_name, n=limit, cutoff=LOOK_ALIKE_CUTOFF)
        return [by_name[name] for name in names]


def provinces() -> dict[int, str]:
    """Every province of the post-2025 list: its code and official name ("Tỉnh Lạng Sơn")."""
    return {int(province.code): province.name for province in Province.iter_all()}


def bundled_area_tags(province_code: int) -> Path | None:
    """The area-tag file shipped with the project for this province, if there is one."""
    candidate = Path(__file__).parent / "data" / f"area_tags_{province_code}.yaml"
    return candidate if candidate.is_file() else None


def load_area_tags(path: Path | None) -> dict[int, tuple[AreaTag, ...]]:
    """Read `{commune_code: [tag, ...]}` from YAML; unknown tags are an error, not a silence."""
    if path is None:
        return {}
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    communes = raw.get("communes", {})
    return {int(code): tuple(AreaTag(tag) for tag in tags) for code, tags in communes.items()}


def _tidy_name(name: str) -> str:
    """The source has a few lower-case prefixes ("xã Bắc Sơn"); show them capitalised."""
    return name[:1].upper() + name[1:]


def _without_division(name: str) -> str:
    """The name without its division: "Tỉnh Lạng Sơn" -> "Lạng Sơn", reads well in any sentence."""
    for division in ("Tỉnh ", "Thành phố "):
        if name.startswith(division):
            return name[len(division) :]
    return name


def _strip_prefix(folded: str) -> str:
    for prefix in _DIVISION_PREFIXES:
        if folded.startswith(prefix):
            return folded[len(prefix) :]
    return folded
