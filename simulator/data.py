"""Deterministic Lightspeed-like data (API 2.0 shapes) and the mutations tests apply to it.

No wall clock and no global random: the same seed and scale give the same records.
Versions come from one store-wide counter that starts above 2**31 and grows by a
random step per write, as in the real API.

Two things override the generated data: a record marked `"_removed": True` (mutate's
`remove`) is served by no listing until `restore` clears the marker, and a resource with a
published body (`publish`) is served from that body alone until it is unpublished. In the
resources whose 2026-07 listing has a delete feed that 2.0's lacks (`DATED_FEED`), the store's
removal is a deletion the dated API reports: `remove` soft-deletes (a new version, `deleted_at`),
which a 2.0 listing shows as the record gone, and `restore` revives it with a new version.
"""

from __future__ import annotations

import bisect
import copy
import gc
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

BASE = datetime(2024, 1, 1, tzinfo=UTC)
FIRST_VERSION = 3_300_000_000

VERSIONED = (
    "outlets", "registers", "users", "taxes", "payment_types", "brands", "suppliers", "product_types",
    "customer_groups", "products", "customers", "inventory", "sales", "tags", "price_books",
    "price_book_products", "consignments", "consignment_products", "purchase_orders", "purchase_order_line_items",
    "purchase_order_deliveries", "purchase_order_delivery_line_items",
)  # fmt: skip
# Resources listed under a parent record only (`/consignments/{id}/products`): each record keeps
# its parent's id in `_parent` (not served), and a write to one gives its parent a new version.
PER_PARENT = {
    "consignment_products": "consignments",
    "purchase_order_line_items": "purchase_orders",
    "purchase_order_deliveries": "purchase_orders",
    "purchase_order_delivery_line_items": "purchase_order_deliveries",
}
# Members the API sends only with `products:read:costs` granted (`SimData.costs_granted`).
COST_MEMBERS = {
    "purchase_orders": ("cost_price_total",),
    "purchase_order_line_items": ("cost_price",),
    "purchase_order_deliveries": ("cost_price_total",),
    "purchase_order_delivery_line_items": ("cost_price",),
}
PO_OPEN = ("OPEN", "SENT")
SUPPORTS_DELETED = frozenset({"outlets", "registers", "products", "customers", "customer_groups", "tags"})
# What 2026-07 adds to it (simulator/dated.py); mutate's `delete` may soft-delete these too: a
# 2.0 listing then no longer holds them, a 2026-07 one with deleted=true reports them deleted.
GAINS_DELETED = frozenset({"brands", "suppliers", "product_types", "payment_types", "price_books"})
SUPPORTS_DELETED_DATED = SUPPORTS_DELETED | GAINS_DELETED  # resources honouring deleted=true in 2026-07
# Resources with a delete feed in 2026-07 (`deleted=true`, or inventory's `include_deleted`) and none in 2.0.
DATED_FEED = GAINS_DELETED | {"inventory"}
# No version and no cursor: listed whole (promotions, store credits) or newest first by id (gift cards).
UNVERSIONED = ("promotions", "gift_cards", "store_credits")
RESOURCES = (*VERSIONED, "product_categories", *UNVERSIONED)
LISTED = tuple(r for r in RESOURCES if r not in PER_PARENT)  # resources with a listing of their own
CONSIGNMENT_TYPES = ("SUPPLIER", "SUPPLIER", "SUPPLIER", "OUTLET", "RETURN", "STOCKTAKE")
OPEN_STATUSES = {"SUPPLIER": "SENT", "OUTLET": "SENT", "RETURN": "OPEN", "STOCKTAKE": "STOCKTAKE_IN_PROGRESS"}
DONE_STATUSES = {"SUPPLIER": "RECEIVED", "OUTLET": "RECEIVED", "RETURN": "SENT", "STOCKTAKE": "STOCKTAKE_COMPLETE"}

SCALES: dict[str, dict[str, int]] = {
    "test": {
        "outlets": 2, "registers": 4, "users": 4, "taxes": 3, "payment_types": 5, "brands": 6, "suppliers": 4,
        "product_categories": 12, "customer_groups": 3, "products": 120, "customers": 80, "inventory": 200,
        "sales": 250, "tags": 5, "price_books": 3, "price_book_products": 40, "consignments": 10,
        "consignment_products": 50, "promotions": 4, "gift_cards": 30, "store_credits": 15, "purchase_orders": 8,
        "gift_card_transactions": 0,
    },
    "demo": {
        "outlets": 3, "registers": 6, "users": 8, "taxes": 3, "payment_types": 5, "brands": 20, "suppliers": 10,
        "product_categories": 30, "customer_groups": 4, "products": 2000, "customers": 1500, "inventory": 5000,
        "sales": 5000, "tags": 15, "price_books": 4, "price_book_products": 600, "consignments": 60,
        "consignment_products": 600, "promotions": 10, "gift_cards": 300, "store_credits": 150, "purchase_orders": 40,
        "gift_card_transactions": 0,
    },
    "bench": {
        "outlets": 3, "registers": 6, "users": 10, "taxes": 3, "payment_types": 5, "brands": 50, "suppliers": 20,
        "product_categories": 60, "customer_groups": 5, "products": 20000, "customers": 20000, "inventory": 60000,
        "sales": 50000, "tags": 40, "price_books": 6, "price_book_products": 5000, "consignments": 500,
        "consignment_products": 5000, "promotions": 20, "gift_cards": 5000, "store_credits": 2000,
        "purchase_orders": 300,
        "gift_card_transactions": 0,
    },
}  # fmt: skip

TIME_ZONES = ("Australia/Sydney", "America/New_York", "Europe/London", "Pacific/Auckland", "America/Los_Angeles")
PAYMENT_TYPES = (("Cash", 1), ("Credit Card", 3), ("EFTPOS", 3), ("Gift Card", 5), ("Store Credit", 6))
WORDS = (
    "Oak", "Linen", "Ceramic", "Copper", "Glass", "Wool", "Cedar", "Marble", "Indigo", "Saffron", "Café ☕",
    "Crème brûlée", "שולחן", "مصباح", "Ñandú", "Zürich", "Smörgås", "Straße", "🌿 Fern", "Ōtaki",
)  # fmt: skip
NOUNS = ("Vase", "Bowl", "Lamp", "Throw", "Mug", "Print", "Candle", "Tray", "Stool", "Planter", "Frame", "Cup")
SALE_STATUSES = ["CLOSED"] * 14 + ["LAYBY", "LAYBY_CLOSED", "ONACCOUNT", "ONACCOUNT_CLOSED", "SAVED", "VOIDED"]


def _receivable(consignment: dict[str, Any]) -> bool:
    """An order or a transfer not received yet."""
    return consignment["type"] in ("SUPPLIER", "OUTLET") and consignment["status"] in ("OPEN", "SENT")


def parse_scale(scale: str | dict[str, int]) -> dict[str, int]:
    """A named scale, a dict, or "products=500,sales=2000" on top of `test`."""
    if isinstance(scale, dict):
        return {**SCALES["test"], **scale}
    if scale in SCALES:
        return dict(SCALES[scale])
    out = dict(SCALES["test"])
    for part in scale.split(","):
        if not part.strip():
            continue
        key, _, value = part.partition("=")
        key = key.strip()
        if key in SCALES and not value:
            out = dict(SCALES[key])
            continue
        if key not in out:
            raise ValueError(f"unknown resource in scale: {key!r}")
        out[key] = int(value)
    return out


def published_records(body: Any) -> list[Any]:
    """The records a published body lists: its `data` list, `data.categories`, or the body if it is a list."""
    data = body.get("data") if isinstance(body, dict) else body
    if isinstance(data, dict):
        data = data.get("categories")
    return data if isinstance(data, list) else []


def _version_of(item: Any) -> int | None:
    """An item's integer version: `version`, or (a 2026-07 sale) `_metadata.version`."""
    if not isinstance(item, dict):
        return None
    meta = item.get("_metadata")
    version = item["version"] if "version" in item else (meta.get("version") if isinstance(meta, dict) else None)
    return version if isinstance(version, int) and not isinstance(version, bool) else None


class SimData:
    """All resources, a version index per resource, and the mutations."""

    def __init__(self, scale: str | dict[str, int] = "test", seed: int = 42) -> None:
        self.scale = parse_scale(scale)
        self.seed = seed
        self.rng = random.Random(seed)
        self.version = FIRST_VERSION
        self.records: dict[str, dict[str, dict[str, Any]]] = {r: {} for r in RESOURCES}
        self.raw: dict[str, dict[str, Any]] = {r: {} for r in RESOURCES}  # injected non-records
        self.published: dict[str, Any] = {}  # resource -> body served instead of the records
        # Per versioned resource: parallel sorted lists of versions and ids.
        self._versions: dict[str, list[int]] = {r: [] for r in VERSIONED}
        self._ids: dict[str, list[str]] = {r: [] for r in VERSIONED}
        self._invoice = 0
        # (resource, parent id) -> keys of the records of `resource` listed under that parent
        self._children: dict[tuple[str, str], set[str]] = {}
        self.costs_granted = True  # False: the token lacks products:read:costs (cost members come null)
        self._cache: dict[tuple[str, str, int, int], Any] = {}
        self._dirty = False  # after generation, deletes can change which products are live
        gc_was_enabled = gc.isenabled()
        gc.disable()  # generation allocates millions of small objects and frees none of them
        try:
            self._generate()
        finally:
            if gc_was_enabled:
                gc.enable()
        self._dirty = True

    # -- helpers ----------------------------------------------------------------------

    def new_id(self, rng: random.Random | None = None) -> str:
        return str(uuid.UUID(int=(rng or self.rng).getrandbits(128), version=4))

    def _stamp(self, rng: random.Random) -> int:
        self.version += rng.randint(1, 7)
        return self.version

    def _when(self, offset_s: int, z: bool) -> str:
        text = (BASE + timedelta(seconds=offset_s)).isoformat()
        return text.replace("+00:00", "Z") if z else text

    def _touch_time(self, z: bool) -> str:
        """updated_at for a write: derived from the version, so no wall clock is needed."""
        return self._when(400 * 86400 + (self.version - FIRST_VERSION), z)

    def put(self, resource: str, record: dict[str, Any], rng: random.Random | None = None) -> dict[str, Any]:
        """Store `record` with a new version (versioned resources) and index it."""
        rid = record["_key"] if "_key" in record else record["id"]  # a record listed under a parent has no id
        old = self.records[resource].get(rid)
        if old is not None and old.get("_removed"):
            record["_removed"] = True  # a write replacing a removed record must not bring it back
        if resource in self._versions:
            if old is not None:
                versions, ids = self._versions[resource], self._ids[resource]
                i = bisect.bisect_left(versions, old["version"])
                del versions[i]
                del ids[i]
            record["version"] = self._stamp(rng or self.rng)
            self._versions[resource].append(record["version"])
            self._ids[resource].append(rid)
        self.records[resource][rid] = record
        return record

    def live(self, resource: str) -> list[dict[str, Any]]:
        return [
            r
            for r in self.records[resource].values()
            if not r.get("deleted_at") and not r.get("_deleted") and not r.get("_removed")
        ]

    # -- reading ----------------------------------------------------------------------

    def page(self, resource: str, *, after: int, before: int | None, size: int, deleted: bool) -> list[Any]:
        """Records with after < version (< before), sorted by version, at most `size`."""
        return self.page_with_max(resource, after=after, before=before, size=size, deleted=deleted)[0]

    def page_with_max(
        self,
        resource: str,
        *,
        after: int,
        before: int | None,
        size: int,
        deleted: bool,
        supports_deleted: frozenset[str] = SUPPORTS_DELETED,
        descending: bool = False,
    ) -> tuple[list[Any], int | None]:
        """A page and its highest version (injected raw items carry none of their own).

        `descending`: the `size` highest versions in (after, before), highest first (2026-07's
        `POST /inventory` by default)."""
        if descending:
            every, _ = self.page_with_max(
                resource, after=after, before=before, size=10**9, deleted=deleted, supports_deleted=supports_deleted
            )
            chosen = every[::-1][:size]
            return chosen, (_version_of(chosen[0]) if chosen else None)
        versions, ids = self._versions[resource], self._ids[resource]
        include_deleted = deleted and resource in supports_deleted
        out: list[Any] = []
        top = None
        i = bisect.bisect_right(versions, after)
        table, raw = self.records[resource], self.raw[resource]
        while i < len(versions) and len(out) < size:
            if before is not None and versions[i] >= before:
                break
            rec = table.get(ids[i])
            if rec is None:
                out.append(raw[ids[i]])
                top = versions[i]
            elif not rec.get("_removed") and (include_deleted or not rec.get("deleted_at")):
                out.append(rec)
                top = versions[i]
            i += 1
        return out, top

    def count(
        self,
        resource: str,
        *,
        after: int = 0,
        deleted: bool = False,
        supports_deleted: frozenset[str] = SUPPORTS_DELETED,
    ) -> int:
        """How many records a full read from `after` serves (what the minimum request count follows from)."""
        if resource in self.published:
            return len(self.published_page(resource, after=after))
        if resource == "product_categories":
            return sum(1 for c in self.records[resource].values() if not c.get("_deleted") and not c.get("_removed"))
        if resource in UNVERSIONED:  # listed whole every time
            return len(self.live(resource))
        include_deleted = deleted and resource in supports_deleted
        versions, ids = self._versions[resource], self._ids[resource]
        table = self.records[resource]
        return sum(
            1
            for i in range(bisect.bisect_right(versions, after), len(versions))
            if (rec := table.get(ids[i])) is None
            or (not rec.get("_removed") and (include_deleted or not rec.get("deleted_at")))
        )

    def publish(self, resource: str, body: Any) -> dict[str, Any]:
        """Serve `body` (a vendor's example, say) instead of the records of `resource`; None stops that."""
        if resource not in RESOURCES:
            raise ValueError(f"cannot publish {resource!r}")
        if body is None:
            self.published.pop(resource, None)
            return {"resource": resource, "published": False}
        self.published[resource] = copy.deepcopy(body)
        return {"resource": resource, "published": True, "records": len(published_records(body))}

    def published_page(self, resource: str, *, after: int, before: int | None = None) -> list[Any]:
        """What a published resource lists from `after`: all the body's records from 0, else those
        (in body order) with an integer version in (after, before)."""
        records = published_records(self.published[resource])
        if after <= 0:
            return records
        return [
            r for r in records if (v := _version_of(r)) is not None and v > after and (before is None or v < before)
        ]

    def inject(self, resource: str, items: list[Any]) -> dict[str, Any]:
        """Add records as sent, however odd. Objects with an id become normal records (new
        version); anything else is served as is, at a new position in the version order. A
        resource without a version (gift cards, store credits, promotions) takes whole records
        with their key, served as sent."""
        if resource in UNVERSIONED:  # no version order to place anything in: whole records only
            if not all(isinstance(i, dict) and self.key_of(resource, i) for i in items):
                raise ValueError(f"{resource} takes records with their key (no version to place other items)")
            for item in items:
                self.records[resource][self.key_of(resource, item)] = copy.deepcopy(item)
            return {"ids": [self.key_of(resource, i) for i in items], "raw": 0, "version": self.version}
        if resource not in self._versions:
            raise ValueError(f"cannot inject into {resource!r}")
        ids = []
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"]:
                self.put(resource, copy.deepcopy(item))
                ids.append(item["id"])
            else:
                key = f"__raw__{len(self.raw[resource])}"
                self.raw[resource][key] = copy.deepcopy(item)
                self.version += 1
                self._versions[resource].append(self.version)
                self._ids[resource].append(key)
        return {"ids": ids, "raw": len(items) - len(ids), "version": self.version}

    def category_page(self, *, after: str | None, size: int) -> tuple[list[dict[str, Any]], bool]:
        cats = sorted((c for c in self.records["product_categories"].values()
                       if not c.get("_deleted") and not c.get("_removed")), key=lambda c: c["id"])  # fmt: skip
        start = 0 if after is None else bisect.bisect_right([c["id"] for c in cats], after)
        chunk = cats[start : start + size]
        return chunk, start + size < len(cats)

    def dump(self) -> dict[str, Any]:
        """Every record, removed ones included (marked `_removed`); a published resource lists its body's."""
        resources = {
            r: sorted(copy.deepcopy(list(v.values())), key=lambda x, r=r: self.key_of(r, x))
            for r, v in self.records.items()
        }
        resources.update({r: copy.deepcopy(published_records(body)) for r, body in self.published.items()})
        return {
            "resources": resources,
            "raw": {r: list(v.values()) for r, v in self.raw.items() if v},
            "published": sorted(self.published),
            "version": self.version,
        }

    # -- generation -------------------------------------------------------------------

    def _generate(self) -> None:
        rng, n = self.rng, self.scale
        t = 0

        def stamps(z: bool) -> dict[str, str]:
            nonlocal t
            t += rng.randint(60, 3600)
            created = self._when(t, z)
            return {"created_at": created, "updated_at": created}

        for i in range(n["taxes"]):
            self.put(
                "taxes",
                {
                    "id": self.new_id(),
                    "name": f"Tax {i}",
                    "rate": [0.1, 0.15, 0.0, 0.05][i % 4],
                    "display_name": f"GST {i}",
                    "is_default": i == 0,
                    **stamps(False),
                    "deleted_at": None,
                },
            )
        tax_ids = list(self.records["taxes"])
        for i in range(n["outlets"]):
            self.put(
                "outlets",
                {
                    "id": self.new_id(),
                    "name": f"{WORDS[i % len(WORDS)]} Store",
                    "time_zone": TIME_ZONES[i % len(TIME_ZONES)],
                    "currency": "AUD",
                    "default_tax_id": tax_ids[0],
                    "physical_address1": f"{i + 1} Main St",
                    "physical_city": "Sydney",
                    **stamps(True),
                },
            )
        outlets = list(self.records["outlets"])
        for i in range(n["registers"]):
            self.put(
                "registers",
                {
                    "id": self.new_id(),
                    "name": f"Register {i + 1}",
                    "outlet_id": outlets[i % len(outlets)],
                    "is_open": i % 3 != 2,
                    **stamps(True),
                },
            )
        for i in range(n["users"]):
            self.put(
                "users",
                {
                    "id": self.new_id(),
                    "username": f"user{i}",
                    "display_name": f"Staff {i}",
                    "email": f"staff{i}@example.com",
                    "account_type": "cashier" if i else "admin",
                    "outlet_ids": outlets[: 1 + i % len(outlets)],
                    **stamps(False),
                    "deleted_at": None,
                },
            )
        for i in range(n["payment_types"]):
            name, type_id = PAYMENT_TYPES[i % len(PAYMENT_TYPES)]
            self.put(
                "payment_types",
                {
                    "id": self.new_id(),
                    "name": name if i < len(PAYMENT_TYPES) else f"{name} {i}",
                    "type_id": type_id,
                    "config": {"rounding": "0.05" if type_id == 1 else None},
                    **stamps(True),
                },
            )
        for i in range(n["brands"]):
            self.put(
                "brands",
                {"id": self.new_id(), "name": f"{WORDS[i % len(WORDS)]} Brand {i}", "description": "", **stamps(True)},
            )
        for i in range(n["suppliers"]):
            self.put(
                "suppliers",
                {
                    "id": self.new_id(),
                    "name": f"Supplier {i}",
                    "description": "Local maker",
                    "source": "USER",
                    **stamps(False),
                },
            )
        self._generate_categories(n["product_categories"])
        for i in range(n["customer_groups"]):
            self.put(
                "customer_groups",
                {
                    "id": self.new_id(),
                    "name": ["All", "VIP", "Trade", "Staff", "Wholesale"][i % 5],
                    "group_id": f"g{i}",
                    **stamps(True),
                },
            )
        for _ in range(n["products"]):
            self.put("products", self._new_product(rng, stamps(False)))
        for _ in range(n["customers"]):
            self.put("customers", self._new_customer(rng, stamps(True)))
        # A few records start out deleted, so `deleted=true` has something to return on a first import.
        for resource in ("products", "customers"):
            for rec in self.records[resource].values():
                if rng.random() < 0.03:
                    rec["deleted_at"] = rec["updated_at"]
        self._generate_inventory(n["inventory"], stamps)
        for _ in range(n["sales"]):
            self.put("sales", self._new_sale(rng, stamps(True)))
        # Last, so the records above are the same with or without them. The vendor's Tag has
        # only these members (and, in 2026-07, its version: 2.0 serves none, see dated.py).
        for i in range(n["tags"]):
            self.put("tags", {"id": self.new_id(), "name": f"{WORDS[i % len(WORDS)]} tag {i}", "deleted_at": None})
        for rec in list(self.records["tags"].values())[:1]:  # one deleted on a first import too
            rec["deleted_at"] = self._when(t, True)
        groups = list(self.records["customer_groups"].values())
        for i in range(n["price_books"]):  # 2.0's PriceBook (the vendor's example's members)
            group = groups[i % len(groups)]
            self.put(
                "price_books",
                {
                    "id": self.new_id(),
                    "name": "General Price Book (All Products)" if i == 0 else f"{WORDS[i % len(WORDS)]} prices",
                    "type": "BASE" if i == 0 else "GENERAL",
                    "customer_group_id": group["id"],
                    "customer_group": {k: group[k] for k in ("id", "name", "group_id", "version")},
                    "outlet_id": None,
                    "outlet": {},
                    "valid_from": None if i == 0 else self._when(t + 86400 * i, True),
                    "valid_to": None if i < 2 else self._when(t + 86400 * 40 * i, True),
                    "restrict_to_platform_key": "1",
                    "restrict_to_platform_label": "In Store",
                    **stamps(True),
                    "deleted_at": None,
                },
            )
        self._generate_price_book_products(n["price_book_products"], stamps)
        for i in range(n["consignments"]):
            self._new_consignment(rng, stamps(True), lines=self._share(n["consignment_products"], n["consignments"], i))
        self._generate_money(n, stamps)
        for _ in range(n["purchase_orders"]):
            self._new_purchase_order(rng, stamps(True), lines=rng.randint(1, 4))

    def _generate_money(self, n: dict[str, int], stamps: Any) -> None:
        """Promotions, gift cards and store credit (2026-07's shapes; promotions also 2.0's)."""
        rng = self.rng
        for i in range(n["promotions"]):
            promotion = self._new_promotion(rng, i, stamps(True))
            self.records["promotions"][promotion["id"]] = promotion
        for _ in range(n["gift_cards"]):
            card = self._new_gift_card(rng, stamps(True))
            self.records["gift_cards"][card["id"]] = card
        customers = sorted(self._keys("customers"))
        for customer in rng.sample(customers, min(n["store_credits"], len(customers))):
            credit = self._new_store_credit(rng, customer, stamps(True))
            self.records["store_credits"][customer] = credit

    def _new_promotion(self, rng: random.Random, i: int, times: dict[str, str]) -> dict[str, Any]:
        """2.0's Promotion response (dated.promotion makes 2026-07's)."""
        percent = rng.choice([5, 10, 15, 20])
        return {
            "id": self.new_id(rng), "name": f"{WORDS[i % len(WORDS)]} {percent}% off", "description": "",
            "status": rng.choice(["active", "active", "inactive"]), "start_time": times["created_at"],
            "end_time": None if i % 3 == 0 else self._when(500 * 86400 + i * 86400, True),
            "condition": {"type": "product_set", "quantity": 1, "include": [], "exclude": []},
            "action": {"type": "percent_discount", "value": percent, "include": [], "exclude": []},
            "channels": ["pos"], "outlet_ids": sorted(self._keys("outlets"))[: 1 + i % 2],
            "customer_group_ids": [], "loyalty_multiplier": None if i % 2 else 1.5, "use_promo_code": i % 4 == 3,
            "add_promo_code": [], "promo_code_summary": [],
        }  # fmt: skip

    def _new_gift_card(self, rng: random.Random, times: dict[str, str]) -> dict[str, Any]:
        """2026-07's GiftCard: money as decimal strings, its transactions embedded, no version."""
        amount = rng.choice([20, 25, 50, 100, 150])
        sales = self._keys("sales")
        card: dict[str, Any] = {
            "id": self.new_id(rng), "number": f"{rng.randrange(10**15, 10**16)}", "status": "ACTIVE",
            "balance": "0.00", "total_sold": f"{amount:.2f}", "total_redeemed": "0.00",
            "expires_at": self._when(rng.randint(400, 800) * 86400, True) if rng.random() < 0.5 else None,
            "sale_id": rng.choice(sales) if sales and rng.random() < 0.8 else None, "sale_source": "x-series",
            "created_at": times["created_at"], "gift_card_transactions": [],
        }  # fmt: skip
        self._gift_card_transaction(rng, card, "ACTIVATION", amount, times["created_at"])
        for _ in range(rng.choice([0, 0, 1, 2])):
            self._gift_card_transaction(rng, card, "REDEEMING", -round(rng.uniform(1, 10), 2), times["created_at"])
        for i in range(self.scale["gift_card_transactions"]):  # a long history (bench: memory per card)
            kind, value = ("RELOADING", 5.0) if i % 2 else ("REDEEMING", -min(5.0, float(card["balance"])))
            self._gift_card_transaction(rng, card, kind, value, times["created_at"])
        return card

    def _gift_card_transaction(
        self, rng: random.Random, card: dict[str, Any], kind: str, amount: float, when: str
    ) -> None:
        """Add a transaction (newest first, as the API lists them) and move the card's money."""
        card["gift_card_transactions"].insert(0, {
            "id": self.new_id(rng), "type": kind, "amount": f"{amount:.2f}", "client_id": self.new_id(rng),
            "source": "x-series", "source_id": None, "user_id": rng.choice(self._keys("users")), "created_at": when,
        })  # fmt: skip
        balance = round(float(card["balance"]) + amount, 2)
        card["balance"] = f"{balance:.2f}"
        if kind == "REDEEMING":
            card["total_redeemed"] = f"{float(card['total_redeemed']) - amount:.2f}"
        elif kind == "RELOADING":
            card["total_sold"] = f"{float(card['total_sold']) + amount:.2f}"
        card["status"] = "REDEEMED" if balance <= 0 else "ACTIVE"

    def _new_store_credit(self, rng: random.Random, customer: str, times: dict[str, str]) -> dict[str, Any]:
        """2026-07's StoreCreditCustomer: numbers, its transactions embedded; `id` optional (the
        vendor's example has none), so some lack it."""
        credit: dict[str, Any] = {
            "customer_id": customer, "balance": 0, "total_credit_issued": 0, "total_credit_redeemed": 0,
            "created_at": times["created_at"], "store_credit_transactions": [],
        }  # fmt: skip
        if rng.random() < 0.8:
            credit = {"id": self.new_id(rng), **credit}
        self._store_credit_transaction(rng, credit, "ISSUE", rng.choice([10, 25, 40.5]), times["created_at"])
        if rng.random() < 0.5:
            self._store_credit_transaction(
                rng, credit, "REDEMPTION", -round(rng.uniform(1, 10), 2), times["created_at"]
            )
        return credit

    def _store_credit_transaction(
        self, rng: random.Random, credit: dict[str, Any], kind: str, amount: float, when: str
    ) -> None:
        sales = self._keys("sales")
        credit["store_credit_transactions"].insert(0, {
            "id": self.new_id(rng), "type": kind, "amount": amount, "client_id": self.new_id(rng), "notes": "",
            "sale_id": rng.choice(sales) if kind == "REDEMPTION" and sales else None,
            "user_id": rng.choice(self._keys("users")), "created_at": when,
        })  # fmt: skip
        credit["balance"] = round(credit["balance"] + amount, 2)
        if kind == "ISSUE":
            credit["total_credit_issued"] = round(credit["total_credit_issued"] + amount, 2)
        else:
            credit["total_credit_redeemed"] = round(credit["total_credit_redeemed"] - amount, 2)

    @staticmethod
    def _share(total: int, parts: int, i: int) -> int:
        """The i-th of `parts` near-equal shares of `total`."""
        return total // parts + (1 if i < total % parts else 0)

    def _new_consignment(self, rng: random.Random, times: dict[str, str], *, lines: int) -> dict[str, Any]:
        """The vendor's Consignment (the same members in 2.0 and 2026-07) with `lines` products:
        about half done (received, sent back, counted), the rest open."""
        kind = rng.choice(CONSIGNMENT_TYPES)
        done = rng.random() < 0.5
        outlets = self._keys("outlets")
        outlet = rng.choice(outlets)
        day = rng.randint(0, 400)
        rec: dict[str, Any] = {
            "id": self.new_id(rng), "outlet_id": outlet, "name": f"{kind.title()} {day}",
            "consignment_date": self._when(day * 86400, False), "due_at": self._when((day + 7) * 86400, False),
            "received_at": None, "type": kind, "status": DONE_STATUSES[kind] if done else OPEN_STATUSES[kind],
            "supplier_id": rng.choice(self._keys("suppliers")) if kind in ("SUPPLIER", "RETURN") else None,
            "source_outlet_id": rng.choice([o for o in outlets if o != outlet] or outlets)
            if kind == "OUTLET" else None,
            "supplier_invoice": f"INV-S{rng.randrange(10**5)}" if kind == "SUPPLIER" else None,
            "reference": f"PO-{rng.randrange(10**5)}" if kind == "SUPPLIER" else None,
            **times, "deleted_at": None,
        }  # fmt: skip
        if done and kind in ("SUPPLIER", "OUTLET"):
            rec["received_at"] = self._when((day + 5) * 86400, False)
        self.put("consignments", rec, rng)
        for product in rng.sample(self._live_products, min(lines, len(self._live_products))):
            self._new_consignment_line(rng, rec, product, done=done)
        self._consignment_totals(rec)
        return rec

    def _new_consignment_line(
        self, rng: random.Random, consignment: dict[str, Any], product: dict[str, Any], *, done: bool
    ) -> dict[str, Any]:
        """The vendor's ConsignmentProduct: no id; `count`, `received` and `cost` decimal strings;
        a stocktake counts what the system expects (`count`, below zero at times) against what was found."""
        count = rng.randint(1, 24) if consignment["type"] != "STOCKTAKE" else rng.randint(-3, 30)
        received = count if consignment["type"] != "STOCKTAKE" else max(0, count + rng.randint(-3, 2))
        line: dict[str, Any] = {
            "product_id": product["id"], "product_sku": product.get("sku"), "count": f"{count:.5f}",
            "received": f"{received if done else 0:.5f}", "cost": f"{product['supply_price']:.5f}",
            "is_included": True, "status": "RECEIVE_SUCCESS" if done else "PENDING",
            "created_at": consignment["created_at"], "updated_at": consignment["updated_at"], "deleted_at": None,
            "_parent": consignment["id"], "_key": self.new_id(rng),
        }  # fmt: skip
        if rng.random() < 0.05:
            line["count"] = None  # the vendor's own example has a line without one
        return self.put_line("consignment_products", line, rng)

    def put_line(self, resource: str, line: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        """Store a record listed under a parent (a new version) and give the parent a new one too
        (and its parent: a delivery's line moves the delivery and its purchase order)."""
        self.put(resource, line, rng)
        self._children.setdefault((resource, line["_parent"]), set()).add(self.key_of(resource, line))
        self.touch_parent(resource, line["_parent"], rng)
        return line

    def touch_parent(self, resource: str, parent_id: str, rng: random.Random) -> None:
        """The listing under a parent changed: the parent (and its own parent) gets a new version."""
        parent_resource = PER_PARENT[resource]
        parent = self.records[parent_resource][parent_id]
        self.put(parent_resource, parent, rng)
        if parent_resource in PER_PARENT:
            self.touch_parent(parent_resource, parent["_parent"], rng)

    def _new_purchase_order(self, rng: random.Random, times: dict[str, str], *, lines: int) -> dict[str, Any]:
        """2026-04's PurchaseOrder (no deleted_at), with `lines` line items; some partly or wholly
        received through a delivery, some cancelled, the rest open. Quantities and money: strings."""
        outlets = sorted(self._keys("outlets"))
        day = rng.randint(300, 1500)  # due in 2024 to 2028: some overdue, some not
        po: dict[str, Any] = {
            "id": self.new_id(rng), "order_number": f"PO-{1000 + len(self.records['purchase_orders'])}",
            "status": "OPEN", "supplier_id": rng.choice(self._keys("suppliers")), "supplier_invoice": None,
            "delivery_outlet_id": rng.choice(outlets), "allocation_outlet_ids": [],
            "user_id": rng.choice(self._keys("users")), "notes": None,
            "due_at": self._when(day * 86400, True) if rng.random() < 0.8 else None,
            "cost_price_total": None, "quantity_total": "0", "costs": [], "discounts": [], **times,
        }  # fmt: skip
        self.put("purchase_orders", po, rng)
        for product in rng.sample(self._live_products, min(lines, len(self._live_products))):
            qty = rng.randint(1, 20)
            self.put_line("purchase_order_line_items", {
                "id": self.new_id(rng), "purchase_order_id": po["id"], "product_id": product["id"],
                "quantity": str(qty),
                # nullable in the spec: a line without a cost now and then
                "cost_price": f"{product['supply_price']:.2f}" if rng.random() < 0.9 else None,
                "allocations": [{"outlet_id": po["delivery_outlet_id"], "quantity": str(qty)}], "components": [],
                **times, "_parent": po["id"],
            }, rng)  # fmt: skip
        self._po_totals(po)
        fate = rng.random()
        if fate < 0.15:
            po["status"] = "CANCELLED"
        elif fate < 0.45:
            self._deliver(po, rng, part=fate < 0.3)
        elif fate < 0.7:
            po["status"] = "SENT"
        self.put("purchase_orders", po, rng)
        return po

    def _po_totals(self, po: dict[str, Any]) -> None:
        lines = self.lines_of("purchase_order_line_items", po["id"])
        po["quantity_total"] = str(sum(int(li["quantity"]) for li in lines))
        po["cost_price_total"] = f"{sum(int(li['quantity']) * float(li['cost_price'] or 0) for li in lines):.2f}"

    def _deliver(self, po: dict[str, Any], rng: random.Random, *, part: bool) -> None:
        """A delivery received at the order's outlet: every line in full, or (`part`) half of each."""
        when = self._touch_time(True)
        delivery: dict[str, Any] = {
            "id": self.new_id(rng), "purchase_order_id": po["id"], "outlet_id": po["delivery_outlet_id"],
            "status": "RECEIVED", "supplier_invoice": f"INV-{rng.randrange(10**5)}", "user_id": po["user_id"],
            "notes": None, "due_at": po["due_at"], "received_at": when, "invoice_date": when,
            "cost_price_total": "0.00", "received_quantity_total": "0", "costs": [], "discounts": [],
            "created_at": when, "updated_at": when, "_parent": po["id"],
        }  # fmt: skip
        self.put_line("purchase_order_deliveries", delivery, rng)
        got = cost = 0.0
        for line in self.lines_of("purchase_order_line_items", po["id"]):
            qty = int(line["quantity"])
            received = qty // 2 if part else qty
            got, cost = got + received, cost + received * float(line["cost_price"] or 0)
            self.put_line("purchase_order_delivery_line_items", {
                "id": self.new_id(rng), "purchase_order_delivery_id": delivery["id"],
                "purchase_order_line_item_id": line["id"], "product_id": line["product_id"],
                "expected_quantity": str(qty), "received_quantity": str(received), "cost_price": line["cost_price"],
                "allocations": [{"outlet_id": delivery["outlet_id"], "expected_quantity": str(qty),
                                 "received_quantity": str(received)}],
                "components": [], "created_at": when, "updated_at": when, "_parent": delivery["id"],
            }, rng)  # fmt: skip
        delivery.update(received_quantity_total=str(int(got)), cost_price_total=f"{cost:.2f}")
        self.put_line("purchase_order_deliveries", delivery, rng)
        po["status"] = "PARTIALLY_RECEIVED" if part else "RECEIVED"

    def _consignment_totals(self, rec: dict[str, Any]) -> None:
        """Gains and losses of a counted stocktake (received against the expected count)."""
        gain = loss = cost_gain = cost_loss = 0.0
        if rec["type"] == "STOCKTAKE" and rec["status"] == DONE_STATUSES["STOCKTAKE"]:
            for line in self.lines_of("consignment_products", rec["id"]):
                diff = float(line["received"]) - float(line["count"] or 0)
                cost = float(line["cost"] or 0)
                if diff > 0:
                    gain, cost_gain = gain + diff, cost_gain + diff * cost
                else:
                    loss, cost_loss = loss - diff, cost_loss - diff * cost
        rec.update(total_count_gain=gain, total_count_loss=loss, total_cost_gain=round(cost_gain, 5),
                   total_cost_loss=round(cost_loss, 5))  # fmt: skip

    def _receive(self, cons: dict[str, Any], rng: random.Random) -> None:
        """An order or transfer arrives: every line received in full, the consignment RECEIVED."""
        for line in self.lines_of("consignment_products", cons["id"]):
            line.update(received=line["count"] or "0.00000", status="RECEIVE_SUCCESS")
            self.put_line("consignment_products", line, rng)
            line["updated_at"] = self._touch_time(False)
        cons.update(status="RECEIVED", received_at=self._touch_time(False))
        self.put("consignments", cons, rng)
        cons["updated_at"] = self._touch_time(False)

    def parent_exists(self, resource: str, parent: str) -> bool:
        """Whether the parent a listing is under is in the store (else the API answers 404); a
        published parent body (a vendor's example) holds the parents while it is published."""
        if resource not in PER_PARENT:
            return False
        if (body := self.published.get(PER_PARENT[resource])) is not None:
            return any(isinstance(r, dict) and r.get("id") == parent for r in published_records(body))
        rec = self.records[PER_PARENT[resource]].get(parent)
        return rec is not None and not rec.get("_removed")

    @staticmethod
    def key_of(resource: str, rec: dict[str, Any]) -> str:
        """A record's key in the store: its id; a store credit's, its customer's."""
        return str(rec["customer_id"] if resource == "store_credits" else rec.get("_key") or rec["id"])

    def parents_after(self, resource: str, after: int) -> dict[str, int]:
        """The live parents of `resource` with a version above `after`, and how many records each lists."""
        parents = self.records[PER_PARENT[resource]].values()
        return {
            p["id"]: len(self.lines_of(resource, p["id"]))
            for p in parents
            if p["version"] > after and not self.gone(PER_PARENT[resource], p)
        }

    def gone(self, resource: str, rec: dict[str, Any]) -> bool:
        """Removed or deleted in the store, or listed under a parent that is."""
        if rec.get("_removed") or rec.get("deleted_at"):
            return True
        parent = PER_PARENT.get(resource)
        return parent is not None and self.gone(parent, self.records[parent][rec["_parent"]])

    def parent_page(self, resource: str, parent: str, *, after: int, before: int | None, size: int) -> list[Any]:
        """The records listed under `parent` with after < version (< before), in version order."""
        lines = self.lines_of(resource, parent)
        lines = [r for r in lines if r["version"] > after and (before is None or r["version"] < before)]
        return lines[:size]

    def lines_of(self, resource: str, parent: str, *, with_removed: bool = False) -> list[dict[str, Any]]:
        """The records of `resource` listed under `parent`, in version order."""
        table = self.records[resource]
        lines = [table[k] for k in self._children.get((resource, parent), ())]
        return sorted((r for r in lines if with_removed or not r.get("_removed")), key=lambda r: r["version"])

    def _generate_price_book_products(self, count: int, stamps: Any) -> None:
        """The vendor's PriceBookProduct: a price per book (all but the base one) and product."""
        rng = self.rng
        books = [b["id"] for b in self.records["price_books"].values() if b["type"] != "BASE"]
        products = sorted(self.records["products"].values(), key=lambda p: p["id"])
        taxes = list(self.records["taxes"])
        pairs = [(b, p) for p in products for b in books][:count]
        for book, product in pairs:
            rec: dict[str, Any] = {
                "id": self.new_id(),
                "product_id": product["id"],
                "price_book_id": book,
                "price": round(product["price_excluding_tax"] * rng.uniform(0.7, 1.0), 2),
                "tax_id": rng.choice(taxes),
                **stamps(False),
                "deleted_at": None,
            }
            if rng.random() < 0.3:  # quantity breaks and loyalty, as the vendor's second example has them
                rec.update({"loyalty_value": rng.randint(1, 30), "min_units": 12.5, "max_units": 43.2})
            self.put("price_book_products", rec)

    def _generate_categories(self, count: int) -> None:
        rng = self.rng
        roots = max(1, count // 4)
        nodes: list[dict[str, Any]] = []
        for i in range(count):
            parent = None if i < roots else rng.choice(nodes[: max(roots, len(nodes))])
            cid = self.new_id()
            path = ([*parent["category_path"]] if parent else []) + [{"id": cid, "name": f"Category {i}"}]
            if parent and len(path) > 3:
                parent = nodes[rng.randrange(roots)]
                path = [*parent["category_path"], {"id": cid, "name": f"Category {i}"}]
            node = {
                "id": cid, "name": f"Category {i}", "root_category_id": path[0]["id"],
                "parent_category_id": parent["id"] if parent else None, "leaf_category": True, "category_path": path,
            }  # fmt: skip
            if parent:
                parent["leaf_category"] = False
            nodes.append(node)
        for node in nodes:
            self.records["product_categories"][node["id"]] = node
            self.put(
                "product_types",
                {
                    "id": node["id"],
                    "name": node["name"],
                    "created_at": self._when(0, True),
                    "updated_at": self._when(0, True),
                },
            )

    def _new_product(self, rng: random.Random, times: dict[str, str]) -> dict[str, Any]:
        brand = rng.choice(self._values("brands"))
        supplier = rng.choice(self._values("suppliers"))
        ptype = rng.choice(self._values("product_types"))
        price = round(rng.uniform(2, 400), 2)
        active = rng.random() > 0.08
        sku_n = len(self.records["products"]) + 10000
        product: dict[str, Any] = {
            "id": self.new_id(rng),
            "sku": f"SKU-{sku_n}",
            "name": f"{rng.choice(WORDS)} {rng.choice(NOUNS)}",
            "handle": f"item-{sku_n}",
            "description": "<p>Handmade.</p>" if rng.random() < 0.5 else "",
            "brand_id": brand["id"],
            "supplier_id": supplier["id"],
            "product_type_id": ptype["id"],
            "brand": {"id": brand["id"], "name": brand["name"]} if rng.random() < 0.9 else {},
            "supplier": {"id": supplier["id"], "name": supplier["name"]} if rng.random() < 0.9 else {},
            "type": {"id": ptype["id"], "name": ptype["name"]},
            "active": active,
            "is_active": active,
            "has_inventory": rng.random() > 0.1,
            "price_including_tax": round(price * 1.1, 5),
            "price_excluding_tax": price,
            "supply_price": round(price * rng.uniform(0.3, 0.6), 5),
            "variant_parent_id": None,
            "categories": [{"id": f"tag-{rng.randrange(20)}", "name": "Gifts"}] if rng.random() < 0.3 else [],
            **times,
        }
        return product

    def _new_customer(self, rng: random.Random, times: dict[str, str]) -> dict[str, Any]:
        n = len(self.records["customers"])
        customer: dict[str, Any] = {
            "id": self.new_id(rng),
            "customer_code": f"C{n:06d}",
            "first_name": rng.choice(["Ava", "Noah", "Zoë", "Mateo", "Aroha", "Yuki", None]),
            "last_name": rng.choice(["Smith", "Nguyen", "O'Brien", "García", "Ngata", None]),
            "phone": f"+61 4{rng.randrange(10**7, 10**8)}",
            "customer_group_id": rng.choice(self._keys("customer_groups")),
            "loyalty_balance": round(rng.uniform(0, 50), 2),
            **times,
        }
        if rng.random() < 0.8:
            customer["email"] = f"customer{n}@example.com"
        return customer

    def _generate_inventory(self, count: int, stamps: Any) -> None:
        rng = self.rng
        # Products that track stock first, so the count covers them before the rest.
        products = sorted(self.records["products"].values(), key=lambda p: not p["has_inventory"])
        outlets = list(self.records["outlets"])
        pairs = [(p["id"], o) for p in products for o in outlets][:count]
        for product_id, outlet_id in pairs:
            level = rng.randint(-2, 40)
            rec: dict[str, Any] = {
                "id": self.new_id(),
                "product_id": product_id,
                "outlet_id": outlet_id,
                "inventory_level": level,
                "reorder_point": rng.choice([None, 0, 3, 5, 10]),
                "reorder_amount": rng.choice([None, 10, 20]),
            }
            if rng.random() < 0.67:
                rec["current_amount"] = level
            if rng.random() < 0.5:
                rec["average_cost"] = round(rng.uniform(1, 100), 3)
            stamps(False)
            self.put("inventory", rec)

    def _line_item(self, rng: random.Random, product: dict[str, Any], seq: int, status: str) -> dict[str, Any]:
        qty = rng.choice([1, 1, 1, 2, 3])
        price = product["price_excluding_tax"]
        discount = rng.choice([0, 0, 0, round(price * 0.1, 2)])
        tax = round((price - discount) * 0.1, 5)
        item: dict[str, Any] = {
            "id": self.new_id(rng), "product_id": product["id"], "quantity": qty, "price": price,
            "price_total": round(price * qty, 5), "tax": tax, "tax_total": round(tax * qty, 5),
            "tax_id": rng.choice(self._keys("taxes")),
            "tax_components": [], "discount": discount, "discount_total": round(discount * qty, 5),
            "loyalty_value": 0, "cost": product["supply_price"], "cost_total": round(product["supply_price"] * qty, 5),
            "status": status, "sequence": seq,
        }  # fmt: skip
        item["tax_components"] = [{"tax_id": item["tax_id"], "amount": item["tax_total"]}]
        if rng.random() < 0.2:
            item["note"] = "gift wrap 🎁"
        return item

    def _totals(self, sale: dict[str, Any]) -> None:
        items = [i for i in sale["line_items"] if i["status"] != "VOIDED"] or sale["line_items"]
        sale["total_price"] = round(sum(i["price_total"] for i in items) - sum(i["discount_total"] for i in items), 2)
        sale["total_tax"] = round(sum(i["tax_total"] for i in items), 2)
        sale["taxes"] = [{"id": sale["line_items"][0]["tax_id"], "amount": sale["total_tax"]}] if items else []

    def _payment(self, rng: random.Random, sale: dict[str, Any], amount: float) -> dict[str, Any]:
        ptype = rng.choice(self._values("payment_types"))
        return {
            "id": self.new_id(rng), "retailer_payment_type_id": ptype["id"], "payment_type_id": str(ptype["type_id"]),
            "name": ptype["name"], "amount": amount, "payment_date": sale["sale_date"],
            "register_id": sale["register_id"], "outlet_id": sale["outlet_id"],
        }  # fmt: skip

    def _new_sale(self, rng: random.Random, times: dict[str, str]) -> dict[str, Any]:
        register = rng.choice(self._values("registers"))
        products = self._live_products
        customers = self._keys("customers")
        self._invoice += 1
        status = rng.choice(SALE_STATUSES)
        offset = rng.randint(0, 400 * 86400)
        sale: dict[str, Any] = {
            "id": self.new_id(rng), "outlet_id": register["outlet_id"], "register_id": register["id"],
            "user_id": rng.choice(self._keys("users")),
            "customer_id": rng.choice(customers) if rng.random() < 0.8 and customers else None,
            "invoice_number": f"INV-{self._invoice:06d}", "receipt_number": str(100000 + self._invoice),
            "status": status, "sale_date": self._when(offset, True), "total_loyalty": 0,
            "note": rng.choice(["", "", "Paid in store", "לקוח חוזר"]), "short_code": f"s{self._invoice:05d}",
            "source": "USER", "return_for": None, **times,
        }  # fmt: skip
        line_status = "VOIDED" if status == "VOIDED" else "CONFIRMED"
        sale["line_items"] = [
            self._line_item(rng, rng.choice(products), seq, line_status) for seq in range(rng.randint(1, 7))
        ]
        self._totals(sale)
        total = round(sale["total_price"] + sale["total_tax"], 2)
        if rng.random() < 0.25 and total > 1:
            first = round(total / 2, 2)
            sale["payments"] = [self._payment(rng, sale, first), self._payment(rng, sale, round(total - first, 2))]
        else:
            sale["payments"] = [self._payment(rng, sale, total)]
        return sale

    @property
    def _live_products(self) -> list[dict[str, Any]]:
        key = ("live", "products", len(self.records["products"]), self.version if self._dirty else 0)
        if key not in self._cache:
            self._cache = {k: v for k, v in self._cache.items() if k[1] != "products" or k[0] != "live"}
            self._cache[key] = self.live("products")
        return self._cache[key]

    def _keys(self, resource: str) -> list[str]:
        key = ("keys", resource, len(self.records[resource]), 0)
        if key not in self._cache:
            self._cache[key] = [r["id"] for r in self._values(resource)]
        return self._cache[key]

    def _values(self, resource: str) -> list[dict[str, Any]]:
        """Records new ones may refer to: removed records are gone, so nothing new points at them."""
        key = ("values", resource, len(self.records[resource]), 0)
        if key not in self._cache:
            self._cache[key] = [r for r in self.records[resource].values() if not r.get("_removed")]
        return self._cache[key]

    # -- mutations --------------------------------------------------------------------

    def mutate(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Apply updates, soft deletes, new records, voids, edits, removals and restores; return changed ids."""
        remove = {str(r): int(k) for r, k in (spec.get("remove") or {}).items()}
        restore = {str(r): ids for r, ids in (spec.get("restore") or {}).items()}
        if not all(isinstance(ids, list) and all(isinstance(i, str) for i in ids) for ids in restore.values()):
            raise ValueError("restore takes {resource: [id, ...]}")
        for resource in (*remove, *restore):
            if resource not in RESOURCES:
                raise ValueError(f"unknown resource {resource!r}")
        for resource, ids in restore.items():
            if unknown := [i for i in ids if i not in self.records[resource]]:
                raise ValueError(f"no {resource} record with id {unknown[0]!r} to restore")
        rng = random.Random(spec.get("seed", 0) * 1_000_003 + self.version)
        changed: dict[str, list[str]] = {}

        def mark(resource: str, rid: str) -> None:
            changed.setdefault(resource, []).append(rid)

        def pick(resource: str, k: int, pred: Any = None) -> list[dict[str, Any]]:
            pool = [r for r in self.live(resource) if pred is None or pred(r)]
            pool.sort(key=lambda r: self.key_of(resource, r))
            return rng.sample(pool, min(k, len(pool)))

        for resource, k in (spec.get("update") or {}).items():
            for rec in pick(resource, int(k)):
                self._update(resource, rec, rng)
                if resource in UNVERSIONED:  # no version, no updated_at: the record itself changed
                    mark(resource, self.key_of(resource, rec))
                    continue
                self.put_line(resource, rec, rng) if resource in PER_PARENT else self.put(resource, rec, rng)
                rec["updated_at"] = self._touch_time(resource in ("outlets", "registers", "customers"))
                mark(resource, self.key_of(resource, rec))
        for resource, k in (spec.get("delete") or {}).items():
            if resource not in SUPPORTS_DELETED_DATED:
                raise ValueError(f"{resource} does not support deleted=true, so deletes would be invisible")
            for rec in pick(resource, int(k)):
                self.put(resource, rec, rng)
                rec["deleted_at"] = rec["updated_at"] = self._touch_time(True)
                mark(resource, self.key_of(resource, rec))
        for resource, k in (spec.get("new") or {}).items():
            for _ in range(int(k)):
                rec = self._create(resource, rng)
                mark(resource, self.key_of(resource, rec))
        for sale in pick("sales", int(spec.get("void_sales", 0)), lambda s: s["status"] != "VOIDED"):
            sale["status"] = "VOIDED"
            for item in sale["line_items"]:
                item["status"] = "VOIDED"
            if len(sale["line_items"]) >= 2:
                sale["line_items"].pop()
            self._totals(sale)
            self.put("sales", sale, rng)
            sale["updated_at"] = self._touch_time(True)
            mark("sales", sale["id"])
        for sale in pick("sales", int(spec.get("edit_sales", 0)), lambda s: s["status"] != "VOIDED"):
            if rng.random() < 0.5 and sale["line_items"]:
                sale["line_items"][0]["quantity"] += 1
                sale["line_items"][0]["price_total"] = round(
                    sale["line_items"][0]["price"] * sale["line_items"][0]["quantity"], 5
                )
            else:
                product = rng.choice(self._live_products)
                sale["line_items"].append(self._line_item(rng, product, len(sale["line_items"]), "CONFIRMED"))
            self._totals(sale)
            sale["payments"].append(self._payment(rng, sale, 1.0))
            self.put("sales", sale, rng)
            sale["updated_at"] = self._touch_time(True)
            mark("sales", sale["id"])
        for po in pick(
            "purchase_orders", int(spec.get("receive_purchase_orders", 0)), lambda p: p["status"] in PO_OPEN
        ):
            self._deliver(po, rng, part=False)
            self.put("purchase_orders", po, rng)
            mark("purchase_orders", po["id"])
        for cons in pick("consignments", int(spec.get("receive_consignments", 0)), _receivable):
            self._receive(cons, rng)
            mark("consignments", cons["id"])
        cats = spec.get("categories") or {}
        for _ in range(int(cats.get("delete", 0))):
            leaves = sorted((c for c in self.live("product_categories") if c["leaf_category"]), key=lambda c: c["id"])
            if leaves:
                victim = rng.choice(leaves)
                victim["_deleted"] = True
                mark("product_categories", victim["id"])
        for _ in range(int(cats.get("rename", 0))):
            live = sorted(self.live("product_categories"), key=lambda c: c["id"])
            if live:
                cat = rng.choice(live)
                cat["name"] += " (renamed)"
                cat["category_path"][-1]["name"] = cat["name"]
                mark("product_categories", cat["id"])
                ptype = self.records["product_types"].get(cat["id"])
                if ptype is not None:
                    ptype["name"] = cat["name"]
                    self.put("product_types", ptype, rng)
                    mark("product_types", ptype["id"])
        for _ in range(int(cats.get("new", 0))):
            cid = self.new_id(rng)
            name = f"Category new {cid[:4]}"
            self.records["product_categories"][cid] = {
                "id": cid, "name": name, "root_category_id": cid, "parent_category_id": None, "leaf_category": True,
                "category_path": [{"id": cid, "name": name}],
            }  # fmt: skip
            mark("product_categories", cid)
            self.put("product_types", {"id": cid, "name": name, "created_at": self._touch_time(True),
                                       "updated_at": self._touch_time(True)}, rng)  # fmt: skip
            mark("product_types", cid)
        # Removal and restore write nothing: no new version, so an incremental read cannot see them
        # happen (the real API forgets some records that way); except in the DATED_FEED resources,
        # where they are a deletion and a revival with a new version. They come last so the rng
        # draws of the other mutations stay as they were.
        for resource, k in remove.items():
            for rec in pick(resource, k):
                if resource in DATED_FEED:
                    self.put(resource, rec, rng)
                    rec["deleted_at"] = rec["updated_at"] = self._touch_time(True)
                else:
                    rec["_removed"] = True
                if resource in PER_PARENT:  # the parent's listing changed: it gets a new version
                    self.touch_parent(resource, rec["_parent"], rng)
                mark(resource, self.key_of(resource, rec))
        for resource, ids in restore.items():
            for rid in ids:
                rec = self.records[resource][rid]
                if resource in DATED_FEED and rec.get("deleted_at"):
                    self.put(resource, rec, rng)
                    rec["deleted_at"] = None
                    rec["updated_at"] = self._touch_time(True)
                    mark(resource, rid)
                elif rec.pop("_removed", False):
                    mark(resource, rid)
        if remove or restore:
            self._cache = {}  # live products and the reference lists depend on what is removed
        return {"changed": changed, "version": self.version}

    def _update(self, resource: str, rec: dict[str, Any], rng: random.Random) -> None:
        if resource == "gift_cards":  # a redemption (or a reload when nothing is left): no new id
            when = self._touch_time(True)
            if float(rec["balance"]) > 1:
                self._gift_card_transaction(rng, rec, "REDEEMING", -min(float(rec["balance"]), 5.0), when)
            else:
                self._gift_card_transaction(rng, rec, "RELOADING", 20.0, when)
        elif resource == "store_credits":
            when = self._touch_time(True)
            if rec["balance"] > 1:
                self._store_credit_transaction(rng, rec, "REDEMPTION", -min(rec["balance"], 5.0), when)
            else:
                self._store_credit_transaction(rng, rec, "ISSUE", 15, when)
        elif resource == "products":
            rec["price_excluding_tax"] = round(rec["price_excluding_tax"] * rng.uniform(0.8, 1.2), 2)
            rec["price_including_tax"] = round(rec["price_excluding_tax"] * 1.1, 5)
            rec["name"] = rec["name"].split(" (")[0] + f" ({rng.randrange(100)})"
        elif resource == "customers":
            rec["email"] = f"updated{rng.randrange(10**6)}@example.com"
        elif resource == "inventory":
            rec["inventory_level"] = rng.randint(-1, 30)
            if "current_amount" in rec:
                rec["current_amount"] = rec["inventory_level"]
        elif resource == "sales":
            rec["note"] = f"edited {rng.randrange(1000)}"
        elif resource == "price_book_products":
            rec["price"] = round(rec["price"] * rng.uniform(0.8, 1.2), 2)
        elif resource == "consignment_products":
            rec["count"] = f"{rng.randint(1, 24):.5f}"
        elif resource == "purchase_order_line_items":
            rec["quantity"] = str(int(rec["quantity"]) + rng.randint(1, 5))
        elif resource == "purchase_orders":
            rec["notes"] = f"chased {rng.randrange(1000)}"
        elif "name" in rec:
            rec["name"] = str(rec["name"]).split(" *")[0] + f" *{rng.randrange(100)}"
        else:
            rec["description"] = f"updated {rng.randrange(1000)}"

    def _create(self, resource: str, rng: random.Random) -> dict[str, Any]:
        stamp = {"created_at": self._touch_time(False), "updated_at": self._touch_time(False)}
        if resource == "sales":
            rec = self._new_sale(rng, stamp)
        elif resource == "customers":
            rec = self._new_customer(rng, stamp)
        elif resource == "products":
            rec = self._new_product(rng, stamp)
        elif resource == "consignments":
            return self._new_consignment(rng, stamp, lines=rng.randint(1, 6))
        elif resource == "purchase_orders":
            return self._new_purchase_order(rng, stamp, lines=rng.randint(1, 4))
        elif resource in UNVERSIONED:
            if resource == "promotions":
                rec = self._new_promotion(rng, len(self.records[resource]), stamp)
            elif resource == "gift_cards":
                rec = self._new_gift_card(rng, stamp)
            else:
                taken = set(self.records["store_credits"])
                rec = self._new_store_credit(
                    rng, rng.choice([c for c in self._keys("customers") if c not in taken]), stamp
                )
            self.records[resource][self.key_of(resource, rec)] = rec
            return rec
        elif resource == "consignment_products":
            cons = rng.choice(sorted((c for c in self.live("consignments") if _receivable(c)), key=lambda c: c["id"]))
            listed = {line["product_id"] for line in self.lines_of(resource, cons["id"], with_removed=True)}
            product = rng.choice([p for p in self._live_products if p["id"] not in listed])
            return self._new_consignment_line(rng, cons, product, done=False)
        elif resource in ("brands", "suppliers"):
            rec = {"id": self.new_id(rng), "name": f"New {resource[:-1]} {rng.randrange(1000)}", "description": "",
                   **stamp}  # fmt: skip
        else:
            raise ValueError(f"creating {resource} is not supported")
        return self.put(resource, rec, rng)
