"""The place tree service: the parent rules, public codes, reading the tree, and audit stamps."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import LEAF_KINDS, Place, PlaceKind, Role, current_actor
from server.services import accounts, demo, places
from server.services.errors import ServiceError
from server.services.places import CODE_ALPHABET, CODE_LENGTH, PlaceNode


async def subdistrict(db: AsyncSession) -> Place:
    return await places.create_place(db, kind=PlaceKind.SUBDISTRICT, name="解放路街道")


async def test_community_goes_under_a_subdistrict(db: AsyncSession) -> None:
    """The tree accepts each kind under its parent kind."""
    root = await subdistrict(db)
    community = await places.create_place(db, kind=PlaceKind.COMMUNITY, name="东舍坊社区", parent=root)
    grid = await places.create_place(db, kind=PlaceKind.GRID, name="第一网格", parent=community)
    shop = await places.create_place(db, kind=PlaceKind.STREET_SHOP, name="沿街商铺", parent=grid)
    assert (community.parent_id, grid.parent_id, shop.parent_id) == (root.id, community.id, grid.id)


@pytest.mark.parametrize(
    ("kind", "parent_kind"),
    [
        (PlaceKind.GRID, PlaceKind.SUBDISTRICT),
        (PlaceKind.RESIDENTIAL_COMPOUND, PlaceKind.COMMUNITY),
        (PlaceKind.COMMUNITY, None),
        (PlaceKind.SUBDISTRICT, PlaceKind.SUBDISTRICT),
    ],
)
async def test_wrong_parent_is_refused(kind: PlaceKind, parent_kind: PlaceKind | None, db: AsyncSession) -> None:
    """A place cannot skip a level of the tree or hang at the wrong level."""
    root = await subdistrict(db)
    parent: Place | None = root
    if parent_kind is PlaceKind.COMMUNITY:
        parent = await places.create_place(db, kind=PlaceKind.COMMUNITY, name="社区", parent=root)
    elif parent_kind is None:
        parent = None
    with pytest.raises(ServiceError) as error:
        await places.create_place(db, kind=kind, name="错位", parent=parent)
    assert error.value.field == "parent"


async def test_blank_name_is_refused(db: AsyncSession) -> None:
    with pytest.raises(ServiceError) as error:
        await places.create_place(db, kind=PlaceKind.SUBDISTRICT, name="   ")
    assert error.value.field == "name"


async def test_generated_codes_are_easy_to_read(db: AsyncSession) -> None:
    """Generated public codes have the fixed length and avoid look-alike characters."""
    root = await subdistrict(db)
    created = [root] + [
        await places.create_place(db, kind=PlaceKind.COMMUNITY, name=f"社区{i}", parent=root) for i in range(20)
    ]
    codes = [place.code for place in created]
    assert len(set(codes)) == len(codes)
    for code in codes:
        assert len(code) == CODE_LENGTH
        assert set(code) <= set(CODE_ALPHABET)
    assert not set("01OIL") & set(CODE_ALPHABET)


async def test_explicit_code_is_normalised_and_unique(db: AsyncSession) -> None:
    """A chosen code is stored upper-case, can be found in any case, and cannot be reused."""
    root = await places.create_place(db, kind=PlaceKind.SUBDISTRICT, name="解放路街道", code=" jfl234 ")
    assert root.code == "JFL234"
    found = await places.get_place_by_code(db, "jfl234")
    assert found is not None and found.id == root.id
    with pytest.raises(ServiceError) as error:
        await places.create_place(db, kind=PlaceKind.COMMUNITY, name="社区", parent=root, code="JFL234")
    assert error.value.field == "code"
    with pytest.raises(ServiceError):
        await places.create_place(db, kind=PlaceKind.COMMUNITY, name="社区", parent=root, code="jfl234")


async def test_place_tree_nests_the_demo_data(demo_data: demo.DemoReport, db: AsyncSession) -> None:
    """The tree reads back as subdistrict -> communities -> grids -> places, children by name."""
    tree = await places.place_tree(db)
    assert [node.place.name for node in tree] == ["解放路街道"]
    root = tree[0]
    assert root.count(PlaceKind.SUBDISTRICT) == 0  # the node itself is not counted
    assert root.count(PlaceKind.COMMUNITY) == 2
    assert root.count(PlaceKind.GRID) == 4
    assert root.count(PlaceKind.RESIDENTIAL_COMPOUND) == 2
    assert root.count(*LEAF_KINDS) == 5
    communities = {node.place.name: node for node in root.children}
    assert set(communities) == {"东舍坊社区", "文华园社区"}
    grids = {grid.place.name: grid for grid in communities["东舍坊社区"].children}
    assert set(grids) == {"东舍坊第一网格", "东舍坊第二网格"}
    assert sorted(child.place.name for child in grids["东舍坊第一网格"].children) == ["东舍坊小区", "解放路沿街商铺"]
    assert [child.place.name for child in grids["东舍坊第二网格"].children] == ["鲁粮集团办公楼"]
    names = [child.place.name for child in grids["东舍坊第一网格"].children]
    assert names == sorted(names)


async def test_place_tree_of_a_subtree(demo_data: demo.DemoReport, db: AsyncSession) -> None:
    """A user's area is the subtree under their place, and nothing beside it."""
    community = next(
        node for node in (await places.place_tree(db))[0].children if node.place.name == "文华园社区"
    )
    subtree = await places.place_tree(db, community.place.id)
    assert len(subtree) == 1
    assert subtree[0].place.name == "文华园社区"
    assert subtree[0].count(PlaceKind.GRID) == 2
    assert subtree[0].count(PlaceKind.COMMUNITY) == 0
    assert subtree[0].count(PlaceKind.BUSINESS_BUILDING) == 0
    assert subtree[0].count(PlaceKind.RESIDENTIAL_COMPOUND, PlaceKind.INDUSTRIAL_PARK) == 2
    all_names = set()
    stack: list[PlaceNode] = list(subtree)
    while stack:
        node = stack.pop()
        all_names.add(node.place.name)
        stack.extend(node.children)
    assert all_names == {"文华园社区", "文华园第一网格", "文华园第二网格", "文华园小区", "山东物业创新产业园"}


async def test_rows_record_who_created_and_changed_them(db: AsyncSession) -> None:
    """With an actor set, new rows carry it as creator and updater; a later change updates only the updater."""
    creator = await accounts.create_user(
        db, username="creator", password="long-password", role=Role.ADMIN, display_name="创建人"
    )
    editor = await accounts.create_user(
        db, username="editor", password="long-password", role=Role.STAFF, display_name="修改人"
    )
    token = current_actor.set(creator.id)
    try:
        root = await subdistrict(db)
    finally:
        current_actor.reset(token)
    assert (root.created_by_id, root.updated_by_id) == (creator.id, creator.id)
    token = current_actor.set(editor.id)
    try:
        root.name = "解放路街道办事处"
        await db.flush()
    finally:
        current_actor.reset(token)
    await db.refresh(root)
    assert (root.created_by_id, root.updated_by_id) == (creator.id, editor.id)


async def test_rows_without_an_actor_are_left_unstamped(db: AsyncSession) -> None:
    """Scripts without a signed-in user leave the audit columns empty."""
    assert current_actor.get() is None
    root = await subdistrict(db)
    await db.refresh(root)
    assert root.created_by_id is None
    assert root.updated_by_id is None
