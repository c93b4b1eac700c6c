"""The enterprise registry pages (P3, P4): the credit-code check and duplicates on the form, CSV import and
export from the admin page, staff pushes (matched, and off-match with a reason), outcomes on the reach page,
and what supervisors may see and do."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from httpx import Response
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import Enterprise, PlaceKind, PolicyPush, PushOutcome, Role, User
from server.services import enterprises, places, policies
from server.services.credit_code import make_code, organisation_code
from server.settings import Settings
from tests.conftest import TEST_PASSWORD
from tests.helpers import Web
from tests.integration.staff_cases import in_session

BOM = "\ufeff"
HEADER = ",".join(enterprises.COLUMNS[:8])  # credit_code ... is_key


def code(n: int) -> str:
    """A valid unified social credit code (an enterprise registered in Lixia district)."""
    return make_code("9", "1", "370102", organisation_code(f"{n:08d}"))


def mistyped(valid: str) -> str:
    """The same code with a wrong check character."""
    return valid[:17] + ("1" if valid[17] != "1" else "2")


@dataclass
class Registry:
    """A building and a park, a software policy and a manufacturing policy (both published), grid worker."""

    building: UUID
    building_code: str
    park: UUID
    park_code: str
    software_policy: UUID
    factory_policy: UUID
    worker: UUID


POLICY_TEXT = dict(summary="", issuer="济南市历下区", conditions=["在本街道注册"], steps=["线上申报"], long_term=True,
                   department="经济发展办公室", phone="0531-86000000")


async def make_registry(settings: Settings) -> Registry:
    async def work(session: AsyncSession) -> Registry:
        root = await places.create_place(session, kind=PlaceKind.SUBDISTRICT, name="测试街道", parent=None)
        community = await places.create_place(session, kind=PlaceKind.COMMUNITY, name="测试社区", parent=root)
        grid = await places.create_place(session, kind=PlaceKind.GRID, name="测试网格", parent=community)
        building = await places.create_place(session, kind=PlaceKind.BUSINESS_BUILDING, name="测试大厦", parent=grid)
        park = await places.create_place(session, kind=PlaceKind.INDUSTRIAL_PARK, name="测试产业园", parent=grid)
        made = []
        for title, industries in (("软件企业研发补助", ["I"]), ("制造业技术改造奖励", ["C"])):
            draft = await policies.create_draft(session, policies.PolicyContent(
                title=title, category="industry_support", industries=industries, **POLICY_TEXT))
            await policies.publish(session, draft, actor_id=None, now=datetime.now(UTC))
            made.append(draft.id)
        worker = await session.scalar(select(User.id).where(User.username == "grid-worker"))
        return Registry(building.id, building.code, park.id, park.code, made[0], made[1], worker)

    return await in_session(settings, work)


async def add_enterprise(settings: Settings, n: int, name: str, place: UUID | None, **changes: Any) -> UUID:
    data = enterprises.EnterpriseInput(credit_code=code(n), name=name, industry="I", size="small", stage="growing",
                                       place_id=place, contact_name="刘经理", contact_phone="13912345678")
    for key, value in changes.items():
        setattr(data, key, value)

    async def work(session: AsyncSession) -> UUID:
        return (await enterprises.save(session, data)).id

    return await in_session(settings, work)


async def count(settings: Settings, model: Any) -> int:
    async def work(session: AsyncSession) -> int:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)

    return await in_session(settings, work)


async def sign_in(web: Web, username: str) -> None:
    response = await web.login(username, TEST_PASSWORD)
    assert response.status_code == 303, response.text


def form(**values: str) -> dict[str, str]:
    base = {"credit_code": "", "name": "", "industry": "I", "size": "small", "stage": "new", "registered_on": "2024-03-01",
            "place_id": "", "contact_name": "", "contact_phone": "", "grid_worker_id": "", "liaison_leader": "", "liaison_cppcc": "",
            "liaison_section_head": "", "liaison_community": ""}
    return {**base, **values}


async def upload(web: Web, text: str, *, dry_run: bool = False) -> Response:
    token = await web.csrf("/enterprises/import")
    data = {"_csrf_token": token, **({"dry_run": "1"} if dry_run else {})}
    return await web.client.post("/enterprises/import", data=data, files={"file": ("enterprises.csv", text.encode("utf-8"), "text/csv")})


@pytest.fixture
async def registry(settings: Settings, people: dict[Role, str]) -> Registry:
    return await make_registry(settings)


# --- The form: the credit-code check, duplicates --------------------------------------------------------------


async def test_a_mistyped_credit_code_is_refused_with_the_rule_and_the_form_keeps_what_was_typed(
    web: Web, english: None, registry: Registry, settings: Settings,
) -> None:
    await sign_in(web, "staff")
    typed = form(credit_code=mistyped(code(1)), name="济南泉城软件有限公司", contact_name="刘经理", contact_phone="13912345678",
                 place_id=str(registry.building), liaison_cppcc="王委员")
    page = await web.post_form("/enterprises/new", typed)
    assert page.status_code == 400
    assert f"The last character should be “{code(1)[17]}”" in page.text
    for value in ("济南泉城软件有限公司", "刘经理", "13912345678", "王委员", mistyped(code(1))):
        assert f'value="{value}"' in page.text
    assert f'<option value="{registry.building}" selected>' in page.text
    assert 'aria-invalid="true" aria-describedby="credit_code-error"' in page.text

    short = await web.post_form("/enterprises/new", form(credit_code=code(1)[:17], name="济南泉城软件有限公司"))
    assert short.status_code == 400
    assert "has 18 characters; this one has 17" in short.text
    letter_o = await web.post_form("/enterprises/new", form(credit_code="O" + code(1)[1:], name="济南泉城软件有限公司"))
    assert "“O” at position 1 cannot appear" in letter_o.text
    assert await count(settings, Enterprise) == 0


async def test_a_valid_code_saves_and_opens_the_enterprise(web: Web, english: None, registry: Registry, settings: Settings) -> None:
    await sign_in(web, "staff")
    saved = await web.post_form("/enterprises/new", form(
        credit_code=code(2).lower(), name="济南泉城软件有限公司", place_id=str(registry.building), is_key="1",
        grid_worker_id=str(registry.worker), liaison_leader="张主任"))
    assert saved.status_code == 303, saved.text
    page = await web.client.get(saved.headers["location"])
    assert "Enterprise 济南泉城软件有限公司 saved." in page.text
    assert code(2) in page.text  # normalised to capitals
    assert "张主任" in page.text and "测试大厦" in page.text
    assert "软件企业研发补助" in page.text  # it matches the software policy ...
    assert "制造业技术改造奖励" not in page.text.split('id="other_policy_id"')[0]  # ... not the manufacturing one


async def test_a_registered_code_is_refused_naming_the_enterprise(web: Web, english: None, registry: Registry, settings: Settings) -> None:
    await add_enterprise(settings, 3, "山东鲁粮贸易有限公司", registry.building)
    await sign_in(web, "staff")
    page = await web.post_form("/enterprises/new", form(credit_code=code(3), name="另一家公司"))
    assert page.status_code == 400
    assert "This credit code is already registered, to 山东鲁粮贸易有限公司." in page.text
    assert await count(settings, Enterprise) == 1


async def test_the_list_filters_and_links_to_the_enterprise(web: Web, registry: Registry, settings: Settings) -> None:
    software = await add_enterprise(settings, 4, "泉城软件", registry.building, is_key=True)
    await add_enterprise(settings, 5, "历下机械厂", registry.park, industry="C", size="medium")
    await sign_in(web, "staff")
    everything = await web.client.get("/enterprises")
    assert everything.status_code == 200
    assert "泉城软件" in everything.text and "历下机械厂" in everything.text
    only_c = await web.client.get("/enterprises?industry=C")
    assert "历下机械厂" in only_c.text and "泉城软件" not in only_c.text
    by_code = await web.client.get(f"/enterprises?q={code(4)[-6:]}")
    assert f'href="/enterprises/{software}"' in by_code.text and "历下机械厂" not in by_code.text
    key = await web.client.get("/enterprises?key_only=1")
    assert "泉城软件" in key.text and "历下机械厂" not in key.text
    assert 'href="/enterprises/export.csv?key_only=1"' in key.text


# --- CSV import and export -----------------------------------------------------------------------------------


def csv_text(*rows: str, bom: bool = True) -> str:
    return (BOM if bom else "") + "\r\n".join([HEADER, *rows]) + "\r\n"


async def test_an_import_with_a_bom_creates_every_row(web: Web, english: None, registry: Registry, settings: Settings) -> None:
    await sign_in(web, "staff")
    text = csv_text(
        f"{code(11)},泉城软件,I,small,growing,2020-05-01,{registry.building_code},1",
        f"{code(12)},历下机械厂,C,medium,above_scale,,{registry.park_code},0",
        f"{code(13)},解放路面馆,H,micro,new,2025-01-02,,",
    )
    page = await upload(web, text)
    assert page.status_code == 200, page.text
    assert "Imported." in page.text
    assert re.search(r'id="report-created">3<', page.text)
    assert await count(settings, Enterprise) == 3


async def test_an_import_with_bad_rows_writes_nothing_and_names_every_bad_line(
    web: Web, english: None, registry: Registry, settings: Settings,
) -> None:
    await sign_in(web, "staff")
    text = csv_text(
        f"{code(21)},泉城软件,I,small,growing,,{registry.building_code},1",
        f"{code(22)},历下机械厂,C,medium,,,{registry.park_code},0",
        f"{mistyped(code(23))},错码公司,I,small,,,,",  # line 4: the check character
        f"{code(21)},重复公司,I,small,,,ZZZZZZ,",  # line 5: an unknown place and line 2's code again
    )
    page = await upload(web, text)
    assert page.status_code == 400
    assert "Nothing was written" in page.text
    rows = re.findall(r'<td data-label="Line">(\d+)</td>\s*<td data-label="Column">[^<]*</td>\s*<td data-label="Reason" class="reason-cell">([^<]*)</td>', page.text)
    assert ("4", f"The last character should be “{code(23)[17]}” for the first 17 characters; please check the code for a typing error.") in rows
    assert ("5", "No place has the code ZZZZZZ.") in rows
    assert ("5", "The same credit code is on line 2.") in rows
    assert {line for line, _ in rows} == {"4", "5"}
    assert await count(settings, Enterprise) == 0


async def test_a_dry_run_checks_and_writes_nothing(web: Web, english: None, registry: Registry, settings: Settings) -> None:
    await sign_in(web, "staff")
    page = await upload(web, csv_text(f"{code(31)},泉城软件,I,small,,,,", bom=False), dry_run=True)
    assert page.status_code == 200
    assert "Checked only" in page.text and re.search(r'id="report-created">1<', page.text)
    assert await count(settings, Enterprise) == 0


async def test_an_upload_that_is_not_utf8_is_refused(web: Web, english: None, registry: Registry) -> None:
    await sign_in(web, "staff")
    token = await web.csrf("/enterprises/import")
    page = await web.client.post("/enterprises/import", data={"_csrf_token": token},
                                 files={"file": ("gbk.csv", (HEADER + "\n" + f"{code(1)},泉城软件").encode("gbk"), "text/csv")})
    assert page.status_code == 400
    assert "The file is not UTF-8 text." in page.text


async def test_export_opens_as_csv_and_imports_back_unchanged(web: Web, registry: Registry, settings: Settings) -> None:
    await add_enterprise(settings, 41, "泉城软件", registry.building, is_key=True, grid_worker_id=registry.worker,
                         liaisons={"leader": "张主任", "community": "李网格员"}, registered_on="2021-06-18")
    await add_enterprise(settings, 42, "历下机械厂, 二分厂", registry.park, industry="C")  # a comma in the name
    await sign_in(web, "staff")
    export = await web.client.get("/enterprises/export.csv")
    assert export.status_code == 200
    assert export.headers["content-type"] == "text/csv; charset=utf-8"
    assert export.headers["content-disposition"] == 'attachment; filename="enterprises.csv"'
    assert export.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert [r["name"] for r in rows] == ["历下机械厂, 二分厂", "泉城软件"]
    assert rows[1]["place_code"] == registry.building_code and rows[1]["grid_worker"] == "grid-worker"
    assert rows[1]["liaison_leader"] == "张主任" and rows[1]["contact_phone"] == "13912345678"

    async def snapshot(session: AsyncSession) -> list[tuple[Any, ...]]:
        found = await session.scalars(select(Enterprise).order_by(Enterprise.credit_code))
        return [(e.credit_code, e.name, e.industry, e.size, e.stage, e.registered_on, e.place_id, e.is_key, e.contact_name,
                 e.contact_phone, e.grid_worker_id, e.liaisons) for e in found]

    before = await in_session(settings, snapshot)
    page = await upload(web, export.content.decode("utf-8"))
    assert page.status_code == 200, page.text
    assert re.search(r'id="report-created">0<', page.text) and re.search(r'id="report-updated">2<', page.text)
    assert await in_session(settings, snapshot) == before


async def test_the_template_is_a_valid_import(web: Web, english: None, registry: Registry, settings: Settings) -> None:
    await sign_in(web, "staff")
    template = await web.client.get("/enterprises/import/template.csv")
    assert template.status_code == 200 and template.content.startswith(b"\xef\xbb\xbf")
    page = await upload(web, template.content.decode("utf-8"), dry_run=True)
    assert page.status_code == 200, page.text
    assert re.search(r'id="report-created">1<', page.text)


# --- Pushes and outcomes -------------------------------------------------------------------------------------


async def pushes(settings: Settings) -> list[PolicyPush]:
    async def work(session: AsyncSession) -> list[PolicyPush]:
        return list(await session.scalars(select(PolicyPush).order_by(PolicyPush.created_at)))

    return await in_session(settings, work)


async def test_staff_push_matched_policies_and_off_match_ones_only_with_a_reason(
    web: Web, english: None, registry: Registry, settings: Settings,
) -> None:
    firm = await add_enterprise(settings, 51, "泉城软件", registry.building)
    await sign_in(web, "staff")
    path = f"/enterprises/{firm}/pushes"

    refused = await web.post_form(path, {"policy_id": str(registry.software_policy), "other_policy_id": str(registry.factory_policy), "reason": ""})
    assert refused.status_code == 400
    assert "泉城软件 does not match “制造业技术改造奖励”: give a reason to push it anyway." in refused.text
    assert await pushes(settings) == []  # not even the matched one

    done = await web.post_form(path, {"policy_id": str(registry.software_policy)})
    assert done.status_code == 303
    page = await web.client.get(done.headers["location"].split("#")[0])
    assert "1 policies pushed to 泉城软件." in page.text

    off = await web.post_form(path, {"other_policy_id": str(registry.factory_policy), "reason": "企业计划新建生产线"})
    assert off.status_code == 303
    recorded = {p.policy_id: p for p in await pushes(settings)}
    assert recorded[registry.software_policy].matched is True
    assert recorded[registry.factory_policy].matched is False
    assert recorded[registry.factory_policy].reason == "企业计划新建生产线"
    page = await web.client.get(f"/enterprises/{firm}")
    assert "Off-match" in page.text and "企业计划新建生产线" in page.text


async def test_a_granted_outcome_shows_on_the_reach_page(web: Web, english: None, registry: Registry, settings: Settings) -> None:
    firm = await add_enterprise(settings, 61, "泉城软件", registry.building)
    await add_enterprise(settings, 62, "趵突泉软件", registry.building)  # matched, not reached
    await sign_in(web, "staff")
    assert (await web.post_form(f"/enterprises/{firm}/pushes", {"policy_id": str(registry.software_policy)})).status_code == 303
    push = (await pushes(settings))[0]

    no_amount = await web.post_form(f"/pushes/{push.id}/outcome", {"outcome": "granted", "amount": "三十万"})
    assert no_amount.status_code == 400
    assert "Please enter the granted amount in whole yuan." in no_amount.text
    assert 'value="三十万"' in no_amount.text

    granted = await web.post_form(f"/pushes/{push.id}/outcome", {"outcome": "granted", "amount": "310,000", "note": "已到账"})
    assert granted.status_code == 303
    assert (await pushes(settings))[0].outcome == PushOutcome.GRANTED

    reach = await web.client.get("/policies/reach")
    assert reach.status_code == 200
    assert re.search(r'id="total-granted">1<', reach.text)
    assert re.search(r'id="total-amount">310,000<', reach.text)
    assert re.search(r'id="total-pushed">1<', reach.text)
    one = await web.client.get(f"/policies/{registry.software_policy}/reach")
    assert one.status_code == 200
    assert one.text.index("趵突泉软件") < one.text.index("泉城软件")  # not reached first
    assert "Not reached" in one.text and "310,000 yuan" in one.text


# --- Supervisors watch ---------------------------------------------------------------------------------------


async def test_a_supervisor_reads_the_registry_without_contacts_and_cannot_write(
    web: Web, client: AsyncTestClient, registry: Registry, settings: Settings,
) -> None:
    firm = await add_enterprise(settings, 71, "泉城软件", registry.building)
    await sign_in(web, "supervisor")
    listing = await client.get("/enterprises")
    assert listing.status_code == 200 and "泉城软件" in listing.text
    assert 'href="/enterprises/new"' not in listing.text and "export.csv" not in listing.text
    page = await client.get(f"/enterprises/{firm}")
    assert page.status_code == 200 and "泉城软件" in page.text
    assert "13912345678" not in page.text and "刘经理" not in page.text
    assert f'action="/enterprises/{firm}/pushes"' not in page.text
    assert (await client.get("/policies/reach")).status_code == 200
    for path, data in [
        ("/enterprises/new", form(credit_code=code(72), name="新公司")),
        (f"/enterprises/{firm}/edit", form(credit_code=code(71), name="改名")),
        (f"/enterprises/{firm}/pushes", {"policy_id": str(registry.software_policy)}),
    ]:
        assert (await web.post_form(path, data)).status_code == 403, path
    assert (await client.get("/enterprises/export.csv")).status_code == 403
    assert await pushes(settings) == []

    await web.logout()
    await sign_in(web, "staff")
    staff_page = await client.get(f"/enterprises/{firm}")
    assert "13912345678" in staff_page.text


async def test_a_file_over_the_upload_limit_is_refused_with_the_reason(web: Web, english: None, registry: Registry) -> None:
    await sign_in(web, "staff")
    big = csv_text(*[f"{code(1)},泉城软件,I,small,,,," for _ in range(5 * 1024 * 1024 // 40)])
    assert len(big.encode("utf-8")) > 5 * 1024 * 1024
    page = await upload(web, big)
    assert page.status_code == 413
    assert "The file is larger than 5 MB." in page.text
