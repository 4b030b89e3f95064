"""Durable OAuth tokens: rotate refresh tokens without ever locking the integration out.

Lightspeed refresh tokens rotate: a refresh returns a new refresh token and kills the
old one (and the old access token). So the new pair must be stored durably BEFORE the
new access token is used, and two tasks must never refresh with the same refresh token.

The pair lives in the target database (`lightspeed_oauth_tokens`), encrypted with a
key derived from the OAuth client secret (which lives in the Airflow connection, in its
password as a JSON object {"refresh_token", "client_id", "client_secret"}):
  * a row lock (`SELECT ... FOR UPDATE`) serialises refreshes across tasks and workers:
    the first task refreshes, the others wait, then see a newer access token and reuse it;
    the HTTP exchange made under that lock must answer within 80 % of the database's
    `lock_timeout`, so the lock is never held longer than a waiter is allowed to wait;
  * the new pair is committed before `refresh()` returns it (durable before use);
  * every client start reads the newest pair, so a restart never uses a spent token;
  * the connection's `refresh_token` only seeds the chain; if someone re-authorises and
    puts a new refresh token in the connection, the chain restarts from it.
It is transaction-scoped (pooler-safe) and needs no extra infrastructure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from lightspeed_pipeline.db import DbSettings, begin

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)


@dataclass(frozen=True, repr=False)
class OAuthConfig:
    """OAuth settings from the connection: its password as a JSON object (or, deprecated, its extra).

    repr() hides every secret."""

    client_id: str
    client_secret: str
    refresh_token: str
    token_url: str

    def __repr__(self) -> str:
        return f"OAuthConfig(client_id={self.client_id!r}, token_url={self.token_url!r}, secrets=***)"


@dataclass(frozen=True, repr=False)
class TokenGrant:
    access_token: str
    refresh_token: str
    expires_in: int | None = None

    def __repr__(self) -> str:
        return f"TokenGrant(expires_in={self.expires_in}, tokens=***)"


Exchange = Callable[[str, float | None], TokenGrant]  # (refresh token, answer within s) -> new pair


class TokenStore(Protocol):
    def current(self) -> str | None:
        """The newest stored access token, if any."""

    def refresh(self, stale_access_token: str | None, exchange: Exchange) -> str:
        """A fresh access token: someone else's newer one, or one from `exchange(refresh_token, within_s)`."""


class MemoryTokenStore:
    """In-process only (no durability): for tests and one-off scripts."""

    def __init__(self, oauth: OAuthConfig) -> None:
        self._refresh = oauth.refresh_token
        self._access: str | None = None

    def current(self) -> str | None:
        return self._access

    def refresh(self, stale_access_token: str | None, exchange: Exchange) -> str:
        if self._access and self._access != stale_access_token:
            return self._access
        grant = exchange(self._refresh, None)
        self._refresh, self._access = grant.refresh_token, grant.access_token
        return grant.access_token


class PostgresTokenStore:
    """Tokens in `lightspeed_oauth_tokens`, one row per (store URL, client id)."""

    def __init__(self, conn: psycopg.Connection[Any], settings: DbSettings, oauth: OAuthConfig, base_url: str):
        from cryptography.fernet import Fernet

        self.conn = conn
        self.settings = settings
        self.oauth = oauth
        secret = oauth.client_secret.encode()
        self.key = hashlib.sha256(f"{base_url}|{oauth.client_id}".encode()).hexdigest()
        self._fernet = Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"lightspeed-token-store|" + secret).digest()))
        self._seed_fp = hmac.new(secret, oauth.refresh_token.encode(), hashlib.sha256).hexdigest()

    def _enc(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def _dec(self, value: str | None) -> str | None:
        from cryptography.fernet import InvalidToken

        if value is None:
            return None
        try:
            return self._fernet.decrypt(value.encode()).decode()
        except InvalidToken:
            log.warning("stored OAuth tokens cannot be decrypted (client secret changed?); reseeding")
            return None

    def current(self) -> str | None:
        with self.conn.transaction():
            begin(self.conn, self.settings)
            row = self.conn.execute(
                "SELECT access_token, seed_fingerprint FROM lightspeed_oauth_tokens WHERE token_key = %s",
                (self.key,),
            ).fetchone()
        if row is None or row[1] != self._seed_fp:
            return None
        return self._dec(row[0])

    def refresh(self, stale_access_token: str | None, exchange: Exchange) -> str:
        exchanged = False
        try:
            with self.conn.transaction():
                begin(self.conn, self.settings)
                self.conn.execute(
                    "INSERT INTO lightspeed_oauth_tokens (token_key, refresh_token, seed_fingerprint)"
                    " VALUES (%s, %s, %s) ON CONFLICT (token_key) DO NOTHING",
                    (self.key, self._enc(self.oauth.refresh_token), self._seed_fp),
                )
                row = self.conn.execute(
                    "SELECT access_token, refresh_token, seed_fingerprint FROM lightspeed_oauth_tokens"
                    " WHERE token_key = %s FOR UPDATE",
                    (self.key,),
                ).fetchone()
                assert row is not None
                access, refresh = self._dec(row[0]), self._dec(row[1])
                if row[2] != self._seed_fp or refresh is None:
                    log.info("OAuth: starting a new token chain from the connection's refresh token")
                    access, refresh = None, self.oauth.refresh_token
                elif access and access != stale_access_token:
                    log.info("OAuth: another task already refreshed the access token; reusing it")
                    return access
                ms = self.conn.execute("SELECT setting::bigint FROM pg_settings WHERE name = 'lock_timeout'").fetchone()
                within = 0.8 * ms[0] / 1000 if ms and ms[0] > 0 else None  # 0: waiters wait without limit
                grant = exchange(refresh, within)
                exchanged = True
                self.conn.execute(
                    "UPDATE lightspeed_oauth_tokens SET access_token = %s, refresh_token = %s, seed_fingerprint = %s,"
                    " expires_at = now() + make_interval(secs => %s), refreshed_at = now(),"
                    " refresh_count = refresh_count + 1, updated_at = now() WHERE token_key = %s",
                    (self._enc(grant.access_token), self._enc(grant.refresh_token), self._seed_fp,
                     grant.expires_in or 0, self.key),
                )  # fmt: skip
        except Exception:
            if exchanged:
                log.error(
                    "OAuth: the refresh succeeded but storing the rotated refresh token failed; the old one is "
                    "spent. If the next run cannot authenticate, re-authorise the app and put the new refresh "
                    "token in the `lightspeed_api` connection."
                )
            raise
        # Committed: the new refresh token is durable before the new access token is used.
        log.info("OAuth: access token refreshed; the rotated refresh token is stored")
        return grant.access_token
