"""Arrange appeal cases for the staff-side HTTP tests: committed through the real services, read back fresh."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db import make_alchemy_config, session_scope
from server.models import Appeal, AppealChannel, AppealEvent, Notification, ReturnVisit, Role, SubmitterKind, Summons
from server.services import accounts, appeals
from server.services.appeal_workflow import Action
from server.services.appeals import ActionInput, Actor, AppealInput
from server.services.deadlines import TimeLimits
from server.settings import Settings
from tests.conftest import TEST_PASSWORD
from tests.helpers import Web

T = TypeVar("T")
NAME = "张女士"
PHONE = "13800000001"
LOCATION = "3号楼2单元501"


async def in_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in its own committed transaction, as another request would."""
    config = make_alchemy_config(settings)
    try:
        async with session_scope(config) as session:
            return await work(session)
    finally:
        await config.get_engine().dispose()


@dataclass
class Staffing:
    """Departments and their users (区城管: dept-cgj, 区住建: dept-zjj), on top of the `people` fixture."""

    settings: Settings
    departments: dict[str, Any]  # code -> id
    names: dict[str, str]  # code -> department name

    @property
    def limits(self) -> TimeLimits:
        return TimeLimits.from_settings(self.settings)

    async def submit(self, *, at: datetime | None = None, **changes: Any) -> str:
        """A new resident case (with name, phone and exact location); returns its reference."""
        data = AppealInput(
            channel=AppealChannel.SUGGESTION_BOX, submitter_kind=SubmitterKind.RESIDENT, category="facilities",
            description="楼道灯坏了一个多月，晚上上下楼很不安全", submitter_name=NAME, submitter_phone=PHONE,
            location_detail=LOCATION,
        )
        for key, value in changes.items():
            setattr(data, key, value)

        async def work(session: AsyncSession) -> str:
            appeal = await appeals.submit(
                session, data, actor=Actor.submitter(), limits=self.limits, uploads_dir=self.settings.uploads_dir,
                clock=lambda: at or datetime.now(UTC),
            )
            return appeal.reference

        return await in_session(self.settings, work)

    async def submit_many(self, count: int) -> list[str]:
        async def work(session: AsyncSession) -> list[str]:
            data = AppealInput(
                channel=AppealChannel.HOTLINE, submitter_kind=SubmitterKind.RESIDENT, category="environment",
                description="小区门口垃圾没人清运",
            )
            return [
                (await appeals.submit(session, data, actor=Actor.submitter(), limits=self.limits, uploads_dir=self.settings.uploads_dir)).reference
                for _ in range(count)
            ]

        return await in_session(self.settings, work)

    async def act(self, reference: str, action: Action, username: str, payload: ActionInput | None = None, *, at: datetime | None = None) -> None:
        async def work(session: AsyncSession) -> None:
            user = await accounts.get_user_by_username(session, username)
            appeal = await appeals.get_by_reference(session, reference)
            assert user is not None and appeal is not None
            await appeals.act(
                session, appeal, action, Actor.for_user(user), payload or ActionInput(), limits=self.limits,
                uploads_dir=self.settings.uploads_dir, clock=lambda: at or datetime.now(UTC),
            )

        await in_session(self.settings, work)

    async def transferred(self, code: str = "cgj", **submit: Any) -> str:
        reference = await self.submit(**submit)
        await self.act(reference, Action.TRANSFER, "staff", ActionInput(department_id=self.departments[code]))
        return reference

    async def in_progress(self, code: str = "cgj") -> str:
        reference = await self.transferred(code)
        await self.act(reference, Action.ACCEPT, f"dept-{code}")
        return reference

    async def resolved(self, code: str = "cgj") -> str:
        reference = await self.in_progress(code)
        await self.act(reference, Action.RESOLVE, f"dept-{code}", ActionInput(note="已更换楼道灯"))
        return reference

    async def state(self, reference: str) -> dict[str, Any]:
        """What a refused action must leave unchanged, read back from the database."""

        async def work(session: AsyncSession) -> dict[str, Any]:
            appeal = await appeals.get_by_reference(session, reference)
            assert appeal is not None

            async def count(model: Any) -> int:
                return await session.scalar(select(func.count()).select_from(model).where(model.appeal_id == appeal.id)) or 0

            return {
                "status": appeal.status,
                "version": appeal.version,
                "department_id": appeal.department_id,
                "is_complex": appeal.is_complex,
                "events": await count(AppealEvent),
                "summons": await count(Summons),
                "reported": await session.scalar(
                    select(func.count()).select_from(Summons).where(Summons.appeal_id == appeal.id, Summons.reported_at.is_not(None))
                ),
                "return_visits": await count(ReturnVisit),
                "notifications": await count(Notification),
            }

        return await in_session(self.settings, work)

    async def case(self, reference: str) -> Appeal:
        async def work(session: AsyncSession) -> Appeal:
            appeal = await appeals.get_by_reference(session, reference)
            assert appeal is not None
            return appeal

        return await in_session(self.settings, work)

    async def events(self, reference: str) -> list[AppealEvent]:
        async def work(session: AsyncSession) -> list[AppealEvent]:
            appeal = await appeals.get_by_reference(session, reference)
            assert appeal is not None
            return await appeals.timeline(session, appeal.id, public_only=False)

        return await in_session(self.settings, work)


async def make_staffing(settings: Settings) -> Staffing:
    async def work(session: AsyncSession) -> Staffing:
        departments = await appeals.seed_departments(session)
        for code in ("cgj", "zjj"):
            await accounts.create_user(
                session, username=f"dept-{code}", password=TEST_PASSWORD, role=Role.DEPARTMENT,
                display_name=f"{departments[code].name}科员", department_id=departments[code].id,
            )
        return Staffing(settings, {c: d.id for c, d in departments.items()}, {c: d.name for c, d in departments.items()})

    return await in_session(settings, work)


async def sign_in(client: AsyncTestClient, web: Web, username: str) -> None:
    """Sign in and switch the UI to English, so tests read the English msgids whatever the catalog holds."""
    await client.get("/lang/en")
    response = await web.login(username, TEST_PASSWORD)
    assert response.status_code == 303, response.text


def hours_ago(hours: float) -> datetime:
    return datetime.now(UTC) - timedelta(hours=hours)
