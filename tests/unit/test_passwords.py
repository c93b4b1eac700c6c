"""Password hashing: strong by default in production, cheap in tests, every hash verifiable whatever
the configured profile, and never on the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import extract_parameters

from server.services import accounts
from server.settings import Settings


@pytest.fixture
def profile() -> Iterator[None]:
    """Put the test suite's profile back after a test that switches it."""
    yield
    accounts.use_hashing("cheapest")


def test_production_default_is_the_strong_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without configuration a deployment hashes with RFC 9106's profile: argon2id, 3 passes, 64 MiB."""
    assert Settings.from_env({"SHANZHI_VAR_DIR": str(tmp_path)}).password_hashing == "strong"
    monkeypatch.delenv("SHANZHI_PASSWORD_HASHING")
    assert Settings(database_url="sqlite+aiosqlite:///x.db", secret_key="k", var_dir=tmp_path).password_hashing == "strong"
    strong = accounts.HASHING_PROFILES["strong"]
    assert (strong.type.name, strong.time_cost, strong.memory_cost, strong.parallelism) == ("ID", 3, 64 * 1024, 4)


def test_an_unknown_profile_is_refused_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SHANZHI_PASSWORD_HASHING"):
        Settings.from_env({"SHANZHI_VAR_DIR": str(tmp_path), "SHANZHI_PASSWORD_HASHING": "none"})


@pytest.mark.parametrize(("made_with", "checked_with"), [("strong", "cheapest"), ("cheapest", "strong"), ("strong", "strong")])
async def test_a_hash_made_with_either_profile_verifies_under_the_other(made_with: str, checked_with: str, profile: None) -> None:
    """argon2 reads the parameters from the hash: changing the profile locks nobody out."""
    accounts.use_hashing(made_with)
    stored = await accounts.hash_password("correct horse")
    assert extract_parameters(stored).memory_cost == accounts.HASHING_PROFILES[made_with].memory_cost
    accounts.use_hashing(checked_with)
    assert await asyncio.to_thread(accounts._verify_blocking, stored, "correct horse") == (True, made_with == "cheapest" and checked_with == "strong")
    assert (await asyncio.to_thread(accounts._verify_blocking, stored, "wrong horse"))[0] is False


async def test_hashing_leaves_the_event_loop_free(profile: None) -> None:
    """While a strong hash is computed (about a quarter of a second), other requests keep being served."""
    accounts.use_hashing("strong")
    ticks = 0
    done = asyncio.Event()

    async def other_requests() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.005)

    async def sign_in() -> None:
        await accounts.hash_password("correct horse")
        done.set()

    await asyncio.gather(other_requests(), sign_in())
    assert ticks >= 5, "the event loop stood still while the password was hashed"
