"""The policy service's public pages with sharing on, as `make run` serves them (docs/performance.md,
"Shared public pages"; SHANZHI_PUBLIC_CACHE_SECONDS): a QR guide's page is computed once for the crowd a
poster sends, yet a policy staff publish (or withdraw) on the staff pages shows on it at once, as issue
13 asks ("the same minute, it shows on the right QR guides"). The library's own page tests run here
again with sharing on, so the list and a policy's page are held to the same."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import Role
from server.services import policies
from server.services.shared_cache import SharedCache
from tests.helpers import Web
from tests.integration.test_policy_pages import (  # noqa: F401 - collected here, run with sharing on
    EDIT_LOCATION,
    content,
    form_of,
    guide,
    published,
    sign_in,
    test_expired_and_withdrawn_policies_drop_out_and_are_marked,
    test_publish_flow_from_the_staff_pages,
    titles,
)
from tests.integration.test_shared_public_pages import app, shared  # noqa: F401 - the app with sharing on


def policy_pages(app: Litestar) -> SharedCache:
    return shared(app, policies.PAGES_TOPIC)


async def publish_on_the_staff_pages(web: Web, title: str, **facets: list[str]) -> str:
    created = await web.post_form("/policies/new", form_of(content(title, **facets)))
    assert created.status_code == 303
    match = EDIT_LOCATION.match(created.headers["location"])
    assert match, created.headers["location"]
    done = await web.post_form(f"/policies/{match.group(1)}/publish", form_of(content(title, **facets)))
    assert done.status_code == 303, done.text
    return match.group(1)


async def test_a_shared_guide_page_shows_a_policy_published_after_it_at_once(
    app: Litestar, client: AsyncTestClient, web: Web, db: AsyncSession, people: dict[Role, str]
) -> None:
    already = await published(db, content("园区企业稳岗返还", place_kinds=["industrial_park"]))
    parks = await guide(db, "parks-shared", place_kinds=["industrial_park"])
    path = f"/g/{parks.slug}"

    # A crowd scans the poster: one computation, every visitor the same list.
    first = await client.get(path)
    assert first.status_code == 200 and titles(first.text) == [already.title]
    computed = policy_pages(app).computed
    assert titles((await client.get(path)).text) == [already.title]
    assert policy_pages(app).computed == computed

    # Staff publish one policy for parks and one for street shops, on the staff pages.
    await sign_in(web, people)
    for_parks = await publish_on_the_staff_pages(web, "园区厂房租金补贴", place_kinds=["industrial_park"])
    await publish_on_the_staff_pages(web, "沿街商铺门头改造补贴", place_kinds=["street_shop"])
    await web.logout()

    # The next visitor sees the park's new policy, and not the street shops'.
    assert set(titles((await client.get(path)).text)) == {already.title, "园区厂房租金补贴"}

    # Withdrawn on the staff pages: gone from the guide at once.
    await sign_in(web, people)
    assert (await web.post_form(f"/policies/{for_parks}/withdraw", {})).status_code == 303
    await web.logout()
    assert titles((await client.get(path)).text) == [already.title]
