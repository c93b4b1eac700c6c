"""The applicability facets of policies, guides and enterprises (P1-P4), and the one matching rule.

A policy states, per facet, the values it applies to: industries (GB/T 4754-2017 sections), enterprise
sizes, stages and place types. An empty facet means "all". Each facet is stored as a bit mask (one bit
per value, 0 = all), so the same rule runs in Python (`matches`) and in SQL (`sql_matches`) on SQLite
and PostgreSQL alike. docs/policies.md, "The matching rule".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, case, literal, or_

from server.i18n import N_
from server.models.places import PlaceKind


@dataclass(frozen=True)
class Facet:
    name: str  # the attribute name on policies and guides (industries, sizes ...), and the form field
    label: str  # msgid
    values: tuple[str, ...]  # in display order; value i has bit 1 << i
    labels: Mapping[str, str]  # value -> msgid

    def bit(self, value: str | None) -> int:
        if value is None or value not in self.values:
            return 0
        return 1 << self.values.index(value)

    def mask(self, values: Iterable[str]) -> int:
        return sum({self.bit(v) for v in values})

    def values_of(self, mask: int) -> list[str]:
        return [v for i, v in enumerate(self.values) if mask & (1 << i)]

    def unknown(self, values: Iterable[str]) -> list[str]:
        return [v for v in values if v not in self.values]

    def bit_sql(self, column: Any) -> ColumnElement[int]:
        """The bit of an enterprise's value in SQL (0 when it has none)."""
        return case({v: 1 << i for i, v in enumerate(self.values)}, value=column, else_=literal(0))


# GB/T 4754-2017 门类 (sections).
INDUSTRY = Facet("industries", N_("Industry"), tuple("ABCDEFGHIJKLMNOPQRST"), {
    "A": N_("Agriculture, forestry, animal husbandry and fishery"),
    "B": N_("Mining"),
    "C": N_("Manufacturing"),
    "D": N_("Electricity, heat, gas and water supply"),
    "E": N_("Construction"),
    "F": N_("Wholesale and retail trade"),
    "G": N_("Transport, storage and post"),
    "H": N_("Accommodation and catering"),
    "I": N_("Information transmission, software and IT services"),
    "J": N_("Finance"),
    "K": N_("Real estate"),
    "L": N_("Leasing and business services"),
    "M": N_("Scientific research and technical services"),
    "N": N_("Water conservancy, environment and public facilities"),
    "O": N_("Resident services, repair and other services"),
    "P": N_("Education"),
    "Q": N_("Health and social work"),
    "R": N_("Culture, sports and entertainment"),
    "S": N_("Public administration, social security and social organisations"),
    "T": N_("International organisations"),
})
SIZE = Facet("sizes", N_("Enterprise size"), ("micro", "small", "medium", "large"), {
    "micro": N_("Micro"), "small": N_("Small"), "medium": N_("Medium"), "large": N_("Large"),
})
STAGE = Facet("stages", N_("Stage"), ("new", "growing", "above_scale"), {
    "new": N_("Newly registered"), "growing": N_("Growing"), "above_scale": N_("Above designated size"),
})
PLACE_KIND = Facet("place_kinds", N_("Place type"), (
    PlaceKind.BUSINESS_BUILDING.value, PlaceKind.INDUSTRIAL_PARK.value, PlaceKind.STREET_SHOP.value,
    PlaceKind.RESIDENTIAL_COMPOUND.value,
), {
    PlaceKind.BUSINESS_BUILDING.value: N_("Business building"),
    PlaceKind.INDUSTRIAL_PARK.value: N_("Industrial park"),
    PlaceKind.STREET_SHOP.value: N_("Street shop"),
    PlaceKind.RESIDENTIAL_COMPOUND.value: N_("Residential compound"),
})

FACETS: tuple[Facet, ...] = (INDUSTRY, SIZE, STAGE, PLACE_KIND)
BY_NAME = {f.name: f for f in FACETS}
# The column of each facet's mask on policies and guides: industries -> industry_mask ...
MASK_COLUMNS = {"industries": "industry_mask", "sizes": "size_mask", "stages": "stage_mask", "place_kinds": "place_mask"}


@dataclass(frozen=True)
class Profile:
    """What matching reads of an enterprise: one value per facet (None when not known)."""

    industry: str | None
    size: str | None
    stage: str | None
    place_kind: str | None

    def value(self, facet: Facet) -> str | None:
        return {"industries": self.industry, "sizes": self.size, "stages": self.stage, "place_kinds": self.place_kind}[facet.name]


def masks_of(target: Any) -> dict[str, int]:
    """The four masks of a policy, a guide or their form content, by facet name."""
    return {name: int(getattr(target, column) or 0) for name, column in MASK_COLUMNS.items()}


def set_masks(target: Any, values: Mapping[str, Sequence[str]]) -> None:
    for name, column in MASK_COLUMNS.items():
        setattr(target, column, BY_NAME[name].mask(values.get(name, ())))


def lists_of(target: Any) -> dict[str, list[str]]:
    return {name: BY_NAME[name].values_of(mask) for name, mask in masks_of(target).items()}


def matches(policy: Any, profile: Profile) -> bool:
    """THE rule: an enterprise matches a policy when every facet the policy states includes the
    enterprise's value; a facet the policy leaves empty applies to all (even an unknown value)."""
    for facet in FACETS:
        mask = masks_of(policy)[facet.name]
        if mask and not mask & facet.bit(profile.value(facet)):
            return False
    return True


def overlaps(policy: Any, audience: Any) -> bool:
    """A guide shows a policy when some enterprise of the guide's audience could match it: per facet,
    either side empty (all) or the two share a value."""
    theirs = masks_of(audience)
    return all(not mask or not theirs[name] or mask & theirs[name] for name, mask in masks_of(policy).items())


def sql_matches(policy: Any, industry: Any, size: Any, stage: Any, place_kind: Any) -> ColumnElement[bool]:
    """`matches` in SQL: `policy` is the mapped class (or an alias); the rest are enterprise-side columns."""
    sides = ((INDUSTRY, policy.industry_mask, industry), (SIZE, policy.size_mask, size), (STAGE, policy.stage_mask, stage),
             (PLACE_KIND, policy.place_mask, place_kind))
    return and_(*(or_(mask == 0, mask.op("&")(facet.bit_sql(value)) != 0) for facet, mask, value in sides))


def sql_overlaps(policy: Any, masks: Mapping[str, int]) -> ColumnElement[bool]:
    """`overlaps` in SQL, for one audience's masks (a guide's)."""
    clauses = []
    for name, column in MASK_COLUMNS.items():
        theirs = masks.get(name, 0)
        if theirs:
            mask = getattr(policy, column)
            clauses.append(or_(mask == 0, mask.op("&")(theirs) != 0))
    return and_(literal(True), *clauses)
