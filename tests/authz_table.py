"""The authorization table: every route x every principal (anonymous included) -> allowed or refused.

Declared here, independently of the `opt` on the handlers, and walked against the running app by
tests/integration/test_authorization.py. A route the app serves that is missing here fails that test;
every new area adds its rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.models import Role

ANONYMOUS = "anonymous"
EVERYONE = "everyone"  # anonymous and every role
SIGNED_IN = "signed_in"  # every role, not anonymous
API_KEY_HOLDERS: frozenset[Role] = frozenset()  # no session principal: an Open311 API key authorises


@dataclass(frozen=True)
class Row:
    method: str
    route: str  # the path template exactly as the app declares it
    allowed: str | frozenset[Role]
    sample: str | None = None  # a concrete path for templates with parameters
    data: tuple[tuple[str, str], ...] = ()  # form fields for unsafe methods

    @property
    def path(self) -> str:
        return self.sample or self.route

    def allows(self, principal: str | Role) -> bool:
        if self.allowed == EVERYONE:
            return True
        if principal == ANONYMOUS:
            return False
        if self.allowed == SIGNED_IN:
            return True
        return principal in self.allowed  # type: ignore[operator]


def only(*roles: Role) -> frozenset[Role]:
    return frozenset(roles)


SYNC_SENDERS = only(Role.GRID_WORKER, Role.BUILDING_HEAD, Role.VOLUNTEER, Role.STATION_OPERATOR)

TABLE: list[Row] = [
    # Accounts (X1)
    Row("GET", "/", EVERYONE),
    Row("GET", "/login", EVERYONE),
    Row("POST", "/login", EVERYONE, data=(("username", "nobody"), ("password", "wrong-password"))),
    Row("POST", "/logout", SIGNED_IN),
    Row("GET", "/lang/{code:str}", EVERYONE, sample="/lang/en"),
    # Role homes
    Row("GET", "/admin", only(Role.ADMIN)),
    Row("GET", "/staff", only(Role.STAFF)),
    Row("GET", "/grid", only(Role.GRID_WORKER)),
    Row("GET", "/department", only(Role.DEPARTMENT)),
    Row("GET", "/supervisor", only(Role.SUPERVISOR)),
    Row("GET", "/building-head", only(Role.BUILDING_HEAD)),
    Row("GET", "/resident-rep", only(Role.RESIDENT_REP)),
    Row("GET", "/station", only(Role.STATION_OPERATOR)),
    Row("GET", "/canteen", only(Role.CANTEEN_MANAGER)),
    Row("GET", "/volunteer", only(Role.VOLUNTEER)),
    # Places
    Row("GET", "/places", only(Role.ADMIN, Role.STAFF, Role.SUPERVISOR)),
    # Appeals intake (A1), tracking (A6) and QR posters; samples use codes no place or case has.
    Row("GET", "/suggest", EVERYONE),
    Row("POST", "/suggest", EVERYONE, data=(("audience", "resident"),)),
    Row("GET", "/suggest/{code:str}", EVERYONE, sample="/suggest/ZZZZZZ"),
    Row("POST", "/suggest/{code:str}", EVERYONE, sample="/suggest/ZZZZZZ"),
    Row("GET", "/track", EVERYONE),
    Row("POST", "/track", EVERYONE, data=(("reference", "2026-99999"), ("query_code", "000000"))),
    Row("GET", "/track/{code:str}", EVERYONE, sample="/track/no-such-case"),
    Row("POST", "/track/{code:str}/evaluate", EVERYONE, sample="/track/no-such-case/evaluate"),
    Row("GET", "/track/{code:str}/photos/{sha:str}", EVERYONE, sample="/track/no-such-case/photos/" + "0" * 64),
    Row("GET", "/places/{code:str}/poster", only(Role.ADMIN, Role.STAFF, Role.GRID_WORKER), sample="/places/ZZZZZZ/poster"),
    Row("GET", "/places/posters", only(Role.ADMIN, Role.STAFF)),
    # Appeal metrics (A8), the public summary (A7) and Open311 (A9)
    Row("GET", "/api/stats/appeals", EVERYONE),
    Row("GET", "/api/stats/overview", EVERYONE),
    Row("GET", "/stats/appeals", only(Role.ADMIN, Role.STAFF, Role.SUPERVISOR)),
    Row("GET", "/summary/appeals", EVERYONE),
    Row("GET", "/open311/discovery.json", EVERYONE),
    Row("GET", "/open311/discovery.xml", EVERYONE),
    Row("GET", "/open311/v2/services.json", EVERYONE),
    Row("GET", "/open311/v2/services.xml", EVERYONE),
    Row("GET", "/open311/v2/services/{name:str}", EVERYONE, sample="/open311/v2/services/parking.json"),
    Row("GET", "/open311/v2/requests.json", EVERYONE),
    Row("GET", "/open311/v2/requests.xml", EVERYONE),
    Row("GET", "/open311/v2/requests/{name:str}", EVERYONE, sample="/open311/v2/requests/2000-99999.xml"),
    Row("GET", "/open311/v2/tokens/{name:str}", EVERYONE, sample="/open311/v2/tokens/no-such-token.json"),
    # Creating a request needs an API key, not a session: refused (403) to every principal without one.
    Row("POST", "/open311/v2/requests.json", API_KEY_HOLDERS, data=(("api_key", "not-a-key"), ("service_code", "parking"))),
    Row("POST", "/open311/v2/requests.xml", API_KEY_HOLDERS, data=(("api_key", "not-a-key"), ("service_code", "parking"))),
    Row("GET", "/admin/outbound", only(Role.ADMIN)),
    Row("POST", "/admin/outbound/retry", only(Role.ADMIN)),
    Row("GET", "/admin/api-keys", only(Role.ADMIN)),
    Row("POST", "/admin/api-keys", only(Role.ADMIN), data=(("name", ""),)),
    Row(
        "POST", "/admin/api-keys/{key_id:uuid}/revoke", only(Role.ADMIN),
        sample="/admin/api-keys/00000000-0000-0000-0000-000000000000/revoke",
    ),
    # Appeals ledger (A7), CSV export (X5), staff intake, case pages and actions (A2-A5); no case exists
    # in the walk, so the allowed roles get 404 from the case routes.
    Row("GET", "/appeals", only(Role.ADMIN, Role.STAFF, Role.SUPERVISOR, Role.DEPARTMENT)),
    Row("GET", "/appeals/export.csv", only(Role.ADMIN, Role.STAFF, Role.SUPERVISOR)),
    Row("GET", "/appeals/new", only(Role.ADMIN, Role.STAFF, Role.GRID_WORKER)),
    Row("POST", "/appeals/new", only(Role.ADMIN, Role.STAFF, Role.GRID_WORKER), data=(("description", ""),)),
    Row(
        "GET", "/appeals/{reference:str}", only(Role.ADMIN, Role.STAFF, Role.SUPERVISOR, Role.DEPARTMENT, Role.GRID_WORKER),
        sample="/appeals/2000-99999",
    ),
    Row(
        "POST", "/appeals/{reference:str}/{action:str}",
        only(Role.ADMIN, Role.STAFF, Role.SUPERVISOR, Role.DEPARTMENT, Role.GRID_WORKER),
        sample="/appeals/2000-99999/comment", data=(("note", "authz walk"),),
    ),
    Row(
        "GET", "/appeals/{reference:str}/photos/{sha:str}",
        only(Role.ADMIN, Role.STAFF, Role.SUPERVISOR, Role.DEPARTMENT, Role.GRID_WORKER),
        sample="/appeals/2000-99999/photos/" + "0" * 64,
    ),
    # Inbox (X6)
    Row("GET", "/inbox", SIGNED_IN),
    Row("POST", "/inbox/read", SIGNED_IN),
    # PWA shell and health
    Row("GET", "/manifest.webmanifest", EVERYONE),
    Row("GET", "/service-worker.js", EVERYONE),
    Row("GET", "/offline", EVERYONE),
    Row("GET", "/static/{file_path:path}", EVERYONE, sample="/static/css/app.css"),
    Row("HEAD", "/static/{file_path:path}", EVERYONE, sample="/static/css/app.css"),
    Row("GET", "/healthz", EVERYONE),
    # Sync API (F5): push, pull, photo upload
    # -- sync api rows --
    # Whoever has an offline operation in the op table (server/assets.py OUTBOX_ROLES has their pages load it).
    Row("POST", "/sync/push", SYNC_SENDERS),
    Row("GET", "/sync/pull", SYNC_SENDERS),
    Row("PUT", "/sync/photos/{sha256:str}", SYNC_SENDERS, sample="/sync/photos/" + "0" * 64),
    Row("GET", "/sync/schema.json", EVERYONE),
    # Field pages of the grid worker (F1-F4)
    # -- field rows --
    Row("GET", "/field", only(Role.GRID_WORKER)),
    Row("GET", "/field/visit", only(Role.GRID_WORKER)),
    Row("GET", "/field/return-visit", only(Role.GRID_WORKER)),
    Row("GET", "/field/appeal", only(Role.GRID_WORKER)),
    Row("GET", "/field/appeals/edit", only(Role.GRID_WORKER)),
    Row("GET", "/field/outcomes", only(Role.GRID_WORKER)),
    Row("GET", "/field/signals", only(Role.GRID_WORKER)),
    # A field form posted without its script (nothing recorded; what was typed is shown back).
    *(Row("POST", path, only(Role.GRID_WORKER), data=(("description", "x"),))
      for path in ("/field/visit", "/field/return-visit", "/field/appeal", "/field/appeals/edit", "/field/outcomes", "/field/signals")),
    Row("GET", "/field/outbox", only(Role.GRID_WORKER)),
    # Staff: devices and conflicts
    # -- sync admin rows --
    Row("GET", "/sync/devices", only(Role.ADMIN, Role.STAFF, Role.SUPERVISOR)),
    # No conflict exists in the walk: the allowed roles get 404.
    Row(
        "POST", "/sync/conflicts/{conflict_id:uuid}/resolve", only(Role.ADMIN, Role.STAFF),
        sample="/sync/conflicts/00000000-0000-0000-0000-000000000000/resolve", data=(("choice", "dismissed"), ("note", "authz walk")),
    ),
    # Policy library, guides, questions (P1, P2, P6)
    # -- policy rows --
    # No policy, question or guide exists in the walk: the allowed roles get 404 from the routes with ids.
    Row("GET", "/policies", EVERYONE),
    Row("GET", "/policies/{policy_id:uuid}", EVERYONE, sample="/policies/00000000-0000-0000-0000-000000000000"),
    Row(
        "POST", "/policies/{policy_id:uuid}/questions", EVERYONE,
        sample="/policies/00000000-0000-0000-0000-000000000000/questions", data=(("question", "authz walk"),),
    ),
    Row("GET", "/questions/{code:str}", EVERYONE, sample="/questions/no-such-question"),
    Row("GET", "/g/{slug:str}", EVERYONE, sample="/g/no-such-guide"),
    Row("GET", "/policies/manage", only(Role.ADMIN, Role.STAFF)),
    Row("GET", "/policies/new", only(Role.ADMIN, Role.STAFF)),
    Row("POST", "/policies/new", only(Role.ADMIN, Role.STAFF), data=(("title", ""),)),  # refused as invalid: nothing made
    Row("GET", "/policies/{policy_id:uuid}/edit", only(Role.ADMIN, Role.STAFF), sample="/policies/00000000-0000-0000-0000-000000000000/edit"),
    Row(
        "POST", "/policies/{policy_id:uuid}/edit", only(Role.ADMIN, Role.STAFF),
        sample="/policies/00000000-0000-0000-0000-000000000000/edit", data=(("title", "authz walk"),),
    ),
    Row(
        "GET", "/policies/{policy_id:uuid}/preview", only(Role.ADMIN, Role.STAFF),
        sample="/policies/00000000-0000-0000-0000-000000000000/preview",
    ),
    Row(
        "POST", "/policies/{policy_id:uuid}/publish", only(Role.ADMIN, Role.STAFF),
        sample="/policies/00000000-0000-0000-0000-000000000000/publish",
    ),
    Row(
        "POST", "/policies/{policy_id:uuid}/withdraw", only(Role.ADMIN, Role.STAFF),
        sample="/policies/00000000-0000-0000-0000-000000000000/withdraw",
    ),
    Row(
        "GET", "/policies/{policy_id:uuid}/revisions", only(Role.ADMIN, Role.STAFF),
        sample="/policies/00000000-0000-0000-0000-000000000000/revisions",
    ),
    Row("GET", "/policies/questions", only(Role.ADMIN, Role.STAFF)),
    Row(
        "POST", "/policies/questions/{question_id:uuid}/answer", only(Role.ADMIN, Role.STAFF),
        sample="/policies/questions/00000000-0000-0000-0000-000000000000/answer", data=(("answer", "authz walk"),),
    ),
    Row("GET", "/guides", only(Role.ADMIN, Role.STAFF)),
    Row("GET", "/guides/new", only(Role.ADMIN, Role.STAFF)),
    Row("POST", "/guides/new", only(Role.ADMIN, Role.STAFF), data=(("name", ""),)),  # refused as invalid: nothing made
    Row("GET", "/guides/{slug:str}/edit", only(Role.ADMIN, Role.STAFF), sample="/guides/no-such-guide/edit"),
    Row("POST", "/guides/{slug:str}/edit", only(Role.ADMIN, Role.STAFF), sample="/guides/no-such-guide/edit", data=(("name", "x"),)),
    Row("GET", "/guides/{slug:str}/poster", only(Role.ADMIN, Role.STAFF, Role.GRID_WORKER), sample="/guides/no-such-guide/poster"),
    # Enterprise registry, pushes, reach (P3, P4)
    # -- enterprise rows --
    # No enterprise, push or policy exists in the walk: the allowed roles get 404 from the routes with ids.
    Row("GET", "/enterprises", only(Role.ADMIN, Role.STAFF, Role.SUPERVISOR)),
    Row("GET", "/enterprises/export.csv", only(Role.ADMIN, Role.STAFF)),
    Row("GET", "/enterprises/new", only(Role.ADMIN, Role.STAFF)),
    Row("POST", "/enterprises/new", only(Role.ADMIN, Role.STAFF), data=(("credit_code", ""), ("name", ""))),
    Row("GET", "/enterprises/import", only(Role.ADMIN, Role.STAFF)),
    Row("POST", "/enterprises/import", only(Role.ADMIN, Role.STAFF), data=(("dry_run", "1"),)),
    Row("GET", "/enterprises/import/template.csv", only(Role.ADMIN, Role.STAFF)),
    Row("GET", "/enterprises/{enterprise_id:uuid}", only(Role.ADMIN, Role.STAFF, Role.SUPERVISOR), sample="/enterprises/00000000-0000-0000-0000-000000000000"),
    Row("GET", "/enterprises/{enterprise_id:uuid}/edit", only(Role.ADMIN, Role.STAFF), sample="/enterprises/00000000-0000-0000-0000-000000000000/edit"),
    Row("POST", "/enterprises/{enterprise_id:uuid}/edit", only(Role.ADMIN, Role.STAFF), sample="/enterprises/00000000-0000-0000-0000-000000000000/edit",
        data=(("name", "authz walk"),)),
    Row("POST", "/enterprises/{enterprise_id:uuid}/pushes", only(Role.ADMIN, Role.STAFF), sample="/enterprises/00000000-0000-0000-0000-000000000000/pushes",
        data=(("policy_id", "00000000-0000-0000-0000-000000000000"),)),
    Row("POST", "/pushes/{push_id:uuid}/outcome", only(Role.ADMIN, Role.STAFF), sample="/pushes/00000000-0000-0000-0000-000000000000/outcome",
        data=(("outcome", "applied"),)),
    Row("GET", "/policies/reach", only(Role.ADMIN, Role.STAFF, Role.SUPERVISOR)),
    Row("GET", "/policies/{policy_id:uuid}/reach", only(Role.ADMIN, Role.STAFF, Role.SUPERVISOR), sample="/policies/00000000-0000-0000-0000-000000000000/reach"),
    # 晨曦信号 (L3): the elder's check-in page
    # -- checkin rows --
    # No elder has this token: 404 for everyone (the token is the credential, no account needed).
    Row("GET", "/checkin/{token:str}", EVERYONE, sample="/checkin/" + "x" * 32),
    Row("POST", "/checkin/{token:str}", EVERYONE, sample="/checkin/" + "x" * 32),
    Row("GET", "/checkin/{token:str}/manifest.webmanifest", EVERYONE, sample="/checkin/" + "x" * 32 + "/manifest.webmanifest"),
    # 晨曦信号: helpers' board and alerts, staff enrolment
    # -- signals rows --
    Row("GET", "/signals", only(Role.GRID_WORKER, Role.BUILDING_HEAD, Role.VOLUNTEER)),
    Row("GET", "/signals/stream", only(Role.GRID_WORKER, Role.BUILDING_HEAD, Role.VOLUNTEER, Role.ADMIN, Role.STAFF)),  # tests: the stream ends at once
    Row("POST", "/signals/{elder_id:uuid}/checkin", only(Role.GRID_WORKER, Role.BUILDING_HEAD, Role.VOLUNTEER),
        sample="/signals/00000000-0000-0000-0000-000000000000/checkin", data=(("method", "phone"),)),
    *(Row(method, route, only(Role.GRID_WORKER, Role.BUILDING_HEAD, Role.VOLUNTEER, Role.ADMIN, Role.STAFF),
          sample=route.replace("{alert_id:uuid}", "00000000-0000-0000-0000-000000000000"), data=data)
      for method, route, data in (
          ("GET", "/signals/alerts/{alert_id:uuid}", ()),
          ("POST", "/signals/alerts/{alert_id:uuid}/acknowledge", ()),
          ("POST", "/signals/alerts/{alert_id:uuid}/resolve", (("outcome", "safe"),)),
      )),
    # 晨曦信号: enrolment of elders by staff, or by a grid worker for the elders of their chain
    # -- elders rows --
    # No elder exists in the walk: staff and grid workers get 404 from the routes with ids (a grid worker
    # gets 404 too for an elder whose chain they are not in).
    Row("GET", "/signals/elders", only(Role.ADMIN, Role.STAFF, Role.GRID_WORKER)),
    Row("GET", "/signals/elders/new", only(Role.ADMIN, Role.STAFF, Role.GRID_WORKER)),
    Row("POST", "/signals/elders/new", only(Role.ADMIN, Role.STAFF, Role.GRID_WORKER), data=(("name", ""),)),
    *(Row(method, route, only(Role.ADMIN, Role.STAFF, Role.GRID_WORKER), sample=route.replace("{elder_id:uuid}", "00000000-0000-0000-0000-000000000000"),
          data=data)
      for method, route, data in (
          ("GET", "/signals/elders/{elder_id:uuid}", ()),
          ("GET", "/signals/elders/{elder_id:uuid}/edit", ()),
          ("POST", "/signals/elders/{elder_id:uuid}/edit", (("name", ""),)),
          ("POST", "/signals/elders/{elder_id:uuid}/pauses", (("start_on", "2026-01-01"), ("end_on", "2026-01-02"))),
          ("POST", "/signals/elders/{elder_id:uuid}/token", ()),
          ("POST", "/signals/elders/{elder_id:uuid}/end", (("end_reason", "moved"),)),
          ("GET", "/signals/elders/{elder_id:uuid}/card", ()),
      )),
    # Events (P5)
    # -- event rows --
    # No event exists in the walk: the allowed roles get 404 from the routes with ids.
    Row("GET", "/events", EVERYONE),
    Row("GET", "/events/{event_id:uuid}", EVERYONE, sample="/events/00000000-0000-0000-0000-000000000000"),
    Row("GET", "/events/manage", only(Role.ADMIN, Role.STAFF)),
    Row("GET", "/events/new", only(Role.ADMIN, Role.STAFF)),
    Row("POST", "/events/new", only(Role.ADMIN, Role.STAFF), data=(("topic", ""),)),
    Row("GET", "/events/{event_id:uuid}/edit", only(Role.ADMIN, Role.STAFF), sample="/events/00000000-0000-0000-0000-000000000000/edit"),
    Row("POST", "/events/{event_id:uuid}/edit", only(Role.ADMIN, Role.STAFF), sample="/events/00000000-0000-0000-0000-000000000000/edit", data=(("topic", "authz walk"),)),
    Row("POST", "/events/{event_id:uuid}/photos", only(Role.ADMIN, Role.STAFF), sample="/events/00000000-0000-0000-0000-000000000000/photos",
        data=(("remove", "x"),)),
    Row("GET", "/events/{event_id:uuid}/photos/{sha:str}", EVERYONE, sample="/events/00000000-0000-0000-0000-000000000000/photos/" + "0" * 64),
    Row("POST", "/events/{event_id:uuid}/appeals", only(Role.ADMIN, Role.STAFF), sample="/events/00000000-0000-0000-0000-000000000000/appeals",
        data=(("description", "authz walk"),)),
    # Livelihood openness (issue 15)
    # -- projects rows --
    # No project, comment or milestone has these ids and no compound this code: the allowed get 404 from those routes.
    Row("GET", "/projects", EVERYONE),
    Row("GET", "/projects/{project_id:uuid}", EVERYONE, sample="/projects/00000000-0000-0000-0000-000000000000"),
    Row("POST", "/projects/{project_id:uuid}/comments", EVERYONE, sample="/projects/00000000-0000-0000-0000-000000000000/comments",
        data=(("body", "authz walk"),)),
    Row("GET", "/projects/{project_id:uuid}/photos/{sha:str}", EVERYONE, sample="/projects/00000000-0000-0000-0000-000000000000/photos/" + "0" * 64),
    Row("POST", "/projects/{project_id:uuid}/signoff", only(Role.RESIDENT_REP, Role.BUILDING_HEAD),
        sample="/projects/00000000-0000-0000-0000-000000000000/signoff"),
    Row("GET", "/projects/signoffs", only(Role.RESIDENT_REP, Role.BUILDING_HEAD)),
    Row("GET", "/projects/manage", only(Role.ADMIN, Role.STAFF)),
    Row("GET", "/projects/new", only(Role.ADMIN, Role.STAFF)),
    Row("POST", "/projects/new", only(Role.ADMIN, Role.STAFF), data=(("title", ""),)),
    *(Row(method, route, only(Role.ADMIN, Role.STAFF), sample=route.replace("{project_id:uuid}", "00000000-0000-0000-0000-000000000000")
          .replace("{milestone_id:uuid}", "00000000-0000-0000-0000-000000000000"), data=data)
      for method, route, data in (
          ("GET", "/projects/{project_id:uuid}/edit", ()),
          ("POST", "/projects/{project_id:uuid}/edit", (("title", "authz walk"),)),
          ("POST", "/projects/{project_id:uuid}/milestones", (("title", "authz walk"),)),
          ("POST", "/projects/{project_id:uuid}/milestones/{milestone_id:uuid}", (("done", "0"),)),
          ("POST", "/projects/{project_id:uuid}/updates", (("body", "authz walk"),)),
      )),
    Row("GET", "/projects/comments", only(Role.ADMIN, Role.STAFF)),
    Row("POST", "/projects/comments/{comment_id:uuid}", only(Role.ADMIN, Role.STAFF),
        sample="/projects/comments/00000000-0000-0000-0000-000000000000", data=(("action", "approve"),)),
    Row("GET", "/projects/export.csv", only(Role.ADMIN, Role.STAFF, Role.SUPERVISOR)),
    Row("GET", "/property", EVERYONE),
    Row("GET", "/property/{code:str}", EVERYONE, sample="/property/ZZZZZZ"),
    Row("GET", "/property/{code:str}/edit", only(Role.ADMIN, Role.STAFF), sample="/property/ZZZZZZ/edit"),
    Row("POST", "/property/{code:str}/edit", only(Role.ADMIN, Role.STAFF), sample="/property/ZZZZZZ/edit", data=(("reform_plan", "x"),)),
    Row("POST", "/property/{code:str}/months", only(Role.ADMIN, Role.STAFF), sample="/property/ZZZZZZ/months", data=(("month", "2025-01"),)),
    # -- recycling rows --
    Row("POST", "/recycling/households/{household_id:uuid}/replace-card", only(Role.ADMIN, Role.STAFF, Role.STATION_OPERATOR),
        sample="/recycling/households/00000000-0000-0000-0000-000000000000/replace-card"),
    Row("GET", "/recycling", only(Role.ADMIN, Role.STAFF, Role.SUPERVISOR, Role.STATION_OPERATOR)),
    Row("POST", "/recycling/stations", only(Role.ADMIN, Role.STAFF), data=(("name", ""),)),
    Row("GET", "/recycling/stations/{station_id:uuid}", only(Role.ADMIN, Role.STAFF, Role.SUPERVISOR, Role.STATION_OPERATOR),
        sample="/recycling/stations/00000000-0000-0000-0000-000000000000"),
    Row("GET", "/recycling/stations/{station_id:uuid}/dropoff", only(Role.ADMIN, Role.STAFF, Role.STATION_OPERATOR),
        sample="/recycling/stations/00000000-0000-0000-0000-000000000000/dropoff"),
    Row("POST", "/recycling/stations/{station_id:uuid}/dropoff", only(Role.ADMIN, Role.STAFF, Role.STATION_OPERATOR),
        sample="/recycling/stations/00000000-0000-0000-0000-000000000000/dropoff"),
    Row("GET", "/recycling/stations/{station_id:uuid}/households", only(Role.ADMIN, Role.STAFF, Role.SUPERVISOR, Role.STATION_OPERATOR),
        sample="/recycling/stations/00000000-0000-0000-0000-000000000000/households"),
    Row("POST", "/recycling/stations/{station_id:uuid}/households", only(Role.ADMIN, Role.STAFF, Role.STATION_OPERATOR),
        sample="/recycling/stations/00000000-0000-0000-0000-000000000000/households"),
    Row("GET", "/recycling/households/{household_id:uuid}", only(Role.ADMIN, Role.STAFF, Role.SUPERVISOR, Role.STATION_OPERATOR),
        sample="/recycling/households/00000000-0000-0000-0000-000000000000"),
    Row("GET", "/recycling/households/{household_id:uuid}/card", only(Role.ADMIN, Role.STAFF, Role.STATION_OPERATOR),
        sample="/recycling/households/00000000-0000-0000-0000-000000000000/card"),
    Row("POST", "/recycling/entries/{entry_id:uuid}/reverse", only(Role.ADMIN, Role.STAFF, Role.STATION_OPERATOR),
        sample="/recycling/entries/00000000-0000-0000-0000-000000000000/reverse", data=(("reason", "authz walk"),)),
    Row("GET", "/recycling/stations/{station_id:uuid}/redeem", only(Role.ADMIN, Role.STAFF, Role.STATION_OPERATOR),
        sample="/recycling/stations/00000000-0000-0000-0000-000000000000/redeem"),
    Row("POST", "/recycling/stations/{station_id:uuid}/redeem", only(Role.ADMIN, Role.STAFF, Role.STATION_OPERATOR),
        sample="/recycling/stations/00000000-0000-0000-0000-000000000000/redeem"),
    Row("GET", "/recycling/stations/{station_id:uuid}/goods", only(Role.ADMIN, Role.STAFF, Role.SUPERVISOR, Role.STATION_OPERATOR),
        sample="/recycling/stations/00000000-0000-0000-0000-000000000000/goods"),
    Row("POST", "/recycling/stations/{station_id:uuid}/goods", only(Role.ADMIN, Role.STAFF), sample="/recycling/stations/00000000-0000-0000-0000-000000000000/goods"),
    Row("POST", "/recycling/goods/{good_id:uuid}/stock", only(Role.ADMIN, Role.STAFF, Role.STATION_OPERATOR),
        sample="/recycling/goods/00000000-0000-0000-0000-000000000000/stock", data=(("change", "1"),)),
    Row("GET", "/recycling/stations/{station_id:uuid}/categories", only(Role.ADMIN, Role.STAFF, Role.SUPERVISOR, Role.STATION_OPERATOR),
        sample="/recycling/stations/00000000-0000-0000-0000-000000000000/categories"),
    Row("POST", "/recycling/stations/{station_id:uuid}/categories", only(Role.ADMIN, Role.STAFF),
        sample="/recycling/stations/00000000-0000-0000-0000-000000000000/categories"),
    Row("POST", "/recycling/categories/{category_id:uuid}/rates", only(Role.ADMIN, Role.STAFF),
        sample="/recycling/categories/00000000-0000-0000-0000-000000000000/rates"),
    Row("GET", "/recycling/stations/{station_id:uuid}/ledger", only(Role.ADMIN, Role.STAFF, Role.SUPERVISOR, Role.STATION_OPERATOR),
        sample="/recycling/stations/00000000-0000-0000-0000-000000000000/ledger"),
    Row("GET", "/recycling/stations/{station_id:uuid}/ledger.csv", only(Role.ADMIN, Role.STAFF, Role.SUPERVISOR, Role.STATION_OPERATOR),
        sample="/recycling/stations/00000000-0000-0000-0000-000000000000/ledger.csv"),
    Row("GET", "/r/{token:str}", EVERYONE, sample="/r/no-such-card"),
    # -- canteen rows --
    # The ledger, receipts and the export: the manager, staff, admins and supervisors; writes: not supervisors.
    # No entry exists in the walk: the allowed roles get 404 from the routes with ids; the close of a month
    # still running is refused with 400 (allowed, nothing written).
    Row("GET", "/canteen/ledger", only(Role.ADMIN, Role.STAFF, Role.SUPERVISOR, Role.CANTEEN_MANAGER)),
    Row("GET", "/canteen/export.csv", only(Role.ADMIN, Role.STAFF, Role.SUPERVISOR, Role.CANTEEN_MANAGER)),
    Row("GET", "/canteen/entries/new", only(Role.ADMIN, Role.STAFF, Role.CANTEEN_MANAGER)),
    Row("POST", "/canteen/entries/new", only(Role.ADMIN, Role.STAFF, Role.CANTEEN_MANAGER), data=(("amount", "-1"),)),
    Row("GET", "/canteen/entries/{entry_id:uuid}", only(Role.ADMIN, Role.STAFF, Role.SUPERVISOR, Role.CANTEEN_MANAGER),
        sample="/canteen/entries/00000000-0000-0000-0000-000000000000"),
    Row("POST", "/canteen/entries/{entry_id:uuid}/reverse", only(Role.ADMIN, Role.STAFF, Role.CANTEEN_MANAGER),
        sample="/canteen/entries/00000000-0000-0000-0000-000000000000/reverse", data=(("reason", "authz walk"),)),
    Row("GET", "/canteen/entries/{entry_id:uuid}/receipt", only(Role.ADMIN, Role.STAFF, Role.SUPERVISOR, Role.CANTEEN_MANAGER),
        sample="/canteen/entries/00000000-0000-0000-0000-000000000000/receipt"),
    Row("GET", "/canteen/meals", only(Role.ADMIN, Role.STAFF, Role.CANTEEN_MANAGER)),
    Row("POST", "/canteen/meals", only(Role.ADMIN, Role.STAFF, Role.CANTEEN_MANAGER), data=(("meals", "-1"),)),
    Row("POST", "/canteen/months/{month:str}/close", only(Role.ADMIN, Role.STAFF, Role.CANTEEN_MANAGER), sample="/canteen/months/2099-01/close"),
    # -- mediation rows --
    # Public: counts only. Cases: staff and admins, and volunteers for the cases they mediate (none in the
    # walk: the allowed roles get 404 from the routes with ids).
    Row("GET", "/mediation", EVERYONE),
    Row("GET", "/mediation/export.csv", EVERYONE),
    Row("GET", "/mediation/cases", only(Role.ADMIN, Role.STAFF, Role.VOLUNTEER)),
    Row("GET", "/mediation/cases/new", only(Role.ADMIN, Role.STAFF)),
    Row("POST", "/mediation/cases/new", only(Role.ADMIN, Role.STAFF), data=(("summary", ""),)),
    Row("GET", "/mediation/cases/{case_id:uuid}", only(Role.ADMIN, Role.STAFF, Role.VOLUNTEER),
        sample="/mediation/cases/00000000-0000-0000-0000-000000000000"),
    Row("GET", "/mediation/cases/{case_id:uuid}/edit", only(Role.ADMIN, Role.STAFF),
        sample="/mediation/cases/00000000-0000-0000-0000-000000000000/edit"),
    Row("POST", "/mediation/cases/{case_id:uuid}/edit", only(Role.ADMIN, Role.STAFF),
        sample="/mediation/cases/00000000-0000-0000-0000-000000000000/edit", data=(("summary", "authz walk"),)),
    Row("POST", "/mediation/cases/{case_id:uuid}/sessions", only(Role.ADMIN, Role.STAFF, Role.VOLUNTEER),
        sample="/mediation/cases/00000000-0000-0000-0000-000000000000/sessions", data=(("notes", "authz walk"),)),
    Row("POST", "/mediation/cases/{case_id:uuid}/outcome", only(Role.ADMIN, Role.STAFF, Role.VOLUNTEER),
        sample="/mediation/cases/00000000-0000-0000-0000-000000000000/outcome", data=(("outcome", "success"),)),
    # -- boards rows --
    Row("GET", "/boards", EVERYONE),
    Row("GET", "/boards/stream", EVERYONE),  # tests: the stream ends at once
    Row("GET", "/boards/{name:str}", EVERYONE, sample="/boards/overview"),
]

PRINCIPALS: list[str | Role] = [ANONYMOUS, *Role]
