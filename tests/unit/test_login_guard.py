"""Sign-in protection (docs/deployment.md): ten wrong tries a minute from one address stop that address,
not the account's owner elsewhere; spraying many usernames from one address stops it too; a username
under attack answers more slowly, never refusing the right password from another address."""

from __future__ import annotations

from litestar.stores.memory import MemoryStore

from server.login_guard import FREE_FAILURES, MAX_DELAY, LoginGuard

ATTACKER, OWNER = "203.0.113.7", "198.51.100.20"


async def test_a_guesser_is_stopped_and_the_owner_is_not() -> None:
    guard = LoginGuard(MemoryStore(), limit=10)
    for _ in range(10):
        assert not await guard.blocked("admin", ATTACKER)
        await guard.failed("admin", ATTACKER)
    assert await guard.blocked("admin", ATTACKER)
    assert not await guard.blocked("admin", OWNER), "the owner is locked out by someone else's guessing"


async def test_spraying_usernames_from_one_address_is_stopped() -> None:
    guard = LoginGuard(MemoryStore(), limit=10)
    for n in range(30):
        await guard.failed(f"user{n}", ATTACKER)
    assert await guard.blocked("someone-else", ATTACKER)
    assert not await guard.blocked("someone-else", OWNER)


async def test_a_username_under_attack_answers_more_slowly_up_to_a_cap() -> None:
    guard = LoginGuard(MemoryStore(), limit=10)
    delays = []
    for n in range(40):
        delays.append(await guard.delay("admin"))
        await guard.failed("admin", f"10.0.{n}.1")  # many addresses, as a botnet would
    assert delays[: FREE_FAILURES + 1] == [0.0] * (FREE_FAILURES + 1)
    assert delays == sorted(delays) and delays[-1] == MAX_DELAY
    await guard.succeeded("admin", OWNER)
    assert not await guard.blocked("admin", OWNER)
