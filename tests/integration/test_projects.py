"""Livelihood projects (L1), the service: progress from milestones, the acceptance rules (every required
signature, refused signers, idempotent signing, concurrent signing), the status table, comment moderation,
the board and the overview figures on the demo data."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db import make_alchemy_config, mark_writer
from server.models import CommentStatus, Place, Project, ProjectSignoff, ProjectStatus, ProjectUpdate, Role, User
from server.services import accounts, demo
from server.services import projects as svc
from server.settings import Settings

ELEVATOR = "东舍坊小区3号楼加装电梯"  # the demo project awaiting the signatures of 周代表 and 孙楼长


def now() -> datetime:
    return datetime.now(UTC)


async def by_title(db: AsyncSession, title: str) -> Project:
    project = await db.scalar(select(Project).where(Project.title == title))
    assert project is not None
    return project


async def user(db: AsyncSession, username: str) -> User:
    found = await accounts.get_user_by_username(db, username)
    assert found is not None
    return found


async def place(db: AsyncSession, name: str) -> Place:
    found = await db.scalar(select(Place).where(Place.name == name))
    assert found is not None
    return found


async def new_project(db: AsyncSession, settings: Settings, place_name: str, **changes: object) -> Project:
    data = svc.ProjectInput(title="文华园小区路灯维修", kind="facility_repair", place_id=(await place(db, place_name)).id,
                            supervision="居民代表每周巡查", responsible=[("王建国", "街道城建办主任", "0531-86015201")], manual_progress="40")
    for key, value in changes.items():
        setattr(data, key, value)
    return await svc.save_project(db, data, now=now())


async def counts(db: AsyncSession) -> tuple[int, int, int]:
    signed = await db.scalar(select(func.count(ProjectSignoff.signed_at)))
    rows = await db.scalar(select(func.count()).select_from(ProjectSignoff))
    updates = await db.scalar(select(func.count()).select_from(ProjectUpdate))
    return int(signed or 0), int(rows or 0), int(updates or 0)


async def test_progress_comes_from_the_milestones_once_there_are_some(db: AsyncSession, settings: Settings,
                                                                      demo_data: demo.DemoReport) -> None:
    project = await new_project(db, settings, "文华园小区")
    assert (await svc.progress_of(db, [project]))[project.id] == 40  # staff's figure while there are no milestones
    for title, done in (("采购灯具", True), ("更换1-3号楼", True), ("更换4-6号楼", False)):
        await svc.add_milestone(db, project, title=title, due_on=None, done_on=now().date() - timedelta(days=1) if done else None,
                                now=now(), tz=settings.tz)
    assert (await svc.progress_of(db, [project]))[project.id] == 66
    listed = await svc.list_projects(db, place_id=project.place_id)
    assert listed.progress[project.id] == 66
    last = (await svc.milestones(db, project.id))[-1]
    await svc.set_milestone(db, last, done_on=now().astimezone(settings.tz).date(), now=now(), tz=settings.tz)
    assert (await svc.progress_of(db, [project]))[project.id] == 100
    with pytest.raises(svc.InvalidProject) as refused:
        await svc.set_milestone(db, last, done_on=now().date() + timedelta(days=3), now=now(), tz=settings.tz)
    assert refused.value.field == "done_on"


async def test_the_project_is_accepted_only_when_every_required_signature_is_in(db: AsyncSession, settings: Settings,
                                                                                demo_data: demo.DemoReport) -> None:
    project = await by_title(db, ELEVATOR)
    rep, head = await user(db, "residentrep"), await user(db, "buildinghead")
    required = await svc.signoffs(db, project)
    assert {s.user_id for s in required} == {rep.id, head.id} and not any(s.signed_at for s in required)

    first = await svc.sign_off(db, project.id, user_id=rep.id, now=now())
    assert not first.already and not first.accepted
    assert (await by_title(db, ELEVATOR)).status is ProjectStatus.AWAITING_ACCEPTANCE
    signed_at = first.signoff.signed_at
    before = await counts(db)

    again = await svc.sign_off(db, project.id, user_id=rep.id, now=now() + timedelta(minutes=5))
    assert again.already and not again.accepted
    assert await counts(db) == before  # nothing written
    assert again.signoff.signed_at == signed_at  # the first signature's time stays

    last = await svc.sign_off(db, project.id, user_id=head.id, now=now())
    assert last.accepted
    project = await by_title(db, ELEVATOR)
    assert project.status is ProjectStatus.ACCEPTED and project.accepted_at is not None
    assert all(s.signed_at for s in await svc.signoffs(db, project))
    accepted_updates = await db.scalar(select(func.count()).select_from(ProjectUpdate).where(
        ProjectUpdate.project_id == project.id, ProjectUpdate.status == ProjectStatus.ACCEPTED))
    assert accepted_updates == 1
    # Signing an accepted project again is still harmless.
    assert (await svc.sign_off(db, project.id, user_id=head.id, now=now())).already


async def test_a_signoff_by_someone_who_is_not_a_signer_of_that_compound_is_refused_and_writes_nothing(
    db: AsyncSession, settings: Settings, demo_data: demo.DemoReport,
) -> None:
    project = await by_title(db, ELEVATOR)
    wenhua = await place(db, "文华园小区")
    other_rep = await accounts.create_user(db, username="wenhua-rep", password="x-password-1", role=Role.RESIDENT_REP,
                                           display_name="吴代表", place_id=wenhua.id)
    late_rep = await accounts.create_user(db, username="late-rep", password="x-password-1", role=Role.RESIDENT_REP,
                                          display_name="新代表", place_id=project.place_id)
    staff = await user(db, "staff")
    before = await counts(db)
    with pytest.raises(svc.SignoffRefused) as wrong_compound:
        await svc.sign_off(db, project.id, user_id=other_rep.id, now=now())
    assert wrong_compound.value.message.startswith("Only the resident representatives and building heads of")
    assert wrong_compound.value.params == {"place": "东舍坊小区"}
    with pytest.raises(svc.SignoffRefused):
        await svc.sign_off(db, project.id, user_id=staff.id, now=now())
    with pytest.raises(svc.SignoffRefused) as not_in_round:  # became a representative after acceptance was asked for
        await svc.sign_off(db, project.id, user_id=late_rep.id, now=now())
    assert "when acceptance was requested" in not_in_round.value.message
    assert await counts(db) == before
    assert (await by_title(db, ELEVATOR)).status is ProjectStatus.AWAITING_ACCEPTANCE
    # A project not waiting for acceptance cannot be signed even by its compound's representative.
    planned = await by_title(db, "东舍坊小区1号楼电梯更新")
    with pytest.raises(svc.SignoffRefused) as not_waiting:
        await svc.sign_off(db, planned.id, user_id=(await user(db, "residentrep")).id, now=now())
    assert not_waiting.value.message == "This project is not waiting for acceptance."


async def test_status_moves_along_the_table_and_acceptance_needs_signers(db: AsyncSession, settings: Settings,
                                                                         demo_data: demo.DemoReport) -> None:
    project = await new_project(db, settings, "东舍坊小区", title="东舍坊小区健身器材维修")
    for target in ("accepted", "awaiting_acceptance", "no-such-status"):
        with pytest.raises(svc.InvalidProject) as refused:
            await svc.post_update(db, project, body="", status=target, uploads_dir=settings.uploads_dir, author_id=None, now=now())
        assert refused.value.field == "status"
    with pytest.raises(svc.InvalidProject) as empty:
        await svc.post_update(db, project, body="  ", uploads_dir=settings.uploads_dir, author_id=None, now=now())
    assert empty.value.field == "body"
    await svc.post_update(db, project, body="开工", status="in_progress", uploads_dir=settings.uploads_dir, author_id=None, now=now())
    asked = await svc.post_update(db, project, body="完工", status="awaiting_acceptance", uploads_dir=settings.uploads_dir,
                                  author_id=None, now=now())
    assert asked.status is ProjectStatus.AWAITING_ACCEPTANCE and project.acceptance_round == 1
    assert len(await svc.signoffs(db, project)) == 2
    await svc.sign_off(db, project.id, user_id=(await user(db, "residentrep")).id, now=now())

    # Reopened: the round lapses; asked again, a new round needs every signature again (the old one is kept).
    await svc.post_update(db, project, body="发现问题，返工", status="in_progress", uploads_dir=settings.uploads_dir, author_id=None, now=now())
    await svc.post_update(db, project, body="返工完成", status="awaiting_acceptance", uploads_dir=settings.uploads_dir,
                          author_id=None, now=now())
    assert project.acceptance_round == 2
    assert not any(s.signed_at for s in await svc.signoffs(db, project))
    assert await db.scalar(select(func.count()).select_from(ProjectSignoff).where(ProjectSignoff.project_id == project.id)) == 4

    # A place without resident representatives or building heads: nobody could sign, so acceptance is not asked for.
    park = await new_project(db, settings, "山东物业创新产业园", title="园区道路维修")
    await svc.post_update(db, park, body="开工", status="in_progress", uploads_dir=settings.uploads_dir, author_id=None, now=now())
    with pytest.raises(svc.InvalidProject) as nobody:
        await svc.post_update(db, park, body="完工", status="awaiting_acceptance", uploads_dir=settings.uploads_dir, author_id=None, now=now())
    assert "no resident representative or building head" in nobody.value.message
    assert park.status is ProjectStatus.IN_PROGRESS


async def test_concurrent_last_signatures_accept_the_project_once(settings: Settings, demo_data: demo.DemoReport) -> None:
    """Both signers press 签字 at the same moment: both signatures count, the project is accepted exactly once."""
    config = make_alchemy_config(settings)
    try:
        async with config.get_session() as session:
            project_id = (await by_title(session, ELEVATOR)).id
            signers = [(await user(session, name)).id for name in ("residentrep", "buildinghead")]
        ready = asyncio.Barrier(len(signers))

        async def sign(user_id: UUID) -> svc.SignResult:
            mark_writer()  # as a POST does
            async with config.get_session() as session:
                await ready.wait()
                result = await svc.sign_off(session, project_id, user_id=user_id, now=now())
                await session.commit()
                return result

        results = await asyncio.gather(*(sign(u) for u in signers))
        assert sum(r.accepted for r in results) == 1
        async with config.get_session() as session:
            project = await session.get(Project, project_id)
            assert project is not None and project.status is ProjectStatus.ACCEPTED
            assert all(s.signed_at for s in await svc.signoffs(session, project))
            assert await session.scalar(select(func.count()).select_from(ProjectUpdate).where(
                ProjectUpdate.project_id == project_id, ProjectUpdate.status == ProjectStatus.ACCEPTED)) == 1
    finally:
        await config.get_engine().dispose()


async def test_a_comment_is_public_only_once_approved(db: AsyncSession, settings: Settings, demo_data: demo.DemoReport) -> None:
    project = await by_title(db, ELEVATOR)
    for name, body, field in (("", "   ", "body"), ("", "长" * (svc.MAX_COMMENT + 1), "body"), ("名" * 31, "好", "name")):
        with pytest.raises(svc.InvalidProject) as refused:
            await svc.post_comment(db, project, name=name, body=body, now=now())
        assert refused.value.field == field
    comment = await svc.post_comment(db, project, name=" 楼上邻居 ", body="电梯按钮太高，老人够不着。", now=now())
    assert comment.status is CommentStatus.PENDING and comment.author_name == "楼上邻居"
    assert comment.id not in {c.id for c in await svc.approved_comments(db, project.id)}
    queue, pending = await svc.comment_queue(db)
    assert comment.id in {c.id for c, _title in queue} and pending >= 1
    await svc.moderate(db, comment, approve=True, actor_id=None, now=now())
    assert comment.id in {c.id for c in await svc.approved_comments(db, project.id)}
    await svc.moderate(db, comment, approve=False, actor_id=None, now=now())
    assert comment.id not in {c.id for c in await svc.approved_comments(db, project.id)}


async def test_the_board_and_the_overview_count_the_demo_projects(client: AsyncTestClient, db: AsyncSession, settings: Settings,
                                                                  demo_data: demo.DemoReport) -> None:
    # The demo: a dozen projects, two accepted, one awaiting its two signatures.
    figures = (await client.get("/api/stats/overview")).json()
    total = await db.scalar(select(func.count()).select_from(Project))
    accepted = await db.scalar(select(func.count()).select_from(Project).where(Project.status == ProjectStatus.ACCEPTED))
    assert figures["projects"] == total == 12
    assert figures["projects_completed"] == accepted == 2

    board = await svc.projects_board(db, now(), settings.tz)
    assert board["total"] == total == sum(n for _s, _l, n in board["counts"])
    by_status = {s: n for s, _l, n in board["counts"]}
    for status in ProjectStatus:
        assert by_status[status] == await db.scalar(select(func.count()).select_from(Project).where(Project.status == status))
    assert [(a["title"], a["signed"], a["required"]) for a in board["awaiting"]] == [(ELEVATOR, 0, 2)]
    active = list(await db.scalars(select(Project).where(Project.status == ProjectStatus.IN_PROGRESS)))
    assert {a["id"] for a in board["active"]} == {p.id for p in active}
    progress = await svc.progress_of(db, active)
    assert all(a["progress"] == progress[a["id"]] for a in board["active"])
    assert board["recent"] and board["recent"][0]["at"] == await db.scalar(select(func.max(ProjectUpdate.posted_at)))
    assert "phone" not in repr(board)

    # A new project moves the overview.
    await new_project(db, settings, "文华园小区", title="文华园小区新增晾衣架")
    await db.commit()
    assert (await client.get("/api/stats/overview")).json()["projects"] == 13


async def test_the_demo_loader_runs_twice_without_duplicates(db: AsyncSession, settings: Settings, demo_data: demo.DemoReport) -> None:
    from server.models import PropertyMonth
    from server.services.demo_projects import load_demo_projects

    before = (await db.scalar(select(func.count()).select_from(Project)), await db.scalar(select(func.count()).select_from(PropertyMonth)))
    await load_demo_projects(db, settings, end=now())
    after = (await db.scalar(select(func.count()).select_from(Project)), await db.scalar(select(func.count()).select_from(PropertyMonth)))
    assert before == after


async def test_the_board_template_renders_the_demo_board(app, db: AsyncSession, settings: Settings, demo_data: demo.DemoReport) -> None:  # type: ignore[no-untyped-def]
    """What /boards/projects shows (served by the boards route): the counts, the works, the awaiting project; no phone."""
    from server.web import local_formatters

    board = await svc.projects_board(db, now(), settings.tz)
    template = app.template_engine.get_template("boards/_projects.html")
    for screen in (False, True):
        html = template.render(board=board, screen=screen, **local_formatters(settings.tz))
        assert ELEVATOR in html and "0531-" not in html
        assert ('href="/projects/' in html) is not screen  # the lobby TV has nothing to click
