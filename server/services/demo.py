"""The Jiefanglu demo data set (X7): the places named in the seed and one person per role. Idempotent."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import Appeal, Place, PlaceKind, Role, User
from server.services import accounts, appeals, places
from server.services.demo_appeals import load_demo_appeals
from server.services.demo_morning_signal import has_morning_signal_demo, load_demo_morning_signal
from server.services.demo_policies import has_policy_demo, load_demo_policies
from server.services.demo_canteen import load_demo_canteen
from server.services.demo_projects import load_demo_projects
from server.services.demo_recycling import load_demo_recycling
from server.settings import Settings, get_settings

DEMO_PASSWORD = "jiefanglu"

# (kind, name, parent name, address). Communities and grid names are ours; the compounds, the
# park and the office building are the ones the seed document names.
DEMO_PLACES: list[tuple[PlaceKind, str, str | None, str | None]] = [
    (PlaceKind.SUBDISTRICT, "解放路街道", None, "济南市历下区解放路"),
    (PlaceKind.COMMUNITY, "东舍坊社区", "解放路街道", None),
    (PlaceKind.COMMUNITY, "文华园社区", "解放路街道", None),
    (PlaceKind.GRID, "东舍坊第一网格", "东舍坊社区", None),
    (PlaceKind.GRID, "东舍坊第二网格", "东舍坊社区", None),
    (PlaceKind.GRID, "文华园第一网格", "文华园社区", None),
    (PlaceKind.GRID, "文华园第二网格", "文华园社区", None),
    (PlaceKind.RESIDENTIAL_COMPOUND, "东舍坊小区", "东舍坊第一网格", None),
    (PlaceKind.STREET_SHOP, "解放路沿街商铺", "东舍坊第一网格", None),
    (PlaceKind.BUSINESS_BUILDING, "鲁粮集团办公楼", "东舍坊第二网格", None),
    (PlaceKind.RESIDENTIAL_COMPOUND, "文华园小区", "文华园第一网格", None),
    (PlaceKind.INDUSTRIAL_PARK, "山东物业创新产业园", "文华园第二网格", None),
]


@dataclass(frozen=True)
class DemoUser:
    username: str
    display_name: str
    role: Role
    place: str | None
    department: str | None = None  # department code, for department users


DEMO_USERS: list[DemoUser] = [
    DemoUser("admin", "陈管理", Role.ADMIN, "解放路街道"),
    DemoUser("staff", "李主任", Role.STAFF, "解放路街道"),
    DemoUser("grid", "王网格", Role.GRID_WORKER, "东舍坊第一网格"),
    DemoUser("dept", "赵科长（区城管）", Role.DEPARTMENT, None, department="cgj"),
    DemoUser("supervisor", "刘监督", Role.SUPERVISOR, "解放路街道"),
    DemoUser("buildinghead", "孙楼长", Role.BUILDING_HEAD, "东舍坊小区"),
    DemoUser("residentrep", "周代表", Role.RESIDENT_REP, "东舍坊小区"),
    DemoUser("station", "吴站长", Role.STATION_OPERATOR, "文华园小区"),
    DemoUser("canteen", "郑经理", Role.CANTEEN_MANAGER, "东舍坊社区"),
    DemoUser("volunteer", "何志愿", Role.VOLUNTEER, "文华园社区"),
]


@dataclass(frozen=True)
class DemoReport:
    places_created: int
    users_created: int
    users: list[DemoUser]
    appeals_created: int = 0


async def load_demo(session: AsyncSession, settings: Settings | None = None) -> DemoReport:
    """Create whatever of the demo set is missing; running it twice changes nothing."""
    by_name = {p.name: p for p in await session.scalars(select(Place))}
    places_created = 0
    for kind, name, parent_name, address in DEMO_PLACES:
        if name in by_name:
            continue
        parent = by_name[parent_name] if parent_name else None
        by_name[name] = await places.create_place(session, kind=kind, name=name, parent=parent, address=address)
        places_created += 1

    departments = await appeals.seed_departments(session)
    users_created = 0
    for demo in DEMO_USERS:
        if await accounts.get_user_by_username(session, demo.username) is not None:
            continue
        await accounts.create_user(
            session,
            username=demo.username,
            password=DEMO_PASSWORD,
            role=demo.role,
            display_name=demo.display_name,
            place_id=by_name[demo.place].id if demo.place else None,
            department_id=departments[demo.department].id if demo.department else None,
        )
        users_created += 1
    appeals_created = 0
    if await session.scalar(select(Appeal.id).limit(1)) is None:  # a year of appeals, once
        appeals_created = await load_demo_appeals(session, settings or get_settings(), end=appeals.utc_now())
    if not await has_policy_demo(session):  # the policy service's demo, once (after the appeals: events link them)
        await load_demo_policies(session, settings or get_settings(), end=appeals.utc_now())
    if not await has_morning_signal_demo(session):  # 晨曦信号's month, once (needs the demo places and users)
        await load_demo_morning_signal(session, settings or get_settings(), end=appeals.utc_now())
    # The livelihood areas (issue 15); each loader is idempotent on its own.
    await load_demo_projects(session, settings or get_settings(), end=appeals.utc_now())
    await load_demo_recycling(session, settings or get_settings(), end=appeals.utc_now())
    await load_demo_canteen(session, settings or get_settings(), end=appeals.utc_now())
    return DemoReport(places_created, users_created, DEMO_USERS, appeals_created)


async def database_is_empty(session: AsyncSession) -> bool:
    """No places and no accounts: a fresh install, where `make run` may load the demo."""
    has_place = await session.scalar(select(Place.id).limit(1)) is not None
    has_user = await session.scalar(select(User.id).limit(1)) is not None
    return not (has_place or has_user)
