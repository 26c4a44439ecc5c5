"""Every store of a site's database, the site's own and the users' of this layer, in the order a
site's start makes them: what `maskwatch copy-database` copies."""

from __future__ import annotations

from typing import Callable

from maskwatch.security import schema as auth_schema
from maskwatch.site.copy_database import SITE_STORES, Copied, Store, copy_database
from maskwatch.site.database import AUTH_MIGRATION_LOCK

AUTH_STORE = Store("auth schema", auth_schema.metadata, auth_schema.auth_schema_version, auth_schema.MIGRATIONS,
                   AUTH_MIGRATION_LOCK, chores=auth_schema.run_chores)
STORES = (SITE_STORES[0], AUTH_STORE, *SITE_STORES[1:])


def copy_site_database(source: str, target: str, said: Callable[[str], object] = lambda line: None
                       ) -> tuple[list[Copied], list[str]]:
    """A site's whole database copied into a new, empty one (copy_database, every store)."""
    return copy_database(source, target, STORES, said)
