"""Record -> row mapping: pure functions, no I/O.

A record is always kept whole (`data`); typed columns are filled where the value
can be typed and left NULL otherwise, with the failure counted per column, so bad
input never fails a page. Only records that cannot be stored at all (not an
object, no id) are rejected, and those go to `sync_rejects` with their payload.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from lightspeed_pipeline.entities import UNKNOWN_SHAPE, Child, Column, Entity, ParentPaging
from lightspeed_pipeline.records import VERSION_PATHS, as_bigint, record_id, version_of

_MISSING = object()
_TRUE = {"true", "t", "1", "yes", "y"}
_FALSE = {"false", "f", "0", "no", "n"}


class Untypable(ValueError):
    """A value that cannot be converted to its column's type."""


def get_path(record: dict[str, Any], path: str) -> Any:
    """The value at a dotted member path, or `_MISSING` when any step is absent."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    raise Untypable(f"expected a scalar, got {type(value).__name__}")


def to_numeric(value: Any) -> int | float | str:
    """A JSON number, or a numeric string such as "12.50" (kept as text so no precision is lost)."""
    if isinstance(value, bool):
        raise Untypable("boolean is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise Untypable("non-finite number")
    if isinstance(value, str):
        text = value.strip()
        if "_" in text:
            raise Untypable(f"not a number: {value[:40]!r}")
        try:
            dec = Decimal(text)
        except InvalidOperation:
            raise Untypable(f"not a number: {value[:40]!r}") from None
        if not dec.is_finite() or abs(dec.adjusted()) > 100_000:
            raise Untypable(f"number out of range: {value[:40]!r}")
        return text
    raise Untypable(f"expected a number, got {type(value).__name__}")


def to_bigint(value: Any) -> int:
    number = as_bigint(value)
    if number is None:
        raise Untypable(f"not a 64-bit integer: {str(value)[:40]!r}")
    return number


def to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    raise Untypable(f"not a boolean: {str(value)[:40]!r}")


def to_timestamptz(value: Any) -> str:
    """ISO-8601 with `Z`, an offset, or no zone (taken as UTC, which the API uses)."""
    if not isinstance(value, str):
        raise Untypable(f"expected an ISO-8601 string, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Untypable(f"not an ISO-8601 timestamp: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.isoformat()


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "text": to_text,
    "numeric": to_numeric,
    "bigint": to_bigint,
    "boolean": to_boolean,
    "timestamptz": to_timestamptz,
}

_TIMESTAMPS = (
    Column("created_at", "timestamptz"),
    Column("updated_at", "timestamptz"),
    Column("deleted_at", "timestamptz"),
)
_VERSION = Column("version", "bigint", paths=VERSION_PATHS)


@dataclass
class Reject:
    """A record that cannot be stored as a row."""

    reason: str
    payload: Any
    record_id: str | None = None


@dataclass
class PreparedPage:
    """A page turned into JSON documents ready for one set-based statement each."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    children: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    rejects: list[Reject] = field(default_factory=list)
    untyped: Counter[str] = field(default_factory=Counter)  # "column: reason" -> count
    max_version: int | None = None

    @property
    def ids(self) -> list[str]:
        return [r["id"] for r in self.rows]


def _typed(record: dict[str, Any], col: Column, row: dict[str, Any], untyped: Counter[str], prefix: str) -> None:
    for path in col.sources:
        value = get_path(record, path) if "." in path else record.get(path, _MISSING)
        if value is not _MISSING:
            break
    else:
        row[col.name] = None
        return
    if value is None:
        row[col.name] = None
        return
    try:
        converted = CONVERTERS[col.type](value)
    except Untypable:
        untyped[f"{prefix}{col.name}"] += 1
        row[col.name] = None
        return
    if col.upper and isinstance(converted, str):
        converted = converted.upper()
    row[col.name] = converted


def map_children(child: Child, parent_id: str, record: dict[str, Any], page: PreparedPage) -> None:
    items = record.get(child.member)
    if items is None:
        return
    rows = page.children.setdefault(child.name, [])
    if not isinstance(items, list):
        page.untyped[f"{child.name}: not a list"] += 1
        return
    for position, item in enumerate(items):
        row: dict[str, Any] = {child.parent_key: parent_id, "position": position}  # data: from the parent
        if isinstance(item, dict):
            for col in child.columns:
                _typed(item, col, row, page.untyped, f"{child.name}.")
        else:
            page.untyped[f"{child.name}: item not an object"] += 1
        rows.append(row)


def shape_of(entity: Entity, record: dict[str, Any]) -> str | None:
    """Which published shape `record` has (the first of `entity.shapes` whose markers it holds),
    `UNKNOWN_SHAPE` when none, None when the entity was never reshaped."""
    if not entity.shapes:
        return None
    for shape in entity.shapes:
        if any(get_path(record, m) is not _MISSING for m in shape.markers):
            return shape.name
    return UNKNOWN_SHAPE


def prepare_page(
    entity: Entity, records: list[Any], parent: str | None = None, keys: list[str | None] | None = None
) -> PreparedPage:
    """Map a page of API records to rows (and child rows) for `entity`.

    A page holding the same id twice keeps only its highest version, so one
    statement never touches a row twice and children come from the winning record.
    `parent`: the parent record the page was listed under (`ParentPaging`), whose id goes to
    the entity's `parent_key` column; `keys`: the records' row ids when not their own `id`.
    """
    page = PreparedPage()
    for child in entity.children:
        page.children[child.name] = []
    under = entity.paging if isinstance(entity.paging, ParentPaging) and parent is not None else None
    chosen: dict[str, tuple[int | None, dict[str, Any]]] = {}
    for i, record in enumerate(records):
        rid = keys[i] if keys is not None else record_id(record, entity.id_member)
        if rid is None:
            reason = "not a JSON object" if not isinstance(record, dict) else "missing or unusable id"
            page.rejects.append(Reject(reason=reason, payload=record))
            continue
        version = version_of(record) if entity.versioned else None
        previous = chosen.get(rid)
        if previous is None or (version or 0) >= (previous[0] or 0):
            chosen[rid] = (version, record)
    for rid, (_, record) in chosen.items():
        row: dict[str, Any] = {"id": rid}
        if entity.versioned:
            _typed(record, _VERSION, row, page.untyped, "")
            version = row["version"]
            if version is not None and (page.max_version is None or version > page.max_version):
                page.max_version = version
        for col in _TIMESTAMPS:
            _typed(record, col, row, page.untyped, "")
        for col in entity.columns:
            _typed(record, col, row, page.untyped, "")
        if under is not None:
            row[under.parent_key] = parent
        if entity.shapes:
            row["data_shape"] = shape_of(entity, record)
            if row["data_shape"] == UNKNOWN_SHAPE:
                page.untyped["data_shape: unknown"] += 1  # stored all the same; validation counts them
        row["data"] = record
        page.rows.append(row)
        for child in entity.children:
            map_children(child, rid, record, page)
    return page


# --- Making JSON that PostgreSQL accepts -------------------------------------------------


def _escape_str(text: str) -> tuple[str, int]:
    """Escape what PostgreSQL text/jsonb cannot hold: NUL and lone surrogates."""
    if "\x00" not in text and not any("\ud800" <= ch <= "\udfff" for ch in text):
        return text, 0
    out = []
    for ch in text:
        if ch == "\x00" or "\ud800" <= ch <= "\udfff":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out), 1


def pg_text(value: str) -> tuple[str, int]:
    """A text value PostgreSQL can hold: NUL and lone surrogates escaped as `to_pg_json` does."""
    if "\x00" not in value:
        try:
            value.encode("utf-8")  # C speed; fails only on a lone surrogate
            return value, 0
        except UnicodeEncodeError:
            pass
    return _escape_str(value)


def _sanitize(value: Any) -> tuple[Any, int]:
    if isinstance(value, str):
        return _escape_str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value), 1  # NaN/Infinity parse in Python but not in jsonb
    if isinstance(value, dict):
        fixed = 0
        out: dict[str, Any] = {}
        for k, v in value.items():
            nk, a = _escape_str(k) if isinstance(k, str) else (k, 0)
            nv, b = _sanitize(v)
            out[nk] = nv
            fixed += a + b
        return out, fixed
    if isinstance(value, list):
        fixed = 0
        items = []
        for v in value:
            nv, n = _sanitize(v)
            items.append(nv)
            fixed += n
        return items, fixed
    return value, 0


_ENCODER = msgspec.json.Encoder()


def to_pg_json(value: Any) -> tuple[str, int]:
    """Serialise for a `%s::jsonb` parameter; returns (json text, strings escaped).

    The fast path is one msgspec encode (C; about 6x faster than `json.dumps` on a page
    of sales). It refuses a lone surrogate, and `\\u0000` is visible in its output: only
    then is the value walked and escaped. A float NaN/Infinity (which jsonb cannot hold)
    is written as null; records from the API never hold one, because
    `client.decode_json` keeps the literals `NaN` and `Infinity` as the strings they were.
    """
    try:
        raw = _ENCODER.encode(value)
        if b"\\u0000" not in raw:
            return raw.decode(), 0
    except UnicodeEncodeError:  # a lone surrogate
        pass
    clean, fixed = _sanitize(value)
    return _ENCODER.encode(clean).decode(), fixed


def json_text(value: Any) -> str:
    """JSON text of a value known to need no escaping (see `needs_escaping`)."""
    return _ENCODER.encode(value).decode()


def needs_escaping(value: Any) -> bool:
    """True if `value` holds text PostgreSQL cannot store (NUL, a lone surrogate): one C pass."""
    try:
        return b"\\u0000" in _ENCODER.encode(value)
    except UnicodeEncodeError:
        return True
