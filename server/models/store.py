"""Key/value rows behind server-side sessions when no Redis is configured."""

from __future__ import annotations

from advanced_alchemy.extensions.litestar.store import StoreModelMixin


class StoreItem(StoreModelMixin):
    __tablename__ = "store_item"
