"""The runtime a pipeline step needs: settings, metadata database, object store, gate policy.

One per process (workers build their own after fork); cheap to create.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from khana.settings import Settings, get_settings
from storage.database import Database
from storage.factory import make_object_store
from storage.objects import ObjectStore


@dataclass
class Runtime:
    settings: Settings
    db: Database
    store: ObjectStore

    @classmethod
    def from_settings(cls, settings: Settings | None = None, *, migrate: bool = True) -> "Runtime":
        settings = settings or get_settings()
        db = Database(settings.resolved_database_url())
        store = make_object_store(settings)
        if migrate:
            db.migrate()
            store.ensure_buckets()
        return cls(settings, db, store)

    @cached_property
    def policy(self):
        from quality import load_policy

        return load_policy(str(self.settings.gate_policy) if self.settings.gate_policy else None)

    def close(self) -> None:
        self.db.dispose()
