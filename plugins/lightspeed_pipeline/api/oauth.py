"""OAuth for the API: the settings, the refresh-token exchange, and where the tokens are kept.

The client asks a `TokenVault` for the current access token and, on a 401, for a fresh
one. The durable vault (`warehouse.tokens.PostgresTokenVault`) lives on the database side
and is injected; `MemoryTokenVault` keeps them in the process (tests, one-off scripts).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import requests

from lightspeed_pipeline.api.errors import TRANSPORT_ERRORS, LightspeedAPIError, LightspeedAuthError


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


class TokenVault(Protocol):
    def current(self) -> str | None:
        """The newest stored access token, if any."""

    def refresh(self, stale_access_token: str | None, exchange: Exchange) -> str:
        """A fresh access token: someone else's newer one, or one from `exchange(refresh_token, within_s)`."""


class MemoryTokenVault:
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


def exchange_refresh_token(
    session: requests.Session,
    oauth: OAuthConfig,
    refresh_token: str,
    *,
    timeouts: tuple[float, float],
    within_s: float | None = None,
) -> TokenGrant:
    """POST the refresh token to the token endpoint (form-encoded) and return the new pair.

    `within_s` caps the connect and read `timeouts` (the token vault holds a row lock meanwhile).
    """
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": oauth.client_id,
        "client_secret": oauth.client_secret,
    }
    path = "POST " + (requests.utils.urlparse(oauth.token_url).path or "/")
    cap = within_s or math.inf
    try:
        resp = session.post(
            oauth.token_url,
            data=form,
            headers={"Authorization": None},  # type: ignore[dict-item]  # drop the stale bearer
            timeout=(min(timeouts[0], cap), min(timeouts[1], cap)),
        )
    except TRANSPORT_ERRORS as exc:
        bound = f" within {within_s:.1f} s (bounded by the database's lock_timeout)" if within_s else ""
        raise LightspeedAPIError(f"OAuth: {path} failed{bound}: {type(exc).__name__}") from None
    body: Any
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if resp.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
        code = body.get("error") if isinstance(body, dict) else None
        raise LightspeedAuthError(
            f"OAuth: refreshing the access token failed: HTTP {resp.status_code} on {path}"
            f" ({code or 'no error code'}). "
            "The refresh token may be spent or revoked: re-authorise the app and put the new refresh token "
            "in the `lightspeed_api` connection's password (the JSON object's refresh_token).",
            status=resp.status_code,
        )
    expires = body.get("expires_in")
    return TokenGrant(
        access_token=str(body["access_token"]),
        refresh_token=str(body.get("refresh_token") or refresh_token),
        expires_in=int(expires) if isinstance(expires, (int, float)) else None,
    )
