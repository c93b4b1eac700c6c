"""Offline sync engine: protocol structs and reconciliation of device outboxes (no Litestar import).

The protocol is specified in ARCHITECTURE.md ("Offline sync") and will be documented in docs/sync.md
when the field-work issue lands; until then this package only reserves its place in the layout.
"""
