"""Helpers the migrations share (kept stable: a migration must keep doing what it did)."""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import GUID
from alembic import op


def guid_columns(table: str) -> list[sa.Column]:
    """On SQLite a batch rebuild would re-create UUID columns from their reflected type (NUMERIC): give
    them back as GUID, with the foreign keys they had (as 0004 does with a hand-written list)."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return []
    inspector = sa.inspect(bind)
    keys = {fk["constrained_columns"][0]: fk for fk in inspector.get_foreign_keys(table)}
    columns = []
    for column in inspector.get_columns(table):
        name = column["name"]
        if name != "id" and not name.endswith("_id"):
            continue
        fk = keys.get(name)
        args = [sa.ForeignKey(f"{fk['referred_table']}.{fk['referred_columns'][0]}", name=fk["name"], ondelete=fk["options"].get("ondelete"))] if fk else []
        primary = name in inspector.get_pk_constraint(table)["constrained_columns"]
        columns.append(sa.Column(name, GUID(length=16), *args, primary_key=primary, nullable=column["nullable"]))
    return columns
