"""Paginators, each on its own: against a scripted server for the edge cases, and against the
simulator (over real HTTP) for whole listings, their stop rule and their cursor rule."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from lightspeed_pipeline import entities as reg
from lightspeed_pipeline.api.client import ClientConfig, LightspeedClient
from lightspeed_pipeline.api.errors import LightspeedAPIError
from lightspeed_pipeline.api.paginators import (
    DescIdPaginator,
    IdPaginator,
    ParentPaginator,
    PostedPaginator,
    VersionPaginator,
    WholeListPaginator,
    paginator_for,
)
from lightspeed_pipeline.records import ParentRef

from simulator import Simulator
from tests.unit.conftest import versioned_api
from tests.unit.scripted_http import Response, ok

TOKEN = "paginator-token"


def test_pages_until_an_empty_page_even_after_short_pages(make_client) -> None:
    records = [{"id": str(i), "version": 10 + i * 3} for i in range(5)]
    client, server, _ = make_client(versioned_api(records, cap=2))
    pages = list(VersionPaginator(client, "brands", "/brands", after=0, deleted=True).pages())
    assert [[r["id"] for r in p.records] for p in pages] == [["0", "1"], ["2", "3"], ["4"]]
    assert [p.max_version for p in pages] == [13, 19, 22]
    afters = [int(r["query"]["after"]) for r in server.requests]
    assert afters == [0, 13, 19, 22]  # pages + 1 requests; the cursor is each page's max
    assert all(r["query"]["deleted"] == "true" for r in server.requests)
    assert server.requests[0]["headers"]["Authorization"] == "Bearer secret-token"
    assert server.requests[0]["path"] == "/api/2.0/brands"
    assert client.stats.requests == 4


def test_full_page_smaller_than_requested_is_not_the_end(make_client) -> None:
    records = [{"id": str(i), "version": i + 1} for i in range(4)]
    client, server, _ = make_client(versioned_api(records, cap=1), page_size=100)
    assert sum(len(p.records) for p in VersionPaginator(client, "x", "/x", after=0, deleted=False).pages()) == 4
    assert "deleted" not in server.requests[0]["query"]


def test_missing_version_max_falls_back_to_record_versions(make_client) -> None:
    calls = iter([ok({"data": [{"id": "a", "version": 7}]}), ok({"data": []})])
    client, server, _ = make_client(lambda p, q: next(calls))
    pages = list(VersionPaginator(client, "x", "/x", after=0, deleted=False).pages())
    assert pages[0].max_version == 7 and server.requests[1]["query"]["after"] == "7"


def test_2026_07_sales_move_the_cursor_by_their_metadata_version(make_client) -> None:
    """2026-07 sales carry no top-level version: `_metadata.version` is the cursor."""
    calls = iter(
        [
            ok({"data": [{"id": "a", "_metadata": {"version": 7}}, {"id": "b", "_metadata": {"version": 9}}]}),
            ok({"data": [], "version": {"min": None, "max": None}}),
        ]
    )
    client, server, _ = make_client(lambda p, q: next(calls))
    pages = list(VersionPaginator(client, "sales", "/sales", after=0).pages())
    assert [p.max_version for p in pages] == [9] and server.requests[1]["query"]["after"] == "9"


def test_bare_array_response_is_accepted(make_client) -> None:
    calls = iter([ok([{"id": "a", "version": 3}]), ok([])])
    client, _, _ = make_client(lambda p, q: next(calls))
    pages = VersionPaginator(client, "inventory", "/inventory", after=0).pages()
    assert [p.max_version for p in pages] == [3]


def test_cursor_that_does_not_advance_fails_clearly(make_client) -> None:
    client, _, _ = make_client(lambda p, q: ok({"data": [{"id": "a", "version": 5}], "version": {"max": 5}}))
    with pytest.raises(LightspeedAPIError, match="cursor did not advance"):
        list(VersionPaginator(client, "x", "/x", after=5, deleted=False).pages())


def test_id_paging_for_categories(make_client) -> None:
    cats = [{"id": f"c{i}", "name": str(i)} for i in range(5)]

    def handler(path: str, q: dict[str, str]) -> Response:
        after = q.get("after")
        rest = [c for c in cats if after is None or c["id"] > after][: int(q["page_size"])]
        has_next = bool(rest) and rest[-1]["id"] != cats[-1]["id"]
        return ok({"data": {"categories": rest}, "page_info": {"has_next": has_next, "last_seen": rest[-1]["id"]}})

    client, server, _ = make_client(handler)
    pages = list(IdPaginator(client, "product_categories", "/product_categories", records="data.categories").pages())
    assert [len(p.records) for p in pages] == [2, 2, 1]
    assert [r["query"].get("after") for r in server.requests] == [None, "c1", "c3"]


# ---- against the simulator (over real HTTP) ------------------------------------------------------


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    simulator = Simulator(scale="test", token=TOKEN, max_page_size=40)
    simulator.start()
    yield simulator
    simulator.stop()


def client_for(sim: Simulator, page_size: int) -> LightspeedClient:
    return LightspeedClient(ClientConfig(base_url=sim.url, token=TOKEN, page_size=page_size, prefetch=False))


def listed(sim: Simulator, resource: str, *, deleted: bool) -> list[dict[str, Any]]:
    """What the API's complete listing holds: not removed, and not deleted unless asked for."""
    return [
        r
        for r in sim.data.dump()["resources"][resource]
        if not r.get("_removed") and not r.get("_deleted") and (deleted or not r.get("deleted_at"))
    ]


def test_the_version_paginator_reads_a_whole_listing_by_its_rules(sim: Simulator) -> None:
    """Every record once, in version order; the cursor is each page's highest version; only the
    empty page ends the listing (the simulator caps page_size at 40, so pages are short)."""
    before = len(sim.requests)
    with client_for(sim, page_size=100) as client:
        pages = list(VersionPaginator(client, "customers", "/customers", after=0, deleted=True).pages())
    requests = sim.requests[before:]
    records = [r for p in pages for r in p.records]
    assert sorted(r["id"] for r in records) == sorted(r["id"] for r in listed(sim, "customers", deleted=True))
    assert any(r.get("deleted_at") for r in records)  # deleted=true brings the deleted ones
    versions = [r["version"] for r in records]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert len(requests) == len(pages) + 1 and requests[-1]["status"] == 200  # the empty page that ends it
    afters = [int(r["query"]["after"]) for r in requests]
    assert afters == [0, *(p.max_version for p in pages)]  # the cursor rule
    assert [p.after for p in pages] == afters[:-1] and [p.number for p in pages] == list(range(1, len(pages) + 1))
    assert all(len(p.records) <= 40 for p in pages) and all(r["query"]["deleted"] == "true" for r in requests)


def test_the_version_paginator_starts_above_its_cursor(sim: Simulator) -> None:
    everything = sorted(r["version"] for r in listed(sim, "sales", deleted=False))
    middle = everything[len(everything) // 2]
    with client_for(sim, page_size=40) as client:
        pages = list(VersionPaginator(client, "sales", "/sales", after=middle).pages())
    assert [r["version"] for p in pages for r in p.records] == [v for v in everything if v > middle]


def test_the_id_paginator_reads_the_category_tree_by_its_rules(sim: Simulator) -> None:
    before = len(sim.requests)
    entity = reg.get("product_categories")
    with client_for(sim, page_size=5) as client:
        paginator = paginator_for(entity, client)
        assert isinstance(paginator, IdPaginator) and paginator.records == "data.categories"
        pages = list(paginator.pages())
    requests = sim.requests[before:]
    ids = [r["id"] for p in pages for r in p.records]
    assert sorted(ids) == sorted(r["id"] for r in listed(sim, "product_categories", deleted=False))
    assert len(ids) == len(set(ids)) and all(p.max_version is None for p in pages)
    assert len(requests) == len(pages)  # has_next false on the last page: no request after it
    assert [r["query"].get("after") for r in requests] == [None, *(p.records[-1]["id"] for p in pages[:-1])]


def test_the_registry_chooses_each_entitys_paginator() -> None:
    with LightspeedClient(ClientConfig(base_url="http://127.0.0.1:9", token="t")) as client:
        for entity in reg.ENTITIES:
            paginator = paginator_for(entity, client, after=7)
            if isinstance(entity.paging, reg.ParentPaging):  # the parents it lists under come from the caller
                assert isinstance(paginator, ParentPaginator) and paginator.parents == [], entity.name
                assert (paginator.name, paginator.endpoint) == (entity.name, entity.paging.path)
                continue
            if entity.versioned:
                assert isinstance(paginator, VersionPaginator), entity.name
                assert (paginator.after, paginator.deleted) == (7, entity.supports_deleted)
            elif isinstance(entity.paging, reg.DescIdPaging):
                assert isinstance(paginator, DescIdPaginator), entity.name
                assert (paginator.page_size, paginator.max_size) == (10, 1000), entity.name
            elif isinstance(entity.paging, reg.WholeList):
                assert isinstance(paginator, WholeListPaginator), entity.name
                assert paginator.page_size == entity.paging.max_size
            else:
                assert isinstance(paginator, IdPaginator), entity.name
            assert (paginator.name, paginator.endpoint) == (entity.name, entity.endpoint)


def test_the_posted_paginator_reads_2026_07_inventory_in_ascending_order(sim: Simulator) -> None:
    """POST /inventory answers newest first unless told: the paginator says "asc" and moves the
    cursor to each page's highest version, so every record is read once; an empty array ends it."""
    before = len(sim.requests)
    with LightspeedClient(ClientConfig(base_url=sim.url, token=TOKEN, api_version="2026-07")) as client:
        paginator = paginator_for(reg.get("inventory").at("2026-07"), client)
        assert isinstance(paginator, PostedPaginator) and paginator.page_size == 5000
        paginator.page_size = 60  # several pages at the test scale
        pages = list(paginator.pages())
    requests = sim.requests[before:]
    records = [r for p in pages for r in p.records]
    assert sorted(r["id"] for r in records) == sorted(r["id"] for r in listed(sim, "inventory", deleted=True))
    versions = [r["version"] for r in records]
    assert versions == sorted(versions) and "current_inventory_level" in records[0]
    assert [r["method"] for r in requests] == ["POST"] * (len(pages) + 1)
    assert [r["body"]["after"] for r in requests] == [0, *(p.max_version for p in pages)]
    assert all(r["body"]["sort_direction"] == "asc" and r["body"]["include_deleted"] is True for r in requests)


def test_the_parent_paginator_lists_each_parent_in_full_and_closes_it(make_client) -> None:
    """Per parent: its own path, version-paged from 0 until an empty page, then a closing page that
    names every row id listed and carries the parent's version (the cursor); records without an id
    are keyed `<parent>/<product_id>`, a product listed again `/2`; a parent that answers 404 is
    closed with nothing listed (its rows go with it)."""
    lines = {
        "c1": [{"product_id": "p", "version": 5}, {"product_id": "q", "version": 6}, {"product_id": "p", "version": 9}],
        "c2": [],
    }

    def handler(path: str, q: dict[str, str]) -> Response:
        parent = path.split("/")[-2]
        if parent not in lines:
            return 404, {"Content-Type": "application/json"}, json.dumps({"error": "Not Found"})
        page = [r for r in lines[parent] if r["version"] > int(q["after"])][:2]
        return ok({"data": page, "version": {"min": None, "max": max((r["version"] for r in page), default=None)}})

    client, server, _ = make_client(handler)
    parents = [ParentRef("c1", 100, {}), ParentRef("c2", 101, {}), ParentRef("gone", 102, {})]
    paginator = ParentPaginator(
        client, "consignment_products", parent="consignments", path="/consignments/{id}/products", parents=parents,
        key="product_id",
    )  # fmt: skip
    pages = list(paginator.pages())
    assert [(p.parent, len(p.records), p.max_version, p.listed) for p in pages] == [
        ("c1", 2, None, None),
        ("c1", 1, None, None),
        ("c1", 0, 100, ["c1/p", "c1/q", "c1/p/2"]),
        ("c2", 0, 101, []),
        ("gone", 0, 102, []),
    ]
    assert pages[0].keys == ["c1/p", "c1/q"] and pages[1].keys == ["c1/p/2"]
    assert [(r["path"], r["query"]["after"]) for r in server.requests] == [
        ("/api/2.0/consignments/c1/products", "0"),
        ("/api/2.0/consignments/c1/products", "6"),
        ("/api/2.0/consignments/c1/products", "9"),
        ("/api/2.0/consignments/c2/products", "0"),
        ("/api/2.0/consignments/gone/products", "0"),
    ]


def test_the_newest_first_paginator_pages_by_the_oldest_id_read(make_client) -> None:
    """Gift cards: `before=<id>` of the last (oldest) card read, the documented page size; only an
    empty page ends it; a cursor that does not move fails instead of looping."""
    cards = [{"id": f"g{i:02d}"} for i in range(5, 0, -1)]  # newest first

    def handler(path: str, q: dict[str, str]) -> Response:
        older = [c for c in cards if "before" not in q or c["id"] < q["before"]]
        return ok({"data": older[:2]})

    client, server, _ = make_client(handler)
    pages = list(DescIdPaginator(client, "gift_cards", "/gift_cards", size=1000).pages())
    assert [[c["id"] for c in p.records] for p in pages] == [["g05", "g04"], ["g03", "g02"], ["g01"]]
    assert [r["query"].get("before") for r in server.requests] == [None, "g04", "g02", "g01"]
    assert {r["query"]["page_size"] for r in server.requests} == {"1000"}
    # Cards with long histories: the next pages hold as many cards as 100 embedded items allow.
    heavy = [{"id": f"h{i:03d}", "gift_card_transactions": [{"n": n} for n in range(20)]} for i in range(60, 0, -1)]

    def heavy_handler(path: str, q: dict[str, str]) -> Response:
        older = [c for c in heavy if "before" not in q or c["id"] < q["before"]]
        return ok({"data": older[: int(q["page_size"])]})

    heavy_client, heavy_server, _ = make_client(heavy_handler)
    pages = list(DescIdPaginator(heavy_client, "gift_cards", "/gift_cards", size=30, max_nested=200).pages())
    assert [len(p.records) for p in pages] == [30, 10, 10, 10]  # 600 items, then 200 a page
    assert sum(len(p.records) for p in pages) == 60
    assert [r["query"]["page_size"] for r in heavy_server.requests] == ["30", "10", "10", "10", "10"]
    # A small first page (the cards' weight unknown), then as many as the items allow: light cards
    # grow to the full size at once, heavy ones never pass 10 items x 20 = 200 a page.
    heavy_server.requests.clear()
    pages = list(
        DescIdPaginator(heavy_client, "gift_cards", "/gift_cards", size=30, max_nested=200, first_size=5).pages()
    )
    assert [len(p.records) for p in pages] == [5, 10, 10, 10, 10, 10, 5]
    light_client, light_server, _ = make_client(handler)
    list(DescIdPaginator(light_client, "gift_cards", "/gift_cards", size=1000, max_nested=200, first_size=1).pages())
    assert [r["query"]["page_size"] for r in light_server.requests] == ["1", "200", "200", "200"]
    paging = reg.DescIdPaging()
    assert [paging.requests(n, 200) for n in (0, 1, 10, 11, 210, 211)] == [1, 2, 2, 3, 3, 4]
    stuck, _, _ = make_client(lambda p, q: ok({"data": [{"id": "g1"}]}))
    with pytest.raises(LightspeedAPIError, match="id cursor did not move"):
        list(DescIdPaginator(stuck, "gift_cards", "/gift_cards", size=1000).pages())


def test_the_whole_list_paginator_reads_once_and_flags_a_list_that_may_be_cut(make_client) -> None:
    client, server, _ = make_client(lambda p, q: ok([{"id": "a"}, {"id": "b"}]))
    pages = list(WholeListPaginator(client, "store_credits", "/store_credits", size=1000).pages())
    assert [len(p.records) for p in pages] == [2] and pages[0].complete and len(server.requests) == 1
    full, _, _ = make_client(lambda p, q: ok({"data": [{"id": str(i)} for i in range(3)]}))
    (page,) = WholeListPaginator(full, "promotions", "/promotions", size=3).pages()
    assert not page.complete and "may be cut short" in (page.note or "")
    empty, _, _ = make_client(lambda p, q: ok({"data": []}))
    assert list(WholeListPaginator(empty, "promotions", "/promotions", size=3).pages()) == []
