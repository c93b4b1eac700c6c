"""The matching rule of docs/policies.md as a table: enterprises × policies, in Python and in SQL (the
same rule must give the same answer on both), and which policies a guide's audience shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, select

from server.services import policy_facets as facets
from server.services.policy_facets import Profile


@dataclass
class Stated:
    """A policy (or a guide) as its facets: lists of values, empty = all."""

    industries: list[str] = field(default_factory=list)
    sizes: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    place_kinds: list[str] = field(default_factory=list)
    industry_mask: int = 0
    size_mask: int = 0
    stage_mask: int = 0
    place_mask: int = 0

    def __post_init__(self) -> None:
        facets.set_masks(self, {f.name: getattr(self, f.name) for f in facets.FACETS})


POLICIES = {
    "for everyone": Stated(),
    "IT and research, micro or small": Stated(industries=["I", "M"], sizes=["micro", "small"]),
    "street shops": Stated(place_kinds=["street_shop"]),
    "newly registered": Stated(stages=["new"]),
    "above-scale manufacturing in parks": Stated(industries=["C"], stages=["above_scale"], place_kinds=["industrial_park"]),
    "property services in parks": Stated(industries=["K"], place_kinds=["industrial_park"]),
}

ENTERPRISES = {
    "small software firm in a building": Profile("I", "small", "growing", "business_building"),
    "medium software firm in a building": Profile("I", "medium", "growing", "business_building"),
    "new noodle shop on the street": Profile("H", "micro", "new", "street_shop"),
    "above-scale factory in the park": Profile("C", "large", "above_scale", "industrial_park"),
    "property company in the park": Profile("K", "medium", "growing", "industrial_park"),
    "unknown profile": Profile(None, None, None, None),
}

# Which policies each enterprise matches (everything else: no match).
EXPECTED = {
    "small software firm in a building": {"for everyone", "IT and research, micro or small"},
    "medium software firm in a building": {"for everyone"},
    "new noodle shop on the street": {"for everyone", "street shops", "newly registered"},
    "above-scale factory in the park": {"for everyone", "above-scale manufacturing in parks"},
    "property company in the park": {"for everyone", "property services in parks"},
    "unknown profile": {"for everyone"},
}


@pytest.mark.parametrize("enterprise", list(ENTERPRISES))
def test_the_matching_rule_as_a_table(enterprise: str) -> None:
    profile = ENTERPRISES[enterprise]
    assert {name for name, policy in POLICIES.items() if facets.matches(policy, profile)} == EXPECTED[enterprise]


def test_sql_gives_the_same_answers_as_python() -> None:
    """The same table evaluated by the database (the reach page and the matched lists use this)."""
    engine = create_engine("sqlite://")
    meta = MetaData()
    policy = Table("p", meta, Column("name", String), Column("industry_mask", Integer), Column("size_mask", Integer),
                   Column("stage_mask", Integer), Column("place_mask", Integer))
    enterprise = Table("e", meta, Column("name", String), Column("industry", String), Column("size", String),
                       Column("stage", String), Column("place_kind", String))
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(policy), [{"name": n, **{c: getattr(p, c) for c in facets.MASK_COLUMNS.values()}} for n, p in POLICIES.items()])
        conn.execute(insert(enterprise), [{"name": n, "industry": e.industry, "size": e.size, "stage": e.stage, "place_kind": e.place_kind}
                                          for n, e in ENTERPRISES.items()])
        rows = conn.execute(
            select(enterprise.c.name, policy.c.name).select_from(enterprise.join(policy, facets.sql_matches(
                policy.c, enterprise.c.industry, enterprise.c.size, enterprise.c.stage, enterprise.c.place_kind)))
        ).all()
    found: dict[str, set[str]] = {name: set() for name in ENTERPRISES}
    for e, p in rows:
        found[e].add(p)
    assert found == EXPECTED


GUIDES: dict[str, tuple[Stated, set[str]]] = {
    # A guide shows a policy when some enterprise of its audience could match it.
    # Any industry can be a street shop, so the IT policy (no place type stated) is listed; the park ones are not.
    "street shops": (Stated(place_kinds=["street_shop"]),
                     {"for everyone", "IT and research, micro or small", "street shops", "newly registered"}),
    "restaurants on the street": (Stated(industries=["H"], place_kinds=["street_shop"]), {"for everyone", "street shops", "newly registered"}),
    "IT firms in buildings": (Stated(industries=["I"], place_kinds=["business_building"]),
                              {"for everyone", "IT and research, micro or small", "newly registered"}),
    "parks": (Stated(place_kinds=["industrial_park"]),
              {"for everyone", "IT and research, micro or small", "newly registered", "above-scale manufacturing in parks",
               "property services in parks"}),
    "newly registered, anywhere": (Stated(stages=["new"]),
                                   {"for everyone", "IT and research, micro or small", "street shops", "newly registered",
                                    "property services in parks"}),
}


@pytest.mark.parametrize("guide", list(GUIDES))
def test_a_guide_shows_the_policies_its_audience_could_match(guide: str) -> None:
    audience, expected = GUIDES[guide]
    assert {name for name, policy in POLICIES.items() if facets.overlaps(policy, audience)} == expected


def test_masks_round_trip_and_ignore_unknown_values() -> None:
    stated: Any = Stated(industries=["M", "I"], sizes=["large"])
    assert facets.lists_of(stated) == {"industries": ["I", "M"], "sizes": ["large"], "stages": [], "place_kinds": []}
    assert facets.INDUSTRY.unknown(["I", "Z", "i"]) == ["Z", "i"]
