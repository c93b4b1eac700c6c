"""The submitter's tracking page (A6): public timeline without personal data, time limits, evaluation once."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from litestar.testing import AsyncTestClient
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import Appeal, AppealChannel, AppealEvent, AppealPhoto, AppealStatus, Evaluation, Role, SubmitterKind, User, VisitMethod
from server.services import appeals
from server.services.appeal_workflow import Action
from server.services.appeals import ActionInput, Actor, AppealInput
from server.services.deadlines import TimeLimits
from server.services.photos import normalise_photo
from server.settings import Settings
from tests.helpers import Web
from tests.conftest import TEST_PASSWORD

PRIVATE = ("张女士", "13800000001", "3号楼2单元")
STAFF_NAME = "测试staff"  # the people fixture's display name for the staff user
RESOLUTION = "已更换楼道灯，并检查了整栋楼的照明。"


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (30, 90, 160)).save(out, format="JPEG")
    return out.getvalue()


class Cases:
    """Cases arranged through the real services, committed so the app sees them."""

    def __init__(self, db: AsyncSession, settings: Settings, staff: User) -> None:
        self.db = db
        self.settings = settings
        self.staff = Actor.for_user(staff)
        self.limits = TimeLimits.from_settings(settings)

    async def submit(self, *, days_ago: float = 0) -> Appeal:
        data = AppealInput(
            channel=AppealChannel.SUGGESTION_BOX, submitter_kind=SubmitterKind.RESIDENT, category="facilities",
            description="楼道灯坏了一个多月，晚上上下楼很不安全", submitter_name=PRIVATE[0],
            submitter_phone=PRIVATE[1], location_detail=PRIVATE[2], photos=[normalise_photo(jpeg())],
        )
        received = appeals.utc_now() - timedelta(days=days_ago)
        appeal = await appeals.submit(
            self.db, data, actor=Actor.submitter(), limits=self.limits, uploads_dir=self.settings.uploads_dir,
            clock=lambda: received,
        )
        await self.db.commit()
        return appeal

    async def resolved(self) -> Appeal:
        appeal = await self.submit()
        departments = await appeals.seed_departments(self.db)
        steps = [
            (Action.TRANSFER, ActionInput(department_id=departments["cgj"].id, note="请区城管处理")),
            (Action.ACCEPT, ActionInput()),
            (Action.RESOLVE, ActionInput(note=RESOLUTION)),
        ]
        for action, payload in steps:
            await appeals.act(self.db, appeal, action, self.staff, payload, limits=self.limits)
        await self.db.commit()
        return appeal

    async def reload(self, appeal: Appeal) -> Appeal:
        await self.db.commit()
        await self.db.refresh(appeal)
        return appeal

    async def event_count(self) -> int:
        await self.db.commit()
        return await self.db.scalar(select(func.count()).select_from(AppealEvent)) or 0


@pytest.fixture
async def cases(db: AsyncSession, settings: Settings, people: dict[Role, str], client: AsyncTestClient) -> Cases:
    staff = await db.scalar(select(User).where(User.username == people[Role.STAFF]))
    assert staff is not None
    await client.get("/lang/en")  # assert on English msgids: valid before and after translation
    return Cases(db, settings, staff)


async def evaluate(web: Web, appeal: Appeal, evaluation: str, comment: str = "") -> tuple[int, str]:
    token = await web.csrf(f"/track/{appeal.tracking_code}")
    response = await web.client.post(
        f"/track/{appeal.tracking_code}/evaluate", data={"evaluation": evaluation, "comment": comment, "_csrf_token": token}
    )
    return response.status_code, response.text


async def test_the_timeline_shows_each_step_and_no_personal_data(client: AsyncTestClient, cases: Cases) -> None:
    appeal = await cases.resolved()
    page = await client.get(f"/track/{appeal.tracking_code}")
    assert page.status_code == 200
    assert page.headers["x-robots-tag"] == "noindex"
    text = page.text
    for label in ("Submitted", "Transfer", "Start handling", "Resolve"):
        assert f"<strong>{label}</strong>" in text
    assert "区城管" in text  # the department it was transferred to
    assert RESOLUTION in text
    assert appeal.reference in text
    for private in (*PRIVATE, STAFF_NAME):
        assert private not in text
    assert "Are you satisfied with how your case was resolved?" in text


async def test_an_open_case_shows_its_time_limits(client: AsyncTestClient, cases: Cases) -> None:
    fresh = await cases.submit()
    page = (await client.get(f"/track/{fresh.tracking_code}")).text
    assert "Respond by" in page and "Resolve by" in page
    assert "hours" in page and "left" in page
    assert "Overdue" not in page
    assert "Once your case is resolved, you can evaluate it here." in page

    late = await cases.submit(days_ago=8)
    page = (await client.get(f"/track/{late.tracking_code}")).text
    assert page.count('<span class="badge badge-danger">Overdue</span>') == 2  # response and resolution


async def test_the_submitters_photos_are_shown_and_served(client: AsyncTestClient, cases: Cases) -> None:
    appeal = await cases.submit()
    other = await cases.submit()
    photo = await cases.db.scalar(select(AppealPhoto).where(AppealPhoto.appeal_id == appeal.id))
    assert photo is not None
    page = await client.get(f"/track/{appeal.tracking_code}")
    src = f"/track/{appeal.tracking_code}/photos/{photo.sha256}"
    assert src in page.text
    image = await client.get(src)
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/jpeg"
    assert image.content[:2] == b"\xff\xd8"
    # Only through the tracking code of a case that holds the photo.
    assert (await client.get(f"/track/{other.tracking_code}/photos/{'0' * 64}")).status_code == 404
    assert (await client.get(f"/track/not-a-real-code/photos/{photo.sha256}")).status_code == 404


async def test_a_forged_code_is_a_clear_404(client: AsyncTestClient, cases: Cases) -> None:
    appeal = await cases.submit()
    forged = appeal.tracking_code[:-1] + ("A" if appeal.tracking_code[-1] != "A" else "B")
    for code in (forged, "x", "y" * 200):
        page = await client.get(f"/track/{code}")
        assert page.status_code == 404
        assert "Case not found" in page.text
        assert appeal.reference not in page.text


async def test_the_submitter_evaluates_and_may_change_it_until_the_case_is_closed(web: Web, cases: Cases) -> None:
    appeal = await cases.resolved()
    status, _ = await evaluate(web, appeal, Evaluation.SATISFIED.value, "灯修好了，谢谢")
    assert status == 303  # back to the tracking page
    appeal = await cases.reload(appeal)
    assert (appeal.status, appeal.evaluation, appeal.evaluation_comment) == (AppealStatus.EVALUATED, Evaluation.SATISFIED, "灯修好了，谢谢")
    assert appeal.resident_evaluation is Evaluation.SATISFIED
    page = (await web.client.get(f"/track/{appeal.tracking_code}")).text
    assert "Thank you. Your evaluation: Satisfied" in page
    assert "Change my evaluation" in page  # folded away, but there

    status, _ = await evaluate(web, appeal, Evaluation.BASICALLY_SATISFIED.value, "灯修好了，但楼道还是暗")
    assert status == 303
    appeal = await cases.reload(appeal)
    assert (appeal.status, appeal.evaluation) == (AppealStatus.EVALUATED, Evaluation.BASICALLY_SATISFIED)

    await appeals.act(cases.db, appeal, Action.RETURN_VISIT, cases.staff, ActionInput(method=VisitMethod.PHONE), limits=cases.limits)
    await appeals.act(cases.db, appeal, Action.CLOSE, cases.staff, limits=cases.limits)
    await cases.db.commit()
    page = (await web.client.get(f"/track/{appeal.tracking_code}")).text
    assert "Thank you. Your evaluation: Basically satisfied" in page
    assert 'action="/track/' not in page  # closed: no form
    events = await cases.event_count()
    status, text = await evaluate(web, appeal, Evaluation.UNSATISFIED.value, "again")
    assert status == 409
    appeal = await cases.reload(appeal)
    assert (appeal.status, appeal.evaluation) == (AppealStatus.CLOSED, Evaluation.BASICALLY_SATISFIED)
    assert await cases.event_count() == events


async def test_an_evaluation_taken_at_the_return_visit_is_not_shown_as_the_residents_own(web: Web, cases: Cases) -> None:
    """Staff recorded what the resident said on the phone: the page says so, does not thank the resident
    for an evaluation they never gave, and still lets them give their own, which then counts."""
    appeal = await cases.resolved()
    payload = ActionInput(method=VisitMethod.PHONE, evaluation=Evaluation.SATISFIED)
    await appeals.act(cases.db, appeal, Action.RETURN_VISIT, cases.staff, payload, limits=cases.limits)
    await cases.db.commit()
    page = (await web.client.get(f"/track/{appeal.tracking_code}")).text
    assert "Thank you. Your evaluation" not in page
    assert "At the return visit you told us: Satisfied." in page
    assert 'action="/track/' in page
    status, _ = await evaluate(web, appeal, Evaluation.UNSATISFIED.value, "其实还没修好")
    assert status == 303
    appeal = await cases.reload(appeal)
    assert (appeal.status, appeal.evaluation, appeal.resident_evaluation, appeal.visit_evaluation) == (
        AppealStatus.IN_PROGRESS, Evaluation.UNSATISFIED, Evaluation.UNSATISFIED, Evaluation.SATISFIED,
    )


async def test_only_notes_written_for_the_submitter_reach_the_tracking_page(client: AsyncTestClient, cases: Cases) -> None:
    """A note is internal unless its author chose to reply publicly; a comment never is public."""
    appeal = await cases.submit()
    internal, reply, comment = "张阿姨家里情况特殊，注意方式", "已安排师傅周三上门", "内部监督意见"
    for action, payload in [
        (Action.TRANSFER, ActionInput(department_id=(await appeals.seed_departments(cases.db))["cgj"].id, note=internal)),
        (Action.ACCEPT, ActionInput(note=reply, note_public=True)),
        (Action.COMMENT, ActionInput(note=comment, note_public=True)),
    ]:
        await appeals.act(cases.db, appeal, action, cases.staff, payload, limits=cases.limits)
    await cases.db.commit()
    text = (await client.get(f"/track/{appeal.tracking_code}")).text
    assert reply in text
    assert internal not in text and comment not in text
    assert "<strong>Transfer</strong>" in text  # the step itself is public, its note is not


async def test_unsatisfied_sends_the_case_back(web: Web, cases: Cases) -> None:
    appeal = await cases.resolved()
    status, _ = await evaluate(web, appeal, Evaluation.UNSATISFIED.value, "灯又坏了")
    assert status == 303
    text = (await web.client.get(f"/track/{appeal.tracking_code}")).text
    assert "the case was sent back for further handling" in text
    appeal = await cases.reload(appeal)
    assert (appeal.status, appeal.evaluation, appeal.reopen_count) == (AppealStatus.IN_PROGRESS, Evaluation.UNSATISFIED, 1)
    assert "<strong>Evaluate</strong>" in text and "灯又坏了" in text


async def test_an_evaluation_needs_a_choice_and_keeps_the_comment(web: Web, cases: Cases) -> None:
    appeal = await cases.resolved()
    events = await cases.event_count()
    status, text = await evaluate(web, appeal, "", "说两句")
    assert status == 400
    assert "Please choose an evaluation." in text
    assert ">说两句</textarea>" in text
    status, text = await evaluate(web, appeal, Evaluation.SATISFIED.value, "长" * 2001)
    assert status == 400
    assert "Please keep the note under 2000 characters." in text
    assert (await cases.reload(appeal)).status is AppealStatus.RESOLVED
    assert await cases.event_count() == events


async def test_an_open_case_cannot_be_evaluated(web: Web, cases: Cases) -> None:
    appeal = await cases.submit()
    events = await cases.event_count()
    status, _ = await evaluate(web, appeal, Evaluation.SATISFIED.value)
    assert status == 409
    assert (await cases.reload(appeal)).evaluation is None
    assert await cases.event_count() == events


async def test_evaluating_a_forged_code_is_a_404(web: Web, cases: Cases) -> None:
    await cases.resolved()
    token = await web.csrf("/suggest")
    response = await web.client.post("/track/forged-code/evaluate", data={"evaluation": "satisfied", "_csrf_token": token})
    assert response.status_code == 404
    assert "Case not found" in response.text


async def find(web: Web, reference: str, query_code: str) -> tuple[int, str, str | None]:
    token = await web.csrf("/track")
    response = await web.client.post("/track", data={"reference": reference, "query_code": query_code, "_csrf_token": token})
    return response.status_code, response.text, response.headers.get("location")


async def test_the_case_number_and_query_code_open_the_tracking_page(web: Web, cases: Cases) -> None:
    """What a person can read over the phone: 2026-00001 and six digits, typed on /track."""
    appeal = await cases.submit()
    assert appeal.query_code is not None and len(appeal.query_code) == 6 and appeal.query_code.isdigit()
    page = await web.client.get("/track")
    assert page.status_code == 200 and 'name="query_code"' in page.text
    status, _text, location = await find(web, f" {appeal.reference} ", " ".join(appeal.query_code))  # spaces forgiven
    assert (status, location) == (303, f"/track/{appeal.tracking_code}")


async def test_a_wrong_query_code_says_so_and_keeps_what_was_typed(web: Web, cases: Cases) -> None:
    appeal = await cases.submit()
    wrong = f"{(int(appeal.query_code or 0) + 1) % 10**6:06d}"
    status, text, _location = await find(web, appeal.reference, wrong)
    assert status == 404
    assert "No case matches this number and query code." in text
    assert f'value="{appeal.reference}"' in text and f'value="{wrong}"' in text
    assert appeal.tracking_code not in text
    status, text, _location = await find(web, "abc", "12")
    assert status == 400
    assert "Enter the case number as written on your receipt" in text and "Enter the 6-digit query code." in text


async def test_guessing_query_codes_is_stopped_per_case_number(web: Web, cases: Cases) -> None:
    """After ten wrong codes for one case number, even the right code waits for tomorrow; another
    case is not affected (until the client's own limit)."""
    appeal, other = await cases.submit(), await cases.submit()
    for guess in range(10):
        code = f"{guess:06d}" if f"{guess:06d}" != appeal.query_code else "999999"
        status, _text, _location = await find(web, appeal.reference, code)
        assert status == 404
    status, text, location = await find(web, appeal.reference, appeal.query_code or "")
    assert status == 429 and location is None
    assert "Too many wrong query codes." in text
    status, _text, location = await find(web, other.reference, other.query_code or "")
    assert (status, location) == (303, f"/track/{other.tracking_code}")


async def test_guessing_across_case_numbers_is_stopped_per_client(web: Web, cases: Cases) -> None:
    appeal = await cases.submit()
    for n in range(20):
        status, _text, _location = await find(web, f"2026-9{n:04d}", "123456")
        assert status == 404
    status, text, _location = await find(web, appeal.reference, appeal.query_code or "")
    assert status == 429 and "Too many wrong query codes." in text


async def test_the_front_door_is_public_and_signed_in_users_go_on_to_their_home(web: Web, cases: Cases, people: dict[Role, str]) -> None:
    """`/` is the residents' and enterprises' home: the suggestion box, finding a case, the public
    figures, and a small staff sign-in link; a signed-in user lands on their role's home."""
    await cases.submit()
    page = await web.client.get("/")
    assert page.status_code == 200
    for href in ('href="/suggest"', 'href="/track"', 'href="/summary/appeals"', 'href="/login"'):
        assert href in page.text, href
    assert "Appeals so far" in page.text
    for private in PRIVATE:
        assert private not in page.text
    await web.login(people[Role.STAFF], TEST_PASSWORD)
    response = await web.client.get("/")
    assert response.status_code in (302, 303) and response.headers["location"] == "/staff"
