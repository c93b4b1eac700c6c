"""All models, imported here so the metadata Alembic sees is complete."""

from server.models.accounts import Role, User
from server.models.appeals import (
    ApiKey,
    Appeal,
    AppealChannel,
    AppealEvent,
    AppealPhoto,
    AppealStatus,
    Department,
    Evaluation,
    Notification,
    OutboundMessage,
    OutboundStatus,
    ReturnVisit,
    SubmitterKind,
    Summons,
    VisitMethod,
)
from server.models.base import AuditedBase, current_actor
from server.models.feed import ChangeCounter, ChangeFeed
from server.models.field import (
    ConflictKind,
    ConflictResolution,
    SyncConflict,
    SyncDevice,
    SyncFieldStamp,
    SyncMutation,
    Visit,
    VisitPurpose,
    VisitSubject,
)
from server.models.places import LEAF_KINDS, PARENT_KIND, Place, PlaceKind
from server.models.store import StoreItem

__all__ = [
    "LEAF_KINDS",
    "PARENT_KIND",
    "ApiKey",
    "Appeal",
    "AppealChannel",
    "AppealEvent",
    "AppealPhoto",
    "AppealStatus",
    "AuditedBase",
    "ChangeCounter",
    "ChangeFeed",
    "ConflictKind",
    "ConflictResolution",
    "Department",
    "Evaluation",
    "Notification",
    "OutboundMessage",
    "OutboundStatus",
    "Place",
    "PlaceKind",
    "ReturnVisit",
    "Role",
    "StoreItem",
    "SubmitterKind",
    "Summons",
    "SyncConflict",
    "SyncDevice",
    "SyncFieldStamp",
    "SyncMutation",
    "User",
    "Visit",
    "VisitMethod",
    "VisitPurpose",
    "VisitSubject",
    "current_actor",
]
