"""Mediation (L6, 行走的矛盾调解室): staff register cases and mediators record sessions and outcomes; a
volunteer sees only the cases they mediate; the public page and its CSV show counts by type and outcome,
never a party, a phone, a summary or a note; the demo holds the seed's 18 cases."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import MediationCase, MediationSession, Role, User
from server.services import demo
from server.settings import Settings
from tests.helpers import Web
from tests.integration.test_enterprise_pages import sign_in

PARTY, PHONE, SUMMARY, NOTES = "宇文拓海", "13612340987", "楼上空调外机噪音，邻居多次协商未果", "双方同意加装减震垫"


def _case_form(**changes: str) -> dict[str, str]:
    return {"kind": "noise", "opened_on": datetime.now(UTC).date().isoformat(), "place_id": "", "summary": SUMMARY, "mediator_id": "",
            "party_name": PARTY, "party_phone": PHONE, **changes}


async def test_staff_register_a_case_and_the_mediator_concludes_it(
    client: AsyncTestClient, web: Web, english: None, db: AsyncSession, settings: Settings, people: dict[Role, str]
) -> None:
    volunteer = await db.scalar(select(User.id).where(User.role == Role.VOLUNTEER))
    await sign_in(web, people[Role.STAFF])
    refused = await web.post_form("/mediation/cases/new", _case_form(kind="feud", summary="", party_phone="call me"))
    assert refused.status_code == 400
    for message in ("Please choose one of the options.", "Please describe the dispute.", "This phone number does not look right."):
        assert message in refused.text
    assert f'value="{PARTY}"' in refused.text and 'value="call me"' in refused.text
    assert await db.scalar(select(func.count()).select_from(MediationCase)) == 0

    saved = await web.post_form("/mediation/cases/new", _case_form(mediator_id=str(volunteer)))
    assert saved.status_code == 303
    case = await db.scalar(select(MediationCase))
    assert case is not None and case.parties == [{"name": PARTY, "phone": PHONE}] and case.status == "open"
    assert case.reference == f"TJ{case.opened_on.year}-001"
    page = await client.get(saved.headers["location"])
    assert PARTY in page.text and PHONE in page.text and "Registered" in page.text
    await web.logout()

    # The volunteer mediates it: a session, then the outcome.
    await sign_in(web, people[Role.VOLUNTEER])
    mine = await client.get("/mediation/cases")
    assert case.reference in mine.text
    at = f"/mediation/cases/{case.id}"
    no_notes = await web.post_form(f"{at}/sessions", {"held_on": "2000-01-01", "venue": "", "notes": ""}, token_from=at)
    assert no_notes.status_code == 400 and "Please write what was discussed or agreed." in no_notes.text
    assert (await web.post_form(f"{at}/sessions", {"held_on": case.opened_on.isoformat(), "venue": "调解室", "notes": NOTES},
                                token_from=at)).status_code == 303
    concluded = await web.post_form(f"{at}/outcome", {"outcome": "success", "outcome_note": "签订协议", "closed_on": case.opened_on.isoformat()},
                                    token_from=at)
    assert concluded.status_code == 303
    await db.refresh(case)
    assert (case.status, case.outcome, case.closed_on) == ("closed", "success", case.opened_on)
    assert (await web.client.get(f"{at}/edit")).status_code == 403  # editing the case is staff work


async def test_a_volunteer_sees_only_the_cases_they_mediate(
    client: AsyncTestClient, web: Web, db: AsyncSession, people: dict[Role, str]
) -> None:
    volunteer = await db.scalar(select(User.id).where(User.role == Role.VOLUNTEER))
    staff = await db.scalar(select(User.id).where(User.role == Role.STAFF))
    await sign_in(web, people[Role.STAFF])
    await web.post_form("/mediation/cases/new", _case_form(mediator_id=str(volunteer)))
    await web.post_form("/mediation/cases/new", _case_form(mediator_id=str(staff), party_name="慕容不见", party_phone=""))
    await web.logout()
    theirs = await db.scalar(select(MediationCase).where(MediationCase.mediator_id == staff))
    assert theirs is not None
    await sign_in(web, people[Role.VOLUNTEER])
    listing = await client.get("/mediation/cases")
    assert PARTY not in listing.text and theirs.reference not in listing.text and "TJ" in listing.text
    assert (await client.get(f"/mediation/cases/{theirs.id}")).status_code == 404
    at = f"/mediation/cases/{theirs.id}"
    assert (await web.post_form(f"{at}/sessions", {"held_on": theirs.opened_on.isoformat(), "notes": "x"})).status_code == 404
    assert await db.scalar(select(func.count()).select_from(MediationSession)) == 0


async def test_the_public_page_shows_counts_only(
    client: AsyncTestClient, web: Web, db: AsyncSession, settings: Settings, demo_data: demo.DemoReport
) -> None:
    """The demo's 18 cases (the seed: "今年已成功化解邻里矛盾、物业纠纷等问题18件"), counted by type and outcome;
    no name, phone, summary, note or reference of any case reaches an anonymous visitor."""
    cases = list(await db.scalars(select(MediationCase)))
    assert len(cases) == 18 and all(c.outcome in ("success", "partial") for c in cases)
    figures = (await client.get("/api/stats/overview")).json()
    assert figures["mediation_cases"] == 18 and figures["mediation_cases_resolved"] == 18

    page = await client.get("/mediation")
    export = await client.get("/mediation/export.csv")
    assert page.status_code == 200 and export.status_code == 200
    notes = list(await db.scalars(select(MediationSession.notes)))
    secrets = [c.reference for c in cases] + [c.summary for c in cases] + [c.outcome_note for c in cases] + notes
    secrets += [p[key] for c in cases for p in c.parties for key in ("name", "phone")]
    text = page.text + export.content.decode("utf-8-sig")
    assert [s for s in secrets if s and s in text] == []
    year = datetime.now(UTC).astimezone(settings.tz).year
    this_year = [c for c in cases if c.opened_on.year == year]
    assert f'<span class="stat-value">{len(this_year)}</span>' in page.text
    assert "邻里纠纷" in page.text and "调解成功" in page.text

    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert rows[0] == ["月份", "类型", "已受理", "调解成功", "部分达成", "未达成", "转办", "调解中"]
    assert sum(int(r[2]) for r in rows[1:]) == 18
    assert sum(int(r[3]) + int(r[4]) for r in rows[1:]) == 18
