"""Teams and API keys: authentication, scopes, and provisioning a team for every new well-formed key.

Any well-formed key the emulator has not seen (``al_live_…`` or legacy ``og_…``) provisions its own
team with the default balance, so each test can isolate itself by using a fresh key. Keys can also
be declared up front (settings) with a team, balance, scope, revoked state and billing mode.

With ``strict_keys`` the public API authenticates only keys the emulator knows: declared in the settings, by
``POST /_mock/keys``, or by using the key on the control plane (which still provisions, so a test can set up its
team); any other key, well-formed or not, is ``401 invalid_api_key`` as upstream would answer it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from mockserver.clock import Clock, TeamTime
from mockserver.core.errors import (
    InvalidApiKeyError,
    InvalidFormatError,
    InvalidRequestStateError,
    MissingApiKeyError,
    MissingScopeError,
    ResourceNotFoundError,
    RevokedApiKeyError,
    UnknownVersionError,
)
from mockserver.core.models import ApiKey, Team
from mockserver.core.versions import HEADER, resolve_version
from mockserver.ids import stable_ulid
from mockserver.settings import KeyConfig, Settings
from mockserver.store import Store

# The documented format is `al_live_<64-hex>`; the prefix alone decides validity upstream ("prefix
# has no effect on validation"), and short test keys such as `al_live_test` must work (inferred).
KEY_PATTERN = re.compile(r"^(?:al_live_|og_)[A-Za-z0-9_\-]{1,200}$")
KEY_PREVIEW_LENGTH = 14
KEY_FORMAT = "key must be al_live_… or og_… followed by 1-200 letters, digits, '_' or '-'."
KEY_TAKEN = "The API key {preview}… exists already; change it with PATCH /_mock/keys/{{key}}."
UNKNOWN_KEY = (
    "Invalid API key: this emulator runs with strict keys, and this key was never declared "
    "(settings keys: or POST /_mock/keys)."
)


def refreshed(store: Store, team: Team) -> Team:
    """``team`` brought up to date from the store, in place; call it inside the transaction that changes the team.

    A request holds the team it authenticated with; another request (or worker) may have moved its credits or
    clock since. With ``InMemoryStore`` the stored team is that very object and this costs one lookup.
    """
    current: Team | None = store.get("team", team.id)
    if current is not None and current is not team:
        team.assign(current)
    return team


def team_id_for(key: str) -> str:
    """The team id of an auto-provisioned key: derived from the key, so it never depends on request order."""
    return f"team_{stable_ulid('team:' + key)}"


class Accounts:
    """Looks up and provisions teams and keys in the store."""

    def __init__(self, store: Store, clock: Clock, settings: Settings) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self._declared = {cfg.key: cfg for cfg in settings.keys}

    def bootstrap(self) -> None:
        for cfg in self._declared.values():
            self.declare(cfg)

    def declare(self, cfg: KeyConfig) -> tuple[Team, ApiKey]:
        """Create (or update) a key and its team from a declaration."""
        team_id = cfg.team_id or team_id_for(cfg.key)
        with self.store.transaction():
            team = self.store.get("team", team_id)
            if team is None:
                team = self._new_team(team_id, cfg.key)
                if cfg.credits is not None:
                    team.credits = cfg.credits
                team.billing_mode = cfg.billing_mode
                team.billing_email = cfg.billing_email
                # Resolved now, so a bad pin fails at start-up instead of on every request of the team.
                team.default_api_version = resolve_version(cfg.default_api_version, None)
                if cfg.team_name:
                    team.name = cfg.team_name
                self.store.put("team", team_id, team, owner=team_id)
            key = ApiKey(key=cfg.key, team_id=team_id, scope=cfg.scope, revoked=cfg.revoked)
            self.store.put("api_key", cfg.key, key, owner=team_id)
            return team, key

    def _new_team(self, team_id: str, key: str) -> Team:
        return Team(
            id=team_id,
            name=f"aurous-mock team {key[:KEY_PREVIEW_LENGTH]}",
            created_at=self.clock.now().replace(microsecond=0),
            credits=self.settings.default_credits,
            billing_mode=self.settings.default_billing_mode,
        )

    def authenticate(self, raw: str | None, *, provision: bool = True) -> tuple[Team, ApiKey]:
        """The team and key behind ``raw``; provisions unseen well-formed keys, unless strict keys forbid it.

        ``provision=False`` (the public API) refuses an unknown key when ``strict_keys`` is set; the control plane
        passes ``True``, so using a key there declares it.
        """
        if raw is None or raw == "":
            raise MissingApiKeyError()
        key = self.store.get("api_key", raw)
        if key is None:
            if not KEY_PATTERN.match(raw):
                raise InvalidApiKeyError()
            if raw in self._declared:
                _, key = self.declare(self._declared[raw])
            elif self.settings.strict_keys and not provision:
                raise InvalidApiKeyError(UNKNOWN_KEY)
            else:
                key = self._provision(raw)
        if key.revoked:
            raise RevokedApiKeyError()
        return self.team(key.team_id), key

    def _provision(self, raw: str) -> ApiKey:
        team_id = team_id_for(raw)
        with self.store.transaction():
            existing: ApiKey | None = self.store.get("api_key", raw)
            if existing is not None:
                return existing
            if self.store.get("team", team_id) is None:
                self.store.put("team", team_id, self._new_team(team_id, raw), owner=team_id)
            key = ApiKey(key=raw, team_id=team_id, scope=self.settings.default_scope)
            self.store.put("api_key", raw, key, owner=team_id)
            return key

    def team(self, team_id: str) -> Team:
        team: Team | None = self.store.get("team", team_id)
        if team is None:  # the team was reset while a key was cached: provision again
            with self.store.transaction():
                team = self.store.get("team", team_id)
                if team is None:
                    team = self._new_team(team_id, team_id)
                    self.store.put("team", team_id, team, owner=team_id)
        return team

    def team_id_of(self, raw: str) -> str:
        """The team of a key (declared, seen, or the one it would provision), without provisioning anything."""
        key: ApiKey | None = self.store.get("api_key", raw)
        if key is not None:
            return key.team_id
        cfg = self._declared.get(raw)
        return (cfg.team_id if cfg is not None else None) or team_id_for(raw)

    def now(self, team: Team) -> datetime:
        return team.time.now(self.clock)

    # --- the control plane: keys and team settings ------------------------------------------------------

    def declare_key(self, team: Team, raw: str, *, scope: str, revoked: bool) -> ApiKey:
        """A new key on ``team`` (not the team its string would provision); a key that exists is refused.

        So is a key whose own team exists (it was used, then its team reset, which forgets its keys): declaring it
        elsewhere would send that team's next requests to another team.
        """
        if not KEY_PATTERN.fullmatch(raw):  # not match: "$" would let a trailing newline in
            raise InvalidFormatError(KEY_FORMAT, param="key")
        with self.store.transaction():
            own: Team | None = self.store.get("team", team_id_for(raw))
            taken = own is not None and own.id != team.id
            if taken or self.store.get("api_key", raw) is not None or raw in self._declared:
                raise InvalidRequestStateError(KEY_TAKEN.format(preview=raw[:KEY_PREVIEW_LENGTH]), param="key")
            key = ApiKey(key=raw, team_id=team.id, scope=scope, revoked=revoked)
            self.store.put("api_key", raw, key, owner=team.id)
        return key

    def update_key(self, team: Team, raw: str, *, scope: str | None = None, revoked: bool | None = None) -> ApiKey:
        """Change a key of ``team``; a key of another team (or none) is not found."""
        with self.store.transaction():
            key: ApiKey | None = self.store.get("api_key", raw)
            if key is None or key.team_id != team.id:
                raise ResourceNotFoundError(kind="API key", id=raw[:KEY_PREVIEW_LENGTH] + "…")
            if scope is not None:
                key.scope = scope
            if revoked is not None:
                key.revoked = revoked
            self.store.put("api_key", raw, key, owner=team.id)
        return key

    def keys(self, team: Team) -> list[ApiKey]:
        """The team's keys, oldest first."""
        rows: list[ApiKey] = self.store.values("api_key", owner=team.id)
        return rows

    def configure(self, team: Team, *, billing_mode: str | None, default_api_version: str | None) -> None:
        """Change the team's billing mode (any string; only ``metered`` gates) and its pinned version.

        ``default_api_version`` must come from :func:`pinned_version`, so nothing here can fail half-way.
        """
        with self.store.transaction():
            refreshed(self.store, team)
            if default_api_version is not None:
                team.default_api_version = default_api_version
            if billing_mode is not None:
                team.billing_mode = billing_mode
            self.store.put("team", team.id, team, owner=team.id)

    def move_time(self, team: Team, move: Callable[[TeamTime], datetime]) -> datetime:
        """Apply ``move`` to the team's clock (advance, set, freeze …) and keep it; the team's new instant."""
        with self.store.transaction():
            refreshed(self.store, team)
            moved = move(team.time)
            self.store.put("team", team.id, team, owner=team.id)
        return moved

    def reset(self, team: Team) -> None:
        """Forget every record the team owns, then re-declare its configured keys."""
        with self.store.transaction():
            self.store.clear(owner=team.id)
            for cfg in self._declared.values():
                if (cfg.team_id or team_id_for(cfg.key)) == team.id:
                    self.declare(cfg)

    def reset_all(self) -> None:
        """Forget every record of every team, then re-declare the configured keys."""
        with self.store.transaction():
            self.store.clear()
            self.bootstrap()


def pinned_version(value: str) -> str:
    """The published version a team pin of ``value`` resolves to; the errors name ``default_api_version``."""
    try:
        return resolve_version(value, None)
    except (InvalidFormatError, UnknownVersionError) as error:
        raise type(error)(error.detail.replace(HEADER, "default_api_version"), param="default_api_version") from None


def require_scope(key: ApiKey, needed: str) -> None:
    if not key.allows(needed):
        raise MissingScopeError(have=key.scope, need=needed)
