"""`GET /api/stats/overview` (docs/policies.md, "Overview figures"): counts computed from records, at the
seed's scale on the demo data, and moving when a record changes."""

from __future__ import annotations

from datetime import UTC, datetime

from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import CommunityEvent, Enterprise, PolicyGuide, PolicyPush, PushOutcome, Visit
from server.services import demo, policies
from server.services.policies import PolicyContent

KEYS = {"policies_published", "policy_guides", "enterprises", "visits", "policy_pushes", "policies_granted", "events_held"}


async def test_the_overview_counts_the_demo_at_the_seeds_scale(client: AsyncTestClient, db: AsyncSession, demo_data: demo.DemoReport) -> None:
    response = await client.get("/api/stats/overview")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    figures = response.json()
    assert KEYS <= set(figures)
    # The seed: 96 policies published since 2025, 32 guides, 365 visits and 213 pushes in three years, 80+ 政策直通车.
    assert figures["policies_published"] == 96
    assert figures["policy_guides"] == 32 == await db.scalar(select(func.count()).select_from(PolicyGuide))
    assert figures["enterprises"] == await db.scalar(select(func.count()).select_from(Enterprise)) >= 200
    assert figures["visits"] == await db.scalar(select(func.count()).select_from(Visit)) >= 365
    assert figures["policy_pushes"] == await db.scalar(select(func.count()).select_from(PolicyPush)) >= 213
    granted = await db.scalar(select(func.count()).select_from(PolicyPush).where(PolicyPush.outcome == PushOutcome.GRANTED))
    assert figures["policies_granted"] == granted and figures["granted_amount_yuan"] >= 310_000
    held = await db.scalar(select(func.count()).select_from(CommunityEvent).where(CommunityEvent.starts_at < datetime.now(UTC)))
    assert figures["events_held"] == held >= 80 + 15 + 20


async def test_publishing_a_policy_moves_the_overview(client: AsyncTestClient, db: AsyncSession, demo_data: demo.DemoReport) -> None:
    before = (await client.get("/api/stats/overview")).json()["policies_published"]
    draft = await policies.create_draft(db, PolicyContent(
        title="新政策", category="tax", conditions=["在辖区纳税"], steps=["申报"], long_term=True, department="税务所", phone="12366"))
    await policies.publish(db, draft, actor_id=None, now=datetime.now(UTC))
    await db.commit()
    assert (await client.get("/api/stats/overview")).json()["policies_published"] == before + 1


async def test_the_public_home_gives_one_aggregate_line_of_the_morning_signal(client: AsyncTestClient, db: AsyncSession,
                                                                                  demo_data: demo.DemoReport) -> None:
    """Counts only: today N of M elders signalled; never who (docs/morning-signal.md, "Public")."""
    from server.models import Elder

    figures = (await client.get("/api/stats/overview")).json()
    assert figures["elders_enrolled"] == await db.scalar(select(func.count()).select_from(Elder).where(Elder.ended_at.is_(None))) >= 40
    assert 0 <= figures["elders_signalled_today"] <= figures["elders_enrolled"]
    home = await client.get("/")
    line = home.text.split('id="signal-line">', 1)[1].split("</p>", 1)[0]
    assert f"今日 {figures['elders_signalled_today']}/{figures['elders_enrolled']} 位老人已报平安" in line
    names = list(await db.scalars(select(Elder.name)))
    assert not any(name in home.text for name in names)
    assert 'href="/policies"' in home.text and 'href="/events"' in home.text
