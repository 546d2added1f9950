"""The emulator's collaborators in one place: store, clock, ids, settings and the domain services."""

from __future__ import annotations

from dataclasses import dataclass, field

from mockserver.clock import Clock
from mockserver.core.accounts import Accounts
from mockserver.core.catalogue import Catalogue
from mockserver.core.idempotency import Idempotency
from mockserver.core.ratelimit import DEFAULT_BUCKETS, BucketSpec, Limiter
from mockserver.ids import IdSource
from mockserver.settings import Settings
from mockserver.store import Store


@dataclass
class Emulator:
    """Everything a request handler may call; built once by ``create_app`` and kept on ``app.state``."""

    settings: Settings
    store: Store
    clock: Clock
    ids: IdSource
    catalogue: Catalogue = field(default_factory=Catalogue)
    accounts: Accounts = field(init=False)
    idempotency: Idempotency = field(init=False)
    limiter: Limiter = field(init=False)

    def __post_init__(self) -> None:
        self.accounts = Accounts(self.store, self.clock, self.settings)
        self.idempotency = Idempotency(self.store, self.settings.idempotency_ttl_seconds)
        specs = dict(DEFAULT_BUCKETS)
        for name, cfg in self.settings.rate_limits.items():
            specs[name] = BucketSpec(cfg.capacity, cfg.per_minute)
        self.limiter = Limiter(self.store, specs, enabled=self.settings.rate_limits_enabled)
        self.accounts.bootstrap()
