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
    # PWA shell and health
    Row("GET", "/manifest.webmanifest", EVERYONE),
    Row("GET", "/service-worker.js", EVERYONE),
    Row("GET", "/offline", EVERYONE),
    Row("GET", "/static/{file_path:path}", EVERYONE, sample="/static/css/app.css"),
    Row("HEAD", "/static/{file_path:path}", EVERYONE, sample="/static/css/app.css"),
    Row("GET", "/healthz", EVERYONE),
]

PRINCIPALS: list[str | Role] = [ANONYMOUS, *Role]
