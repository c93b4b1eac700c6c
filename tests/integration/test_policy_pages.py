"""The policy library (P1), QR policy guides (P2) and questions (P6) as people use them: staff write,
publish and withdraw; the public list, a policy's page and the guide pages show what is live; a guide
counts its scans; an enterprise asks without an account and the answer may become a FAQ."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.app import create_app
from server.db import make_alchemy_config
from server.models import Policy, PolicyGuide, PolicyQuestion, PolicyRevision, PolicyStatus, Role
from server.services import policies
from server.services.appeals import utc_now
from server.services.policies import GuideInput, PolicyContent
from server.services.scan_counts import ScanCounts
from server.settings import Settings
from tests.conftest import TEST_PASSWORD
from tests.helpers import Web

TITLE_LINK = re.compile(r'class="policy-title" href="/policies/[0-9a-f-]+"(?: data-policy-title)?>([^<]+)</a>')
EDIT_LOCATION = re.compile(r"^/policies/([0-9a-f-]{36})/edit$")
ASKER = {"enterprise_name": "泉城智造科技有限公司", "contact_name": "王经理", "contact_phone": "13912345678"}


def today(settings: Settings) -> Any:
    return policies.local_today(settings.tz, utc_now())


def content(title: str, *, deadline: Any = None, **changes: Any) -> PolicyContent:
    """A policy with everything publishing asks for; long-term unless a deadline is given."""
    base = PolicyContent(
        title=title, summary="为符合条件的企业提供补贴。", category="employment", issuer="济南市历下区人力资源和社会保障局",
        document_number="历下人社发〔2026〕3号", conditions=["在本街道注册的企业", "依法缴纳社会保险"],
        steps=["网上提交申请", "街道初审", "区人社局审核", "补贴发放"], materials=["营业执照复印件", "社保缴费证明"],
        time_limit="受理后15个工作日", deadline=deadline.isoformat() if deadline else "", long_term=deadline is None,
        department="解放路街道企业服务中心", phone="0531-86001234", source_url="https://www.jinan.gov.cn/policy/1",
    )
    return replace(base, **changes)


async def published(db: AsyncSession, data: PolicyContent) -> Policy:
    policy = await policies.create_draft(db, data)
    await policies.publish(db, policy, actor_id=None, now=utc_now())
    await db.commit()
    return policy


async def guide(db: AsyncSession, slug: str, **audience: list[str]) -> PolicyGuide:
    made = await policies.save_guide(db, GuideInput(slug=slug, name=f"指南 {slug}", description="本楼企业可申请的政策", **audience))
    await db.commit()
    return made


async def sign_in(web: Web, people: dict[Role, str], role: Role = Role.STAFF) -> None:
    response = await web.login(people[role], TEST_PASSWORD)
    assert response.status_code == 303, response.text


def form_of(data: PolicyContent) -> dict[str, Any]:
    """The editor's form fields for this content (lists as one item per line)."""
    fields: dict[str, Any] = {k: v for k, v in data.as_dict().items() if isinstance(v, str)}
    for name in ("conditions", "steps", "materials"):
        fields[name] = "\n".join(getattr(data, name))
    if data.long_term:
        fields["long_term"] = "1"
    for name in ("industries", "sizes", "stages", "place_kinds"):
        fields[name] = getattr(data, name)
    return fields


def titles(html: str) -> list[str]:
    return TITLE_LINK.findall(html)


@pytest.fixture
async def english(client: AsyncTestClient) -> None:
    await client.get("/lang/en")  # assert on English msgids: valid before and after translation


async def test_publish_flow_from_the_staff_pages(
    client: AsyncTestClient, web: Web, db: AsyncSession, people: dict[Role, str], settings: Settings, english: None
) -> None:
    await sign_in(web, people)
    # A draft with neither conditions nor a deadline state saves, is not public, and cannot be published.
    draft = form_of(content("创业担保贷款贴息"))
    draft.update(conditions="", long_term="")
    created = await web.post_form("/policies/new", draft)
    assert created.status_code == 303
    match = EDIT_LOCATION.match(created.headers["location"])
    assert match, created.headers["location"]
    policy_id = match.group(1)
    assert (await client.get(f"/policies/{policy_id}")).status_code == 404
    assert "创业担保贷款贴息" not in (await client.get("/policies")).text

    refused = await web.post_form(f"/policies/{policy_id}/publish", draft)
    assert refused.status_code == 400
    assert "A policy is published with its conditions: who can apply." in refused.text
    assert "Please give the deadline, or mark the policy as long-term." in refused.text
    assert "创业担保贷款贴息" in refused.text  # the form comes back with what was typed
    await db.commit()
    row = await db.get(Policy, policy_id, populate_existing=True)
    assert row is not None and row.status == PolicyStatus.DRAFT and row.revision == 0
    assert await db.scalar(select(func.count()).select_from(PolicyRevision)) == 0
    assert (await client.get(f"/policies/{policy_id}")).status_code == 404

    # Complete it and publish: listed, and its page says when it was updated.
    whole = form_of(content("创业担保贷款贴息"))
    done = await web.post_form(f"/policies/{policy_id}/publish", whole)
    assert done.status_code == 303 and done.headers["location"] == f"/policies/{policy_id}/edit"
    assert "Published (revision 1)." in (await client.get(f"/policies/{policy_id}/edit")).text
    assert "创业担保贷款贴息" in titles((await client.get("/policies")).text)
    page = (await client.get(f"/policies/{policy_id}")).text
    assert f"Updated {today(settings).isoformat()}" in page
    for part in ("在本街道注册的企业", "营业执照复印件", "区人社局审核", 'href="tel:053186001234"', "受理后15个工作日", "Long-term"):
        assert part in page
    assert 'name="robots"' not in page

    # An edit of a published policy waits: the public page keeps the published text until "publish".
    edited = await web.post_form(f"/policies/{policy_id}/edit", form_of(content("创业担保贷款贴息（2026年版）")))
    assert edited.status_code == 303
    public = (await client.get(f"/policies/{policy_id}")).text
    assert "创业担保贷款贴息（2026年版）" not in public
    assert "Unpublished changes" in (await client.get("/policies/manage")).text
    assert "创业担保贷款贴息（2026年版）" in (await client.get(f"/policies/{policy_id}/preview")).text

    again = await web.post_form(f"/policies/{policy_id}/publish", {})
    assert again.status_code == 303
    assert "创业担保贷款贴息（2026年版）" in (await client.get(f"/policies/{policy_id}")).text
    revisions = (await client.get(f"/policies/{policy_id}/revisions")).text
    assert "Revision 2" in revisions and "Revision 1" in revisions
    assert revisions.count("<details") == 2


async def test_expired_and_withdrawn_policies_drop_out_and_are_marked(
    client: AsyncTestClient, web: Web, db: AsyncSession, people: dict[Role, str], settings: Settings, english: None
) -> None:
    day = today(settings)
    live = await published(db, content("稳岗返还", deadline=day + timedelta(days=60)))
    last_day = await published(db, content("一次性扩岗补助", deadline=day))  # its last day is today: still open
    expired = await published(db, content("2025年度就业见习补贴", deadline=day - timedelta(days=1)))
    withdrawn = await published(db, content("社保补贴（旧）"))
    await policies.withdraw(db, withdrawn, now=utc_now())
    await db.commit()
    everyone = await guide(db, "all-sizes", sizes=["micro", "small", "medium", "large"])

    listed = titles((await client.get("/policies")).text)
    assert set(listed) == {live.title, last_day.title}
    assert listed[0] == last_day.title  # closing soon first
    assert set(titles((await client.get(f"/g/{everyone.slug}")).text)) == {live.title, last_day.title}

    expired_page = await client.get(f"/policies/{expired.id}")
    assert expired_page.status_code == 200
    assert "The application deadline has passed." in expired_page.text
    assert "days left" not in expired_page.text

    withdrawn_page = await client.get(f"/policies/{withdrawn.id}")
    assert withdrawn_page.status_code == 200
    assert "This policy has been withdrawn." in withdrawn_page.text
    assert '<meta name="robots" content="noindex">' in withdrawn_page.text
    assert 'action="/policies/' not in withdrawn_page.text  # no question form on a withdrawn policy

    await sign_in(web, people)
    withdraw_twice = await web.post_form(f"/policies/{withdrawn.id}/withdraw", {})
    assert withdraw_twice.status_code == 303
    assert "Only a published policy can be withdrawn." in (await client.get(f"/policies/{withdrawn.id}/edit")).text


async def test_a_guide_lists_exactly_the_matching_live_policies(client: AsyncTestClient, db: AsyncSession, settings: Settings) -> None:
    day = today(settings)
    everyone = await published(db, content("全部企业：稳岗返还"))
    parks = await published(db, content("园区企业：厂房租金补贴", place_kinds=["industrial_park"], deadline=day + timedelta(days=200)))
    small_makers = await published(db, content("小微制造业技改补助", industries=["C"], sizes=["micro", "small"], deadline=day + timedelta(days=100)))
    above_scale = await published(db, content("规上企业培育奖励", stages=["above_scale"], deadline=day + timedelta(days=10)))
    big_it = await published(db, content("楼宇大型软件企业奖励", industries=["I"], sizes=["large"], place_kinds=["business_building"]))
    await policies.create_draft(db, content("草稿：不应出现"))
    await published(db, content("已过期：不应出现", deadline=day - timedelta(days=3)))
    await db.commit()
    micro_in_buildings = await guide(db, "building-micro", place_kinds=["business_building"], sizes=["micro"])
    new_it = await guide(db, "new-it", industries=["I"], stages=["new"])

    first = titles((await client.get(f"/g/{micro_in_buildings.slug}")).text)
    assert set(first) == {everyone.title, small_makers.title, above_scale.title}
    assert first == [above_scale.title, small_makers.title, everyone.title]  # nearest deadline first, long-term last
    second = titles((await client.get(f"/g/{new_it.slug}")).text)
    assert set(second) == {everyone.title, parks.title, big_it.title}
    assert (await client.get("/g/no-such-guide")).status_code == 404


async def test_every_open_is_counted_but_not_the_service_workers_background_save(
    client: AsyncTestClient, web: Web, db: AsyncSession, people: dict[Role, str], english: None
) -> None:
    made = await guide(db, "street-shops", place_kinds=["street_shop"])

    async def scans() -> int:
        # Written every few seconds by the server; until then held in its memory (the admin list adds both).
        await db.commit()
        stored = int(await db.scalar(select(PolicyGuide.scan_count).where(PolicyGuide.id == made.id)) or 0)
        await db.commit()
        return stored + client.app.state.scan_counts.unsaved(made.id)

    first = await client.get(f"/g/{made.slug}")
    assert first.status_code == 200
    assert '<meta name="shanzhi-offline" content="keep">' in first.text
    assert await scans() == 1
    await client.get(f"/g/{made.slug}")
    assert await scans() == 2
    # Opened again on a phone that kept the page: the service worker revalidates its copy (304). An open.
    saved = await client.get(f"/g/{made.slug}", headers={"If-None-Match": first.headers["etag"]})
    assert saved.status_code == 304
    assert await scans() == 3
    await client.get(f"/g/{made.slug}", headers={"X-Shanzhi-Background": "1"})  # the worker saving the page
    await client.head(f"/g/{made.slug}")  # a link checker
    assert await scans() == 3

    await sign_in(web, people)
    listing = (await client.get("/guides")).text
    assert f'href="/g/{made.slug}"' in listing
    assert re.search(r'class="num scan-count">3<', listing)


async def test_a_guide_needs_an_audience(client: AsyncTestClient, web: Web, db: AsyncSession, people: dict[Role, str], english: None) -> None:
    await sign_in(web, people)
    refused = await web.post_form("/guides/new", {"slug": "no-audience", "name": "没有受众的指南", "description": ""})
    assert refused.status_code == 400
    assert "A guide is for an audience: choose at least one industry, size, stage, place type or a place." in refused.text
    assert 'value="没有受众的指南"' in refused.text
    assert await db.scalar(select(func.count()).select_from(PolicyGuide)) == 0

    made = await web.post_form("/guides/new", {"slug": "tech-start", "name": "科技初创企业", "industries": ["I", "M"], "stages": ["new"]})
    assert made.status_code == 303 and made.headers["location"] == "/guides/tech-start/edit"
    edit = (await client.get("/guides/tech-start/edit")).text
    assert 'value="I" checked' in edit and 'value="new" checked' in edit


async def test_a_question_without_an_account_and_its_answer_as_a_faq(
    client: AsyncTestClient, web: Web, db: AsyncSession, people: dict[Role, str], english: None
) -> None:
    policy = await published(db, content("小微企业房租补贴"))
    question = f"我们是{ASKER['enterprise_name']}，{ASKER['contact_name']}，刚注册半年，能申请吗？"

    empty = await web.post_form(f"/policies/{policy.id}/questions", {"question": "  ", **ASKER})
    assert empty.status_code == 400
    assert "Please write your question." in empty.text
    assert f'value="{ASKER["contact_phone"]}"' in empty.text  # what they typed is kept

    asked = await web.post_form(f"/policies/{policy.id}/questions", {"question": question, **ASKER})
    assert asked.status_code == 303
    follow = asked.headers["location"]
    assert follow.startswith("/questions/")
    page = await client.get(follow)
    assert page.status_code == 200 and page.headers["x-robots-tag"] == "noindex"
    assert "Waiting for an answer" in page.text and question in page.text
    assert (await client.get("/questions/no-such-code")).status_code == 404

    await sign_in(web, people)
    inbox = (await client.get("/policies/questions")).text
    assert question in inbox and ASKER["contact_phone"] in inbox and policy.title in inbox
    row = await db.scalar(select(PolicyQuestion))
    assert row is not None

    no_faq_text = await web.post_form(f"/policies/questions/{row.id}/answer", {"answer": "可以申请。", "faq": "1", "faq_question": ""})
    assert no_faq_text.status_code == 400
    assert "Write the question as it should appear in the public FAQ (without names or phone numbers)." in no_faq_text.text
    assert "可以申请。" in no_faq_text.text

    answer = "可以。注册满三个月、在本街道实际经营的小微企业均可申请，请携带租赁合同到企业服务中心办理。"
    done = await web.post_form(
        f"/policies/questions/{row.id}/answer", {"answer": answer, "faq": "1", "faq_question": "刚注册半年的小微企业能申请吗？"})
    assert done.status_code == 303
    await web.logout()

    public = (await client.get(f"/policies/{policy.id}")).text
    assert "刚注册半年的小微企业能申请吗？" in public and answer in public
    for private in (*ASKER.values(), question):
        assert private not in public
    followed = (await client.get(follow)).text
    assert "Answered" in followed and answer in followed


async def test_the_guide_poster_carries_the_public_address(settings: Settings, db: AsyncSession, people: dict[Role, str]) -> None:
    await published(db, content("楼宇经济扶持资金"))
    made = await guide(db, "buildings", place_kinds=["business_building"])
    app = create_app(replace(settings, public_url="https://shanzhi.jiefanglu.example.cn"))
    async with AsyncTestClient(app=app, base_url="http://staff-laptop.local:8000") as client:
        client.follow_redirects = False
        web = Web(client)
        await sign_in(web, people, Role.GRID_WORKER)  # grid workers print posters for their buildings too
        poster = await client.get(f"/guides/{made.slug}/poster")
        assert poster.status_code == 200
        assert "<svg" in poster.text and 'class="qr-code"' in poster.text
        assert f"https://shanzhi.jiefanglu.example.cn/g/{made.slug}" in poster.text
        assert "staff-laptop.local" not in poster.text
        assert "楼宇经济扶持资金" in poster.text


async def test_counted_opens_are_written_to_the_guide_and_none_is_lost_when_the_server_stops(db: AsyncSession, settings: Settings) -> None:
    made = await guide(db, "parks", place_kinds=["industrial_park"])
    guide_id = made.id
    await db.commit()
    config = make_alchemy_config(settings)
    counts = ScanCounts(config, interval=3600)
    try:
        for _ in range(3):
            counts.add(guide_id)
        assert await counts.flush() == 3 and counts.unsaved(guide_id) == 0
        await counts.start()
        counts.add(guide_id)
        await counts.stop()  # the server stops: what it holds is written
    finally:
        await config.get_engine().dispose()
    assert await db.scalar(select(PolicyGuide.scan_count).where(PolicyGuide.id == guide_id)) == 4
