"""The policy library (P1), QR policy guides (P2) and one-on-one questions (P6).

Public: the list of live policies, a policy's page with its FAQ and the question form, the asker's
follow page, and the QR guide pages (`/g/<slug>`, counted once per open that is not a saved copy's
revalidation). Staff: the policy editor (draft, preview, publish, withdraw, revisions), the questions
inbox, and the guides with their A4 posters. docs/policies.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Request, get, post
from markupsafe import Markup
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import gettext
from server.models import LEAF_KINDS, Place, Policy, PolicyCategory, PolicyGuide, PolicyQuestion, PolicyRevision, PolicyStatus, Role, User
from server.routes.posters import qr_svg
from server.security import public, roles
from server.services import policies, policy_facets as facets, policy_questions
from server.services.appeals import utc_now
from server.services.errors import ServiceError, field_errors
from server.services.policies import CATEGORY_LABELS, STATUS_LABELS, GuideInput, InvalidPolicy, PolicyContent
from server.settings import Settings
from server.throttle import FailureThrottle
from server.web import client_address, current_user, flash, local_formatters, page_number, public_url, redirect, render, render_part, shared_part


Db = NamedDependency[AsyncSession]
Config = NamedDependency[Settings]

STAFF = (Role.ADMIN, Role.STAFF)
POSTER_ROLES = (Role.ADMIN, Role.STAFF, Role.GRID_WORKER)
MANAGE_PAGE_SIZE = 50
POSTER_TITLES = 6  # policy titles printed under a guide's QR code
PHONE_RE = re.compile(r"\+?\d[\d-]{3,}\d")
QUESTION_FIELDS = ("question", "enterprise_name", "contact_name", "contact_phone")


# --- Shared pieces ----------------------------------------------------------------------------------------




def tel_href(phone: str) -> str | None:
    """A `tel:` link for the first number in a phone field ("0531-86001234 (工作日)"), None when there is none."""
    match = PHONE_RE.search(phone or "")
    return f"tel:{match.group(0).replace('-', '')}" if match else None


@dataclass(frozen=True)
class FacetLine:
    label: str  # msgid
    values: list[str]  # msgids; empty means every value ("不限")


def facet_lines(lists: dict[str, list[str]]) -> list[FacetLine]:
    return [FacetLine(facet.label, [facet.labels[v] for v in lists.get(facet.name, []) if v in facet.labels]) for facet in facets.FACETS]


@dataclass(frozen=True)
class PolicyView:
    """What a reader sees of a policy: its published columns, the pending edits (preview) or a revision."""

    content: PolicyContent
    category_label: str  # msgid
    facets: list[FacetLine]
    deadline: date | None
    expired: bool
    closing_soon: bool
    days_left: int | None
    tel: str | None


def view_of(content: PolicyContent, today: date) -> PolicyView:
    deadline = None if content.long_term else content.deadline_date()
    probe = _Dated(deadline, content.long_term)
    soon = policies.closing_soon(probe, today)
    return PolicyView(
        content=content,
        category_label=CATEGORY_LABELS.get(content.category, content.category),  # type: ignore[call-overload]
        facets=facet_lines({f.name: getattr(content, f.name) for f in facets.FACETS}),
        deadline=deadline,
        expired=policies.is_expired(probe, today),
        closing_soon=soon,
        days_left=(deadline - today).days if soon and deadline else None,
        tel=tel_href(content.phone),
    )


@dataclass(frozen=True)
class _Dated:
    deadline: date | None
    long_term: bool


def published_content(policy: Policy) -> PolicyContent:
    """The policy as the public sees it (its columns), whatever edits are pending."""
    return policies.content_of(policy, pending=False)


async def _policy_or_404(db_session: AsyncSession, policy_id: UUID) -> Policy:
    # populate_existing: after a rollback the session's copy is expired, and must be read again here.
    policy = await db_session.get(Policy, policy_id, populate_existing=True)
    if policy is None:
        raise NotFoundException
    return policy


# --- Public: the list and a policy's page --------------------------------------------------------------------


def list_url(q: str = "", category: str = "", page: int = 1) -> str:
    params = {k: v for k, v in (("q", q), ("category", category), ("page", page if page > 1 else "")) if v}
    return "/policies" + (f"?{urlencode(params)}" if params else "")


@get("/policies", opt=public(), name="policy-list")
async def policy_list(request: Request, db_session: Db, settings: Config) -> Template:
    q = str(request.query_params.get("q") or "").strip()[:100]
    category = str(request.query_params.get("category") or "")
    if category not in {c.value for c in PolicyCategory}:
        category = ""
    today = policies.today(settings.tz)
    number = page_number(request.query_params.get("page"))

    async def compute(session: AsyncSession) -> tuple[policies.PolicyPage, Markup, Markup]:
        page = await policies.public_list(session, today=today, q=q, category=category, page=number)
        items = render_part(request, "policies/_items.html", policies=page.policies, today=today, category_labels=CATEGORY_LABELS,
                            closing_soon=policies.closing_soon)
        tabs = render_part(request, "policies/_tabs.html", page=page, q=q, category=category, categories=list(PolicyCategory),
                           category_labels=CATEGORY_LABELS, total_all=sum(page.counts.values()), list_url=list_url)
        return page, items, tabs

    page, items_html, tabs_html = await shared_part(request, policies.PAGES_TOPIC, ("list", today, q, category, number), compute)
    return render(request, "policies/list.html", page=page, items_html=items_html, tabs_html=tabs_html, q=q, category=category,
                  list_url=list_url)


@dataclass(frozen=True)
class Faq:
    faq_question: str  # as published by staff
    answer: str


@dataclass(frozen=True)
class PublicPolicy:
    """Everything the public page of a policy shows, as plain values (shared between requests)."""

    policy: policies.PolicyCard
    view: PolicyView
    faqs: list[Faq]


async def _public_policy(request: Request, settings: Settings, policy_id: UUID) -> PublicPolicy | None:
    today = policies.today(settings.tz)

    async def compute(session: AsyncSession) -> PublicPolicy | None:
        policy = await session.get(Policy, policy_id)
        if policy is None or policy.status == PolicyStatus.DRAFT:
            return None
        faqs = [Faq(f.faq_question or "", f.answer or "") for f in await policy_questions.faqs(session, policy.id)]
        return PublicPolicy(policies.card_of(policy), view_of(published_content(policy), today), faqs)

    found: PublicPolicy | None = await shared_part(request, policies.PAGES_TOPIC, ("policy", policy_id, today), compute)
    return found


async def _policy_page(
    request: Request, settings: Settings, policy_id: UUID, *, values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None, status_code: int = 200,
) -> Template:
    shown = await _public_policy(request, settings, policy_id)
    if shown is None:
        raise NotFoundException
    return render(
        request, "policies/page.html", status_code=status_code, policy=shown.policy, view=shown.view, preview=False,
        withdrawn=shown.policy.status == PolicyStatus.WITHDRAWN, faqs=shown.faqs,
        values=values or {}, errors=errors or {}, **local_formatters(settings.tz),
    )


@get("/policies/{policy_id:uuid}", opt=public(), name="policy-page")
async def policy_page(request: Request, settings: Config, policy_id: FromPath[UUID]) -> Template:
    return await _policy_page(request, settings, policy_id)


@post("/policies/{policy_id:uuid}/questions", opt=public())
async def ask_question(request: Request, db_session: Db, settings: Config, policy_id: FromPath[UUID]) -> Template | Redirect:
    policy = await _policy_or_404(db_session, policy_id)
    if policy.status == PolicyStatus.DRAFT:
        raise NotFoundException
    form = await request.form()
    values = {name: str(form.get(name) or "") for name in QUESTION_FIELDS}
    # Questions per client address and hour, like the suggestion box's ceiling: a crowd on one Wi-Fi
    # at a 政策直通车 can ask, a script cannot fill the inbox. What was typed stays on the page.
    throttle = FailureThrottle(request.app.stores.get("rate_limit"), limit=settings.suggest_address_limit, window=QUESTION_WINDOW)
    throttle_key = f"question:address:{client_address(request)}"
    if await throttle.is_blocked(throttle_key):
        return await _policy_page(request, settings, policy_id, values=values, status_code=429,
                                  errors={"question": gettext("Too many questions from this network in the last hour. Please try again later.")})
    try:
        row = await policy_questions.ask(
            db_session, policy, question=values["question"], enterprise_name=values["enterprise_name"],
            contact_name=values["contact_name"], contact_phone=values["contact_phone"], now=utc_now(),
        )
    except ServiceError as invalid:
        await db_session.rollback()
        return await _policy_page(request, settings, policy_id, values=values, errors=field_errors(invalid), status_code=400)
    await db_session.commit()
    await throttle.record_failure(throttle_key)  # counts accepted questions (mistakes are free)
    return redirect(f"/questions/{row.tracking_code}")


@get("/questions/{code:str}", opt=public(), name="policy-question")
async def question_page(request: Request, db_session: Db, settings: Config, code: FromPath[str]) -> Template:
    row = await policy_questions.by_code(db_session, code)
    if row is None:
        response = render(request, "policies/question_not_found.html", status_code=404)
    else:
        policy = await db_session.get(Policy, row.policy_id)
        response = render(
            request, "policies/question.html", row=row, policy=policy, status_labels=policy_questions.STATUS_LABELS,
            follow_url=public_url(request, f"/questions/{row.tracking_code}"), answered=row.answer is not None, **local_formatters(settings.tz),
        )
    response.headers["X-Robots-Tag"] = "noindex"
    return response


# --- Staff: the library, the editor, publishing -----------------------------------------------------------


@get("/policies/manage", opt=roles(*STAFF), name="policies-manage")
async def manage(request: Request, db_session: Db, settings: Config) -> Template:
    q = str(request.query_params.get("q") or "").strip()[:100]
    status = str(request.query_params.get("status") or "")
    where = [policies.search_clause(q)]
    if status in {s.value for s in PolicyStatus}:
        where.append(Policy.status == PolicyStatus(status))
    else:
        status = ""
    total = int(await db_session.scalar(select(func.count()).select_from(Policy).where(*where)) or 0)
    pages = max(1, -(-total // MANAGE_PAGE_SIZE))
    page = min(max(1, page_number(request.query_params.get("page"))), pages)
    rows = list(await db_session.scalars(
        select(Policy).where(*where).order_by(Policy.updated_at.desc(), Policy.id).offset((page - 1) * MANAGE_PAGE_SIZE).limit(MANAGE_PAGE_SIZE)
    ))

    def page_url(number: int) -> str:
        params = {k: v for k, v in (("q", q), ("status", status), ("page", number if number > 1 else "")) if v}
        return "/policies/manage" + (f"?{urlencode(params)}" if params else "")

    return render(
        request, "policies/manage.html", rows=rows, total=total, page=page, pages=pages, page_url=page_url, q=q, status=status,
        statuses=list(PolicyStatus), status_labels=STATUS_LABELS, category_labels=CATEGORY_LABELS, today=policies.today(settings.tz),
        is_expired=policies.is_expired, **local_formatters(settings.tz),
    )


def _content_from(form: Any) -> PolicyContent:
    text = {name: str(form.get(name) or "") for name in (
        "title", "summary", "category", "issuer", "document_number", "time_limit", "deadline", "department", "phone", "source_url")}
    return PolicyContent(
        title=text["title"], summary=text["summary"].strip(), category=text["category"], issuer=text["issuer"],
        document_number=text["document_number"], conditions=policies.lines(str(form.get("conditions") or "")),
        steps=policies.lines(str(form.get("steps") or "")), materials=policies.lines(str(form.get("materials") or "")),
        time_limit=text["time_limit"], deadline=text["deadline"].strip(), long_term=bool(form.get("long_term")),
        department=text["department"], phone=text["phone"], source_url=text["source_url"].strip(),
        **{f.name: [str(v) for v in form.getall(f.name, [])] for f in facets.FACETS},
    )


def _editor(
    request: Request, settings: Settings, content: PolicyContent, policy: Policy | None, *, errors: dict[str, str] | None = None,
    status_code: int = 200, publishing: bool = False,
) -> Template:
    return render(
        request, "policies/edit.html", status_code=status_code, values=content, policy=policy, errors=errors or {},
        publishing=publishing, categories=list(PolicyCategory), category_labels=CATEGORY_LABELS, status_labels=STATUS_LABELS,
        facet_list=facets.FACETS, PolicyStatus=PolicyStatus, **local_formatters(settings.tz),
    )


@get("/policies/new", opt=roles(*STAFF), name="policies-new")
async def new_policy(request: Request, settings: Config) -> Template:
    return _editor(request, settings, PolicyContent(), None)


@post("/policies/new", opt=roles(*STAFF))
async def create_policy(request: Request, db_session: Db, settings: Config) -> Template | Redirect:
    content = _content_from(await request.form())
    try:
        policy = await policies.create_draft(db_session, content)
    except InvalidPolicy as invalid:
        await db_session.rollback()
        return _editor(request, settings, content, None, errors=field_errors(invalid), status_code=400)
    await db_session.commit()
    flash(request, gettext("Draft saved. It is not public until you publish it."))
    return redirect(f"/policies/{policy.id}/edit")


@get("/policies/{policy_id:uuid}/edit", opt=roles(*STAFF), name="policies-edit")
async def edit_policy(request: Request, db_session: Db, settings: Config, policy_id: FromPath[UUID]) -> Template:
    policy = await _policy_or_404(db_session, policy_id)
    return _editor(request, settings, policies.content_of(policy), policy)


@post("/policies/{policy_id:uuid}/edit", opt=roles(*STAFF))
async def save_policy(request: Request, db_session: Db, settings: Config, policy_id: FromPath[UUID]) -> Template | Redirect:
    policy = await _policy_or_404(db_session, policy_id)
    content = _content_from(await request.form())
    try:
        await policies.save_draft(db_session, policy, content)
    except InvalidPolicy as invalid:
        await db_session.rollback()
        policy = await _policy_or_404(db_session, policy_id)
        return _editor(request, settings, content, policy, errors=field_errors(invalid), status_code=400)
    published = policy.status == PolicyStatus.PUBLISHED
    await db_session.commit()
    flash(request, gettext("Saved. The public page changes when you publish.") if published else gettext("Draft saved."))
    return redirect(f"/policies/{policy.id}/edit")


@post("/policies/{policy_id:uuid}/publish", opt=roles(*STAFF))
async def publish_policy(request: Request, db_session: Db, settings: Config, policy_id: FromPath[UUID]) -> Template | Redirect:
    """Publish what was saved; from the editor's "save and publish" button, save what it sends first.
    A refusal keeps nothing of either (the form comes back with what was typed)."""
    policy = await _policy_or_404(db_session, policy_id)
    form = await request.form()
    content = _content_from(form) if "title" in form else None
    user = current_user(request)
    try:
        if content is not None:
            await policies.save_draft(db_session, policy, content)
        revision = await policies.publish(db_session, policy, actor_id=user.id if user else None, now=utc_now())
    except InvalidPolicy as invalid:
        await db_session.rollback()
        policy = await _policy_or_404(db_session, policy_id)
        shown = content if content is not None else policies.content_of(policy)
        return _editor(request, settings, shown, policy, errors=field_errors(invalid), status_code=400, publishing=True)
    await db_session.commit()
    flash(request, gettext("Published (revision %(n)d).") % {"n": revision.revision})
    return redirect(f"/policies/{policy.id}/edit")


@post("/policies/{policy_id:uuid}/withdraw", opt=roles(*STAFF))
async def withdraw_policy(request: Request, db_session: Db, policy_id: FromPath[UUID]) -> Redirect:
    policy = await _policy_or_404(db_session, policy_id)
    try:
        await policies.withdraw(db_session, policy, now=utc_now())
    except ServiceError as error:
        await db_session.rollback()
        flash(request, error.translated())
        return redirect(f"/policies/{policy_id}/edit")
    await db_session.commit()
    flash(request, gettext("Withdrawn. The policy is no longer listed; its page says it was withdrawn."))
    return redirect(f"/policies/{policy_id}/edit")


@get("/policies/{policy_id:uuid}/preview", opt=roles(*STAFF), name="policies-preview")
async def preview_policy(request: Request, db_session: Db, settings: Config, policy_id: FromPath[UUID]) -> Template:
    policy = await _policy_or_404(db_session, policy_id)
    view = view_of(policies.content_of(policy), policies.today(settings.tz))
    return render(
        request, "policies/page.html", policy=policy, view=view, preview=True, withdrawn=False,
        faqs=await policy_questions.faqs(db_session, policy.id), values={}, errors={}, **local_formatters(settings.tz),
    )


@get("/policies/{policy_id:uuid}/revisions", opt=roles(*STAFF), name="policies-revisions")
async def policy_revisions(request: Request, db_session: Db, settings: Config, policy_id: FromPath[UUID]) -> Template:
    policy = await _policy_or_404(db_session, policy_id)
    rows = list(await db_session.scalars(
        select(PolicyRevision).where(PolicyRevision.policy_id == policy.id).order_by(PolicyRevision.revision.desc())))
    people_ids = {r.published_by_id for r in rows if r.published_by_id}
    names = dict((await db_session.execute(select(User.id, User.display_name).where(User.id.in_(people_ids)))).all()) if people_ids else {}
    today = policies.today(settings.tz)
    revisions = [(r, names.get(r.published_by_id, ""), view_of(PolicyContent.of(r.content), today)) for r in rows]
    return render(request, "policies/revisions.html", policy=policy, revisions=revisions, **local_formatters(settings.tz))


# --- Staff: questions ---------------------------------------------------------------------------------------


async def _inbox(
    request: Request, db_session: AsyncSession, settings: Settings, *, show_all: bool, values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None, failed: UUID | None = None, status_code: int = 200,
) -> Template:
    rows = await policy_questions.inbox(db_session, open_only=not show_all)
    if failed is not None and failed not in {r.id for r in rows}:
        extra = await db_session.get(PolicyQuestion, failed)
        rows = [extra, *rows] if extra else rows
    rows.sort(key=lambda r: r.status != "open")  # open first (stable: newest first within each)
    policy_ids = {r.policy_id for r in rows}
    titles = dict((await db_session.execute(select(Policy.id, Policy.title).where(Policy.id.in_(policy_ids)))).all()) if policy_ids else {}
    return render(
        request, "policies/questions.html", status_code=status_code, rows=rows, titles=titles, show_all=show_all,
        open_count=await policy_questions.open_count(db_session), status_labels=policy_questions.STATUS_LABELS,
        values=values or {}, errors=errors or {}, failed=failed, tel_href=tel_href, **local_formatters(settings.tz),
    )


@get("/policies/questions", opt=roles(*STAFF), name="policies-questions")
async def questions_inbox(request: Request, db_session: Db, settings: Config) -> Template:
    return await _inbox(request, db_session, settings, show_all=request.query_params.get("show") == "all")


@post("/policies/questions/{question_id:uuid}/answer", opt=roles(*STAFF))
async def answer_question(request: Request, db_session: Db, settings: Config, question_id: FromPath[UUID]) -> Template | Redirect:
    row = await db_session.get(PolicyQuestion, question_id)
    if row is None:
        raise NotFoundException
    form = await request.form()
    values = {"answer": str(form.get("answer") or ""), "faq": "1" if form.get("faq") else "", "faq_question": str(form.get("faq_question") or "")}
    show_all = form.get("show") == "all"
    user = current_user(request)
    try:
        await policy_questions.answer(
            db_session, row, text=values["answer"], faq=bool(values["faq"]), faq_question=values["faq_question"],
            actor_id=user.id if user else None, now=utc_now(),
        )
    except ServiceError as invalid:
        await db_session.rollback()
        return await _inbox(request, db_session, settings, show_all=show_all, values=values, errors=field_errors(invalid, "answer"),
                            failed=question_id, status_code=400)
    faq = row.is_faq
    await db_session.commit()
    flash(request, gettext("Answered; the answer is also published under the policy.") if faq else gettext("Answered."))
    return redirect("/policies/questions" + ("?show=all" if show_all else ""))


# --- QR policy guides ---------------------------------------------------------------------------------------


async def _guide_or_404(db_session: AsyncSession, slug: str) -> PolicyGuide:
    guide = await db_session.scalar(select(PolicyGuide).where(PolicyGuide.slug == slug.lower())) if len(slug) <= 48 else None
    if guide is None:
        raise NotFoundException
    return guide


QUESTION_WINDOW = 3600  # seconds
HEAD_MARK = "shanzhi.head"  # set in the scope of a HEAD request answered as a GET (server/edge.py)
# The service worker's own background save of a page (pwa/service-worker.js, savePage). Its
# revalidation of a saved copy when someone opens the page again (If-None-Match) is an open and counts.
BACKGROUND_HEADER = "x-shanzhi-background"


def _counts_as_scan(request: Request) -> bool:
    """An open of the page that reached the server: not the service worker's background save, nor a HEAD."""
    return request.method == "GET" and not request.scope.get(HEAD_MARK) and BACKGROUND_HEADER not in request.headers  # type: ignore[call-overload]


@dataclass(frozen=True)
class PublicGuide:
    id: UUID
    name: str
    description: str
    rows: list[policies.PolicyCard]
    total: int
    items_html: Markup  # the list, rendered in the language of the key


@get("/g/{slug:str}", opt=public(), name="guide-page")
async def guide_page(request: Request, settings: Config, slug: FromPath[str]) -> Template:
    today = policies.today(settings.tz)

    async def compute(session: AsyncSession) -> PublicGuide | None:
        guide = await session.scalar(select(PolicyGuide).where(PolicyGuide.slug == slug.lower())) if len(slug) <= 48 else None
        if guide is None:
            return None
        rows, total = await policies.guide_page(session, guide, today)
        items = render_part(request, "guides/_items.html", rows=rows, today=today, category_labels=CATEGORY_LABELS,
                            closing_soon=policies.closing_soon)
        return PublicGuide(guide.id, guide.name, guide.description, rows, total, items)

    shown: PublicGuide | None = await shared_part(request, policies.PAGES_TOPIC, ("guide", slug.lower(), today), compute)
    if shown is None:
        raise NotFoundException
    if _counts_as_scan(request):
        request.app.state.scan_counts.add(shown.id)
    return render(request, "guides/page.html", guide=shown, rows=shown.rows, total=shown.total, items_html=shown.items_html)


async def _leaf_places(db_session: AsyncSession) -> list[Place]:
    return list(await db_session.scalars(select(Place).where(Place.kind.in_(LEAF_KINDS)).order_by(Place.name)))


async def _audiences(db_session: AsyncSession, guides: list[PolicyGuide]) -> dict[UUID, tuple[list[FacetLine], str | None]]:
    place_ids = {g.place_id for g in guides if g.place_id}
    names = dict((await db_session.execute(select(Place.id, Place.name).where(Place.id.in_(place_ids)))).all()) if place_ids else {}
    return {g.id: ([line for line in facet_lines(facets.lists_of(g)) if line.values], names.get(g.place_id)) for g in guides}


@get("/guides", opt=roles(*STAFF), name="guide-list")
async def guide_list(request: Request, db_session: Db) -> Template:
    guides = list(await db_session.scalars(select(PolicyGuide).order_by(PolicyGuide.name, PolicyGuide.slug)))
    # Opens counted in this process and not written yet are added, so the figure is current.
    return render(request, "guides/list.html", guides=guides, audiences=await _audiences(db_session, guides),
                  unsaved=request.app.state.scan_counts.unsaved)


def _guide_values(guide: PolicyGuide | None) -> dict[str, Any]:
    if guide is None:
        return {"slug": "", "name": "", "description": "", "place_id": "", **{f.name: [] for f in facets.FACETS}}
    return {"slug": guide.slug, "name": guide.name, "description": guide.description, "place_id": str(guide.place_id or ""),
            **facets.lists_of(guide)}


async def _guide_editor(
    request: Request, db_session: AsyncSession, values: dict[str, Any], guide: PolicyGuide | None, *,
    errors: dict[str, str] | None = None, status_code: int = 200,
) -> Template:
    return render(
        request, "guides/edit.html", status_code=status_code, values=values, guide=guide, errors=errors or {},
        facet_list=facets.FACETS, places=await _leaf_places(db_session),
    )


def _guide_input(form: Any) -> tuple[dict[str, Any], GuideInput, dict[str, str]]:
    values: dict[str, Any] = {name: str(form.get(name) or "") for name in ("slug", "name", "description", "place_id")}
    values.update({f.name: [str(v) for v in form.getall(f.name, [])] for f in facets.FACETS})
    errors: dict[str, str] = {}
    place_id = None
    if values["place_id"]:
        try:
            place_id = UUID(values["place_id"])
        except ValueError:
            errors["place_id"] = gettext("This place does not exist.")
    data = GuideInput(slug=values["slug"], name=values["name"], description=values["description"], place_id=place_id,
                      **{f.name: values[f.name] for f in facets.FACETS})
    return values, data, errors


async def _save_guide(request: Request, db_session: AsyncSession, guide: PolicyGuide | None) -> Template | Redirect:
    slug = guide.slug if guide is not None else None
    values, data, errors = _guide_input(await request.form())
    if not errors:
        try:
            saved = await policies.save_guide(db_session, data, guide)
        except InvalidPolicy as invalid:
            errors = field_errors(invalid)
        else:
            await db_session.commit()
            flash(request, gettext("Guide saved."))
            return redirect(f"/guides/{saved.slug}/edit")
    await db_session.rollback()
    if slug is not None:
        guide = await db_session.scalar(select(PolicyGuide).where(PolicyGuide.slug == slug).execution_options(populate_existing=True))
    return await _guide_editor(request, db_session, values, guide, errors=errors, status_code=400)


@get("/guides/new", opt=roles(*STAFF), name="guides-new")
async def new_guide(request: Request, db_session: Db) -> Template:
    return await _guide_editor(request, db_session, _guide_values(None), None)


@post("/guides/new", opt=roles(*STAFF))
async def create_guide(request: Request, db_session: Db) -> Template | Redirect:
    return await _save_guide(request, db_session, None)


@get("/guides/{slug:str}/edit", opt=roles(*STAFF), name="guides-edit")
async def edit_guide(request: Request, db_session: Db, slug: FromPath[str]) -> Template:
    guide = await _guide_or_404(db_session, slug)
    return await _guide_editor(request, db_session, _guide_values(guide), guide)


@post("/guides/{slug:str}/edit", opt=roles(*STAFF))
async def save_guide(request: Request, db_session: Db, slug: FromPath[str]) -> Template | Redirect:
    guide = await _guide_or_404(db_session, slug)
    return await _save_guide(request, db_session, guide)


@get("/guides/{slug:str}/poster", opt=roles(*POSTER_ROLES), name="guides-poster")
async def guide_poster(request: Request, db_session: Db, settings: Config, slug: FromPath[str]) -> Template:
    guide = await _guide_or_404(db_session, slug)
    rows = await policies.guide_policies(db_session, guide, policies.today(settings.tz))
    url = public_url(request, f"/g/{guide.slug}")
    svg = qr_svg(url, gettext("QR code of the policy guide %(name)s") % {"name": guide.name})
    return render(request, "guides/poster.html", guide=guide, url=url, svg=svg, titles=[p.title for p in rows[:POSTER_TITLES]],
                  more=max(0, len(rows) - POSTER_TITLES))


route_handlers = [
    policy_list, manage, new_policy, create_policy, questions_inbox, answer_question,
    policy_page, ask_question, question_page, edit_policy, save_policy, publish_policy, withdraw_policy, preview_policy,
    policy_revisions, guide_page, guide_list, new_guide, create_guide, edit_guide, save_guide, guide_poster,
]
