"""Livelihood projects (L1), the pages: public list and page without phones for the public, a resident's
comment held until staff approve it, staff editing (a refused form keeps what was typed), updates with
photos, sign-off from a representative's own session, the signers' home card, and the CSV export."""

from __future__ import annotations

import csv
import io

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import Place, Project, ProjectComment, ProjectSignoff, ProjectStatus, ProjectUpdate, Role, User
from server.services import accounts, demo
from server.services import projects as svc
from server.services.appeals import utc_now
from tests.helpers import Web
from tests.integration.test_event_pages import _jpeg

ELEVATOR = "东舍坊小区3号楼加装电梯"


async def sign_in(web: Web, username: str, password: str = demo.DEMO_PASSWORD) -> None:
    response = await web.login(username, password)
    assert response.status_code == 303, response.text


async def project(db: AsyncSession, title: str = ELEVATOR) -> Project:
    found = await db.scalar(select(Project).where(Project.title == title).execution_options(populate_existing=True))
    assert found is not None
    return found


async def test_the_public_sees_names_and_roles_but_no_phone(web: Web, db: AsyncSession, demo_data: demo.DemoReport) -> None:
    elevator = await project(db)
    phones = [r["phone"] for r in elevator.responsible]
    listing = await web.client.get("/projects")
    assert listing.status_code == 200 and ELEVATOR in listing.text and "孙海涛" in listing.text
    assert not any(phone in listing.text for phone in phones)
    page = await web.client.get(f"/projects/{elevator.id}")
    assert page.status_code == 200
    assert "孙海涛" in page.text and "电梯施工单位项目经理" in page.text
    assert not any(phone in page.text for phone in phones)
    assert "周代表" not in page.text and "孙楼长" not in page.text  # who must sign: residents' accounts, not public

    for username in ("staff", "residentrep", "supervisor"):
        await sign_in(web, username)
        seen = (await web.client.get(f"/projects/{elevator.id}")).text
        assert all(phone in seen for phone in phones), username
        assert "周代表" in seen and "孙楼长" in seen, username
        await web.logout()
    await sign_in(web, "volunteer")  # signed in, but not a role that needs the phone or the signers
    seen = (await web.client.get(f"/projects/{elevator.id}")).text
    assert not any(phone in seen for phone in phones)
    assert "周代表" not in seen and "孙楼长" not in seen


async def test_the_public_sees_the_acceptance_by_role_and_time_without_names(web: Web, english: None, db: AsyncSession,
                                                                           demo_data: demo.DemoReport) -> None:
    elevator = await project(db)
    rep = await db.scalar(select(User).where(User.username == "residentrep"))
    assert rep is not None
    await svc.sign_off(db, elevator.id, user_id=rep.id, now=utc_now())
    await db.commit()
    signature = await db.scalar(select(ProjectSignoff).where(ProjectSignoff.project_id == elevator.id,
                                                            ProjectSignoff.user_id == rep.id))
    assert signature is not None and signature.signed_at is not None

    page = (await web.client.get(f"/projects/{elevator.id}")).text
    assert "1 of 2 required signatures are in." in page
    assert "Resident representative" in page and "Building head" in page and "Not signed yet" in page
    assert f'<time datetime="{signature.signed_at.isoformat()}">' in page  # when, but not who
    assert "周代表" not in page and "孙楼长" not in page

    await sign_in(web, "staff")
    seen = (await web.client.get(f"/projects/{elevator.id}")).text
    assert "周代表 · Resident representative" in seen and "孙楼长 · Building head" in seen


async def test_filters_by_type_and_status(web: Web, english: None, demo_data: demo.DemoReport) -> None:
    retrofit = (await web.client.get("/projects?kind=elevator_retrofit")).text
    assert ELEVATOR in retrofit and "文华园小区2号楼加装电梯" in retrofit and "东舍坊小区停车位重新规划" not in retrofit
    accepted = (await web.client.get("/projects?status=accepted")).text
    assert "2 projects" in accepted and ELEVATOR not in accepted
    assert "0 projects" in (await web.client.get("/projects?kind=parking&status=accepted")).text


async def test_a_comment_is_public_only_after_staff_approve_it(web: Web, english: None, db: AsyncSession,
                                                               demo_data: demo.DemoReport) -> None:
    elevator = await project(db)
    path = f"/projects/{elevator.id}"
    refused = await web.post_form(f"{path}/comments", {"name": "三楼老李", "body": ""}, token_from=path)
    assert refused.status_code == 400 and "Please write your comment." in refused.text and 'value="三楼老李"' in refused.text
    too_long = await web.post_form(f"{path}/comments", {"name": "", "body": "太" * 501}, token_from=path)
    assert too_long.status_code == 400 and "太" * 501 in too_long.text
    sent = await web.post_form(f"{path}/comments", {"name": "三楼老李", "body": "电梯门口的坡道太陡"}, token_from=path)
    assert sent.status_code == 303 and sent.headers["location"] == f"{path}?commented=1#comments"
    thanks = await web.client.get(f"{path}?commented=1")
    assert "Your comment will appear here once the subdistrict staff have reviewed it." in thanks.text
    assert "电梯门口的坡道太陡" not in thanks.text

    comment = await db.scalar(select(ProjectComment).where(ProjectComment.body == "电梯门口的坡道太陡"))
    assert comment is not None
    await sign_in(web, "staff")
    queue = await web.client.get("/projects/comments")
    assert "电梯门口的坡道太陡" in queue.text
    approved = await web.post_form(f"/projects/comments/{comment.id}", {"action": "approve"})
    assert approved.status_code == 303
    await web.logout()
    public = await web.client.get(path)
    assert "电梯门口的坡道太陡" in public.text and "三楼老李" in public.text


async def test_staff_create_a_project_and_a_refused_form_keeps_what_was_typed(web: Web, english: None, db: AsyncSession,
                                                                              demo_data: demo.DemoReport) -> None:
    compound = await db.scalar(select(Place).where(Place.name == "文华园小区"))
    assert compound is not None
    await sign_in(web, "staff")
    form = {"title": "文华园小区充电桩建设", "kind": "parking", "place_id": str(compound.id), "description": "新增充电桩12个",
            "supervision": "", "planned_start": "2026-03-01", "planned_end": "2026-02-01", "manual_progress": "120",
            "resp_name": "陈立新", "resp_role": "", "resp_phone": "0531-86015248"}
    refused = await web.post_form("/projects/new", form)
    assert refused.status_code == 400
    for message in ("Please say how the project is supervised", "Each responsible person needs a name and a role.",
                    "The planned end is before the planned start.", "Please enter the progress as a whole number from 0 to 100."):
        assert message in refused.text
    assert 'value="文华园小区充电桩建设"' in refused.text and 'value="0531-86015248"' in refused.text and "新增充电桩12个" in refused.text
    assert await db.scalar(select(func.count()).select_from(Project).where(Project.title == "文华园小区充电桩建设")) == 0

    saved = await web.post_form("/projects/new", {**form, "supervision": "居民代表每周巡查", "planned_end": "2026-06-30",
                                                  "manual_progress": "10", "resp_role": "文华园社区主任"})
    assert saved.status_code == 303, saved.text
    edit = await web.client.get(saved.headers["location"])
    assert "Project saved: 文华园小区充电桩建设." in edit.text
    created = await project(db, "文华园小区充电桩建设")
    assert created.status is ProjectStatus.PLANNED and created.responsible == [
        {"name": "陈立新", "role": "文华园社区主任", "phone": "0531-86015248"}]

    # Milestones and an update with a photo; the photo is public on the project's page.
    assert (await web.post_form(f"/projects/{created.id}/milestones", {"title": "选址公示", "due_on": "2026-03-15"})).status_code == 303
    bad = await web.post_form(f"/projects/{created.id}/milestones", {"title": "", "due_on": "明天"})
    assert bad.status_code == 400 and "Please enter a date as YYYY-MM-DD." in bad.text and 'value="明天"' in bad.text
    token = await web.csrf()
    posted = await web.client.post(f"/projects/{created.id}/updates", data={"_csrf_token": token, "body": "开工", "status": "in_progress"},
                                   files=[("photos", ("site.jpg", _jpeg((20, 120, 200)), "image/jpeg"))])
    assert posted.status_code == 303, posted.text
    wrong = await web.post_form(f"/projects/{created.id}/updates", {"body": "直接验收", "status": "accepted"})
    assert wrong.status_code == 400 and "A project is accepted only when every required" in wrong.text and "直接验收" in wrong.text
    update = await db.scalar(select(ProjectUpdate).where(ProjectUpdate.project_id == created.id, ProjectUpdate.body == "开工"))
    assert update is not None and len(update.photos) == 1
    await web.logout()
    page = await web.client.get(f"/projects/{created.id}")
    photo_path = f"/projects/{created.id}/photos/{update.photos[0]}"
    assert photo_path in page.text and "选址公示" in page.text
    assert (await web.client.get(photo_path)).status_code == 200
    assert (await web.client.get(f"/projects/{created.id}/photos/{'0' * 64}")).status_code == 404


async def test_representatives_sign_from_their_own_session(web: Web, english: None, db: AsyncSession, demo_data: demo.DemoReport) -> None:
    elevator = await project(db)
    path = f"/projects/{elevator.id}"
    wenhua = await db.scalar(select(Place).where(Place.name == "文华园小区"))
    assert wenhua is not None
    await accounts.create_user(db, username="wenhua-head", password="x-password-1", role=Role.BUILDING_HEAD, display_name="吴楼长",
                               place_id=wenhua.id)
    await db.commit()

    # The representative's home card lists the project waiting for the signature.
    await sign_in(web, "residentrep")
    home = await web.client.get("/resident-rep")
    assert 'hx-get="/projects/signoffs"' in home.text
    waiting = await web.client.get("/projects/signoffs", headers={"HX-Request": "true"})
    assert ELEVATOR in waiting.text and "<html" not in waiting.text
    page = await web.client.get(path)
    assert f'action="{path}/signoff"' in page.text
    signed = await web.post_form(f"{path}/signoff", {})
    assert signed.status_code == 303
    assert "Signed. The project is accepted when every required signature is in." in (await web.client.get(path)).text
    again = await web.post_form(f"{path}/signoff", {})
    assert again.status_code == 303
    assert "You had already signed this acceptance; nothing changed." in (await web.client.get(path)).text
    assert ELEVATOR not in (await web.client.get("/projects/signoffs")).text
    await web.logout()

    # A building head of another compound: a clear refusal, nothing written.
    await sign_in(web, "wenhua-head", "x-password-1")
    refused = await web.post_form(f"{path}/signoff", {})
    assert refused.status_code == 400
    assert "Only the resident representatives and building heads of 东舍坊小区 sign off this project." in refused.text
    assert await db.scalar(select(func.count(ProjectSignoff.signed_at)).where(ProjectSignoff.project_id == elevator.id)) == 1
    await web.logout()

    await sign_in(web, "buildinghead")
    assert ELEVATOR in (await web.client.get("/projects/signoffs")).text
    done = await web.post_form(f"{path}/signoff", {})
    assert done.status_code == 303
    final = await web.client.get(path)
    assert "Signed. Every required signature is in: the project is accepted." in final.text
    assert "Accepted: every required signature is in." in final.text
    assert (await project(db)).status is ProjectStatus.ACCEPTED


async def test_the_export_lists_every_project_without_phones_and_safe_for_excel(web: Web, db: AsyncSession,
                                                                                demo_data: demo.DemoReport) -> None:
    staff = await db.scalar(select(Place).where(Place.name == "东舍坊小区"))
    assert staff is not None
    await sign_in(web, "supervisor")
    response = await web.client.get("/projects/export.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["项目", "类型", "小区", "状态"]
    assert len(rows) - 1 == await db.scalar(select(func.count()).select_from(Project))
    elevator = next(r for r in rows if r[0] == ELEVATOR)
    assert elevator[1] == "加装电梯" and elevator[3] == "待验收" and elevator[4] == "100"
    assert "0531-" not in response.text
    await web.logout()

    await sign_in(web, "staff")
    form = {"title": "=HYPERLINK(\"http://x\")", "kind": "other", "place_id": str(staff.id), "supervision": "居民监督",
            "resp_name": "王建国", "resp_role": "主任", "resp_phone": ""}
    assert (await web.post_form("/projects/new", form)).status_code == 303
    exported = (await web.client.get("/projects/export.csv")).content.decode("utf-8-sig")
    assert "'=HYPERLINK" in exported and "\n=HYPERLINK" not in exported
