"""One-on-one questions about a policy (P6): asked without an account, followed by an unguessable code,
answered by staff; an answer may be published as a FAQ under the policy (the question as published is
the staff's wording, so nothing personal reaches the public page)."""

from __future__ import annotations

import secrets
from datetime import datetime
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import N_
from server.models import Policy, PolicyQuestion, PolicyStatus, QuestionStatus
from server.services.errors import InvalidInput, ServiceError

MAX_QUESTION = 1000
MAX_ANSWER = 4000
TRACKING_BYTES = 16
STATUS_LABELS = {QuestionStatus.OPEN: N_("Waiting for an answer"), QuestionStatus.ANSWERED: N_("Answered")}


class InvalidQuestion(InvalidInput):
    pass


async def ask(session: AsyncSession, policy: Policy, *, question: str, enterprise_name: str = "", contact_name: str = "",
              contact_phone: str = "", now: datetime) -> PolicyQuestion:
    problems = []
    text = question.strip()
    if policy.status != PolicyStatus.PUBLISHED:
        problems.append(ServiceError(N_("This policy is not open for questions.")))
    if not text:
        problems.append(ServiceError(N_("Please write your question."), field="question"))
    elif len(text) > MAX_QUESTION:
        problems.append(ServiceError(N_("Please keep the question under %(n)d characters."), field="question", n=MAX_QUESTION))
    if len(enterprise_name) > 200 or len(contact_name) > 60 or len(contact_phone) > 32:
        problems.append(ServiceError(N_("The contact is too long."), field="contact_name"))
    if problems:
        raise InvalidQuestion(problems)
    row = PolicyQuestion(
        policy_id=policy.id, tracking_code=secrets.token_urlsafe(TRACKING_BYTES), question=text,
        enterprise_name=enterprise_name.strip() or None, contact_name=contact_name.strip() or None,
        contact_phone=contact_phone.strip() or None, asked_at=now, status=QuestionStatus.OPEN,
    )
    session.add(row)
    await session.flush()
    return row


async def answer(session: AsyncSession, row: PolicyQuestion, *, text: str, faq: bool, faq_question: str = "",
                 actor_id: UUID | None, now: datetime) -> PolicyQuestion:
    problems = []
    body = text.strip()
    if not body:
        problems.append(ServiceError(N_("Please write the answer."), field="answer"))
    elif len(body) > MAX_ANSWER:
        problems.append(ServiceError(N_("Please keep the answer under %(n)d characters."), field="answer", n=MAX_ANSWER))
    public_question = (faq_question or "").strip()
    if faq and not public_question:
        problems.append(ServiceError(N_("Write the question as it should appear in the public FAQ (without names or phone numbers)."),
                                     field="faq_question"))
    if problems:
        raise InvalidQuestion(problems)
    row.answer, row.status = body, QuestionStatus.ANSWERED
    row.answered_at, row.answered_by_id = row.answered_at or now, actor_id
    row.is_faq = faq
    row.faq_question = public_question if faq else None
    await session.flush()
    return row


async def by_code(session: AsyncSession, code: str) -> PolicyQuestion | None:
    if not code or len(code) > 64:
        return None
    return await session.scalar(select(PolicyQuestion).where(PolicyQuestion.tracking_code == code))


async def faqs(session: AsyncSession, policy_id: UUID) -> list[PolicyQuestion]:
    return list(await session.scalars(select(PolicyQuestion).where(
        PolicyQuestion.policy_id == policy_id, PolicyQuestion.is_faq.is_(True)).order_by(PolicyQuestion.answered_at)))


async def inbox(session: AsyncSession, *, open_only: bool = True, limit: int = 200) -> list[PolicyQuestion]:
    query = select(PolicyQuestion).order_by(PolicyQuestion.asked_at.desc()).limit(limit)
    if open_only:
        query = query.where(PolicyQuestion.status == QuestionStatus.OPEN)
    return list(await session.scalars(query))


async def open_count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(PolicyQuestion).where(PolicyQuestion.status == QuestionStatus.OPEN)) or 0)
