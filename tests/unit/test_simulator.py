"""The simulator behaves like the real API where the sync depends on it."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from devtools.simproc import SimulatorProcess
from simulator import SimData, Simulator

TOKEN = "t0k"
VENDOR_EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "vendor_examples.json"


@pytest.fixture
def sim() -> Iterator[tuple[Simulator, requests.Session]]:
    s = Simulator(scale="test", seed=3, token=TOKEN, max_page_size=40)
    s.start()
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {TOKEN}"
    yield s, http
    http.close()
    s.stop()


def test_same_seed_same_data_and_big_versions() -> None:
    a, b = SimData("test", 5), SimData("test", 5)
    assert a.dump() == b.dump()
    assert SimData("test", 6).dump() != a.dump()
    versions = [r["version"] for r in a.records["sales"].values()]
    assert min(versions) > 2**31 and len(set(versions)) == len(versions)


def test_references_are_real(sim) -> None:
    s, _ = sim
    recs = s.data.records
    for sale in recs["sales"].values():
        assert sale["register_id"] in recs["registers"] and sale["outlet_id"] in recs["outlets"]
        assert recs["registers"][sale["register_id"]]["outlet_id"] == sale["outlet_id"]
        assert all(li["product_id"] in recs["products"] for li in sale["line_items"])
        assert all(p["retailer_payment_type_id"] in recs["payment_types"] for p in sale["payments"])
        assert sale["line_items"] and sale["payments"]
    for product in recs["products"].values():
        assert product["product_type_id"] in recs["product_categories"]


def test_version_paging_covers_everything_once_and_ends_empty(sim) -> None:
    s, http = sim
    seen, after, pages = [], 0, 0
    while True:
        body = http.get(f"{s.url}/api/2.0/sales", params={"after": after, "page_size": 1000}).json()
        if not body["data"]:
            assert body["version"] is None
            break
        assert len(body["data"]) <= 40  # silently capped
        assert all(r["version"] > after for r in body["data"])  # after is exclusive
        after = body["version"]["max"]
        seen += [r["id"] for r in body["data"]]
        pages += 1
    assert sorted(seen) == sorted(s.data.records["sales"]) and pages == -(-250 // 40)


def read_all(s: Simulator, http: requests.Session, resource: str, **params: str) -> list[dict]:
    out, after = [], 0
    while body := http.get(f"{s.url}/api/2.0/{resource}", params={"after": after, **params}).json()["data"]:
        out += body
        after = body[-1]["version"]
    return out


def test_deleted_only_with_the_flag_and_only_where_supported(sim) -> None:
    s, http = sim
    changed = s.data.mutate({"seed": 1, "delete": {"customers": 3}})["changed"]["customers"]
    plain = read_all(s, http, "customers")
    with_deleted = read_all(s, http, "customers", deleted="true")
    records = s.data.records["customers"].values()
    assert len(with_deleted) == len(records)
    assert len(plain) == sum(1 for r in records if not r.get("deleted_at")) <= len(records) - 3
    assert not set(changed) & {r["id"] for r in plain}
    assert set(changed) <= {r["id"] for r in with_deleted if r.get("deleted_at")}
    with pytest.raises(ValueError, match="does not support"):
        s.data.mutate({"delete": {"sales": 1}})


def test_categories_page_by_id(sim) -> None:
    s, http = sim
    body = http.get(f"{s.url}/api/2.0/product_categories", params={"page_size": 5}).json()
    assert len(body["data"]["categories"]) == 5 and body["page_info"]["has_next"] is True
    ids = [c["id"] for c in body["data"]["categories"]]
    assert ids == sorted(ids) and body["page_info"]["last_seen"] == ids[-1]
    rest = http.get(f"{s.url}/api/2.0/product_categories", params={"page_size": 50, "after": ids[-1]}).json()
    assert len(rest["data"]["categories"]) == 7 and rest["page_info"]["has_next"] is False


def test_auth_bad_params_and_unknown_resource(sim) -> None:
    s, http = sim
    assert requests.get(f"{s.url}/api/2.0/sales").status_code == 401
    assert http.get(f"{s.url}/api/2.0/sales", params={"page_size": "x"}).status_code == 400
    assert http.get(f"{s.url}/api/2.0/nope").status_code == 404
    resp = http.get(f"{s.url}/api/2.0/outlets", params={"page": 3})  # unknown params are ignored
    assert resp.status_code == 200 and int(resp.headers["x-ratelimit-remaining"]) > 0


def test_fault_script_and_per_resource_faults(sim) -> None:
    s, http = sim
    s.set_faults({"script": [429, 503, 200], "resources": {"taxes": 400}, "retry_after_seconds": 2})
    r1 = http.get(f"{s.url}/api/2.0/outlets")
    assert r1.status_code == 429 and parsedate_to_datetime(r1.headers["Retry-After"]).tzinfo is not None
    r2 = http.get(f"{s.url}/api/2.0/outlets")
    assert r2.status_code == 503 and r2.headers["Content-Type"] == "text/html"
    assert http.get(f"{s.url}/api/2.0/outlets").status_code == 200
    assert http.get(f"{s.url}/api/2.0/taxes").status_code == 400
    s.set_faults({})
    assert http.get(f"{s.url}/api/2.0/taxes").status_code == 200


def test_mutations_bump_only_changed_records_and_void_changes_line_items(sim) -> None:
    s, _ = sim
    before = {sid: (r["version"], len(r["line_items"])) for sid, r in s.data.records["sales"].items()}
    changed = s.data.mutate({"seed": 2, "void_sales": 4, "new": {"sales": 2}})["changed"]["sales"]
    after = s.data.records["sales"]
    assert len(changed) == 6
    for sid, (version, _) in before.items():
        assert (after[sid]["version"] > version) == (sid in changed)
    voided = [sid for sid in changed if sid in before]
    assert all(after[sid]["status"] == "VOIDED" for sid in voided)
    assert all({li["status"] for li in after[sid]["line_items"]} == {"VOIDED"} for sid in voided)
    assert any(len(after[sid]["line_items"]) < before[sid][1] for sid in voided)


def test_sliding_window_rate_limit() -> None:
    s = Simulator(scale="test", token=TOKEN, rate_limit=3, rate_window=60)
    s.start()
    try:
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {TOKEN}"
        codes = [http.get(f"{s.url}/api/2.0/taxes").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        last = http.get(f"{s.url}/api/2.0/taxes")
        assert last.headers["X-RateLimit-Remaining"] == "0" and "Retry-After" in last.headers
    finally:
        s.stop()


def test_transport_fault_kinds(sim) -> None:
    s, http = sim
    s.set_faults({"script": ["reset", "cut", "truncate", "html", "nomax", "429-past", "429-none", "429-seconds"],
                  "retry_after_seconds": 7})  # fmt: skip
    url = f"{s.url}/api/2.0/outlets"
    with pytest.raises(requests.ConnectionError):
        http.get(url)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        http.get(url)
    truncated = http.get(url)
    assert truncated.status_code == 200
    with pytest.raises(ValueError):
        truncated.json()
    html = http.get(url)
    assert html.status_code == 200 and html.headers["Content-Type"] == "text/html"
    nomax = http.get(url).json()
    assert nomax["data"] and "max" not in nomax["version"]
    past = http.get(url)
    assert past.status_code == 429 and parsedate_to_datetime(past.headers["Retry-After"]).year >= 2024
    assert "Retry-After" not in http.get(url).headers
    assert http.get(url).headers["Retry-After"] == "7"
    assert http.get(url).status_code == 200


def test_timeout_and_delay(sim) -> None:
    s, http = sim
    s.set_faults({"script": ["timeout"], "timeout_s": 0.5})
    with pytest.raises(requests.exceptions.ReadTimeout):
        http.get(f"{s.url}/api/2.0/outlets", timeout=0.2)
    s.set_faults({"delay": {"taxes": 0.3}})
    import time

    t0 = time.monotonic()
    assert http.get(f"{s.url}/api/2.0/taxes").status_code == 200
    assert time.monotonic() - t0 >= 0.3


def test_injected_odd_records_are_served_in_version_order(sim) -> None:
    s, http = sim
    s.data.inject("customers", ["garbage", {"name": "no id"}, {"id": "odd-1", "first_name": "nul\x00"}])
    records = read_all(s, http, "customers", deleted="true")
    assert records[-3:] == ["garbage", {"name": "no id"}, {**s.data.records["customers"]["odd-1"]}]
    assert records[-1]["first_name"] == "nul\x00"


def test_oauth_refresh_rotates_tokens(sim) -> None:
    s, http = sim
    s.setup_oauth({"client_id": "cid", "client_secret": "sec", "refresh_token": "rt-0", "access_token": TOKEN})
    assert http.get(f"{s.url}/api/2.0/outlets").status_code == 200
    s.expire_access_token()
    assert http.get(f"{s.url}/api/2.0/outlets").status_code == 401
    form = {"grant_type": "refresh_token", "refresh_token": "rt-0", "client_id": "cid", "client_secret": "sec"}
    new = requests.post(f"{s.url}/api/1.0/token", data=form).json()
    assert new["refresh_token"] != "rt-0" and new["expires_in"] == 86400
    assert requests.post(f"{s.url}/api/1.0/token", data=form).status_code == 400  # the old one is spent
    ok = requests.get(f"{s.url}/api/2.0/outlets", headers={"Authorization": f"Bearer {new['access_token']}"})
    assert ok.status_code == 200 and http.get(f"{s.url}/api/2.0/outlets").status_code == 401
    assert s.oauth_state()["refreshes"] == 1 and s.oauth_state()["rejected_refreshes"] == 1


def test_retailer_identity_per_store_over_the_process_api() -> None:
    with SimulatorProcess(store="alpha") as a, SimulatorProcess(store="beta") as b:
        alpha, beta = a.retailer(), b.retailer()
        assert a.store == "alpha" and alpha["domain_prefix"] == "alpha" and beta["domain_prefix"] == "beta"
        assert alpha["id"] == str(uuid.uuid5(uuid.NAMESPACE_URL, "lightspeed-simulator:alpha")) != beta["id"]
        assert alpha["store_url"] == "https://alpha.retail.lightspeed.app" and alpha["name"] == "alpha (simulator)"
        assert a.retailer() == alpha  # deterministic
        anonymous = requests.get(f"{a.url}/api/2.0/retailer", timeout=10)
        assert anonymous.status_code == 401
        a.faults(resources={"retailer": 503})
        with pytest.raises(requests.HTTPError):
            a.retailer()
        a.faults()
        stats = a.stats()
        assert stats["by_resource"]["retailer"] == 4 and stats["by_status"] == {"200": 2, "401": 1, "503": 1}
        ok = a.http.get(f"{a.url}/api/2.0/retailer", headers={"Authorization": f"Bearer {a.token}"}, timeout=10)
        assert ok.json() == {"data": alpha} and int(ok.headers["X-RateLimit-Remaining"]) > 0
        brands = json.loads(VENDOR_EXAMPLES.read_text(encoding="utf-8"))["bodies"]["brands"]
        assert a.publish("brands", brands)["published"] is True
        served = a.http.get(f"{a.url}/api/2.0/brands", headers={"Authorization": f"Bearer {a.token}"}, timeout=10)
        assert served.json() == brands and a.state()["brands"] == brands["data"]


def test_records_removed_without_a_new_version_and_restored_unchanged(sim) -> None:
    s, http = sim
    version = s.data.version
    snapshot = copy.deepcopy(s.data.records)
    counts = {r: s.data.count(r) for r in ("users", "customers")}
    result = s.data.mutate({"seed": 4, "remove": {"users": 2, "customers": 3}})
    changed = result["changed"]
    assert result["version"] == version == s.data.version  # nothing was written
    assert (len(changed["users"]), len(changed["customers"])) == (2, 3)
    for resource, ids in changed.items():
        served = {r["id"] for r in read_all(s, http, resource, deleted="true")}
        assert not served & set(ids) and s.data.count(resource) == counts[resource] - len(ids)
        assert not {r["id"] for r in s.data.live(resource)} & set(ids)
    state = http.get(f"{s.url}/__sim/state").json()["resources"]
    assert {r["id"] for r in state["users"] if r.get("_removed") is True} == set(changed["users"])
    assert len(state["users"]) == len(snapshot["users"])
    # Other mutations never pick a removed record, and a write to one does not bring it back.
    updated = s.data.mutate({"seed": 5, "update": {"users": 6}, "void_sales": 3})["changed"]["users"]
    assert len(updated) == 2 and not set(updated) & set(changed["users"])  # only the 2 live users
    s.data.inject("customers", [{**snapshot["customers"][changed["customers"][0]], "note": "again"}])
    assert changed["customers"][0] not in {r["id"] for r in read_all(s, http, "customers", deleted="true")}
    restored = s.data.mutate({"restore": {"users": changed["users"], "customers": changed["customers"][1:]}})
    assert restored["changed"] == {"users": changed["users"], "customers": changed["customers"][1:]}
    served = {r["id"]: r for r in read_all(s, http, "users")}
    assert all(served[i] == snapshot["users"][i] for i in changed["users"])  # same record, same version
    assert s.data.count("customers") == counts["customers"] - 1
    with pytest.raises(ValueError, match="to restore"):
        s.data.mutate({"restore": {"users": ["no-such-id"]}})


def test_a_removal_where_2026_07_has_a_delete_feed_is_a_deletion_it_reports(sim) -> None:
    """brands (and the other lists that gain `deleted`) and inventory: a 2.0 listing no longer
    holds the removed record; a 2026-07 one reports it deleted, at a new version; a restore
    revives it at a newer one."""
    s, http = sim
    version = s.data.version
    changed = s.data.mutate({"seed": 4, "remove": {"brands": 2, "inventory": 3}})["changed"]
    assert s.data.version > version
    gone = set(changed["brands"])
    assert not gone & {r["id"] for r in read_all(s, http, "brands")}
    dated = http.get(f"{s.url}/api/2026-07/brands", params={"after": version, "deleted": "true"}).json()["data"]
    assert {r["id"] for r in dated} == gone and all(r["deleted_at"] for r in dated)
    assert all(r["version"] > version for r in dated)
    inventory = http.post(f"{s.url}/api/2026-07/inventory", json={"after": version, "include_deleted": True})
    assert {r["id"] for r in inventory.json()} == set(changed["inventory"])
    assert not set(changed["inventory"]) & {r["id"] for r in read_all(s, http, "inventory")}
    before = s.data.version
    s.data.mutate({"restore": {"brands": sorted(gone)}})
    revived = {r["id"]: r for r in read_all(s, http, "brands")}
    assert gone <= set(revived) and all(revived[i]["version"] > before and not revived[i]["deleted_at"] for i in gone)


def test_categories_removed_and_restored(sim) -> None:
    s, http = sim
    url = f"{s.url}/api/2.0/product_categories"
    gone = s.data.mutate({"seed": 1, "remove": {"product_categories": 3}})["changed"]["product_categories"]
    listed = http.get(url).json()["data"]["categories"]
    assert len(listed) == 9 == s.data.count("product_categories") and not {c["id"] for c in listed} & set(gone)
    renamed = s.data.mutate({"seed": 2, "categories": {"rename": 20, "delete": 20}})["changed"]["product_categories"]
    assert renamed and not set(renamed) & set(gone)  # neither renames nor deletes pick a removed category
    state = http.get(f"{s.url}/__sim/state").json()["resources"]["product_categories"]
    assert sorted(c["id"] for c in state if c.get("_removed")) == sorted(gone)
    before = copy.deepcopy(s.data.records["product_categories"][gone[0]])
    live = s.data.count("product_categories")
    s.data.mutate({"restore": {"product_categories": [gone[0]]}})
    listed = {c["id"]: c for c in http.get(url).json()["data"]["categories"]}
    assert listed[gone[0]] == {k: v for k, v in before.items() if k != "_removed"}
    assert s.data.count("product_categories") == live + 1 == len(listed)


def test_empty_fault_answers_in_each_envelope(sim) -> None:
    s, http = sim
    s.set_faults({"script": ["empty"], "resources": {"product_categories": "empty"}})
    sales = http.get(f"{s.url}/api/2.0/sales")
    assert sales.status_code == 200 and sales.json() == {"data": [], "version": None}
    assert http.get(f"{s.url}/api/2.0/sales").json()["data"]  # the script is spent
    categories = http.get(f"{s.url}/api/2.0/product_categories").json()
    assert categories == {"data": {"categories": []}, "page_info": {"has_next": False, "last_seen": None}}
    s.set_faults({"rates": {"empty": 1.0}})
    assert http.get(f"{s.url}/api/2.0/outlets").json() == {"data": [], "version": None}
    assert s.requests[-1]["status"] == 200


def _get(http: requests.Session, url: str, **params: Any) -> requests.Response:
    resp = http.get(url, params=params)
    assert resp.status_code == 200
    return resp


def test_vendor_examples_fixture_holds_every_list_endpoint() -> None:
    fixture = json.loads(VENDOR_EXAMPLES.read_text(encoding="utf-8"))
    assert "dansleboby/lightspeed-xseries-sdk" in fixture["source"]
    assert set(fixture["bodies"]) == {
        "outlets", "users", "taxes", "payment_types", "brands", "suppliers", "product_types", "products",
        "customers", "inventory", "sales",
    }  # fmt: skip
    assert all(isinstance(b["data"], list) and b["data"] for b in fixture["bodies"].values())


def test_published_bodies_are_served_exactly_then_filtered_by_version(sim) -> None:
    s, http = sim
    bodies = json.loads(VENDOR_EXAMPLES.read_text(encoding="utf-8"))["bodies"]
    generated = read_all(s, http, "payment_types")
    for resource in ("payment_types", "brands", "sales"):
        resp = http.post(f"{s.url}/__sim/publish", json={"resource": resource, "body": bodies[resource]})
        assert resp.json() == {"resource": resource, "published": True, "records": len(bodies[resource]["data"])}
    url = f"{s.url}/api/2.0/payment_types"
    first = _get(http, url)
    assert first.content == json.dumps(bodies["payment_types"], separators=(",", ":")).encode()
    assert first.json() == bodies["payment_types"] and _get(http, url, after=0, page_size=1).content == first.content
    # Versions in the example are out of order: the filter keeps the body's order.
    later = _get(http, url, after=297938).json()
    assert [r["version"] for r in later["data"]] == [1120194938, 342955]
    assert later["version"] == {"min": 342955, "max": 1120194938}
    assert _get(http, url, after=1120194938).json() == {"data": [], "version": None}
    assert _get(http, f"{s.url}/api/2.0/brands").json() == bodies["brands"]  # no version anywhere
    assert _get(http, f"{s.url}/api/2.0/brands", after=1).json() == {"data": [], "version": None}
    assert s.data.count("payment_types") == 3 and s.data.count("payment_types", after=342955) == 1
    state = http.get(f"{s.url}/__sim/state").json()
    assert state["resources"]["sales"] == bodies["sales"]["data"]
    assert state["published"] == ["brands", "payment_types", "sales"]
    s.set_faults({"script": ["empty"]})
    assert _get(http, url).json() == {"data": [], "version": None}  # faults still apply
    http.post(f"{s.url}/__sim/publish", json={"resource": "payment_types", "body": None})
    assert read_all(s, http, "payment_types") == generated
    assert http.post(f"{s.url}/__sim/publish", json={"resource": "nope", "body": {}}).status_code == 400


def test_published_categories_and_bodies_without_an_envelope(sim) -> None:
    s, http = sim
    body = {
        "data": {"categories": [{"id": "c-1", "name": "Only"}]},
        "page_info": {"has_next": True, "last_seen": "c-1"},
    }
    s.data.publish("product_categories", body)
    url = f"{s.url}/api/2.0/product_categories"
    assert _get(http, url).json() == body and s.data.count("product_categories") == 1
    assert _get(http, url, after="c-1").json() == {
        "data": {"categories": []},
        "page_info": {"has_next": False, "last_seen": None},
    }
    bare = [{"id": "x", "version": 7}, "odd", {"id": "y", "version": 9}]
    s.data.publish("taxes", bare)
    assert _get(http, f"{s.url}/api/2.0/taxes").json() == bare
    assert _get(http, f"{s.url}/api/2.0/taxes", after=7).json() == {"data": [bare[2]], "version": {"min": 9, "max": 9}}
    s.data.publish("product_categories", None)
    assert len(_get(http, url).json()["data"]["categories"]) == 12


# ---- API 2026-07 (simulator/dated.py) ------------------------------------------------------------


def test_2026_07_serves_the_same_sales_reshaped(sim) -> None:
    """/api/2026-07 lists the same sales, in the dated shape: version in _metadata, source,
    totals and state nested; line items and payments reshaped; the empty page's bounds null."""
    s, http = sim
    flat = http.get(f"{s.url}/api/2.0/sales", params={"after": 0, "page_size": 5}).json()
    dated = http.get(f"{s.url}/api/2026-07/sales", params={"after": 0, "page_size": 5}).json()
    assert flat["version"] == dated["version"] and len(dated["data"]) == 5
    for old, new in zip(flat["data"], dated["data"], strict=True):
        assert "version" not in new and new["_metadata"]["version"] == old["version"]
        assert "status" not in new and new["state"] in ("parked", "pending", "voided", "closed")
        assert new["source"]["outlet_id"] == old["outlet_id"] and new["source"]["author"]["id"] == old["user_id"]
        assert (new["totals"]["price"], new["totals"]["tax"], new["date"]) == (
            old["total_price"], old["total_tax"], old["sale_date"]
        )  # fmt: skip
        item, was = new["line_items"][0], old["line_items"][0]
        assert (item["product"]["id"], item["pricing"]["total"], item["tax"]["amount"]) == (
            was["product_id"], was["price_total"], was["tax"]
        )  # fmt: skip
        pay, paid = new["payments"][0], old["payments"][0]
        assert (pay["type"]["config_id"], pay["date"], pay["source"]["register_id"]) == (
            paid["retailer_payment_type_id"], paid["payment_date"], paid["register_id"]
        )  # fmt: skip
    top = max(r["_metadata"]["version"] for r in dated["data"])
    assert http.get(f"{s.url}/api/2026-07/sales", params={"after": 10**12}).json() == {
        "data": [],
        "version": {"min": None, "max": None},
    }
    assert [e["api_version"] for e in s.requests[-3:]] == ["2.0", "2026-07", "2026-07"] and top


def test_2026_07_lists_inventory_by_post_highest_versions_first_unless_asked(sim) -> None:
    s, http = sim
    assert http.get(f"{s.url}/api/2026-07/inventory").status_code == 405
    assert http.post(f"{s.url}/api/2.0/inventory", json={}).status_code == 405
    every = sorted(r["version"] for r in s.data.records["inventory"].values() if not r.get("deleted_at"))
    default = http.post(f"{s.url}/api/2026-07/inventory", json={"after": 0, "size": 10}).json()
    assert isinstance(default, list) and [r["version"] for r in default] == every[::-1][:10]  # newest first
    ascending = http.post(
        f"{s.url}/api/2026-07/inventory", json={"after": every[4], "size": 10, "sort_direction": "asc"}
    ).json()
    assert [r["version"] for r in ascending] == every[5:15]
    record = ascending[0]
    assert "inventory_level" not in record and "current_inventory_level" in record
    assert {"reorder_target", "reorder_method", "deleted_at", "version"} <= set(record)
    too_big = http.post(f"{s.url}/api/2026-07/inventory", json={"size": 5001})
    assert too_big.status_code == 400 and "5000" in too_big.text
    assert s.requests[-1]["body"] == {"size": 5001} and s.requests[-1]["method"] == "POST"


def test_2026_07_reports_deleted_brands_that_2_0_only_stops_listing(sim) -> None:
    s, http = sim
    (brand,) = s.data.mutate({"seed": 1, "delete": {"brands": 1}})["changed"]["brands"]

    def ids(version: str, **params: Any) -> set[str]:
        body = http.get(f"{s.url}/api/{version}/brands", params={"after": 0, "page_size": 100, **params}).json()
        return {r["id"] for r in body["data"]}

    assert brand not in ids("2.0") and brand not in ids("2.0", deleted="true")  # 2.0: only gone from the listing
    assert brand not in ids("2026-07") and brand in ids("2026-07", deleted="true")  # 2026-07: reported deleted


def test_2026_07_retailer_and_the_fallback_mode() -> None:
    s = Simulator(scale="test", seed=3, token=TOKEN, fallback=True)
    s.start()
    try:
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {TOKEN}"
        retailer = http.get(f"{s.url}/api/2026-07/retailer").json()["data"]
        assert isinstance(retailer["timezone"], str) and isinstance(retailer["version"], str)
        # Past 2.0's end of life the vendor answers a 2.0 request with a dated version.
        sale = http.get(f"{s.url}/api/2.0/sales", params={"after": 0, "page_size": 1}).json()["data"][0]
        assert "_metadata" in sale and "version" not in sale and s.requests[-1]["api_version"] == "2026-07"
    finally:
        s.stop()


def test_the_state_as_a_2026_07_client_reads_it() -> None:
    with SimulatorProcess(token=TOKEN, seed=3) as proc:
        flat, dated = proc.state(), proc.state("2026-07")
        assert [r["id"] for r in flat["sales"]] == [r["id"] for r in dated["sales"]]
        assert all("_metadata" in r for r in dated["sales"]) and flat["brands"] == dated["brands"]
