"""The appeal categories offered to enterprises and residents (A1); also the Open311 service list."""

from __future__ import annotations

from dataclasses import dataclass

from server.i18n import N_
from server.models import SubmitterKind


@dataclass(frozen=True)
class Category:
    code: str
    label: str  # msgid
    audience: SubmitterKind
    description: str  # msgid, shown as a hint and as the Open311 description


CATEGORIES: list[Category] = [
    # Enterprises (seed: 注册变更、人才申报、资质办理、停车、就餐 …)
    Category("registration", N_("Business registration changes"), SubmitterKind.ENTERPRISE, N_("Changing a company's registration, address or scope")),
    Category("talent", N_("Talent programmes"), SubmitterKind.ENTERPRISE, N_("Talent recognition and applications")),
    Category("qualification", N_("Licences and qualifications"), SubmitterKind.ENTERPRISE, N_("Applying for or renewing licences and qualifications")),
    Category("policy", N_("Policy questions"), SubmitterKind.ENTERPRISE, N_("Which support policies apply and how to apply")),
    Category("parking", N_("Parking"), SubmitterKind.ENTERPRISE, N_("Parking spaces around buildings and parks")),
    Category("dining", N_("Staff dining"), SubmitterKind.ENTERPRISE, N_("Meals for employees near the workplace")),
    Category("enterprise_other", N_("Other (enterprise)"), SubmitterKind.ENTERPRISE, N_("Any other request from an enterprise")),
    # Residents (seed: 加装电梯、养老服务、环境整治、物业、公共设施维修、邻里矛盾 …)
    Category("elevator", N_("Adding a lift"), SubmitterKind.RESIDENT, N_("Adding or renewing a lift in an old building")),
    Category("elderly_care", N_("Elderly care"), SubmitterKind.RESIDENT, N_("Care and services for older residents")),
    Category("environment", N_("Environment and sanitation"), SubmitterKind.RESIDENT, N_("Rubbish, cleanliness, greenery and noise")),
    Category("property", N_("Property management"), SubmitterKind.RESIDENT, N_("Service and fees of the property company")),
    Category("facilities", N_("Public facility repairs"), SubmitterKind.RESIDENT, N_("Broken lights, roads, pipes and other shared facilities")),
    Category("neighbours", N_("Neighbour disputes"), SubmitterKind.RESIDENT, N_("Disagreements between neighbours")),
    Category("resident_other", N_("Other (resident)"), SubmitterKind.RESIDENT, N_("Any other request from a resident")),
]

BY_CODE: dict[str, Category] = {c.code: c for c in CATEGORIES}


def categories_for(audience: SubmitterKind) -> list[Category]:
    return [c for c in CATEGORIES if c.audience is audience]
