"""The enterprise policy service (惠企政策, P1-P6): policies and their published revisions, QR policy
guides, the enterprise registry, policy pushes with their outcomes, events, and one-on-one questions.

Applicability facets are bit masks (server/services/policy_facets.py): 0 means "all".
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import BigInteger, Boolean, Date, Enum, ForeignKey, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import AuditedBase
from server.models.feed import ChangeFeed


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])


class PolicyCategory(enum.StrEnum):
    INDUSTRY_SUPPORT = "industry_support"  # 产业扶持
    TAX = "tax"  # 税收优惠
    TALENT = "talent"  # 人才引进
    EMPLOYMENT = "employment"  # 就业创业
    SOCIAL_INSURANCE = "social_insurance"  # 社保补贴
    QUALIFICATION = "qualification"  # 资质申报


class PolicyStatus(enum.StrEnum):
    DRAFT = "draft"  # 草稿: never published
    PUBLISHED = "published"  # 已发布
    WITHDRAWN = "withdrawn"  # 已撤回


class FacetMasks:
    """The four applicability masks of a policy or a guide (0 = every value)."""

    industry_mask: Mapped[int] = mapped_column(Integer, default=0)
    size_mask: Mapped[int] = mapped_column(Integer, default=0)
    stage_mask: Mapped[int] = mapped_column(Integer, default=0)
    place_mask: Mapped[int] = mapped_column(Integer, default=0)


class Policy(ChangeFeed, FacetMasks, AuditedBase):
    """A policy as the public sees it (or, while a draft, as staff are writing it). Edits of a
    published policy wait in `pending` until they are published as the next revision."""

    __tablename__ = "policy"

    title: Mapped[str] = mapped_column(String(120))
    summary: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[PolicyCategory] = mapped_column(_enum(PolicyCategory), index=True)
    issuer: Mapped[str] = mapped_column(String(120), default="")
    document_number: Mapped[str] = mapped_column(String(64), default="")
    conditions: Mapped[list[Any]] = mapped_column(JsonB, default=list)  # 申报条件
    steps: Mapped[list[Any]] = mapped_column(JsonB, default=list)  # 办理流程, in order
    materials: Mapped[list[Any]] = mapped_column(JsonB, default=list)  # 所需材料
    time_limit: Mapped[str] = mapped_column(String(120), default="")  # 办结时限
    deadline: Mapped[date | None] = mapped_column(Date, index=True)  # 申报截止 (last day, Asia/Shanghai)
    long_term: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # 长期有效
    department: Mapped[str] = mapped_column(String(120), default="")  # 责任部门
    phone: Mapped[str] = mapped_column(String(40), default="")  # 咨询电话
    source_url: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[PolicyStatus] = mapped_column(_enum(PolicyStatus), default=PolicyStatus.DRAFT, index=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)  # the last published revision (0: never)
    first_published_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    revised_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), index=True)  # 更新于
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    pending: Mapped[dict[str, Any] | None] = mapped_column(JsonB, default=None)  # unpublished edits
    version: Mapped[int] = mapped_column(Integer, default=1)


class PolicyRevision(AuditedBase):
    """Every published version of a policy, as it was published (kept forever)."""

    __tablename__ = "policy_revision"
    __table_args__ = (UniqueConstraint("policy_id", "revision"),)

    policy_id: Mapped[UUID] = mapped_column(ForeignKey("policy.id", ondelete="CASCADE"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict[str, Any]] = mapped_column(JsonB)
    published_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    published_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))


class PolicyGuide(FacetMasks, AuditedBase):
    """A QR policy guide (政策指南二维码): a named audience whose page lists the policies for it."""

    __tablename__ = "policy_guide"

    slug: Mapped[str] = mapped_column(String(48), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    place_id: Mapped[UUID | None] = mapped_column(ForeignKey("place.id", ondelete="SET NULL"), index=True)
    # Opens of the page from the network that were not a saved copy's revalidation (nothing personal kept).
    scan_count: Mapped[int] = mapped_column(BigInteger, default=0)


class Enterprise(ChangeFeed, AuditedBase):
    """An enterprise of the subdistrict (P3). Contacts are personal data: staff and its grid worker only."""

    __tablename__ = "enterprise"

    credit_code: Mapped[str] = mapped_column(String(18), unique=True)  # 统一社会信用代码
    name: Mapped[str] = mapped_column(String(200), index=True)
    industry: Mapped[str | None] = mapped_column(String(1))  # GB/T 4754 section letter
    size: Mapped[str | None] = mapped_column(String(16))
    stage: Mapped[str | None] = mapped_column(String(16))
    registered_on: Mapped[date | None] = mapped_column(Date)
    place_id: Mapped[UUID | None] = mapped_column(ForeignKey("place.id", ondelete="SET NULL"), index=True)
    is_key: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # 重点企业
    contact_name: Mapped[str | None] = mapped_column(String(60))
    contact_phone: Mapped[str | None] = mapped_column(String(32))
    grid_worker_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"), index=True)
    # 四级包联: {"leader": name, "cppcc": name, "section_head": name, "community": name}
    liaisons: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    last_visited_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)


class PushOutcome(enum.StrEnum):
    PUSHED = "pushed"  # 已推送 (no outcome yet)
    APPLIED = "applied"  # 已申报
    GRANTED = "granted"  # 已获批
    INELIGIBLE = "ineligible"  # 不符合条件


class PolicyPush(ChangeFeed, AuditedBase):
    """One policy pushed to one enterprise (政策上门), on a visit or by staff, and what came of it."""

    __tablename__ = "policy_push"

    enterprise_id: Mapped[UUID] = mapped_column(ForeignKey("enterprise.id", ondelete="CASCADE"), index=True)
    policy_id: Mapped[UUID] = mapped_column(ForeignKey("policy.id", ondelete="CASCADE"), index=True)
    visit_id: Mapped[UUID | None] = mapped_column(ForeignKey("visit.id", ondelete="SET NULL"), index=True)
    pushed_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    pushed_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    matched: Mapped[bool] = mapped_column(Boolean, default=True)  # did the enterprise match when pushed
    reason: Mapped[str | None] = mapped_column(Text)  # why a policy it did not match was pushed
    outcome: Mapped[PushOutcome] = mapped_column(_enum(PushOutcome), default=PushOutcome.PUSHED, index=True)
    amount_yuan: Mapped[int | None] = mapped_column(BigInteger)  # granted amount
    outcome_note: Mapped[str | None] = mapped_column(Text)
    outcome_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    outcome_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    version: Mapped[int] = mapped_column(Integer, default=1)


class EventKind(enum.StrEnum):
    POLICY_EXPRESS = "policy_express"  # 政策直通车
    OPEN_DAY = "open_day"  # 政府开放日
    OPEN_MIC = "open_mic"  # 楼宇开放麦
    FACE_TO_FACE = "face_to_face"  # 民生面对面
    XINGHUO = "xinghuo"  # 星火小屋议事


class CommunityEvent(AuditedBase):
    """An event where the subdistrict meets enterprises or residents (P5); appeals raised there point here."""

    __tablename__ = "community_event"

    kind: Mapped[EventKind] = mapped_column(_enum(EventKind), index=True)
    topic: Mapped[str] = mapped_column(String(120))
    starts_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    place_id: Mapped[UUID | None] = mapped_column(ForeignKey("place.id", ondelete="SET NULL"), index=True)
    venue: Mapped[str] = mapped_column(String(200), default="")
    host: Mapped[str] = mapped_column(String(120), default="")
    supervisors: Mapped[list[Any]] = mapped_column(JsonB, default=list)  # invited 监督员, names as published
    attendance: Mapped[int | None] = mapped_column(Integer)
    minutes: Mapped[str | None] = mapped_column(Text)
    photos: Mapped[list[Any]] = mapped_column(JsonB, default=list)  # sha256 of stored photos


class QuestionStatus(enum.StrEnum):
    OPEN = "open"  # 待答复
    ANSWERED = "answered"  # 已答复


class PolicyQuestion(AuditedBase):
    """A one-on-one question about a policy (P6), asked without an account and followed by its code."""

    __tablename__ = "policy_question"

    policy_id: Mapped[UUID] = mapped_column(ForeignKey("policy.id", ondelete="CASCADE"), index=True)
    tracking_code: Mapped[str] = mapped_column(String(32), unique=True)
    question: Mapped[str] = mapped_column(Text)
    enterprise_name: Mapped[str | None] = mapped_column(String(200))
    contact_name: Mapped[str | None] = mapped_column(String(60))
    contact_phone: Mapped[str | None] = mapped_column(String(32))
    asked_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    status: Mapped[QuestionStatus] = mapped_column(_enum(QuestionStatus), default=QuestionStatus.OPEN, index=True)
    answer: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    answered_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    is_faq: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # shown under the policy
    faq_question: Mapped[str | None] = mapped_column(Text)  # the question as published (edited of anything personal)
