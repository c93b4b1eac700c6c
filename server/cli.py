"""The `shanzhi` command: serve, database migrations, demo data, users and backups."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import sqlite3
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click
from advanced_alchemy.alembic.commands import AlembicCommands
from advanced_alchemy.cli import add_migration_commands
from sqlalchemy.engine import make_url

from server.db import make_alchemy_config, mark_writer, session_scope
from server.models import Role
from server.services import accounts, appeals, demo, demo_scale, places
from server.services.errors import ServiceError
from server.settings import Settings, get_settings

T = TypeVar("T")


def _settings() -> Settings:
    settings = get_settings()
    accounts.use_hashing(settings.password_hashing)
    return settings


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's work as a writer: on SQLite it takes its turn like any writer (server/db.py).
    (Set inside the run, so a command invoked in-process leaves nothing behind.)"""

    async def as_writer() -> T:
        mark_writer()
        return await coroutine

    return asyncio.run(as_writer())


@click.group()
def main() -> None:
    """善治解放路 Shanzhi: open-government and grid-service platform of Jiefanglu Subdistrict."""


@main.command()
@click.option("--host", envvar="HOST", default="127.0.0.1", show_default=True)
@click.option("--port", envvar="PORT", default=8000, type=int, show_default=True)
@click.option("--reload", is_flag=True, help="Restart when the code changes (development).")
@click.option(
    "--workers", envvar="WEB_CONCURRENCY", default=1, show_default=True, type=click.IntRange(1, 64),
    help="Web processes. More than one needs PostgreSQL (SHANZHI_DATABASE_URL) and Redis (SHANZHI_REDIS_URL).",
)
def serve(host: str, port: int, reload: bool, workers: int) -> None:
    """Serve the app with uvicorn."""
    import uvicorn

    settings = _settings()  # fail early on bad configuration, before uvicorn starts
    if workers > 1 and (settings.database_url.startswith("sqlite") or not settings.redis_url):
        raise click.UsageError("--workers above 1 needs PostgreSQL and Redis: set SHANZHI_DATABASE_URL and SHANZHI_REDIS_URL.")
    click.echo(f"Shanzhi on http://{host}:{port}/")
    # X-Forwarded-For is believed only from the proxies named in SHANZHI_TRUSTED_PROXIES: otherwise any
    # client could claim any address and walk around the rate limits.
    uvicorn.run(
        "server.app:create_app",
        factory=True,
        host=host,
        port=port,
        reload=reload,
        workers=workers if not reload else None,
        proxy_headers=settings.trusted_proxies is not None,
        forwarded_allow_ips=settings.trusted_proxies or "",
        log_level="info",
    )


@main.command()
@click.option("--interval", default=60.0, show_default=True, type=click.FloatRange(min=1), help="Seconds between runs.")
def worker(interval: float) -> None:
    """Run the background jobs (overdue appeals, 晨曦信号, outbound notifications) until stopped; for when `serve`
    runs with SHANZHI_EMBEDDED_WORKER=false."""
    import logging

    from server import live
    from server.services import notifications
    from server.worker import deliver_forever, run_forever

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = _settings()
    notifications.configure_channels(notifications.channels_for(settings.notify_webhook_url), public_url=settings.public_url)

    async def run() -> None:
        config = make_alchemy_config(settings)
        # With Redis, the 晨曦信号 sweep's alerts reach the live pages of the web processes (server/live.py);
        # without it a separate worker cannot tell them, and the pages catch up on their 30-second poll.
        backend = live.backend_for(settings) if settings.redis_url else None
        stop_live = None
        if backend is not None:
            await backend.on_startup()
            stop_live = live.publish_through(backend.publish)
        try:
            await asyncio.gather(run_forever(config, settings, interval=interval), deliver_forever(config))
        finally:
            if stop_live is not None:
                stop_live()
            if backend is not None:
                await live.close(backend)
            await config.get_engine().dispose()

    click.echo(f"Shanzhi worker: running the jobs every {interval:g} s (Ctrl-C stops).")
    with contextlib.suppress(KeyboardInterrupt):
        _run(run())


@main.group(name="db")
@click.pass_context
def db_group(ctx: click.Context) -> None:
    """Database migrations (Alembic, through advanced-alchemy)."""
    ctx.ensure_object(dict)
    ctx.obj["configs"] = [make_alchemy_config(_settings())]


add_migration_commands(db_group)


def upgrade_database(settings: Settings) -> None:
    AlembicCommands(sqlalchemy_config=make_alchemy_config(settings)).upgrade("head")


@main.command(name="demo")
@click.option("--if-empty", is_flag=True, help="Only load into an empty database (used by `make run`).")
@click.option(
    "--scale", type=click.IntRange(1, 1000), default=1, show_default=True,
    help="Grow the demo's cases to N times (bulk copies moved back in time, one more grid worker per 5 copies): benchmark data.",
)
def demo_command(if_empty: bool, scale: int) -> None:
    """Load the Jiefanglu demo data set. Safe to run again: it only adds what is missing."""

    async def run() -> tuple[demo.DemoReport, demo_scale.ScaleReport] | None:
        config = make_alchemy_config(_settings())
        try:
            async with session_scope(config) as session:
                if if_empty and not await demo.database_is_empty(session):
                    return None
                report = await demo.load_demo(session, _settings())
            async with session_scope(config) as session:
                return report, await demo_scale.scale_demo(session, scale, _settings())
        finally:
            await config.get_engine().dispose()

    loaded = _run(run())
    if loaded is None:
        click.echo("The database already holds data; demo data not loaded.")
        return
    report, scaled = loaded
    if scaled.appeals:
        click.echo(
            f"Scale x{scale}: {scaled.appeals} more appeals with {scaled.events} events, "
            f"{scaled.grid_workers} more grid workers with {scaled.devices} phones, "
            f"{scaled.policies} more policies, {scaled.enterprises} more enterprises and "
            f"{scaled.livelihood_rows} more rows of projects, mediation cases and recycling ledgers."
        )
    click.echo(f"Demo data: {report.places_created} places and {report.users_created} users added.")
    click.echo(f"Demo appeals: {report.appeals_created} added (a year of cases, handled through the workflow).")
    click.echo(f"Demo accounts (password for all: {demo.DEMO_PASSWORD}):")
    for user in report.users:
        click.echo(f"  {user.username:<14} {user.role.value:<18} {user.display_name}")


@main.group(name="user")
def user_group() -> None:
    """Manage accounts."""


@user_group.command(name="create")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]), help="The user's role.")
@click.option("--name", "display_name", help="Name shown in the app (defaults to the username).")
@click.option("--place", "place_code", help="Public code of the place the user works in (e.g. their grid).")
@click.option("--department", "department_code", help="For department users: their department's code (e.g. cgj).")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="Prompted when omitted.")
def user_create(
    username: str, role: str, display_name: str | None, place_code: str | None, department_code: str | None, password: str
) -> None:
    """Create an account with a role."""

    async def run() -> None:
        config = make_alchemy_config(_settings())
        try:
            async with session_scope(config) as session:
                place_id = None
                if place_code:
                    place = await places.get_place_by_code(session, place_code)
                    if place is None:
                        raise click.ClickException(f"No place has the code {place_code!r}.")
                    place_id = place.id
                department_id = None
                if department_code:
                    department = await appeals.department_by_code(session, department_code)
                    if department is None:
                        raise click.ClickException(f"No department has the code {department_code!r}.")
                    department_id = department.id
                elif role == Role.DEPARTMENT:
                    raise click.ClickException("A department user needs --department CODE.")
                await accounts.create_user(
                    session,
                    username=username,
                    password=password,
                    role=Role(role),
                    display_name=display_name or username,
                    place_id=place_id,
                    department_id=department_id,
                )
        finally:
            await config.get_engine().dispose()

    try:
        _run(run())
    except ServiceError as exc:
        raise click.ClickException(exc.message % exc.params if exc.params else exc.message) from exc
    click.echo(f"Created {username} ({role}).")


@main.group(name="open311")
def open311_group() -> None:
    """Open311 GeoReport v2 API keys."""


@open311_group.command(name="create-key")
@click.argument("name")
def open311_create_key(name: str) -> None:
    """Create an API key for the system NAME and print it (it is stored only as a hash)."""
    from server.services import api_keys

    async def run() -> str:
        config = make_alchemy_config(_settings())
        try:
            async with session_scope(config) as session:
                _key, plaintext = await api_keys.create(session, name)
                return plaintext
        finally:
            await config.get_engine().dispose()

    try:
        plaintext = _run(run())
    except ServiceError as exc:
        raise click.ClickException(exc.message % exc.params if exc.params else exc.message) from exc
    click.echo(f"Open311 API key for {name.strip()} (shown once; store it safely):")
    click.echo(plaintext)


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def backup(path: Path) -> None:
    """Write a consistent copy of the SQLite database to PATH while the app keeps running."""
    url = make_url(_settings().database_url)
    if not url.drivername.startswith("sqlite") or not url.database:
        raise click.ClickException("backup copies the embedded SQLite database; for PostgreSQL use pg_dump.")
    source_path = Path(url.database)
    if not source_path.exists():
        raise click.ClickException(f"No database at {source_path}.")
    if path.exists():
        raise click.ClickException(f"{path} exists; choose a new file name.")
    path.parent.mkdir(parents=True, exist_ok=True)
    # SQLite's online backup API copies page by page under a read transaction: consistent even
    # while the server writes (WAL included), unlike copying the file.
    with sqlite3.connect(source_path) as source, sqlite3.connect(path) as target:
        source.backup(target)
    target_check = sqlite3.connect(path)
    try:
        result = target_check.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        target_check.close()
    if result != "ok":
        raise click.ClickException(f"The backup failed its integrity check: {result}")
    click.echo(f"Backed up {source_path} to {path}.")


@main.group(name="enterprises")
def enterprises_group() -> None:
    """The enterprise registry: CSV import and export (columns in docs/policies.md)."""


@enterprises_group.command(name="import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check every row and report; write nothing.")
def enterprises_import(path: Path, dry_run: bool) -> None:
    """Import enterprises from a CSV file (UTF-8, with or without BOM). All or nothing: when any row is
    rejected, nothing is written and the command exits with status 1."""
    from server.i18n import current_locale
    from server.services import enterprises

    settings = _settings()
    raw = path.read_bytes()

    async def run() -> enterprises.ImportReport:
        current_locale.set(settings.locale)  # the service's messages, in the configured language
        config = make_alchemy_config(settings)
        try:
            async with session_scope(config) as session:
                try:
                    return await enterprises.import_csv(session, enterprises.decode_csv(raw), dry_run=dry_run)
                except ServiceError as exc:
                    raise click.ClickException(exc.translated()) from exc
        finally:
            await config.get_engine().dispose()

    report = _run(run())
    if report.problems:
        click.echo(f"{path}: {report.rows} rows, {len(report.problems)} problems; nothing was written.")
        for problem in report.problems:
            click.echo(f"line {problem.line}: {problem.message}")
        sys.exit(1)
    if report.written:
        click.echo(f"{path}: {report.rows} rows, {report.created} created, {report.updated} updated.")
    else:
        click.echo(f"{path}: {report.rows} rows, all valid; {report.created} would be created, {report.updated} updated (dry run: nothing written).")


@enterprises_group.command(name="export")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
def enterprises_export(path: Path | None) -> None:
    """Write the registry as CSV (UTF-8 with BOM, opens in Excel) to PATH, or to standard output."""
    from server.services import enterprises

    async def run() -> str:
        config = make_alchemy_config(_settings())
        try:
            async with session_scope(config) as session:
                return await enterprises.export_csv(session)
        finally:
            await config.get_engine().dispose()

    text = _run(run())
    if path is None:
        click.echo(text, nl=False)
        return
    path.write_text(text, encoding="utf-8", newline="")
    rows = sum(1 for _ in csv.reader(io.StringIO(text))) - 1
    click.echo(f"Wrote {rows} enterprises to {path}.")

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
