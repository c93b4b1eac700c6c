"""(filled in by the morning-signal work)."""

route_handlers: list = []
