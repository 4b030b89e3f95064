"""History mode end to end: the real DAG against the simulator over HTTP and a real PostgreSQL,
through a scripted timeline of several days (price changes, stock movements, a deletion and a
revival, a crash mid-entity and its resume, a full refresh, a no-op run).

The expected history is computed here from the timeline alone: the records as the API served
them at each run, and the rule of `valid_from` (the record's updated_at when later than the
previous version's valid_from and not after the sync wrote it, else the sync's time). The one
figure taken from the database is when each version was written (its synced_at), and that is
checked to lie inside the run that wrote it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import FAST_RETRIES
from tests.integration.helpers import _known_zone, run_dag, run_killed

API = "2026-07"
ENTITIES = ["outlets", "products", "inventory"]
PAGE = FAST_RETRIES["page_size"]
FROM_DAY = date(2026, 10, 25)  # inventory_daily is compared from here (the timeline starts 1 Nov 2026)


def day(n: int, hour: int = 12) -> str:
    """A time on day n of the timeline (1 November 2026 + n), as the API sends it."""
    return (datetime(2026, 11, 1, hour, tzinfo=UTC) + timedelta(days=n)).isoformat().replace("+00:00", "Z")


def ts(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class Seen:
    """One version of a record as the API served it when a run read it."""

    version: int
    updated_at: datetime | None
    deleted: bool
    record: dict[str, Any]
    window: tuple[datetime, datetime]  # the run (or crashed run and its resume) that read it


class Timeline:
    """Runs the DAG and remembers, per record, each version the runs were served."""

    def __init__(self, simulator: Any) -> None:
        self.sim = simulator
        self.seen: dict[str, dict[str, list[Seen]]] = {"products": {}, "inventory": {}}

    def served(self) -> dict[str, list[dict[str, Any]]]:
        return self.sim.state(API)

    def record(self, started: datetime) -> None:
        ended = datetime.now(UTC)
        state = self.served()
        for name, by_id in self.seen.items():
            for rec in state[name]:
                if rec.get("_removed"):
                    continue
                versions = by_id.setdefault(rec["id"], [])
                if not versions or versions[-1].version != rec["version"]:
                    versions.append(
                        Seen(
                            rec["version"],
                            ts(rec.get("updated_at")),
                            bool(rec.get("deleted_at")),
                            rec,
                            (started, ended),
                        )
                    )

    def run(self, **conf: Any) -> None:
        started = datetime.now(UTC)
        assert run_dag(entities=ENTITIES, **conf).state == "success"
        self.record(started)

    def base(self, name: str, rid: str) -> dict[str, Any]:
        """The record as stored by the simulator (2.0's shape: what `inject` takes)."""
        return next(r for r in self.sim.state("2.0")[name] if r["id"] == rid)

    def change(self, name: str, rid: str, **members: Any) -> None:
        rec = {k: v for k, v in self.base(name, rid).items() if not k.startswith("_")}
        rec.update(members)
        self.sim.inject(name, [rec])


def expected_intervals(seen: list[Seen], written: dict[int, datetime]) -> list[tuple[Any, ...]]:
    """(version, valid_from, valid_to, is_current, deleted) of one record, by the rule;
    `written`: when each version was written (checked to lie in its run)."""
    out: list[list[Any]] = []
    for i, s in enumerate(seen):
        synced = written[s.version]
        assert s.window[0] - timedelta(seconds=1) <= synced <= s.window[1] + timedelta(seconds=1), (s.version, synced)
        stamp = min(s.updated_at, synced) if s.updated_at else synced
        if i == 0:
            valid_from = stamp
        else:
            previous = out[-1][1]
            valid_from = stamp if s.updated_at and s.updated_at > previous and s.updated_at <= synced else synced
            out[-1][2] = valid_from
        out.append([s.version, valid_from, None, True, s.deleted])
        if i:
            out[-2][3] = False
    return [tuple(r) for r in out]


def history_rows(db: Any, schema: str, name: str) -> dict[str, list[tuple[Any, ...]]]:
    rows = db.execute(
        f'SELECT id, version, valid_from, valid_to, is_current, deleted, synced_at, seeded FROM "{schema}".'
        f"lightspeed_{name}_history ORDER BY id, valid_from, version"
    ).fetchall()
    out: dict[str, list[tuple[Any, ...]]] = {}
    for rid, *rest in rows:
        out.setdefault(rid, []).append(tuple(rest))
    return out


def assert_history_matches(db: Any, schema: str, timeline: Timeline) -> None:
    for name, by_id in timeline.seen.items():
        stored = history_rows(db, schema, name)
        assert set(stored) == set(by_id), name
        for rid, seen in by_id.items():
            rows = stored[rid]
            assert not any(r[6] for r in rows), (name, rid)  # history was on from the first run: none seeded
            written = {r[0]: r[5] for r in rows}
            assert [r[:5] for r in rows] == expected_intervals(seen, written), (name, rid)


def expected_inventory_daily(timeline: Timeline, zones: dict[str, str], intervals: dict[str, list[Any]]) -> set:
    """(day, inventory id, closing level, out of stock, version) from the timeline's intervals."""
    out = set()
    for rid, rows in intervals.items():
        seen = {s.version: s for s in timeline.seen["inventory"][rid]}
        for version, valid_from, valid_to, _, deleted in rows:
            if deleted:
                continue
            rec = seen[version].record
            zone = ZoneInfo(zones.get(rec.get("outlet_id"), "UTC"))
            # the column's paths, the first present wins (current_amount, inventory_level, 2026-07's name)
            level = next(
                (rec[k] for k in ("current_amount", "inventory_level", "current_inventory_level") if k in rec), None
            )
            level = Decimal(str(level)) if isinstance(level, (int, float)) and not isinstance(level, bool) else None
            d = max(valid_from.astimezone(zone).date(), FROM_DAY)
            today = datetime.now(zone).date()
            while d <= today:
                close = datetime.combine(d + timedelta(days=1), datetime.min.time(), zone)
                if valid_from < close and (valid_to is None or valid_to >= close):
                    out.add((d, rid, level, None if level is None else level <= 0, version))
                d += timedelta(days=1)
    return out


def expected_price_changes(timeline: Timeline, intervals: dict[str, list[Any]]) -> set:
    """(product, changed_at, old price, new price, change %) between versions not deleted."""
    out = set()
    for rid, rows in intervals.items():
        seen = {s.version: s for s in timeline.seen["products"][rid]}
        live = [(r[1], seen[r[0]].record.get("price_excluding_tax")) for r in rows if not r[4]]
        for (_, old), (when, new) in itertools.pairwise(live):
            old_d, new_d = (Decimal(str(v)) if isinstance(v, (int, float)) else None for v in (old, new))
            if old_d != new_d:
                pct = ((new_d - old_d) / old_d * 100).quantize(Decimal("0.01")) if old_d and new_d is not None else None
                out.add((rid, when, old_d, new_d, pct))
    return out


def versions_count(db: Any, schema: str) -> int:
    return sum(
        db.execute(f'SELECT count(*) FROM "{schema}".lightspeed_{n}_versions').fetchone()[0]
        for n in ("products", "inventory")
    )


def products_cursor(db: Any, schema: str) -> int:
    row = db.execute(f"SELECT last_version FROM \"{schema}\".sync_state WHERE entity_type = 'products'").fetchone()
    return int(row[0] or 0)


@pytest.fixture
def dated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIGHTSPEED_API_VERSION", API)


def test_a_scripted_timeline_leaves_exactly_the_expected_history(
    dated: None,
    connections: None,
    simulator: Any,
    db: Any,
    schema: str,
    airflow_db: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    t = Timeline(simulator)
    state = simulator.state("2.0")
    stocked = next(p for p in state["products"] if p.get("has_inventory") and not p.get("deleted_at"))
    tracked = next(i for i in state["inventory"] if i["product_id"] == stocked["id"])
    p1, (p2, p3) = stocked["id"], [p["id"] for p in state["products"] if p["id"] != stocked["id"]][:2]

    # Day 0: a product and its stock as of the timeline's start; the first import.
    t.change("products", p1, price_excluding_tax=10.0, updated_at=day(0))
    t.change("inventory", tracked["id"], inventory_level=10, current_amount=10, updated_at=day(0))
    t.run()
    assert versions_count(db, schema) == 0  # an import writes no history: the current rows are it

    # Day 1: a price rise, a stock-out, and a price change whose updated_at is not later.
    t.change("products", p1, price_excluding_tax=12.0, updated_at=day(1, 15))
    t.change("inventory", tracked["id"], inventory_level=0, current_amount=0, updated_at=day(1, 18))
    t.change("products", p2, price_excluding_tax=77.5, updated_at="2020-01-01T00:00:00Z")
    t.run()

    # Day 2: two price changes between runs (only the last is seen), stock received, a deletion.
    t.change("products", p1, price_excluding_tax=13.0, updated_at=day(2, 8))
    t.change("products", p1, price_excluding_tax=14.0, updated_at=day(2, 9))
    t.change("inventory", tracked["id"], inventory_level=7, current_amount=7, updated_at=day(2, 10))
    t.change("products", p3, deleted_at=day(2, 11), updated_at=day(2, 11))
    t.run()

    # Day 3: the deleted product comes back repriced; many products change and the worker dies
    # mid-entity (SIGKILL); the resumed run must not record anything twice.
    t.change("products", p3, deleted_at=None, price_excluding_tax=5.0, updated_at=day(3, 9))
    many = [p["id"] for p in state["products"] if p["id"] not in (p1, p2, p3)][: 3 * PAGE]
    for n, rid in enumerate(many):
        t.change("products", rid, price_excluding_tax=float(100 + n), updated_at=day(3, 12))
    before = products_cursor(db, schema)
    simulator.faults(delay={"products": 0.4})
    started = datetime.now(UTC)
    run_killed(["products"], lambda: products_cursor(db, schema) > before)  # once a page is committed
    partly = db.execute(
        f'SELECT count(*) FROM "{schema}".lightspeed_products_versions WHERE id = ANY(%s)', (many,)
    ).fetchone()[0]
    assert 0 < partly < len(many)  # the crashed run recorded the pages it committed, and no more
    simulator.faults()
    assert run_dag(entities=ENTITIES).state == "success"  # what clearing the products group does
    t.record(started)
    assert_history_matches(db, schema, t)

    # Day 4: a full refresh over unchanged data and a no-op run write no history.
    kept = versions_count(db, schema)
    t.run(full_refresh=True)
    t.run()
    assert versions_count(db, schema) == kept
    assert_history_matches(db, schema, t)

    # The views, against figures computed from the timeline.
    outlets = simulator.state(API)["outlets"]
    zones = {o["id"]: _known_zone(o.get("time_zone")) for o in outlets}
    intervals = {
        name: {rid: expected_intervals(seen, {r[0]: r[5] for r in history_rows(db, schema, name)[rid]})
               for rid, seen in t.seen[name].items()}
        for name in t.seen
    }  # fmt: skip
    daily = db.execute(
        f'SELECT day, inventory_id, closing_level, out_of_stock, version FROM "{schema}".inventory_daily'
        " WHERE day >= %s",
        (FROM_DAY,),
    ).fetchall()
    assert len(daily) == len(set(daily))
    assert set(daily) == expected_inventory_daily(t, zones, intervals["inventory"])
    tracked_days = sorted(d for d, rid, *_ in daily if rid == tracked["id"])
    assert tracked_days[0] <= date(2026, 11, 2) and len(tracked_days) == len(set(tracked_days)) >= 35  # every day
    changes = db.execute(
        f'SELECT product_id, changed_at, old_price, new_price, change_percent FROM "{schema}".product_price_history'
    ).fetchall()
    assert set(changes) == expected_price_changes(t, intervals["products"])
    p1_changes = sorted((c[2], c[3]) for c in changes if c[0] == p1)
    assert p1_changes == [(Decimal("10"), Decimal("12")), (Decimal("12"), Decimal("14"))]  # 13 was never seen

    # Retention: finalize removes the past versions that ended more than 10 days ago, no others.
    def ended(name: str) -> int:
        return db.execute(
            f"SELECT count(*) FROM \"{schema}\".lightspeed_{name}_versions WHERE valid_to < now() - interval '10 days'"
        ).fetchone()[0]

    old = {name: ended(name) for name in ("products", "inventory")}
    total = versions_count(db, schema)
    assert old["products"] >= 2 and old["inventory"] >= 2  # p1's and the stock's November versions
    monkeypatch.setenv("LIGHTSPEED_HISTORY_RETENTION_DAYS", "10")
    t.run()
    assert ended("products") == ended("inventory") == 0
    assert versions_count(db, schema) == total - sum(old.values())
    pruned = db.execute(f'SELECT entity_type, pruned_rows FROM "{schema}".sync_history WHERE pruned_rows > 0')
    assert dict(pruned.fetchall()) == old
