"""The MQTT prefixes a site published under, in its database (table mqtt_published): its own, and
those before it whose Home Assistant configs are not cleared yet. A site whose `mqtt.prefix` changed
left its configs under the old one, and nothing on the broker ties a new prefix to an old one (the
sweep, mqtt.py, reads this to find and clear them); an old prefix left (another site's `available`
said online) is kept beside the new, so that a prefix changed again meanwhile is cleared too.
Versioned on its own, as the scheduled reports' table: the events' schema, and older maskwatch, are
left as they are."""

from __future__ import annotations

import logging
from typing import Iterable

from sqlalchemy import Column, Integer, MetaData, Table, Text, delete, insert, select
from sqlalchemy.exc import SQLAlchemyError

from maskwatch.site.database import MQTT_MIGRATION_LOCK, hold_database, migrate_schema, open_database

log = logging.getLogger(__name__)

metadata = MetaData()
mqtt_schema_version = Table("mqtt_schema_version", metadata, Column("version", Integer, nullable=False))
mqtt_published = Table("mqtt_published", metadata, Column("prefix", Text, nullable=False))  # a row a prefix


def _create_v1(connection) -> None:
    metadata.create_all(connection, tables=[mqtt_published])


MIGRATIONS = [_create_v1]


class PublishedPrefix:
    def __init__(self, engine, url: str) -> None:
        self.engine, self.url = engine, url
        open_database(url, self.migrate)

    def migrate(self) -> int:
        return migrate_schema(self.engine, self.url, "mqtt schema", MQTT_MIGRATION_LOCK, mqtt_schema_version,
                              MIGRATIONS)

    def read(self) -> list[str] | None:
        """The prefixes recorded ([]: none yet), or None where the database is away: nothing is
        cleared then, nor recorded (which would lose those still to clear)."""
        try:
            with self.engine.connect() as connection:
                return sorted(connection.execute(select(mqtt_published.c.prefix)).scalars())
        except SQLAlchemyError as err:
            log.warning("MQTT: the prefix published under before cannot be read (%s)", type(err).__name__)
            return None

    def write(self, prefixes: Iterable[str]) -> None:
        try:
            with self.engine.begin() as connection:
                hold_database(connection, MQTT_MIGRATION_LOCK)  # one set, whoever writes at once
                connection.execute(delete(mqtt_published))
                connection.execute(insert(mqtt_published), [{"prefix": prefix} for prefix in prefixes])
        except SQLAlchemyError as err:  # read again at the next start, and cleared then
            log.warning("MQTT: the prefix published under cannot be recorded (%s)", type(err).__name__)
