"""Offline sync engine: protocol structs and reconciliation of device outboxes (no Litestar import).

So far: `sync.hlc`, the hybrid logical clock that stamps every mutation. The push/pull protocol of
ARCHITECTURE.md ("Offline sync") comes with the field-work issue and will be specified in docs/sync.md.
"""
