"""Litestar route modules, one per area: parse, authorize, call a service, render. Never write rows here."""
