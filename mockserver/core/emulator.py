"""The emulator's collaborators in one place: store, clock, ids, settings and the domain services."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from mockserver.clock import Clock, ShiftedClock
from mockserver.core.accounts import Accounts
from mockserver.core.catalogue import Catalogue
from mockserver.core.characters import Characters
from mockserver.core.chat import Chat
from mockserver.core.embeddings import Embeddings
from mockserver.core.files import Files
from mockserver.core.generations import Generations
from mockserver.core.idempotency import Idempotency
from mockserver.core.journal import Journal
from mockserver.core.ledger import Ledger
from mockserver.core.llm_models import LlmModels
from mockserver.core.models import Team
from mockserver.core.ports import InspectImage, MediaFiles
from mockserver.core.ratelimit import DEFAULT_BUCKETS, BucketSpec, Limiter
from mockserver.core.scenarios import Scenarios
from mockserver.core.shared import StoredShift
from mockserver.core.snapshots import Snapshots
from mockserver.core.usage_rows import UsageRows
from mockserver.core.webhooks import Webhooks
from mockserver.ids import IdSource
from mockserver.settings import Settings
from mockserver.store import Store


@dataclass
class Emulator:
    """Everything a request handler may call; built once by ``create_app`` and kept on ``app.state``.

    ``media`` and ``inspect_image`` come from outside the domain (``mockserver.media``, wired by ``create_app``).
    """

    settings: Settings
    store: Store
    clock: Clock
    ids: IdSource
    media: MediaFiles
    inspect_image: InspectImage
    catalogue: Catalogue = field(default_factory=Catalogue)
    accounts: Accounts = field(init=False)
    idempotency: Idempotency = field(init=False)
    limiter: Limiter = field(init=False)
    ledger: Ledger = field(init=False)
    files: Files = field(init=False)
    characters: Characters = field(init=False)
    generations: Generations = field(init=False)
    webhooks: Webhooks = field(init=False)
    scenarios: Scenarios = field(init=False)
    global_clock: ShiftedClock = field(init=False)  # ``clock`` moved as a whole by ``/_mock/clock/*?global=true``
    journal: Journal = field(init=False)
    snapshots: Snapshots = field(init=False)
    llm_models: LlmModels = field(init=False)
    usage_rows: UsageRows = field(init=False)
    embeddings: Embeddings = field(init=False)
    chat: Chat = field(init=False)

    def __post_init__(self) -> None:
        s = self.settings
        # Every team's time sits on the global shift, so a global move reaches all teams (and those created later).
        # A shared store keeps the shift, so every process sharing it moves the same one.
        if isinstance(self.clock, ShiftedClock):
            self.global_clock = self.clock
        else:
            self.global_clock = ShiftedClock(self.clock, StoredShift(self.store) if self.store.shared else None)
        self.clock = self.global_clock
        self.accounts = Accounts(self.store, self.clock, s)
        self.idempotency = Idempotency(self.store, s.idempotency_ttl_seconds, s.idempotency_lease_seconds)
        specs = dict(DEFAULT_BUCKETS)
        for name, cfg in s.rate_limits.items():
            specs[name] = BucketSpec(cfg.capacity, cfg.per_minute)
        self.limiter = Limiter(self.store, specs, enabled=s.rate_limits_enabled)
        self.ledger = Ledger(self.store, self.ids)
        self.files = Files(self.store, self.ids, self.inspect_image)
        self.characters = Characters(self.store, self.ids, s, self.ledger, self.inspect_image)
        self.generations = Generations(
            self.store, self.ids, s, self.catalogue, self.ledger, self.files, characters=self.characters
        )
        self.webhooks = Webhooks(self.store, self.ids, s)
        self.scenarios = Scenarios(self.store, self.ids, self.accounts.team_id_of)
        self.journal = Journal(s.journal_size, s.journal_max_bytes)
        self.snapshots = Snapshots(self.store, self.global_clock, self.ids)
        self.llm_models = LlmModels.configured(
            {slug: cfg.model_dump(exclude_none=True) for slug, cfg in s.llm_models.items()}
        )
        self.usage_rows = UsageRows(self.store)
        self.chat = Chat(self.store, self.ids, s, self.llm_models, self.ledger, self.limiter, self.usage_rows)
        self.embeddings = Embeddings(
            self.llm_models, self.ledger, self.limiter, self.usage_rows, self.ids, honour_base64=s.embeddings_base64
        )
        self.accounts.bootstrap()

    def settle_due(self, team: Team, now: datetime) -> None:
        """Book whatever of the team finished by ``now``: generations, then character synthesis runs."""
        self.generations.settle_due(team, now)
        self.characters.settle_due(team, now)

    def close(self) -> None:
        """Close the media cache; the store is closed by whoever opened it (``create_app`` for ``--store``)."""
        self.media.close()
