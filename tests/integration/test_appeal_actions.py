"""Every workflow action through HTTP on the case page: it works for the right person, and a wrong role (403),
a wrong state (409) or missing input (400, what was typed kept) is refused with a clear message and writes nothing."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import Response
from litestar.testing import AsyncTestClient
from PIL import Image

from server.models import AppealStatus, Evaluation, PlaceKind, Role, VisitMethod
from server.services import places
from server.services.appeal_workflow import Action
from server.services.appeals import ActionInput
from server.settings import Settings
from tests.helpers import Web
from tests.integration.staff_cases import Staffing, in_session, make_staffing, sign_in

S = AppealStatus


@pytest.fixture
async def staffing(settings: Settings, people: dict[Role, str]) -> Staffing:
    return await make_staffing(settings)


async def post(web: Web, reference: str, action: str, **data: str) -> Response:
    return await web.post_form(f"/appeals/{reference}/{action}", data)


def local_input(moment: datetime, staffing: Staffing) -> str:
    return moment.astimezone(staffing.limits.tz).strftime("%Y-%m-%dT%H:%M")


async def refused(staffing: Staffing, reference: str, response: Response, status: int, message: str, before: dict) -> None:
    assert response.status_code == status, response.text
    assert message in response.text
    assert await staffing.state(reference) == before, "a refused action wrote something"


# --- transfer ---------------------------------------------------------------------------------------------


async def test_staff_transfer_a_case_to_a_department_who_hears_of_it(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    reference = await staffing.submit()
    await sign_in(client, web, "staff")
    response = await post(web, reference, "transfer", department_id=str(staffing.departments["cgj"]), note="请尽快处理")
    assert response.status_code == 303
    assert response.headers["location"] == f"/appeals/{reference}"
    case = await staffing.case(reference)
    assert (case.status, case.department_id) == (S.TRANSFERRED, staffing.departments["cgj"])
    page = await client.get(f"/appeals/{reference}")
    assert "To department: 区城管" in page.text and "请尽快处理" in page.text
    # The page says what just happened, once; the note was internal (the default).
    assert '<p class="alert alert-success flash" role="status">Transferred to 区城管.</p>' in page.text
    assert "Internal note" in page.text
    assert "Transferred to 区城管." not in (await client.get(f"/appeals/{reference}")).text

    await web.logout()
    await sign_in(client, web, "dept-cgj")
    inbox = await client.get("/inbox")
    assert f"Case {reference} was transferred to you" in inbox.text


async def test_transfer_refusals_write_nothing(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    reference = await staffing.submit()
    before = await staffing.state(reference)
    await sign_in(client, web, "supervisor")
    response = await post(web, reference, "transfer", department_id=str(staffing.departments["cgj"]))
    await refused(staffing, reference, response, 403, "Your role cannot take this action.", before)

    await web.logout()
    await sign_in(client, web, "staff")
    response = await post(web, reference, "transfer", note="先转给谁？")
    await refused(staffing, reference, response, 400, "Choose a department or a person to transfer to.", before)
    assert "先转给谁？</textarea>" in response.text


# --- accept -----------------------------------------------------------------------------------------------


async def test_the_department_accepts_its_case_but_not_twice_nor_another_departments(
    client: AsyncTestClient, web: Web, staffing: Staffing
) -> None:
    reference = await staffing.transferred("cgj")
    await sign_in(client, web, "dept-zjj")
    before = await staffing.state(reference)
    assert (await post(web, reference, "accept")).status_code == 403  # not theirs: not even visible
    assert await staffing.state(reference) == before

    await web.logout()
    await sign_in(client, web, "dept-cgj")
    assert (await post(web, reference, "accept")).status_code == 303
    assert (await staffing.case(reference)).status is S.IN_PROGRESS
    before = await staffing.state(reference)
    response = await post(web, reference, "accept")
    await refused(staffing, reference, response, 409, "This action is not possible at the current status: In progress.", before)


# --- whistle and report-in --------------------------------------------------------------------------------


async def test_whistle_summons_departments_who_report_in(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    reference = await staffing.transferred("cgj")
    await sign_in(client, web, "staff")
    report_by = local_input(datetime.now(UTC) + timedelta(days=1), staffing)
    response = await web.client.post(
        f"/appeals/{reference}/whistle",
        data={"department_ids": [str(staffing.departments["cgj"]), str(staffing.departments["zjj"])], "report_by": report_by,
              "_csrf_token": await web.csrf()},
    )
    assert response.status_code == 303, response.text
    assert (await staffing.state(reference))["summons"] == 2

    await web.logout()
    await sign_in(client, web, "dept-zjj")  # summoned, so the case is visible to 区住建 now
    page = await client.get(f"/appeals/{reference}")
    assert page.status_code == 200 and 'action="/appeals/' + reference + '/report_in"' in page.text
    assert (await post(web, reference, "report_in", note="我局明天派人到现场")).status_code == 303
    assert (await staffing.state(reference))["reported"] == 1

    before = await staffing.state(reference)
    response = await post(web, reference, "report_in", note="再报到一次")
    await refused(staffing, reference, response, 409, "Your department has already reported in.", before)

    await web.logout()
    await sign_in(client, web, "staff")
    page = await client.get(f"/appeals/{reference}")
    assert "Reported in" in page.text and "区住建科员" in page.text and "我局明天派人到现场" in page.text
    assert "Awaiting report-in" in page.text  # 区城管 has not reported yet


async def test_whistle_refusals_keep_the_typed_deadline(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    reference = await staffing.transferred("cgj")
    before = await staffing.state(reference)
    await sign_in(client, web, "staff")
    report_by = local_input(datetime.now(UTC) + timedelta(days=2), staffing)
    response = await post(web, reference, "whistle", report_by=report_by)
    await refused(staffing, reference, response, 400, "Choose at least one department to summon.", before)
    assert f'value="{report_by}"' in response.text

    past = local_input(datetime.now(UTC) - timedelta(hours=2), staffing)
    response = await post(web, reference, "whistle", department_ids=str(staffing.departments["zjj"]), report_by=past)
    await refused(staffing, reference, response, 400, "Choose a report-in deadline in the future.", before)


async def test_report_in_needs_a_note_and_a_department(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    reference = await staffing.transferred("cgj")
    await staffing.act(
        reference, Action.WHISTLE, "staff",
        ActionInput(department_ids=[staffing.departments["zjj"]], report_by=datetime.now(UTC) + timedelta(days=1)),
    )
    before = await staffing.state(reference)
    await sign_in(client, web, "staff")
    response = await post(web, reference, "report_in", note="街道代报")
    await refused(staffing, reference, response, 403, "Your role cannot take this action.", before)

    await web.logout()
    await sign_in(client, web, "dept-zjj")
    response = await post(web, reference, "report_in", note="  ")
    await refused(staffing, reference, response, 400, "Please say what your department will do.", before)


# --- mark complex, resolve ----------------------------------------------------------------------------------


async def test_mark_complex_needs_a_reason_and_happens_once(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    reference = await staffing.transferred("cgj")
    due = (await staffing.case(reference)).resolve_due_at
    await sign_in(client, web, "staff")
    before = await staffing.state(reference)
    response = await post(web, reference, "mark_complex", note="")
    await refused(staffing, reference, response, 400, "Please give the reason the case is complex.", before)

    assert (await post(web, reference, "mark_complex", note="涉及多个产权单位")).status_code == 303
    case = await staffing.case(reference)
    assert case.is_complex and case.resolve_due_at > due + timedelta(days=20)
    before = await staffing.state(reference)
    response = await post(web, reference, "mark_complex", note="再标一次")
    await refused(staffing, reference, response, 409, "This case is already marked as complex.", before)


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, format="JPEG")
    return out.getvalue()


async def test_department_resolves_with_a_photo_staff_can_open(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    reference = await staffing.in_progress("cgj")
    await sign_in(client, web, "dept-cgj")
    response = await client.post(
        f"/appeals/{reference}/resolve",
        data={"note": "已更换楼道灯并检查线路", "_csrf_token": await web.csrf()},
        files={"photos": ("after.jpg", jpeg(), "image/jpeg")},
    )
    assert response.status_code == 303, response.text
    case = await staffing.case(reference)
    assert case.status is S.RESOLVED and case.resolution_note == "已更换楼道灯并检查线路"

    await web.logout()
    await sign_in(client, web, "staff")
    page = await client.get(f"/appeals/{reference}")
    photo_url = page.text.split(f'<img src="/appeals/{reference}/photos/')[1].split('"')[0]
    photo = await client.get(f"/appeals/{reference}/photos/{photo_url}")
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert photo.content[:2] == b"\xff\xd8"
    assert (await client.get(f"/appeals/{reference}/photos/{'f' * 64}")).status_code == 404
    await web.logout()
    assert (await client.get(f"/appeals/{reference}/photos/{photo_url}")).status_code in {302, 303}


async def test_resolve_refusals(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    reference = await staffing.transferred("cgj")  # not accepted yet
    before = await staffing.state(reference)
    await sign_in(client, web, "dept-cgj")
    response = await post(web, reference, "resolve", note="已处理")
    await refused(staffing, reference, response, 409, "This action is not possible at the current status: Transferred.", before)

    await staffing.act(reference, Action.ACCEPT, "dept-cgj")
    before = await staffing.state(reference)
    response = await post(web, reference, "resolve", note="")
    await refused(staffing, reference, response, 400, "Please write how the problem was resolved.", before)


# --- return visit, evaluate, close ----------------------------------------------------------------------------


async def test_return_visit_with_evaluation_then_close(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    reference = await staffing.resolved("cgj")
    await sign_in(client, web, "staff")
    before = await staffing.state(reference)
    response = await post(web, reference, "return_visit", evaluation="satisfied", note="电话回访，群众满意")
    await refused(staffing, reference, response, 400, "Choose how the return visit was made.", before)
    assert "电话回访，群众满意</textarea>" in response.text
    assert 'value="satisfied" checked' in response.text

    response = await post(web, reference, "return_visit", method="phone", evaluation="satisfied", note="电话回访，群众满意")
    assert response.status_code == 303
    case = await staffing.case(reference)
    assert (case.status, case.evaluation) == (S.EVALUATED, Evaluation.SATISFIED)
    assert (await post(web, reference, "close")).status_code == 303
    assert (await staffing.case(reference)).status is S.CLOSED


async def test_return_visit_is_not_for_supervisors_nor_open_cases(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    reference = await staffing.resolved("cgj")
    before = await staffing.state(reference)
    await sign_in(client, web, "supervisor")
    response = await post(web, reference, "return_visit", method="phone")
    await refused(staffing, reference, response, 403, "Your role cannot take this action.", before)

    open_case = await staffing.in_progress("cgj")
    before = await staffing.state(open_case)
    await web.logout()
    await sign_in(client, web, "staff")
    response = await post(web, open_case, "return_visit", method="in_person")
    await refused(staffing, open_case, response, 409, "This action is not possible at the current status: In progress.", before)


async def test_evaluate_and_closing_needs_the_return_visit(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    reference = await staffing.resolved("cgj")
    await sign_in(client, web, "staff")
    before = await staffing.state(reference)
    response = await post(web, reference, "evaluate", note="群众来电评价")
    await refused(staffing, reference, response, 400, "Please choose an evaluation.", before)

    assert (await post(web, reference, "evaluate", evaluation="basically_satisfied")).status_code == 303
    assert (await staffing.case(reference)).evaluation is Evaluation.BASICALLY_SATISFIED
    before = await staffing.state(reference)
    response = await post(web, reference, "close")
    await refused(staffing, reference, response, 409, "A case can be closed only after its return visit.", before)

    await staffing.act(reference, Action.RETURN_VISIT, "staff", ActionInput(method=VisitMethod.IN_PERSON))
    assert (await post(web, reference, "close")).status_code == 303
    assert (await staffing.case(reference)).status is S.CLOSED


# --- reject, merge, reopen, comment --------------------------------------------------------------------------


async def test_reject_needs_a_reason_and_an_early_case(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    reference = await staffing.submit()
    await sign_in(client, web, "staff")
    before = await staffing.state(reference)
    response = await post(web, reference, "reject", note=" ")
    await refused(staffing, reference, response, 400, "Please give the reason for not accepting the case.", before)
    assert (await post(web, reference, "reject", note="不属于街道职责范围")).status_code == 303
    case = await staffing.case(reference)
    assert (case.status, case.rejection_reason) == (S.REJECTED, "不属于街道职责范围")

    resolved = await staffing.resolved("cgj")
    before = await staffing.state(resolved)
    response = await post(web, resolved, "reject", note="太晚了")
    await refused(staffing, resolved, response, 409, "This action is not possible at the current status: Resolved.", before)


async def test_merge_into_another_case_keeps_a_wrong_reference(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    original = await staffing.submit()
    duplicate = await staffing.submit()
    await sign_in(client, web, "staff")
    before = await staffing.state(duplicate)
    response = await post(web, duplicate, "merge", target_reference="2099-00001")
    await refused(staffing, duplicate, response, 400, "Enter the reference of another open case.", before)
    assert 'value="2099-00001"' in response.text

    assert (await post(web, duplicate, "merge", target_reference=original)).status_code == 303
    assert (await staffing.case(duplicate)).status is S.MERGED
    page = await client.get(f"/appeals/{duplicate}")
    assert f'href="/appeals/{original}"' in page.text


async def test_reopen_a_resolved_case_with_a_reason(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    reference = await staffing.resolved("cgj")
    await sign_in(client, web, "staff")
    before = await staffing.state(reference)
    response = await post(web, reference, "reopen")
    await refused(staffing, reference, response, 400, "Please give the reason for reopening.", before)
    assert (await post(web, reference, "reopen", note="回访发现灯又坏了")).status_code == 303
    assert (await staffing.case(reference)).status is S.IN_PROGRESS
    before = await staffing.state(reference)
    response = await post(web, reference, "reopen", note="再开一次")
    await refused(staffing, reference, response, 409, "This action is not possible at the current status: In progress.", before)


async def test_supervisors_comment_internally(client: AsyncTestClient, web: Web, staffing: Staffing) -> None:
    reference = await staffing.transferred("cgj")
    await sign_in(client, web, "supervisor")
    before = await staffing.state(reference)
    response = await post(web, reference, "comment", note="")
    await refused(staffing, reference, response, 400, "Please write a note.", before)
    assert (await post(web, reference, "comment", note="请注意办理时限")).status_code == 303
    last = (await staffing.events(reference))[-1]
    assert (last.action, last.note, last.public) == ("comment", "请注意办理时限", False)

    await web.logout()
    await sign_in(client, web, "building-head")
    before = await staffing.state(reference)
    assert (await post(web, reference, "comment", note="楼长意见")).status_code == 403
    assert await staffing.state(reference) == before


@pytest.mark.parametrize("action", ["fly", "submit", "overdue"])
async def test_actions_outside_the_table_are_not_found(client: AsyncTestClient, web: Web, staffing: Staffing, action: str) -> None:
    reference = await staffing.submit()
    await sign_in(client, web, "staff")
    before = await staffing.state(reference)
    assert (await post(web, reference, action, note="x")).status_code == 404
    assert await staffing.state(reference) == before


# --- a page that is out of date ---------------------------------------------------------------------------


async def test_acting_on_an_out_of_date_page_is_refused_with_the_current_state_and_the_note_kept(
    client: AsyncTestClient, web: Web, staffing: Staffing
) -> None:
    """Two staff had the case open; the first resolved it. The second's form still carries the version it
    showed: it is refused (409, nothing written) with a "reload" message, the current page and the note."""
    reference = await staffing.in_progress()
    await sign_in(client, web, "staff")
    shown = (await staffing.case(reference)).version
    await staffing.act(reference, Action.RESOLVE, "admin", ActionInput(note="已处理完毕"))
    before = await staffing.state(reference)
    response = await post(web, reference, "resolve", note="我这边也修好了", version=str(shown))
    await refused(
        staffing, reference, response, 409,
        "Someone else updated this case a moment ago. Please look at its current state and try again.", before,
    )
    assert "我这边也修好了</textarea>" in response.text  # kept where it can be copied
    assert f'name="version" value="{shown + 1}"' in response.text  # the refreshed page acts on the new version


async def test_staff_set_the_place_of_a_general_box_case_and_correct_its_category(
    client: AsyncTestClient, web: Web, staffing: Staffing, settings: Settings
) -> None:
    """A general-box case has no place: staff set one and correct the category; the timeline shows
    both changes; a department cannot; a category of the other audience is refused, nothing written."""
    reference = await staffing.submit()
    place_id = await in_session(settings, lambda s: _a_compound(s))
    await sign_in(client, web, "dept-cgj")
    assert (await post(web, reference, "reclassify", category="environment", place=str(place_id))).status_code == 403
    await web.logout()
    await sign_in(client, web, "staff")
    before = await staffing.state(reference)
    response = await post(web, reference, "reclassify", category="parking", place=str(place_id))  # an enterprise category
    await refused(staffing, reference, response, 400, "Choose a category.", before)
    response = await post(web, reference, "reclassify", category="environment", place=str(place_id))
    assert response.status_code == 303
    case = await staffing.case(reference)
    assert (case.category, case.place_id) == ("environment", place_id)
    page = (await client.get(f"/appeals/{reference}")).text
    assert "Category and place corrected." in page
    assert "Place: — → 测试街道" in page
    assert "Category: " in page and " → " in page


async def _a_compound(session: Any) -> Any:
    return (await places.create_place(session, kind=PlaceKind.SUBDISTRICT, name="测试街道", parent=None)).id
