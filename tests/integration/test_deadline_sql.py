"""The deadline rule is written once in Python (`TimeLimits.urgency`) and once as SQL (issue 11: counts,
the ledger's deadline filter and the due-soon job run in the database). This table test holds them
equal: every case below is classified both ways, at moments on both sides of each boundary."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from server.db import make_alchemy_config, session_scope
from server.models import Appeal, Role
from server.services.appeal_ledger import Viewer, deadline_counts, deadline_state, open_urgency_clause
from server.services.appeal_workflow import OPEN
from server.services.deadlines import Urgency
from server.settings import Settings
from tests.integration.appeal_world import make_world

# (hours since received, response limit in hours, resolution limit in hours, responded after hours or None)
CASES = [
    (1, 12, 168, None),  # on track
    (9.5, 12, 168, None),  # response: 2.5 h of 12 left -> due soon (ratio 0.25: < 3 h)
    (8.9, 12, 168, None),  # 3.1 h left -> on track
    (12.5, 12, 168, None),  # response missed -> overdue
    (20, 12, 168, 2),  # responded; resolution on track
    (130, 12, 168, 2),  # resolution: 38 h of 168 left -> due soon (< 42 h)
    (125, 12, 168, 2),  # 43 h left -> on track
    (170, 12, 168, 2),  # resolution overdue
    (170, 12, 168, None),  # never responded, both limits passed -> overdue (response limit shown)
    (11.99, 12, 12, None),  # a minute before the limit
]


async def test_sql_and_python_agree_on_every_case(settings: Settings) -> None:
    config = make_alchemy_config(settings)
    try:
        async with session_scope(config) as session:
            world = await make_world(session, settings)
            now = world.clock.now + timedelta(days=30)
            limits = world.limits
            staff_id = world.users[Role.STAFF].id
            for age, response_h, resolve_h, responded in CASES:
                appeal = await world.submit()
                received = now - timedelta(hours=age)
                await session.execute(
                    update(Appeal)
                    .where(Appeal.id == appeal.id)
                    .values(
                        received_at=received,
                        response_due_at=received + timedelta(hours=response_h),
                        resolve_due_at=received + timedelta(hours=resolve_h),
                        first_response_at=None if responded is None else received + timedelta(hours=responded),
                    )
                )
        async with config.get_session() as session:
            cases = list(await session.scalars(select(Appeal).where(Appeal.status.in_(OPEN))))
            assert len(cases) == len(CASES)
            python = {u: {a.id for a in cases if (s := deadline_state(a, limits, now)) and s.urgency is u} for u in Urgency}
            for wanted in (Urgency.DUE_SOON, Urgency.OVERDUE):
                sql = set(await session.scalars(select(Appeal.id).where(Appeal.status.in_(OPEN), open_urgency_clause(wanted, limits, now))))
                assert sql == python[wanted], wanted
            # The table really covers the three running states.
            assert [len(python[u]) for u in (Urgency.ON_TRACK, Urgency.DUE_SOON, Urgency.OVERDUE)] == [4, 3, 3]
            viewer = Viewer(Role.STAFF, world.users[Role.STAFF].id)
            counts = await deadline_counts(session, viewer, limits, now)
            assert (counts.open, counts.due_soon, counts.overdue) == (len(CASES), 3, 3)
    finally:
        await config.get_engine().dispose()
