"""Shared page helpers: the open-redirect guard and the main menu per role."""

from __future__ import annotations

import uuid

import pytest

from server.models import Role
from server.security import CurrentUser
from server.web import ROLE_HOME, nav_for, safe_next


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/places", "/places"),
        ("/places?view=all#top", "/places?view=all#top"),
        ("/", "/"),
        ("", "/"),
        (None, "/"),
        ("//evil.example", "/"),
        ("//evil.example/path", "/"),
        ("https://evil.example/x", "/"),
        ("http:/evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/\\evil", "/"),
        ("\\\\evil", "/"),
        ("places", "/"),
        ("mailto:x@example.com", "/"),
    ],
)
def test_safe_next_keeps_only_same_site_paths(target: str | None, expected: str) -> None:
    """Only paths on this site survive; anything else falls back to the default."""
    assert safe_next(target) == expected


def test_safe_next_uses_the_given_default() -> None:
    assert safe_next("//evil.example", "/grid") == "/grid"
    assert safe_next("", "") == ""


def user(role: Role) -> CurrentUser:
    return CurrentUser(uuid.uuid4(), role.value, "测试", role, None)


@pytest.mark.parametrize("role", list(Role), ids=lambda role: role.value)
def test_places_menu_is_shown_to_staff_side_and_supervisors_only(role: Role) -> None:
    """The place tree is in the menu for admin, staff and supervisors, and nobody else."""
    hrefs = [item.href for item in nav_for(user(role), "/")]
    assert hrefs[0] == "/"
    assert ("/places" in hrefs) == (role in {Role.ADMIN, Role.STAFF, Role.SUPERVISOR})


def test_anonymous_visitors_get_no_menu() -> None:
    assert nav_for(None, "/") == []


def current_hrefs(path: str) -> list[str]:
    return [item.href for item in nav_for(user(Role.ADMIN), path) if item.current]


def test_current_item_is_marked() -> None:
    """The menu marks the page being shown, and the role home counts as Home."""
    assert current_hrefs("/places") == ["/places"]
    assert current_hrefs(ROLE_HOME[Role.ADMIN]) == ["/"]
    assert current_hrefs("/") == ["/"]
    assert current_hrefs("/offline") == []


def test_every_role_has_a_home() -> None:
    """Each role lands on its own page after signing in."""
    assert set(ROLE_HOME) == set(Role)
    assert len(set(ROLE_HOME.values())) == len(Role)
