"""Open311 GeoReport v2 (A9): every endpoint in JSON and XML, creating requests with an API key, errors per spec."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from httpx import Response
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.cli import main
from server.models import Appeal, AppealChannel, ApiKey, Place, PlaceKind, Role, SubmitterKind
from server.services import api_keys, appeals, places
from server.services.appeal_catalog import CATEGORIES
from server.services.appeal_workflow import Action
from server.services.appeals import ActionInput, Actor, AppealInput
from server.services.deadlines import TimeLimits
from server.settings import Settings, get_settings
from tests.conftest import TEST_PASSWORD, run_isolated
from tests.helpers import Web

V2 = "/open311/v2"
REFERENCE_RE = re.compile(r"^\d{4}-\d{5}$")
STAFF = Actor(principal=Role.STAFF, label="李主任")


@dataclass
class World:
    key: str
    compound: Place
    recent: Appeal  # received an hour ago, open
    resolved: Appeal  # received two days ago, resolved: closed in Open311 terms
    old: Appeal  # received 200 days ago, rejected


async def _submit(db: AsyncSession, settings: Settings, at: datetime, category: str, place: Place | None, **personal: str) -> Appeal:
    data = AppealInput(
        channel=AppealChannel.SUGGESTION_BOX, submitter_kind=SubmitterKind.RESIDENT, category=category,
        description="楼道灯坏了很久了", place_id=place.id if place else None, **personal,
    )
    return await appeals.submit(
        db, data, actor=Actor.submitter(), limits=TimeLimits.from_settings(settings), uploads_dir=settings.uploads_dir,
        clock=lambda: at,
    )


async def _act(db: AsyncSession, settings: Settings, appeal: Appeal, at: datetime, action: Action, **payload: Any) -> None:
    await appeals.act(db, appeal, action, STAFF, ActionInput(**payload), limits=TimeLimits.from_settings(settings), clock=lambda: at)


@pytest.fixture
async def world(db: AsyncSession, settings: Settings) -> World:
    await appeals.seed_departments(db)
    subdistrict = await places.create_place(db, kind=PlaceKind.SUBDISTRICT, name="解放路街道")
    community = await places.create_place(db, kind=PlaceKind.COMMUNITY, name="文华园社区", parent=subdistrict)
    grid = await places.create_place(db, kind=PlaceKind.GRID, name="文华园第一网格", parent=community)
    compound = await places.create_place(db, kind=PlaceKind.RESIDENTIAL_COMPOUND, name="文华园小区", parent=grid)
    now = datetime.now(UTC)
    recent = await _submit(db, settings, now - timedelta(hours=1), "facilities", compound,
                           submitter_name="欧阳娜娜", submitter_phone="13912345678", location_detail="3号楼2单元501")
    resolved = await _submit(db, settings, now - timedelta(days=2), "environment", None)
    await _act(db, settings, resolved, now - timedelta(days=2) + timedelta(hours=1), Action.ACCEPT)
    await _act(db, settings, resolved, now - timedelta(days=1), Action.RESOLVE, note="已清理")
    old = await _submit(db, settings, now - timedelta(days=200), "property", compound)
    await _act(db, settings, old, now - timedelta(days=200) + timedelta(hours=2), Action.REJECT, note="重复")
    _row, key = await api_keys.create(db, "12345热线平台")
    await db.commit()
    return World(key, compound, recent, resolved, old)


def xml_of(response: Response) -> ET.Element:
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert response.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    return ET.fromstring(response.content)


def json_of(response: Response) -> Any:
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    return response.json()


def assert_errors_json(response: Response, status: int) -> str:
    assert response.status_code == status
    errors = json_of(response)
    assert isinstance(errors, list) and errors
    assert {e["code"] for e in errors} == {status}
    return " ".join(e["description"] for e in errors)


def assert_errors_xml(response: Response, status: int) -> str:
    assert response.status_code == status
    root = xml_of(response)
    assert root.tag == "errors"
    assert [e.findtext("code") for e in root.findall("error")] == [str(status)] * len(root.findall("error"))
    return " ".join(e.findtext("description") or "" for e in root.findall("error"))


async def count_appeals(db: AsyncSession) -> int:
    return int(await db.scalar(select(func.count(Appeal.id))) or 0)


# ---------- discovery and services ----------


async def test_discovery_in_json_and_xml(client: AsyncTestClient) -> None:
    body = json_of(await client.get("/open311/discovery.json"))
    assert set(body) == {"changeset", "contact", "key_service", "endpoints"}
    [endpoint] = body["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"] == "http://testserver.local/open311/v2"
    assert endpoint["formats"] == ["text/xml", "application/json"]
    root = xml_of(await client.get("/open311/discovery.xml"))
    assert root.tag == "discovery"
    assert root.findtext("endpoints/endpoint/url") == "http://testserver.local/open311/v2"
    assert [f.text for f in root.findall("endpoints/endpoint/formats/format")] == ["text/xml", "application/json"]


async def test_service_list_in_json_and_xml(client: AsyncTestClient) -> None:
    await client.get("/lang/en")
    services = json_of(await client.get(f"{V2}/services.json"))
    assert [s["service_code"] for s in services] == [c.code for c in CATEGORIES]
    parking = next(s for s in services if s["service_code"] == "parking")
    assert parking == {
        "service_code": "parking", "service_name": "Parking", "description": "Parking spaces around buildings and parks",
        "metadata": False, "type": "realtime", "keywords": "Parking, parking, enterprise", "group": "enterprise",
    }
    root = xml_of(await client.get(f"{V2}/services.xml"))
    assert root.tag == "services"
    elevator = next(s for s in root.findall("service") if s.findtext("service_code") == "elevator")
    assert (elevator.findtext("metadata"), elevator.findtext("type"), elevator.findtext("group")) == ("false", "realtime", "resident")
    assert elevator.findtext("service_name") == "Adding a lift"


async def test_service_definition_in_json_and_xml(client: AsyncTestClient) -> None:
    assert json_of(await client.get(f"{V2}/services/parking.json")) == {"service_code": "parking", "attributes": []}
    root = xml_of(await client.get(f"{V2}/services/elevator.xml"))
    assert root.tag == "service_definition"
    assert root.findtext("service_code") == "elevator"
    assert root.find("attributes") is not None and list(root.find("attributes")) == []  # type: ignore[arg-type]


async def test_unknown_service_definition_is_404(client: AsyncTestClient) -> None:
    assert "potholes" in assert_errors_json(await client.get(f"{V2}/services/potholes.json"), 404)
    assert "potholes" in assert_errors_xml(await client.get(f"{V2}/services/potholes.xml"), 404)
    assert_errors_xml(await client.get(f"{V2}/services/parking.html"), 404)


# ---------- POST requests ----------


def post_fields(key: str | None, **changes: str) -> dict[str, str]:
    fields = {
        "service_code": "facilities", "description": "小区门口路灯不亮，晚上很不安全", "address_string": "文华园小区东门旁边",
        "first_name": "娜娜", "last_name": "欧阳", "phone": "13800001111", "email": "nana@example.com",
        "account_id": "acct-7", "device_id": "dev-1",
    }
    if key is not None:
        fields["api_key"] = key
    return {k: v for k, v in {**fields, **changes}.items() if v is not None}


async def test_post_creates_an_appeal_through_the_intake_service(client: AsyncTestClient, db: AsyncSession, world: World) -> None:
    response = await client.post(f"{V2}/requests.json", data=post_fields(world.key, address_id=world.compound.code))
    assert response.status_code == 200, response.text
    [created] = json_of(response)
    assert set(created) == {"service_request_id", "service_notice", "account_id"}
    assert REFERENCE_RE.match(created["service_request_id"])
    assert created["account_id"] == "acct-7"
    appeal = await appeals.get_by_reference(db, created["service_request_id"])
    assert appeal is not None
    assert f"/track/{appeal.tracking_code}" in created["service_notice"]
    assert (appeal.channel, appeal.category, appeal.submitter_kind) == (AppealChannel.OPEN311, "facilities", SubmitterKind.RESIDENT)
    assert (appeal.submitter_name, appeal.submitter_phone) == ("娜娜 欧阳", "13800001111")
    assert (appeal.place_id, appeal.location_detail) == (world.compound.id, "文华园小区东门旁边")
    # The new request is visible to anyone, without the personal data.
    shown = await client.get(f"{V2}/requests/{created['service_request_id']}.json")
    [request] = json_of(shown)
    assert (request["status"], request["service_code"], request["address_id"]) == ("open", "facilities", world.compound.code)
    assert request["address"] == "文华园小区, 文华园社区"
    for private in ["娜娜", "欧阳", "13800001111", "nana@example.com", "东门", "路灯不亮", appeal.tracking_code]:
        assert private not in shown.text


async def test_post_in_xml_with_coordinates(client: AsyncTestClient, db: AsyncSession, world: World) -> None:
    fields = post_fields(world.key, address_string="", lat="36.6651", long="117.0342", service_code="talent")
    response = await client.post(f"{V2}/requests.xml", data=fields)
    assert response.status_code == 200, response.text
    root = xml_of(response)
    assert root.tag == "service_requests"
    reference = root.findtext("request/service_request_id")
    assert reference and REFERENCE_RE.match(reference)
    appeal = await appeals.get_by_reference(db, reference)
    assert appeal is not None
    assert appeal.location_detail == "36.665100, 117.034200"
    assert appeal.submitter_kind is SubmitterKind.ENTERPRISE


@pytest.mark.parametrize("key", [None, "", "sz311_not-a-real-key"])
async def test_post_without_a_valid_key_is_403(client: AsyncTestClient, db: AsyncSession, world: World, key: str | None) -> None:
    fields = post_fields(key)
    assert "api_key" in assert_errors_json(await client.post(f"{V2}/requests.json", data=fields), 403)
    assert_errors_xml(await client.post(f"{V2}/requests.xml", data=fields), 403)
    assert await count_appeals(db) == 3


async def test_a_revoked_key_no_longer_works(client: AsyncTestClient, db: AsyncSession, world: World) -> None:
    key = await db.scalar(select(ApiKey))
    assert key is not None
    await api_keys.revoke(db, key.id)
    await db.commit()
    assert_errors_json(await client.post(f"{V2}/requests.json", data=post_fields(world.key)), 403)


@pytest.mark.parametrize(
    ("changes", "status", "mentions"),
    [
        ({"service_code": "potholes"}, 404, "potholes"),
        ({"service_code": ""}, 400, "service_code"),
        ({"address_string": ""}, 400, "address_string"),
        ({"address_string": "", "lat": "36.6"}, 400, "lat"),
        ({"address_string": "", "lat": "north", "long": "117"}, 400, "lat"),
        ({"address_id": "ZZZZZZ"}, 400, "ZZZZZZ"),
        ({"description": "灯"}, 400, "5"),
        ({"phone": "call me"}, 400, ""),
    ],
)
async def test_post_refuses_bad_input_and_writes_nothing(
    client: AsyncTestClient, db: AsyncSession, world: World, changes: dict[str, str], status: int, mentions: str
) -> None:
    await client.get("/lang/en")
    description = assert_errors_json(await client.post(f"{V2}/requests.json", data=post_fields(world.key, **changes)), status)
    assert mentions in description
    assert_errors_xml(await client.post(f"{V2}/requests.xml", data=post_fields(world.key, **changes)), status)
    assert await count_appeals(db) == 3


# ---------- GET requests ----------


async def test_request_list_defaults_to_the_last_90_days(client: AsyncTestClient, world: World) -> None:
    await client.get("/lang/en")
    listed = json_of(await client.get(f"{V2}/requests.json"))
    assert [r["service_request_id"] for r in listed] == [world.recent.reference, world.resolved.reference]
    recent, resolved = listed
    assert (recent["status"], recent["status_notes"]) == ("open", "Received")
    assert (resolved["status"], resolved["status_notes"]) == ("closed", "Resolved")
    assert recent["description"] is None
    assert recent["agency_responsible"] == "Jiefanglu Subdistrict Office"
    assert datetime.fromisoformat(recent["requested_datetime"]).utcoffset() == timedelta(hours=8)
    assert datetime.fromisoformat(recent["expected_datetime"]) > datetime.fromisoformat(recent["requested_datetime"])
    assert datetime.fromisoformat(resolved["updated_datetime"]) > datetime.fromisoformat(resolved["requested_datetime"])
    root = xml_of(await client.get(f"{V2}/requests.xml"))
    assert root.tag == "service_requests"
    assert [r.findtext("service_request_id") for r in root.findall("request")] == [world.recent.reference, world.resolved.reference]
    description = root.find("request/description")
    assert description is not None and description.text is None  # an empty element, as the spec shows


async def test_request_list_filters(client: AsyncTestClient, world: World) -> None:
    async def ids(**params: str) -> list[str]:
        return [r["service_request_id"] for r in json_of(await client.get(f"{V2}/requests.json", params=params))]

    assert await ids(status="open") == [world.recent.reference]
    assert await ids(status="closed") == [world.resolved.reference]
    assert await ids(status="open,closed") == [world.recent.reference, world.resolved.reference]
    assert await ids(service_code="environment,property") == [world.resolved.reference]
    old_day = world.old.received_at
    window = {"start_date": (old_day - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "end_date": (old_day + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert await ids(**window) == [world.old.reference]
    assert await ids(start_date=(old_day - timedelta(days=1)).date().isoformat()) == [world.old.reference]
    # Listed ids override every other filter.
    assert await ids(service_request_id=f"{world.old.reference},{world.recent.reference}", status="closed", service_code="talent") == [
        world.recent.reference, world.old.reference,
    ]
    assert await ids(service_code="") == [world.recent.reference, world.resolved.reference]


@pytest.mark.parametrize(
    "params",
    [
        {"start_date": "yesterday"},
        {"end_date": "2026-01-01T00:00:00"},  # no time zone
        {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"},  # more than 90 days
        {"start_date": "2026-02-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"},
        {"status": "pending"},
        {"service_code": "potholes"},
    ],
)
async def test_request_list_refuses_bad_filters(client: AsyncTestClient, params: dict[str, str]) -> None:
    assert_errors_json(await client.get(f"{V2}/requests.json", params=params), 400)
    assert_errors_xml(await client.get(f"{V2}/requests.xml", params=params), 400)


async def test_single_request_in_json_and_xml(client: AsyncTestClient, world: World) -> None:
    await client.get("/lang/en")
    [old] = json_of(await client.get(f"{V2}/requests/{world.old.reference}.json"))
    assert (old["status"], old["status_notes"], old["service_name"]) == ("closed", "Rejected", "Property management")
    root = xml_of(await client.get(f"{V2}/requests/{world.recent.reference}.xml"))
    assert root.findtext("request/service_request_id") == world.recent.reference
    assert root.findtext("request/status") == "open"
    assert root.findtext("request/address") == "文华园小区, 文华园社区"
    text = ET.tostring(root, encoding="unicode")
    for private in ["欧阳娜娜", "13912345678", "3号楼2单元501", world.recent.tracking_code]:
        assert private not in text


async def test_unknown_request_and_token_are_404(client: AsyncTestClient, world: World) -> None:
    assert "1999-00001" in assert_errors_json(await client.get(f"{V2}/requests/1999-00001.json"), 404)
    assert_errors_xml(await client.get(f"{V2}/requests/1999-00001.xml"), 404)
    assert_errors_xml(await client.get(f"{V2}/requests/{world.recent.reference}"), 404)  # no format suffix
    assert "abc123" in assert_errors_json(await client.get(f"{V2}/tokens/abc123.json"), 404)
    assert_errors_xml(await client.get(f"{V2}/tokens/abc123.xml"), 404)


# ---------- key management ----------


@pytest.fixture
def cli(database_url: str, tmp_path: Path) -> Iterator[Any]:
    env = {"SHANZHI_DATABASE_URL": database_url, "SHANZHI_VAR_DIR": str(tmp_path), "SHANZHI_SECRET_KEY": "x"}

    def invoke(*args: str) -> Result:
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(main, list(args), env=env)
        finally:
            get_settings.cache_clear()

    yield invoke
    get_settings.cache_clear()


async def test_cli_create_key_prints_a_working_key(cli: Any, client: AsyncTestClient, world: World) -> None:
    result = run_isolated(cli, "open311", "create-key", "济南市12345平台")
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    assert key.startswith("sz311_") and len(key) > 30
    response = await client.post(f"{V2}/requests.json", data=post_fields(key))
    assert response.status_code == 200, response.text


async def test_cli_refuses_an_empty_name(cli: Any, db: AsyncSession) -> None:
    result = run_isolated(cli, "open311", "create-key", "  ")
    assert result.exit_code != 0
    assert await db.scalar(select(func.count(ApiKey.id))) == 0


async def test_admin_creates_shows_once_and_revokes_a_key(
    client: AsyncTestClient, web: Web, people: dict[Role, str], db: AsyncSession
) -> None:
    await client.get("/lang/en")
    await web.login(people[Role.ADMIN], TEST_PASSWORD)
    empty = await web.post_form("/admin/api-keys", {"name": " "}, token_from="/admin/api-keys")
    assert empty.status_code == 400
    assert "Please name the system that will use the key." in empty.text
    created = await web.post_form("/admin/api-keys", {"name": "区城管平台"}, token_from="/admin/api-keys")
    assert created.status_code == 200
    match = re.search(r'<code id="new-key">([^<]+)</code>', created.text)
    assert match
    key = match.group(1)
    listing = await client.get("/admin/api-keys")
    assert "区城管平台" in listing.text
    assert key not in listing.text
    assert key[:12] in listing.text
    assert (await client.post(f"{V2}/requests.json", data=post_fields(key, address_string="解放路"))).status_code == 200
    row = await db.scalar(select(ApiKey).where(ApiKey.name == "区城管平台"))
    assert row is not None and row.key_hash != key
    revoked = await web.post_form(f"/admin/api-keys/{row.id}/revoke", {}, token_from="/admin/api-keys")
    assert (revoked.status_code, revoked.headers["location"]) == (303, "/admin/api-keys")
    assert "Revoked" in (await client.get("/admin/api-keys")).text
    assert_errors_json(await client.post(f"{V2}/requests.json", data=post_fields(key, address_string="解放路")), 403)
