"""The entity registry: every Lightspeed resource the sync reads, declared once.

Everything else (DAG shape, SQL, record mapping, validation, sync_state seeding)
reads this module, so adding an entity is one declaration here plus a migration
for its table. The dependency order is computed with graphlib at import time; an
unknown dependency or a cycle raises `RegistryError` naming the culprits.
"""

from __future__ import annotations

import graphlib
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import ClassVar, Literal

ColumnType = Literal["text", "bigint", "numeric", "boolean", "timestamptz"]
# How an entity learns about records removed in the store:
#   feed      the endpoint honours `deleted=true` (deleted records come back with deleted_at),
#             or records are never deleted (sales are voided): read incrementally from the cursor;
#   every_run no delete feed and a small table: listed in full every run, and what the listing
#             no longer holds gets deleted_at (2 requests for up to page_size records);
#   periodic  no delete feed and a large table: incremental, but listed in full (and reconciled)
#             on a full refresh and every LIGHTSPEED_RECONCILE_DAYS days;
#   parent    read per parent (`ParentPaging`): each parent's listing is complete, so what it no
#             longer holds is deleted, and so are the rows of a parent that was deleted.
Deletions = Literal["feed", "every_run", "periodic", "parent"]


class RegistryError(ValueError):
    """The registry is inconsistent (unknown dependency, cycle, duplicate name)."""


@dataclass(frozen=True)
class VersionPaging:
    """Paged by the `version` cursor: `after=<version>&page_size=N` (plus `deleted=true` when the
    entity supports it), records in `data`, the page's highest version in `version.max`; only
    an empty page ends the listing. `api/paginators.py` reads it (`VersionPaginator`)."""

    versioned: ClassVar[bool] = True


@dataclass(frozen=True)
class IdPaging:
    """Paged by id, read in full every sync: `after=<last id>`, `page_info.has_next` and
    `page_info.last_seen`; the records at the dotted member path `records` (`IdPaginator`)."""

    records: str = "data"
    versioned: ClassVar[bool] = False


@dataclass(frozen=True)
class PostedVersionPaging:
    """Paged by the `version` cursor through a POST: the JSON body holds `after`, `size` (up to
    `max_size`), `sort_direction` ("asc", sent explicitly: the default is descending) and
    `include_deleted`; the answer is a bare array; only an empty one ends the listing (2026-07's
    `POST /inventory`; `PostedPaginator`)."""

    max_size: int = 5000
    versioned: ClassVar[bool] = True


@dataclass(frozen=True)
class ParentPaging:
    """Listed per parent record (`/consignments/{id}/products`), and only for the parents whose
    version moved past the cursor since the last sync: the cursor is the *parent's* version, and
    it moves when a parent's whole listing is written. Each parent's listing is version-paged from
    0 (only an empty page ends it) and complete. `path` is formatted with the parent row's typed
    columns; `parent_key` is the column that gets the parent's id; records without an id of their
    own (a consignment's products) are keyed `<parent id>/<key member>` (`records.record_key`)."""

    parent: str
    path: str
    parent_key: str
    key: str | None = None
    versioned: ClassVar[bool] = True


@dataclass(frozen=True)
class DescIdPaging:
    """Every record, newest first, by the id of the oldest one read so far: `page_size=N` (up to
    the documented maximum, `max_size`) and `before=<id>`; records in `data`; only an empty page
    ends the listing (2026-07's gift cards: no version, so read in full every sync). A page whose
    records embed more than `max_nested` list items (a card's transactions) makes the next pages
    smaller in proportion, so memory stays flat however long the cards' histories are; the first
    page holds `first_size` records (their histories are not known yet: 1 000 cards of 50
    transactions each took a sync to 234 MB against 59 MB, bench/run.py)."""

    max_size: int = 1000
    max_nested: int = 2000  # about what 1 000 cards of ordinary history hold (1.75 a card)
    first_size: int = 10
    versioned: ClassVar[bool] = False

    def requests(self, n: int, page: int | None = None) -> int:
        """Requests that list `n` records when the pages after the first hold `page` (default
        `max_size`): the first page, the full ones, and the empty page that ends the listing."""
        if n == 0:
            return 1
        return 1 + -(-max(n - self.first_size, 0) // (page or self.max_size)) + 1


@dataclass(frozen=True)
class WholeList:
    """The whole list in one answer, no cursor: `data`, or a bare array (2026-07's store credits,
    promotions). Read in full every sync; an answer holding `max_size` records or more may be cut
    short, so it is stored but not reconciled (nothing is marked deleted), with a warning."""

    max_size: int = 1000
    versioned: ClassVar[bool] = False


Paging = VersionPaging | IdPaging | PostedVersionPaging | ParentPaging | DescIdPaging | WholeList

# API versions: 2.0, then dated ones ("YYYY-MM", one a quarter), which compare as text.
V2 = "2.0"
NEWEST = "2026-07"  # the newest version the tests prove
RETAILER_SCOPES = ("retailer:read", "payment_types:read")  # the store check, GET /retailer


def version_key(version: str) -> tuple[int, str]:
    """Orders API versions: 2.0 first, then the dated ones by date."""
    return (0, "") if version == V2 else (1, version)


@dataclass(frozen=True)
class Dated:
    """What an entity changes from a dated API version on (None: as before)."""

    since: str
    paging: Paging | None = None
    supports_deleted: bool | None = None
    deletions: Deletions | None = None


@dataclass(frozen=True)
class Column:
    """A typed column copied from the record.

    `paths` are dotted member paths tried in order; the first one present wins. The
    first path is the API 2.0 member; later ones map dated API versions (for
    example 2026-07 sends `source.outlet_id` instead of `outlet_id`), so a new API
    version adds a path here instead of a second code path.
    """

    name: str
    type: ColumnType = "text"
    paths: tuple[str, ...] = ()
    references: str | None = None  # entity whose id this column holds (orphan checks)
    upper: bool = False  # normalise case (2026-07 sends `state` in lowercase)

    @property
    def sources(self) -> tuple[str, ...]:
        return self.paths or (self.name,)


UNKNOWN_SHAPE = "unknown"  # `data_shape` of a record in none of its entity's published shapes


@dataclass(frozen=True)
class Shape:
    """A record shape the vendor has published for an entity (an API version's), recognised by
    members only that shape has. The reader fills the typed columns from whichever shape a record
    carries (the columns' `paths` name every shape's member), and `data_shape` says which it was."""

    name: str  # the API version that publishes it: "2.0", "2026-07"
    markers: tuple[str, ...]  # dotted member paths: a record has this shape when it holds any of them


@dataclass(frozen=True)
class Child:
    """Records embedded in a parent record (a sale's line items and payments).

    Stored in their own table keyed by (parent id, position) and replaced as a
    whole whenever the parent is written, so they always match the parent.
    """

    name: str
    table: str
    member: str  # the parent's member holding the list
    parent_key: str  # column holding the parent's id
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class Entity:
    """One Lightspeed resource and its table."""

    name: str
    endpoint: str
    depends_on: tuple[str, ...] = ()  # hard: not synced when one of these failed
    columns: tuple[Column, ...] = ()
    paging: Paging = VersionPaging()
    supports_deleted: bool = False  # the endpoint honours `deleted=true`
    deletions: Deletions = "feed"
    # Soft: synced after these (so references resolve), but also when one of them failed: a
    # product does not need a fresh brand list, a sale does need its products.
    soft_depends_on: tuple[str, ...] = ()
    children: tuple[Child, ...] = ()
    unique_keys: tuple[str, ...] = ()  # columns expected unique among live rows (validation)
    outlet_column: str | None = None  # row-level security: rows visible per app.current_outlet_id
    audited: bool = False  # changes recorded in lightspeed_audit_log by triggers
    # The shapes of an entity the vendor reshaped between versions, newest first; a record
    # matching none is stored all the same (`data_shape` 'unknown', counted by validation).
    shapes: tuple[Shape, ...] = ()
    dated: tuple[Dated, ...] = ()  # how dated API versions list it differently (see `at`)
    scope: str = ""  # the OAuth scope its listing needs (the spec's "Requires:"); default `<name>:read`
    since: str = V2  # the first API version that lists it (purchase orders, gift cards: dated ones)
    id_member: str = "id"  # the member holding a record's id (store credits: one per customer)
    cost_members: tuple[str, ...] = ()  # members the API sends only with COSTS_SCOPE granted
    description: str = ""

    def available(self, api_version: str) -> bool:
        """Whether `api_version` lists this entity at all."""
        return version_key(self.since) <= version_key(api_version)

    @property
    def read_scope(self) -> str:
        return self.scope or f"{self.name}:read"

    def at(self, api_version: str) -> Entity:
        """This entity as `api_version` lists it: every `Dated` change since 2.0 up to that version."""
        changes: dict[str, object] = {}
        for step in sorted(self.dated, key=lambda d: version_key(d.since)):
            if version_key(step.since) <= version_key(api_version):
                for name in ("paging", "supports_deleted", "deletions"):
                    if (value := getattr(step, name)) is not None:
                        changes[name] = value
        return replace(self, **changes) if changes else self  # type: ignore[arg-type]

    @property
    def table(self) -> str:
        return f"lightspeed_{self.name}"

    @property
    def versions_table(self) -> str:
        """History mode: the table of this entity's past versions (closed intervals)."""
        return f"lightspeed_{self.name}_versions"

    @property
    def history_view(self) -> str:
        """History mode: every version, past and current, with its validity interval."""
        return f"lightspeed_{self.name}_history"

    @property
    def mirrored_columns(self) -> tuple[str, ...]:
        """Typed columns that hold the record member of the same name (the audit compares these)."""
        own = tuple(c.name for c in self.columns if c.sources == (c.name,) and "." not in c.name)
        return ("version", "created_at", "updated_at", "deleted_at", *own)

    @property
    def versioned(self) -> bool:
        return self.paging.versioned

    @property
    def after_all(self) -> tuple[str, ...]:
        """Every entity this one is synced after (hard and soft dependencies)."""
        return self.depends_on + self.soft_depends_on

    @property
    def reconciled(self) -> bool:
        """Removals are found by comparing a complete listing with the table (no delete feed);
        an entity read per parent reconciles each parent's listing on its own (`ParentPaging`)."""
        return self.deletions in ("every_run", "periodic") or not self.versioned


def path_fields(path: str) -> tuple[str, ...]:
    """The parent columns a `ParentPaging.path` names, besides `{id}`."""
    names = (part.partition("}")[0] for part in path.split("{")[1:])
    return tuple(dict.fromkeys(n for n in names if n and n != "id"))


def col(name: str, type_: ColumnType = "text", *paths: str, ref: str | None = None, upper: bool = False) -> Column:
    return Column(name=name, type=type_, paths=tuple(paths), references=ref, upper=upper)


LINE_ITEMS = Child(
    name="line_items",
    table="lightspeed_sale_line_items",
    member="line_items",
    parent_key="sale_id",
    columns=(
        col("id"),
        col("product_id", "text", "product_id", "product.id", ref="products"),
        col("quantity", "numeric"),
        col("price", "numeric", "price", "pricing.price"),
        col("price_total", "numeric", "price_total", "pricing.total"),
        # 2026-07 makes `tax` an object: its member is tried first (2.0's number has none).
        col("tax", "numeric", "tax.amount", "tax"),
        col("tax_total", "numeric", "tax_total", "tax.total"),
        col("tax_id", "text", "tax_id", "tax.id", ref="taxes"),
        col("discount", "numeric", "discount", "pricing.discount"),
        col("discount_total", "numeric", "discount_total", "pricing.discount_total"),
        col("status", "text", upper=True),
    ),
)

PAYMENTS = Child(
    name="payments",
    table="lightspeed_sale_payments",
    member="payments",
    parent_key="sale_id",
    columns=(
        col("id"),
        # 2026-07 nests the type, the register and the outlet (`type.config_id` is the store's
        # payment type, as the field descriptions say; the spec gives no mapping).
        col("retailer_payment_type_id", "text", "retailer_payment_type_id", "type.config_id", ref="payment_types"),
        col("payment_type_id", "text", "payment_type_id", "type.id"),
        col("name", "text", "name", "type.name"),
        col("amount", "numeric"),
        col("payment_date", "timestamptz", "payment_date", "date"),
        col("register_id", "text", "register_id", "source.register_id", ref="registers"),
        col("outlet_id", "text", "outlet_id", "source.outlet_id", ref="outlets"),
    ),
)

GIFT_CARD_TRANSACTIONS = Child(
    name="gift_card_transactions",
    table="lightspeed_gift_card_transactions",
    member="gift_card_transactions",
    parent_key="gift_card_id",
    columns=(
        col("id"),
        col("type", upper=True),
        col("amount", "numeric"),  # a decimal string
        col("source"),
        col("source_id"),
        col("client_id"),
        col("user_id", ref="users"),
        col("created_at", "timestamptz"),
    ),
)

STORE_CREDIT_TRANSACTIONS = Child(
    name="store_credit_transactions",
    table="lightspeed_store_credit_transactions",
    member="store_credit_transactions",
    parent_key="customer_id",
    columns=(
        col("id"),
        col("type", upper=True),
        col("amount", "numeric"),
        col("client_id"),
        col("sale_id", ref="sales"),
        col("user_id", ref="users"),
        col("created_at", "timestamptz"),
    ),
)

PURCHASE_ORDERS_SINCE = "2026-04"  # the first dated version with /purchase_orders
# History mode is on by default for these (LIGHTSPEED_HISTORY): stock, prices, customers.
HISTORY_DEFAULT = ("inventory", "products", "customers")
COSTS_SCOPE = "products:read:costs"  # without it, the cost members of purchase orders come empty

# A reference list 2.0 lists in full every run, which from 2026-07 on honours `deleted=true`.
GAINS_DELETE_FEED = (Dated("2026-07", supports_deleted=True, deletions="feed"),)

ENTITIES: tuple[Entity, ...] = (
    Entity(
        "outlets",
        "/outlets",
        columns=(col("name"), col("time_zone")),
        supports_deleted=True,
        description="Stores (locations).",
    ),
    Entity(
        "registers",
        "/registers",
        ("outlets",),
        columns=(col("name"), col("outlet_id", ref="outlets")),
        supports_deleted=True,
        outlet_column="outlet_id",
        description="Tills, each in one outlet.",
    ),
    Entity(
        "users",
        "/users",
        columns=(col("username"), col("display_name"), col("email")),
        deletions="every_run",
        description="Staff.",
    ),
    Entity(
        "taxes",
        "/taxes",
        columns=(col("name"), col("rate", "numeric")),
        deletions="every_run",
        description="Sales taxes.",
    ),
    Entity(
        "payment_types",
        "/payment_types",
        columns=(col("name"), col("type_id")),
        deletions="every_run",
        dated=GAINS_DELETE_FEED,
        description="The store's payment types (what a payment's retailer_payment_type_id points at).",
    ),
    Entity(
        "brands",
        "/brands",
        scope="products:read",
        columns=(col("name"),),
        deletions="every_run",
        dated=GAINS_DELETE_FEED,
        description="Product brands.",
    ),
    Entity(
        "suppliers",
        "/suppliers",
        columns=(col("name"),),
        deletions="every_run",
        dated=GAINS_DELETE_FEED,
        description="Product suppliers.",
    ),
    Entity(
        "product_types",
        "/product_types",
        scope="products:read",
        columns=(col("name"),),
        deletions="every_run",
        dated=GAINS_DELETE_FEED,
        description="Deprecated in 2.0 (same tree and ids as product_categories); kept for completeness.",
    ),
    Entity(
        "tags",
        "/tags",
        scope="products:read",
        columns=(col("name"),),
        supports_deleted=True,
        # 2.0's records carry no version of their own (the page's envelope does); 2026-07's do. So
        # switching to 2026-07 restates them once (a few requests), and every row gets its version.
        shapes=(Shape("2026-07", ("version",)), Shape("2.0", ("name", "deleted_at"))),
        description="Product tags.",
    ),
    Entity(
        "price_books",
        "/price_books",
        scope="products:read:price_books",
        columns=(col("name"), col("type"), col("valid_from", "timestamptz"), col("valid_to", "timestamptz")),
        deletions="every_run",
        dated=GAINS_DELETE_FEED,
        # 2026-07 lists the customer groups and outlets where 2.0 names one of each: a switch restates.
        shapes=(Shape("2026-07", ("customer_group_ids", "outlets")), Shape("2.0", ("customer_group_id", "outlet"))),
        description="Price books (whom each applies to is in data: 2.0 one group and outlet, 2026-07 lists).",
    ),
    Entity(
        "product_categories",
        "/product_categories",
        scope="products:read",
        columns=(
            col("name"),
            col("parent_category_id", ref="product_categories"),
            col("root_category_id", ref="product_categories"),
            col("leaf_category", "boolean"),
        ),
        paging=IdPaging(records="data.categories"),
        description="Category tree; no version: read in full every run, missing ones marked deleted.",
    ),
    Entity(
        "customer_groups",
        "/customer_groups",
        scope="customers:read",
        columns=(col("name"), col("group_id")),
        supports_deleted=True,
        description="Customer groups.",
    ),
    Entity(
        "products",
        "/products",
        soft_depends_on=("brands", "suppliers", "product_types", "product_categories", "taxes"),
        columns=(
            col("sku"),
            col("name"),
            col("handle"),
            col("brand_id", ref="brands"),
            col("supplier_id", ref="suppliers"),
            col("product_type_id", "text", "product_type_id", "type.id", ref="product_categories"),
            col("active", "boolean", "active", "is_active"),
            col("has_inventory", "boolean"),
            col("price_including_tax", "numeric"),
            col("price_excluding_tax", "numeric"),
            col("supply_price", "numeric"),
            col("variant_parent_id"),
        ),
        supports_deleted=True,
        unique_keys=("sku",),
        description="Products (variants are products with variant_parent_id).",
    ),
    Entity(
        "customers",
        "/customers",
        soft_depends_on=("customer_groups",),
        columns=(
            col("customer_code"),
            col("first_name"),
            col("last_name"),
            col("email"),
            col("phone"),
            col("customer_group_id", ref="customer_groups"),
            col("loyalty_balance", "numeric"),
        ),
        supports_deleted=True,
        audited=True,
        description="Customers (sensitive: changes are audited).",
    ),
    Entity(
        "price_book_products",
        "/price_book_products",
        scope="products:read:price_books",
        soft_depends_on=("price_books", "products", "taxes"),
        columns=(
            col("price_book_id", ref="price_books"),
            col("product_id", ref="products"),
            col("tax_id", ref="taxes"),
            col("price", "numeric"),
            col("loyalty_value", "numeric"),
            col("min_units", "numeric"),
            col("max_units", "numeric"),
        ),
        deletions="periodic",
        description="The prices of the price books, one per book and product (removals: the periodic full listing).",
    ),
    Entity(
        "consignments",
        "/consignments",
        scope="consignments:read",
        soft_depends_on=("outlets", "suppliers"),
        columns=(
            col("type", upper=True),
            col("status", upper=True),
            col("name"),
            col("reference"),
            col("outlet_id", ref="outlets"),
            col("source_outlet_id", ref="outlets"),
            col("supplier_id", ref="suppliers"),
            col("supplier_invoice"),
            col("consignment_date", "timestamptz"),
            col("due_at", "timestamptz"),
            col("received_at", "timestamptz"),
            col("total_count_gain", "numeric"),
            col("total_count_loss", "numeric"),
            col("total_cost_gain", "numeric"),
            col("total_cost_loss", "numeric"),
        ),
        deletions="periodic",
        # No row-level security by outlet: a transfer belongs to two (outlet_id, source_outlet_id).
        description="Stock orders, outlet transfers, returns and stocktakes (2.0 answers a bare array).",
    ),
    Entity(
        "consignment_products",
        "/consignments/{id}/products",
        ("consignments",),
        scope="consignments:read",
        soft_depends_on=("products",),
        columns=(
            col("consignment_id", ref="consignments"),
            col("product_id", ref="products"),
            col("product_sku"),
            col("count", "numeric"),
            col("received", "numeric"),
            col("cost", "numeric"),
            col("is_included", "boolean"),
            col("status", upper=True),
        ),
        paging=ParentPaging("consignments", "/consignments/{id}/products", "consignment_id", key="product_id"),
        deletions="parent",
        description="A consignment's products, read per consignment whose version moved (no id: keyed by product).",
    ),
    Entity(
        "inventory",
        "/inventory",
        ("products", "outlets"),
        columns=(
            col("product_id", ref="products"),
            col("outlet_id", ref="outlets"),
            # Stock on hand: 2.0's `inventory_level` (`current_amount` only in its examples),
            # 2026-07's `current_inventory_level`.
            col("inventory_level", "numeric", "inventory_level", "current_inventory_level"),
            col("current_amount", "numeric", "current_amount", "inventory_level", "current_inventory_level"),
            col("reorder_point", "numeric"),
            col("reorder_amount", "numeric"),
            col("average_cost", "numeric"),
            col("reorder_target", "numeric"),  # 2026-07
        ),
        outlet_column="outlet_id",
        deletions="periodic",
        # 2026-07: `POST /inventory` (a JSON body, a bare array), deleted records included on request.
        dated=(Dated("2026-07", paging=PostedVersionPaging(max_size=5000), supports_deleted=True, deletions="feed"),),
        shapes=(
            Shape("2026-07", ("current_inventory_level",)),
            Shape("2.0", ("inventory_level", "current_amount")),
        ),
        description="Stock per product and outlet.",
    ),
    Entity(
        "sales",
        "/sales",
        ("outlets", "registers", "customers", "products"),
        soft_depends_on=("users", "taxes", "payment_types"),
        columns=(
            col("invoice_number"),
            col("receipt_number"),
            col("status", "text", "status", "state", upper=True),
            col("sale_date", "timestamptz", "sale_date", "date"),
            col("total_price", "numeric", "total_price", "totals.price"),
            col("total_tax", "numeric", "total_tax", "totals.tax"),
            col("total_loyalty", "numeric", "total_loyalty", "totals.loyalty"),
            col("outlet_id", "text", "outlet_id", "source.outlet_id", ref="outlets"),
            col("register_id", "text", "register_id", "source.register_id", ref="registers"),
            col("customer_id", ref="customers"),
            col("user_id", "text", "user_id", "source.author.id", ref="users"),
            col("total_price_incl_tax", "numeric", "totals.price_incl_tax"),  # 2026-07 only
            col("return_for", "text", "return_for", "return.original_sale_id"),  # the sale this one returns
        ),
        children=(LINE_ITEMS, PAYMENTS),
        unique_keys=("invoice_number",),
        outlet_column="outlet_id",
        # 2026-07 nests the source and the totals and moves the version into `_metadata`; the
        # spec's own sale example (the return action) is still flat, so both are read.
        shapes=(
            Shape("2026-07", ("_metadata.version", "totals", "source.outlet_id")),
            Shape("2.0", ("total_price", "outlet_id", "sale_date", "status", "version")),
        ),
        description="Sales with their line items and payments (embedded; replaced with the sale).",
    ),
    Entity(
        "purchase_orders",
        "/purchase_orders",
        scope="consignments:read",
        soft_depends_on=("suppliers", "outlets", "users"),
        columns=(
            col("order_number"),
            col("status", upper=True),
            col("supplier_id", ref="suppliers"),
            col("supplier_invoice"),
            col("delivery_outlet_id", ref="outlets"),
            col("user_id", ref="users"),
            col("due_at", "timestamptz"),
            col("cost_price_total", "numeric"),
            col("quantity_total", "numeric"),
        ),
        deletions="periodic",
        since=PURCHASE_ORDERS_SINCE,
        cost_members=("cost_price_total",),
        description="Purchase orders (no delete signal: reconciled on the cadence; whom they allocate to in data).",
    ),
    Entity(
        "purchase_order_line_items",
        "/purchase_orders/{id}/line_items",
        ("purchase_orders",),
        scope="consignments:read",
        soft_depends_on=("products",),
        columns=(
            col("purchase_order_id", ref="purchase_orders"),
            col("product_id", ref="products"),
            col("quantity", "numeric"),
            col("cost_price", "numeric"),
        ),
        paging=ParentPaging("purchase_orders", "/purchase_orders/{id}/line_items", "purchase_order_id"),
        deletions="parent",
        since=PURCHASE_ORDERS_SINCE,
        cost_members=("cost_price",),
        description="What each purchase order asks for (allocations per outlet in data), read per order that moved.",
    ),
    Entity(
        "purchase_order_deliveries",
        "/purchase_orders/{id}/deliveries",
        ("purchase_orders",),
        scope="consignments:read",
        columns=(
            col("purchase_order_id", ref="purchase_orders"),
            col("outlet_id", ref="outlets"),
            col("status", upper=True),
            col("supplier_invoice"),
            col("user_id", ref="users"),
            col("due_at", "timestamptz"),
            col("received_at", "timestamptz"),
            col("invoice_date", "timestamptz"),
            col("cost_price_total", "numeric"),
            col("received_quantity_total", "numeric"),
        ),
        paging=ParentPaging("purchase_orders", "/purchase_orders/{id}/deliveries", "purchase_order_id"),
        deletions="parent",
        since=PURCHASE_ORDERS_SINCE,
        cost_members=("cost_price_total",),
        description="The deliveries of each purchase order, read per order that moved.",
    ),
    Entity(
        "purchase_order_delivery_line_items",
        "/purchase_orders/{purchase_order_id}/deliveries/{id}/line_items",
        ("purchase_order_deliveries",),
        scope="consignments:read",
        soft_depends_on=("purchase_order_line_items", "products"),
        columns=(
            col("purchase_order_delivery_id", ref="purchase_order_deliveries"),
            col("purchase_order_line_item_id", ref="purchase_order_line_items"),
            col("product_id", ref="products"),
            col("expected_quantity", "numeric"),
            col("received_quantity", "numeric"),
            col("cost_price", "numeric"),
        ),
        paging=ParentPaging(
            "purchase_order_deliveries",
            "/purchase_orders/{purchase_order_id}/deliveries/{id}/line_items",
            "purchase_order_delivery_id",
        ),
        deletions="parent",
        since=PURCHASE_ORDERS_SINCE,
        cost_members=("cost_price",),
        description="What each delivery brought, per order line, read per delivery that moved.",
    ),
    Entity(
        "promotions",
        "/promotions",
        scope="promotions:read",
        columns=(
            col("name"),
            col("status", upper=True),
            col("start_time", "timestamptz"),
            col("end_time", "timestamptz"),
            col("loyalty_multiplier", "numeric"),
            col("use_promo_code", "boolean"),
        ),
        paging=WholeList(max_size=1000),
        deletions="every_run",
        description="Promotions: no cursor and no version, so listed in full every run (whom and what in data).",
    ),
    Entity(
        "gift_cards",
        "/gift_cards",
        scope="gift_cards:read",
        soft_depends_on=("sales", "users"),
        columns=(
            col("number"),
            col("status", upper=True),
            col("balance", "numeric"),
            col("total_sold", "numeric"),
            col("total_redeemed", "numeric"),
            col("expires_at", "timestamptz"),
            col("sale_id", ref="sales"),
            col("sale_source"),
        ),
        paging=DescIdPaging(max_size=1000),
        children=(GIFT_CARD_TRANSACTIONS,),
        deletions="every_run",
        since=NEWEST,
        description="Gift cards with their transactions: no version, balances change in place, so read in full.",
    ),
    Entity(
        "store_credits",
        "/store_credits",
        scope="store_credits:read",
        soft_depends_on=("customers", "sales", "users"),
        columns=(
            col("customer_id", ref="customers"),
            col("store_credit_id", "text", "id"),
            col("balance", "numeric"),
            col("total_credit_issued", "numeric"),
            col("total_credit_redeemed", "numeric"),
        ),
        paging=WholeList(max_size=10000),
        children=(STORE_CREDIT_TRANSACTIONS,),
        deletions="every_run",
        since=NEWEST,
        id_member="customer_id",
        description="Store credit per customer with its transactions: one answer, no cursor, read in full.",
    ),
)


def order_entities(entities: tuple[Entity, ...]) -> tuple[Entity, ...]:
    """Validate a registry and return it in dependency order, stable w.r.t. declaration order.

    Raises `RegistryError` on a duplicate name, an unknown dependency or reference, or a cycle.
    """
    by_name: dict[str, Entity] = {}
    for e in entities:
        if e.name in by_name:
            raise RegistryError(f"entity {e.name!r} is declared twice")
        by_name[e.name] = e
    for e in entities:
        unknown = [d for d in e.after_all if d not in by_name]
        if unknown:
            raise RegistryError(f"entity {e.name!r} depends on unknown entities: {', '.join(unknown)}")
        if isinstance(e.paging, ParentPaging):
            parent = by_name.get(e.paging.parent)
            if parent is None or parent.name not in e.depends_on:
                raise RegistryError(f"entity {e.name!r} is read per {e.paging.parent} but does not depend on it")
            unknown = set(path_fields(e.paging.path)) - {c.name for c in parent.columns}
            if unknown:
                raise RegistryError(f"{e.name}: its path names {sorted(unknown)}, not columns of {parent.name}")
        if e.audited and not e.versioned:
            raise RegistryError(f"entity {e.name!r} is audited but not versioned (the audit compares versions)")
        for col in e.columns + tuple(c for ch in e.children for c in ch.columns):
            if col.references and col.references not in by_name:
                raise RegistryError(f"{e.name}.{col.name} references unknown entity {col.references!r}")
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for e in entities:
        sorter.add(e.name, *e.after_all)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise RegistryError(f"entity dependency cycle: {cycle}") from exc
    # graphlib proved there is no cycle; now take, each time, the first declared entity
    # whose dependencies are placed, so the order reads like the declaration.
    ordered: list[Entity] = []
    placed: set[str] = set()
    while len(ordered) < len(entities):
        nxt = next(e for e in entities if e.name not in placed and placed.issuperset(e.after_all))
        ordered.append(nxt)
        placed.add(nxt.name)
    return tuple(ordered)


ORDERED: tuple[Entity, ...] = order_entities(ENTITIES)
BY_NAME: dict[str, Entity] = {e.name: e for e in ENTITIES}
NAMES: tuple[str, ...] = tuple(e.name for e in ORDERED)
VERSIONED_NAMES: tuple[str, ...] = tuple(e.name for e in ORDERED if e.versioned)  # history mode's choices
CHILD_TABLES: tuple[str, ...] = tuple(ch.table for e in ENTITIES for ch in e.children)


def get(name: str) -> Entity:
    """The entity called `name`, or a KeyError listing the valid names."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown entity {name!r}; known: {', '.join(NAMES)}") from None


def unavailable(api_version: str) -> dict[str, str]:
    """The entities `api_version` does not list, with why (the health page and the log say it)."""
    return {
        e.name: f"not listed by API {api_version} (only from API {e.since} on)"
        for e in ORDERED
        if not e.available(api_version)
    }


def dependants(name: str, *, exclude: Collection[str] = ()) -> list[str]:
    """The entities synced after `name` or holding references to it (in sync order), less `exclude`."""

    def refers(e: Entity) -> bool:
        columns = list(e.columns) + [c for child in e.children for c in child.columns]
        return name in e.after_all or any(c.references == name for c in columns)

    return [e.name for e in ORDERED if e.name != name and e.name not in exclude and refers(e)]
