"""The livelihood public pages shared between visitors (docs/performance.md, "Shared public pages").

`make run` shares a public page's data and its rendered parts between requests (SHANZHI_PUBLIC_CACHE_SECONDS,
5 s); the rest of the suite turns sharing off. Here the areas' own behaviour tests run again with sharing on,
so what they assert holds for what production serves: a visitor of one kind never gets the part rendered for
another (phones and signer names only for the roles that need them), a change made through the app shows at
once, a replaced card's old link stops working. Then the sharing itself: many visitors, one computation."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.app import create_app
from server.models import Role
from server.services import demo, mediation
from server.services import projects as svc
from server.services.shared_cache import SharedCache
from server.settings import Settings
from tests.helpers import Web
from tests.integration.test_enterprise_pages import sign_in
from tests.integration.test_mediation_pages import _case_form
from tests.integration.test_projects_pages import (  # noqa: F401 - collected here, run with sharing on
    project,
    test_a_comment_is_public_only_after_staff_approve_it,
    test_representatives_sign_from_their_own_session,
    test_the_public_sees_names_and_roles_but_no_phone,
    test_the_public_sees_the_acceptance_by_role_and_time_without_names,
)
from tests.integration.test_property import (  # noqa: F401
    test_a_compound_with_figures_but_nothing_published_has_no_public_page,
    test_staff_edit_the_disclosure_and_a_refused_form_keeps_what_was_typed,
)
from tests.integration.test_recycling_pages import (  # noqa: F401
    test_a_lost_card_is_replaced_keeping_the_points_and_the_old_card_stops_working,
    test_the_operator_records_a_drop_off_and_the_household_sees_only_its_own,
)


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_app(replace(settings, public_cache_seconds=60))  # far longer than any test: only a commit refreshes


def shared(app: Litestar, topic: str) -> SharedCache:
    cache: SharedCache = app.state.public_pages[topic]
    return cache


async def test_a_crowd_on_a_project_page_costs_one_computation_and_each_gets_its_own_form(
    app: Litestar, client: AsyncTestClient, db: AsyncSession, demo_data: demo.DemoReport
) -> None:
    elevator = await project(db)
    path = f"/projects/{elevator.id}"
    pages = await asyncio.gather(*(client.get(path) for _ in range(6)))
    assert {p.status_code for p in pages} == {200}
    assert shared(app, svc.PAGES_TOPIC).computed == 1
    assert elevator.title in pages[0].text and 'name="_csrf_token"' in pages[0].text  # the comment form, per visitor

    client.cookies.clear()  # another phone: its own token
    theirs = await client.get(path)
    token = 'name="_csrf_token" value="'
    assert theirs.text.split(token)[1][:20] != pages[0].text.split(token)[1][:20]
    assert shared(app, svc.PAGES_TOPIC).computed == 1


async def test_a_new_mediation_case_counts_at_once(
    app: Litestar, client: AsyncTestClient, web: Web, db: AsyncSession, people: dict[Role, str]
) -> None:
    def taken_on(text: str) -> int:
        return int(text.split('<span class="stat-value">')[1].split("<")[0])

    before = await client.get("/mediation")
    again = await client.get("/mediation")
    assert taken_on(before.text) == taken_on(again.text) == 0
    assert shared(app, mediation.PUBLIC_TOPIC).computed == 1

    await sign_in(web, people[Role.STAFF])
    assert (await web.post_form("/mediation/cases/new", _case_form())).status_code == 303
    await web.logout()
    assert taken_on((await client.get("/mediation")).text) == 1
    cases = list(await db.scalars(select(mediation.MediationCase.reference)))
    assert len(cases) == 1 and cases[0] not in (await client.get("/mediation")).text  # counts, never a case
