"""Engine transactions: savepoints, rollback without a trace, events held until the outermost commit."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from syncert.simulators.clock import Clock
from syncert.simulators.domain.erp import ErpEngine, erp_store
from syncert.simulators.domain.kinds import ChangeEvent, DomainError
from syncert.simulators.domain.store import Record
from tests.conftest import Sims


def _erp(path: Path | None = None) -> ErpEngine:
    return ErpEngine(erp_store(path), Clock(), lambda kind, n: str(n + 100))


class Boom(Exception):
    pass


def test_writes_inside_are_visible_and_a_failed_block_leaves_no_trace() -> None:
    erp = _erp()
    events: list[ChangeEvent] = []
    erp.subscribe(events.append)
    kept = erp.create("customer", {"name": "Kept", "external_id": "K"})
    events.clear()
    seq_before = erp.changes(since=0).next_since
    with pytest.raises(Boom), erp.transaction():
        created = erp.create("customer", {"name": "Gone", "external_id": "G"})
        erp.update("customer", kept["id"], {"name": "Renamed", "external_id": "K2"})
        assert erp.get("customer", created["id"])["name"] == "Gone"
        assert [r["id"] for r in erp.find("customer", "external_id", "K2")] == [kept["id"]]
        assert erp.count("customer") == 2
        assert events == []  # held until the outermost commit
        raise Boom
    assert erp.get_or_none("customer", created["id"]) is None
    assert erp.get("customer", kept["id"])["name"] == "Kept"
    assert erp.find("customer", "external_id", "G") == [] and erp.find("customer", "external_id", "K2") == []
    assert [r["id"] for r in erp.find("customer", "external_id", "K")] == [kept["id"]]
    assert erp.count("customer") == 1
    assert events == []
    assert erp.changes(since=seq_before).records == []


def test_nested_savepoints_roll_back_alone_and_events_wait_for_the_outermost_commit() -> None:
    erp = _erp()
    events: list[ChangeEvent] = []
    erp.subscribe(events.append)
    with erp.transaction():
        outer = erp.create("customer", {"name": "Outer"})
        with pytest.raises(Boom), erp.transaction():
            erp.create("customer", {"name": "Inner"})
            raise Boom
        with erp.transaction() as savepoint:
            explicit = erp.create("customer", {"name": "Explicit"})
            savepoint.rollback()
            after = erp.create("customer", {"name": "After rollback"})
        assert events == []
    assert [r["name"] for r in erp.records("customer")] == ["Outer", "After rollback"]
    assert erp.get_or_none("customer", explicit["id"]) is None
    assert [(e.record_id, e.operation) for e in events] == [(outer["id"], "created"), (after["id"], "created")]


def test_a_rule_failing_halfway_undoes_its_side_effects() -> None:
    class FailsAfterSideEffects(ErpEngine):
        def _after_write(self, kind: str, record: Record, previous: Record | None) -> None:
            super()._after_write(kind, record, previous)  # commits stock, adds to the customer's exposure
            if kind == "sales_order":
                raise DomainError("INVALID_OPERATION", "refused after the side effects")

    erp = FailsAfterSideEffects(erp_store(None), Clock(), lambda kind, n: str(n + 100))
    customer = erp.create("customer", {"name": "Acme", "credit_limit": "1000"})
    item = erp.create("item", {"sku": "W-1", "price": "10", "quantity_on_hand": "5"})
    with pytest.raises(DomainError) as refused:
        erp.create("sales_order", {"customer_id": customer["id"], "lines": [{"item_id": item["id"], "quantity": 3}]})
    assert refused.value.kind == "sales_order"
    assert erp.get("item", item["id"])["quantity_committed"] == 0
    assert erp.get("item", item["id"])["quantity_available"] == 5
    assert erp.get("customer", customer["id"])["unbilled_orders"] == 0
    assert erp.records("sales_order") == []


def test_rolled_back_writes_never_reach_the_file(tmp_path: Path) -> None:
    erp = _erp(tmp_path / "erp.sqlite3")
    erp.create("customer", {"name": "Durable"})
    with pytest.raises(Boom), erp.transaction():
        erp.create("customer", {"name": "Rolled back"})
        with pytest.raises(RuntimeError):
            erp.store.commit()  # half a transaction must never become durable
        raise Boom
    erp.store.close()
    reopened = _erp(tmp_path / "erp.sqlite3")
    assert [r["name"] for r in reopened.records("customer")] == ["Durable"]


def test_counters_advance_even_when_a_write_rolls_back() -> None:
    erp = _erp()
    with pytest.raises(Boom), erp.transaction():
        erp.create("customer", {"name": "Rolled back"})
        raise Boom
    assert erp.create("customer", {"name": "Next"})["number"] == "CUST2"


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_all_or_none_collection_rolls_back_line_item_side_effects(sims: Sims) -> None:
    standard = sims.state("crm")["pricebook"][0]["id"]
    ids = sims.seed("crm", {
        "product": [{"_ref": "p", "name": "Widget"}],
        "pricebook_entry": [{"_ref": "e", "pricebook_id": standard, "product_id": {"$ref": "p"}, "unit_price": 10}],
        "account": [{"_ref": "a", "name": "Acme"}],
        "opportunity": [{"account_id": {"$ref": "a"}, "name": "Deal", "stage": "Prospecting",
                         "close_date": "2030-01-01"}],
    })
    opportunity_id, entry_id = ids["opportunity"][0], ids["pricebook_entry"][0]
    engine = sims.host.sides["crm"].simulator.engine
    events: list[ChangeEvent] = []
    engine.subscribe(events.append)
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    line = {"attributes": {"type": "OpportunityLineItem"}, "OpportunityId": opportunity_id,
            "PricebookEntryId": entry_id, "Quantity": 3}
    try:
        with sims.admin("crm") as admin:
            assert admin.post("/_sim/webhooks", json={"url": f"http://127.0.0.1:{server.server_port}/hook",
                                                      "kinds": ["opportunity_line_item", "opportunity"]}
                              ).status_code in (200, 201)
        with sims.crm() as crm:
            answer = crm.post("/composite/sobjects", json={"allOrNone": True, "records": [
                line, {"attributes": {"type": "Account"}, "Phone": "1"}]})
            assert answer.status_code == 200
            results = answer.json()
            assert [r["success"] for r in results] == [False, False]
            assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
            assert results[1]["errors"][0] == {"statusCode": "REQUIRED_FIELD_MISSING", "fields": ["Name"],
                                               "message": "Required fields are missing: [Name]"}
            assert events == []
            opportunity = crm.get(f"/sobjects/Opportunity/{opportunity_id}").json()
            assert opportunity["Amount"] is None
            assert crm.get("/query", params={"q": "SELECT Id FROM OpportunityLineItem"}).json()["totalSize"] == 0
            # a committed write afterwards is delivered; the rolled-back one never is
            created = crm.post("/sobjects/OpportunityLineItem/", json={k: v for k, v in line.items()
                                                                       if k != "attributes"})
            assert created.status_code == 201
            assert crm.get(f"/sobjects/Opportunity/{opportunity_id}").json()["Amount"] == 30
        deadline = time.monotonic() + 10
        while len(_Receiver.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        delivered = sorted((e["kind"], e["operation"], e["record_id"]) for e in _Receiver.received)
        assert delivered == [("opportunity", "updated", opportunity_id),
                             ("opportunity_line_item", "created", created.json()["id"])]
        assert [(e.kind, e.operation) for e in events] == [("opportunity_line_item", "created"),
                                                           ("opportunity", "updated")]
    finally:
        engine.unsubscribe(events.append)
        server.shutdown()


def test_collection_without_all_or_none_keeps_the_good_records(sims: Sims) -> None:
    with sims.crm() as crm:
        results = crm.post("/composite/sobjects", json={"allOrNone": False, "records": [
            {"attributes": {"type": "Account"}, "Name": "Good"},
            {"attributes": {"type": "Account"}, "Phone": "1"}]}).json()
    assert [r["success"] for r in results] == [True, False]
    assert [a["name"] for a in sims.state("crm")["account"]] == ["Good"]


def test_crm_cascade_delete_looks_children_up(monkeypatch: pytest.MonkeyPatch) -> None:
    from syncert.simulators.domain.crm import CrmEngine, crm_store

    crm = CrmEngine(crm_store(None), Clock(), lambda kind, n: f"{kind}-{n}")
    account = crm.create("account", {"name": "Acme"})
    contact = crm.create("contact", {"account_id": account["id"], "last_name": "Doe"})
    opportunity = crm.create("opportunity", {"account_id": account["id"], "name": "Deal", "stage": "Proposal",
                                             "close_date": "2030-01-01"})
    product = crm.create("product", {"name": "Widget"})
    standard = crm.find("pricebook", "is_standard", True)[0]
    entry = crm.create("pricebook_entry", {"pricebook_id": standard["id"], "product_id": product["id"],
                                           "unit_price": "5"})
    line = crm.create("opportunity_line_item", {"opportunity_id": opportunity["id"],
                                                "pricebook_entry_id": entry["id"], "quantity": "2"})
    assert crm.get("opportunity", opportunity["id"])["amount"] == 10
    monkeypatch.setattr(crm.store, "all", lambda kind: pytest.fail(f"whole-table scan of {kind}"))
    crm.delete("account", account["id"])
    for kind, record in (("contact", contact), ("opportunity", opportunity), ("opportunity_line_item", line)):
        assert crm.get_or_none(kind, record["id"]) is None
    assert crm.count("contact") == crm.count("opportunity") == crm.count("opportunity_line_item") == 0
