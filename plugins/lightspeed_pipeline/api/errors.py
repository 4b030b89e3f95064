"""What can go wrong talking to the API, and which of it is worth retrying."""

from __future__ import annotations

import requests

# Transport failures worth retrying: no answer, a late answer, or an answer cut short.
TRANSPORT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504, 520, 521, 522, 523, 524})


class LightspeedAPIError(RuntimeError):
    """A request failed for good; the message says entity, request and why.

    `permanent` means no retry of the task can help (a refused token, a 4xx, a cursor that
    does not advance): the task fails at once instead of burning its retries.
    """

    def __init__(self, message: str, *, status: int | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.permanent = permanent


class LightspeedAuthError(LightspeedAPIError):
    """401/403: the token is wrong, expired or lacks a scope (never fixed by retrying)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message, status=status, permanent=True)


def excerpt(text: str, limit: int = 300) -> str:
    """`text` on one line, at most `limit` characters (for error messages)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "..."
