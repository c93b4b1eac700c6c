"""`shanzhi demo --scale N` (benchmark data, server/services/demo_scale.py): the copies of the livelihood
ledgers keep their rules — every household's balance is the sum of its entries, card numbers and links stay
unique, a copied project awaiting acceptance can still be signed, and new mediation cases still get numbers."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import MediationCase, PointsEntry, Project, ProjectSignoff, ProjectStatus, RecyclingHousehold
from server.services import demo, demo_scale, mediation
from server.services.mediation import CaseInput, Party
from server.settings import Settings


async def test_scaled_ledgers_keep_their_rules(db: AsyncSession, settings: Settings, demo_data: demo.DemoReport) -> None:
    households = await db.scalar(select(func.count()).select_from(RecyclingHousehold))
    cases = await db.scalar(select(func.count()).select_from(MediationCase))
    report = await demo_scale.scale_demo(db, 2, settings)
    await db.commit()
    assert report.livelihood_rows > 0

    assert await db.scalar(select(func.count()).select_from(RecyclingHousehold)) == 2 * households
    assert await db.scalar(select(func.count(func.distinct(RecyclingHousehold.card_number)))) == 2 * households
    assert await db.scalar(select(func.count(func.distinct(RecyclingHousehold.token)))) == 2 * households
    sums = dict((await db.execute(select(PointsEntry.household_id, func.sum(PointsEntry.points)).group_by(PointsEntry.household_id))).all())
    balances = dict((await db.execute(select(RecyclingHousehold.id, RecyclingHousehold.balance))).all())
    assert all(balances[h] == sums.get(h, 0) >= 0 for h in balances)

    awaiting = list(await db.scalars(select(Project).where(Project.status == ProjectStatus.AWAITING_ACCEPTANCE)))
    assert len(awaiting) >= 2
    for project in awaiting:
        assert await db.scalar(select(func.count()).select_from(ProjectSignoff).where(
            ProjectSignoff.project_id == project.id, ProjectSignoff.round == project.acceptance_round)) > 0

    assert await db.scalar(select(func.count()).select_from(MediationCase)) == 2 * cases
    new = await mediation.save_case(db, CaseInput(kind="noise", opened_on="2026-03-02", summary="楼上噪音", parties=[Party("慕容复", "")]),
                                    today=date(2026, 11, 27))
    await db.commit()
    assert new.reference not in set(await db.scalars(select(MediationCase.reference).where(MediationCase.id != new.id)))
