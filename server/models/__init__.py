"""All models, imported here so the metadata Alembic sees is complete."""

from server.models.accounts import Role, User
from server.models.base import AuditedBase, current_actor
from server.models.places import LEAF_KINDS, PARENT_KIND, Place, PlaceKind
from server.models.store import StoreItem

__all__ = ["LEAF_KINDS", "PARENT_KIND", "AuditedBase", "Place", "PlaceKind", "Role", "StoreItem", "User", "current_actor"]
