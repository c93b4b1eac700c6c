"""Date arithmetic inside SQL, the same on SQLite and PostgreSQL, so counts and filters over deadlines run
in the database instead of loading every case into Python."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class hours_between(FunctionElement[float]):  # noqa: N801 - used like a SQL function
    """(later - earlier) in hours, NULL when either is NULL; compiled per database below."""

    type = Float()
    inherit_cache = True


@compiles(hours_between)
def _hours_default(element: hours_between, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"(EXTRACT(EPOCH FROM ({later} - {earlier})) / 3600.0)"


@compiles(hours_between, "sqlite")
def _hours_sqlite(element: hours_between, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"((julianday({later}) - julianday({earlier})) * 24.0)"


class epoch_seconds(FunctionElement[float]):  # noqa: N801 - used like a SQL function
    """A timestamp column as seconds since 1970-01-01 UTC (a float; about a millisecond's precision on SQLite)."""

    type = Float()
    inherit_cache = True


@compiles(epoch_seconds)
def _epoch_default(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    (moment,) = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"EXTRACT(EPOCH FROM {moment})"


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    (moment,) = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"((julianday({moment}) - 2440587.5) * 86400.0)"
