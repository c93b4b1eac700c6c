"""Open311 GeoReport v2 (A9) under /open311/, and the admin page that manages its API keys.

Paths end in .json or .xml (the spec's format suffix). Litestar parameters are whole path segments,
so the fixed resources are declared once per format and the ones with an id take the whole last
segment ("2026-00042.xml") and split the suffix off themselves.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from server.errors import MESSAGES
from server.i18n import N_, gettext as _
from server.models import Role
from server.security import public, roles
from server.services import api_keys, open311
from server.services.appeals import utc_now
from server.services.deadlines import TimeLimits
from server.services.errors import ServiceError
from server.services.open311 import Open311Error
from server.settings import Settings
from server.web import public_url, redirect, render

# Litestar adds "; charset=utf-8" to text/* types itself.
FORMATS = {"json": "application/json; charset=utf-8", "xml": "text/xml"}
XML_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'
# XML element names of list items (the spec's XML; JSON uses plain arrays, the "Spark convention").
ITEM_TAGS = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
}
# When the service list or definitions last changed: clients refresh cached service data when it moves.
CHANGESET = "2026-11-26 00:00"


def _element(tag: str, value: Any) -> ET.Element:
    element = ET.Element(tag)
    if isinstance(value, list):
        element.extend(_element(ITEM_TAGS[tag], item) for item in value)
    elif isinstance(value, dict):
        element.extend(_element(key, item) for key, item in value.items())
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(value)
    return element


def respond(fmt: str, root: str, body: Any, status_code: int = 200) -> Response[bytes]:
    """The body as JSON, or as XML under the element `root`; UTF-8 either way, as the spec requires."""
    if fmt == "json":
        content = json.dumps(body, ensure_ascii=False).encode("utf-8")
    else:
        content = XML_DECLARATION + ET.tostring(_element(root, body), encoding="utf-8", xml_declaration=False)
    return Response(content, status_code=status_code, media_type=FORMATS[fmt])


def format_of(path: str) -> str:
    """json when the path ends in .json; otherwise xml, the format every GeoReport server must speak."""
    return "json" if path.endswith(".json") else "xml"


def split_name(name: str) -> tuple[str, str]:
    """("2026-00042", "xml") from "2026-00042.xml"; an unknown or missing suffix is not a resource."""
    stem, _dot, fmt = name.rpartition(".")
    if not stem or fmt not in FORMATS:
        raise Open311Error(404, ServiceError(N_("Unknown format: add .json or .xml to the address.")))
    return stem, fmt


def open311_error(request: Request, exc: Open311Error) -> Response[bytes]:
    errors = [{"code": exc.status, "description": error.translated()} for error in exc.errors]
    return respond(format_of(request.url.path), "errors", errors, exc.status)


def http_error(request: Request, exc: HTTPException) -> Response[bytes]:
    status = exc.status_code if exc.status_code in MESSAGES else 400
    errors = [{"code": status, "description": _(MESSAGES[status][1])}]
    return respond(format_of(request.url.path), "errors", errors, status)


def _discovery_body(request: Request) -> dict[str, Any]:
    base = public_url(request, "")
    return {
        "changeset": CHANGESET,
        "contact": _("Jiefanglu Subdistrict Office, Lixia District, Jinan"),
        "key_service": _("API keys for submitting requests are issued by the subdistrict's administrators."),
        "endpoints": [
            {
                "specification": open311.SPECIFICATION,
                "url": f"{base}/open311/v2",
                "changeset": CHANGESET,
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }
        ],
    }


@get(["/discovery.json", "/discovery.xml"], opt=public(), skip_session=True)
async def discovery(request: Request) -> Response[bytes]:
    return respond(format_of(request.url.path), "discovery", _discovery_body(request))


@get(["/v2/services.json", "/v2/services.xml"], opt=public(), skip_session=True)
async def service_list(request: Request) -> Response[bytes]:
    return respond(format_of(request.url.path), "services", open311.services())


@get("/v2/services/{name:str}", opt=public(), skip_session=True)
async def service_definition(name: FromPath[str]) -> Response[bytes]:
    code, fmt = split_name(name)
    return respond(fmt, "service_definition", open311.service_definition(code))


@get(["/v2/requests.json", "/v2/requests.xml"], opt=public(), skip_session=True)
async def request_list(
    request: Request, db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
) -> Response[bytes]:
    params = {key: request.query_params.get(key, "") for key in request.query_params}
    query = open311.parse_query(params, tz=settings.tz, now=utc_now())
    partner = await api_keys.verify(db_session, params.get("api_key")) is not None
    found = await open311.find_requests(db_session, query, tz=settings.tz, partner=partner)
    return respond(format_of(request.url.path), "service_requests", found)


@post(["/v2/requests.json", "/v2/requests.xml"], opt=public(), status_code=200, skip_session=True)
async def create_request(
    request: Request, db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
) -> Response[bytes]:
    form = {key: str(value) for key, value in (await request.form()).items()}
    key = await api_keys.verify(db_session, form.get("api_key") or request.query_params.get("api_key"))
    if key is None:
        raise Open311Error(403, ServiceError(N_("Missing or invalid api_key: a request can only be created with a valid key.")))
    appeal = await open311.submit_request(
        db_session, form, client=key.name, limits=TimeLimits.from_settings(settings), uploads_dir=settings.uploads_dir
    )
    notice = _(
        "Received. We respond within %(hours)d hours and resolve within %(days)d days. "
        "The submitter can follow the case at %(url)s"
    ) % {
        "hours": settings.appeal_response_hours,
        "days": settings.appeal_resolve_days,
        "url": public_url(request, f"/track/{appeal.tracking_code}"),
    }
    body = [{"service_request_id": appeal.reference, "service_notice": notice, "account_id": form.get("account_id") or None}]
    return respond(format_of(request.url.path), "service_requests", body)


@get("/v2/requests/{name:str}", opt=public(), skip_session=True)
async def request_detail(
    request: Request, name: FromPath[str], db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
) -> Response[bytes]:
    reference, fmt = split_name(name)
    partner = await api_keys.verify(db_session, request.query_params.get("api_key")) is not None
    return respond(fmt, "service_requests", [await open311.get_request(db_session, reference, tz=settings.tz, partner=partner)])


@get("/v2/tokens/{name:str}", opt=public(), skip_session=True)
async def token_detail(name: FromPath[str]) -> Response[bytes]:
    """Every service is "realtime": a POST returns the service_request_id at once and no token is ever issued."""
    token, _fmt = split_name(name)
    raise Open311Error(
        404, ServiceError(N_("token %(token)s was not found: requests are created in real time and no tokens are issued."), token=token)
    )


open311_router = Router(
    path="/open311",
    route_handlers=[discovery, service_list, service_definition, request_list, create_request, request_detail, token_detail],
    exception_handlers={Open311Error: open311_error, HTTPException: http_error},  # type: ignore[dict-item]
)


# ---------- Admin: API keys ----------


@dataclass
class KeyForm:
    name: str = ""


def _key_page(request: Request, settings: Settings, keys: list[Any], **context: Any) -> Template:
    def local(moment: datetime | None) -> str:
        return moment.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M") if moment else ""

    context.setdefault("name", "")
    return render(request, "open311/api_keys.html", keys=keys, local=local, **context)


@get("/admin/api-keys", opt=roles(Role.ADMIN))
async def api_keys_page(
    request: Request, db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
) -> Template:
    return _key_page(request, settings, await api_keys.list_keys(db_session))


@post("/admin/api-keys", opt=roles(Role.ADMIN), status_code=200)
async def create_api_key(
    request: Request,
    db_session: NamedDependency[AsyncSession],
    settings: NamedDependency[Settings],
    data: Annotated[KeyForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Template:
    """Shows the new key on this response only (no redirect): it is never stored and cannot be shown again."""
    try:
        key, plaintext = await api_keys.create(db_session, data.name)
    except ServiceError as error:
        keys = await api_keys.list_keys(db_session)
        return _key_page(request, settings, keys, status_code=400, name=data.name, error=error.translated())
    keys = await api_keys.list_keys(db_session)
    return _key_page(request, settings, keys, new_key=plaintext, new_key_name=key.name)


@post("/admin/api-keys/{key_id:uuid}/revoke", opt=roles(Role.ADMIN))
async def revoke_api_key(key_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]) -> Redirect:
    if await api_keys.revoke(db_session, key_id) is None:
        raise NotFoundException
    return redirect("/admin/api-keys")


route_handlers = [open311_router, api_keys_page, create_api_key, revoke_api_key]
