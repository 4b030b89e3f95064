"""The OAuth token vault in the target database: rotated refresh tokens, never lost.

Lightspeed refresh tokens rotate: a refresh returns a new refresh token and kills the
old one (and the old access token). So the new pair must be stored durably BEFORE the
new access token is used, and two tasks must never refresh with the same refresh token.

The pair lives in `lightspeed_oauth_tokens`, encrypted with a key derived from the OAuth
client secret (which lives in the Airflow connection, in its password as a JSON object
{"refresh_token", "client_id", "client_secret"}):
  * a row lock (`SELECT ... FOR UPDATE`) serialises refreshes across tasks and workers:
    the first task refreshes, the others wait, then see a newer access token and reuse it;
    the HTTP exchange made under that lock must answer within 80 % of the database's
    `lock_timeout`, so the lock is never held longer than a waiter is allowed to wait;
  * the new pair is committed before `refresh()` returns it (durable before use);
  * every client start reads the newest pair, so a restart never uses a spent token;
  * the connection's `refresh_token` only seeds the chain; if someone re-authorises and
    puts a new refresh token in the connection, the chain restarts from it.
It is transaction-scoped (pooler-safe) and needs no extra infrastructure. It implements
`api.oauth.TokenVault`, which the client is given.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging

from psycopg import sql

from lightspeed_pipeline.api.oauth import Exchange, OAuthConfig
from lightspeed_pipeline.warehouse.connection import Warehouse

log = logging.getLogger(__name__)


class PostgresTokenVault:
    """Tokens in `lightspeed_oauth_tokens`, one row per (store URL, client id).

    Give it a warehouse of its own (`Warehouse.sibling()`): its row lock must not share the
    page-writing transaction.
    """

    def __init__(self, warehouse: Warehouse, oauth: OAuthConfig, base_url: str) -> None:
        from cryptography.fernet import Fernet

        self.warehouse = warehouse
        self._table = warehouse.table("lightspeed_oauth_tokens")
        self.oauth = oauth
        secret = oauth.client_secret.encode()
        self.key = hashlib.sha256(f"{base_url}|{oauth.client_id}".encode()).hexdigest()
        # The salt names the old TokenStore: changing it would make every stored token unreadable.
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
        with self.warehouse.transaction() as conn:
            row = conn.execute(
                sql.SQL("SELECT access_token, seed_fingerprint FROM {} WHERE token_key = %s").format(self._table),
                (self.key,),
            ).fetchone()
        if row is None or row[1] != self._seed_fp:
            return None
        return self._dec(row[0])

    def refresh(self, stale_access_token: str | None, exchange: Exchange) -> str:
        exchanged = False
        try:
            with self.warehouse.transaction() as conn:
                conn.execute(
                    sql.SQL(
                        "INSERT INTO {} (token_key, refresh_token, seed_fingerprint)"
                        " VALUES (%s, %s, %s) ON CONFLICT (token_key) DO NOTHING"
                    ).format(self._table),
                    (self.key, self._enc(self.oauth.refresh_token), self._seed_fp),
                )
                row = conn.execute(
                    sql.SQL(
                        "SELECT access_token, refresh_token, seed_fingerprint FROM {} WHERE token_key = %s FOR UPDATE"
                    ).format(self._table),
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
                ms = conn.execute("SELECT setting::bigint FROM pg_settings WHERE name = 'lock_timeout'").fetchone()
                within = 0.8 * ms[0] / 1000 if ms and ms[0] > 0 else None  # 0: waiters wait without limit
                grant = exchange(refresh, within)
                exchanged = True
                conn.execute(
                    sql.SQL(
                        "UPDATE {} SET access_token = %s, refresh_token = %s, seed_fingerprint = %s,"
                        " expires_at = now() + make_interval(secs => %s), refreshed_at = now(),"
                        " refresh_count = refresh_count + 1, updated_at = now() WHERE token_key = %s"
                    ).format(self._table),
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
