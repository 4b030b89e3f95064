"""What every record has: an id and (for versioned entities) a version. Pure, no I/O.

The one place a record's id and version are read, by the paginators (the cursor), the
mapping (the row) and the sync (which records a full refresh may skip).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_BIGINT_MIN, _BIGINT_MAX = -(2**63), 2**63 - 1


def as_bigint(value: Any) -> int | None:
    """A 64-bit integer from an int, an integral float or an integer string; else None.

    The one parser of versions (and of the mapping's bigint columns).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            return None
    if isinstance(value, int) and _BIGINT_MIN <= value <= _BIGINT_MAX:
        return value
    return None


# Where a record keeps its version: 2.0 and most 2026-07 records at the top; 2026-07 sales in
# `_metadata`. The first member present is the version (as the mapping types it).
VERSION_PATHS = ("version", "_metadata.version")


def version_of(record: Any) -> int | None:
    """The record's version (None when it is not an object or has no usable version)."""
    if not isinstance(record, dict):
        return None
    if "version" in record:
        return as_bigint(record["version"])
    meta = record.get("_metadata")
    return as_bigint(meta.get("version")) if isinstance(meta, dict) else None


def record_id(record: Any, member: str = "id") -> str | None:
    """The record's id as text (its `member`: store credits are keyed by customer), or None
    when it has no usable id."""
    if not isinstance(record, dict):
        return None
    rid = record.get(member)
    if isinstance(rid, bool) or rid is None:
        return None
    if isinstance(rid, (int, str)):
        text = str(rid)
        return text if text.strip() else None
    return None


def keys_under(parent: str, key: str | None, records: list[Any], seen: dict[str, int]) -> list[str | None]:
    """The row ids of records listed under a parent (`ParentPaging`), in listing order (version
    order): a record's own id; else `<parent id>/<key member>`, and `/2`, `/3`... for the second
    and later records of one parent with the same key member (the vendor's own example lists one
    product three times in a consignment). `seen` counts the key members across the parent's pages.
    Since the listing is in version order and versions only grow, the n-th record of a key member
    never moves to a lower version, so the version guard still holds row by row."""
    out: list[str | None] = []
    for record in records:
        rid = record_id(record)
        if rid is None and key is not None and isinstance(record, dict):
            member = record_id({"id": record.get(key)})
            if member is not None:
                seen[member] = n = seen.get(member, 0) + 1
                rid = f"{parent}/{member}" if n == 1 else f"{parent}/{member}/{n}"
        out.append(rid)
    return out


@dataclass(frozen=True)
class ParentRef:
    """A parent record whose children are to be listed (`ParentPaging`): its id, version and the
    typed columns its children's path names."""

    id: str
    version: int
    values: dict[str, Any]
