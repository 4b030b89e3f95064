"""The simulator behaves like the real API where the sync depends on it."""

from __future__ import annotations

from collections.abc import Iterator
from email.utils import parsedate_to_datetime

import pytest
import requests

from simulator import SimData, Simulator

TOKEN = "t0k"


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
