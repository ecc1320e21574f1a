"""Webhook delivery faults: duplicated, reordered, dropped and forged change events, seeded and replayable."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from syncert.simulators.webhooks import sign
from tests.conftest import Sims

SECRET = "receiver-secret"


class Receiver:
    """An HTTP endpoint that checks each delivery's signature: 204 when it verifies, 401 when not."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                signature = sign(SECRET, self.headers["X-Syncert-Timestamp"], body)
                verified = signature == self.headers["X-Syncert-Signature"]
                receiver.received.append({"event": json.loads(body), "verified": verified,
                                          "event_id": self.headers["X-Syncert-Event-Id"]})
                self.send_response(204 if verified else 401)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, condition: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 10) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition(self.received) and time.monotonic() < deadline:
            time.sleep(0.05)


@pytest.fixture
def receiver(sims: Sims) -> Iterator[Receiver]:
    receiver = Receiver()
    with sims.admin("crm") as admin:
        assert admin.post("/_sim/webhooks", json={"url": receiver.url, "secret": SECRET,
                                                  "kinds": ["account"]}).status_code == 201
    yield receiver
    receiver.server.shutdown()


def _set_faults(sims: Sims, rules: list[dict[str, Any]], seed: int = 7) -> dict[str, Any]:
    with sims.admin("crm") as admin:
        response = admin.put("/_sim/webhooks/faults", json={"seed": seed, "rules": rules})
    assert response.status_code == 200, response.text
    return response.json()


def _get(sims: Sims, path: str) -> dict[str, Any]:
    with sims.admin("crm") as admin:
        return admin.get(path).json()


def _edit(sims: Sims, account: str, phone: str) -> None:
    with sims.admin("crm") as admin:
        assert admin.patch(f"/_sim/records/account/{account}", json={"phone": phone}).status_code == 200


def test_events_carry_the_values_of_the_changed_fields(sims: Sims, receiver: Receiver) -> None:
    [account] = sims.seed("crm", {"account": [{"name": "Valued"}]})["account"]
    _edit(sims, account, "555-0100")
    receiver.wait_for(lambda got: len(got) >= 2)
    updated = receiver.received[-1]["event"]
    assert (updated["operation"], updated["changed_fields"], updated["values"]) == ("updated", ["phone"],
                                                                                    {"phone": "555-0100"})


def test_a_duplicated_event_is_delivered_twice_with_one_event_id(sims: Sims, receiver: Receiver) -> None:
    _set_faults(sims, [{"fault": "duplicate", "kind": "account"}])
    sims.seed("crm", {"account": [{"name": "Twice"}]})
    receiver.wait_for(lambda got: len(got) >= 2)
    time.sleep(0.5)
    assert len(receiver.received) == 2 and all(r["verified"] for r in receiver.received)
    assert receiver.received[0]["event_id"] == receiver.received[1]["event_id"]
    deliveries = _get(sims, "/_sim/webhooks/deliveries")["deliveries"]
    assert [d["fault"] for d in deliveries] == [None, "duplicate"] and {d["status"] for d in deliveries} == {204}
    assert _get(sims, "/_sim/webhooks/faults")["rules"][0] == {
        "fault": "duplicate", "kind": "account", "on_event": 1, "events": 1, "probability": 1.0, "seen": 1, "fired": 1}


def test_a_reordered_event_arrives_after_the_next_one(sims: Sims, receiver: Receiver) -> None:
    [account] = sims.seed("crm", {"account": [{"name": "Reordered"}]})["account"]
    receiver.wait_for(lambda got: len(got) >= 1)
    _set_faults(sims, [{"fault": "reorder", "kind": "account", "on_event": 1}])
    _edit(sims, account, "555-0001")
    _edit(sims, account, "555-0002")
    receiver.wait_for(lambda got: len(got) >= 3)
    phones = [r["event"]["values"].get("phone") for r in receiver.received[1:]]
    assert phones == ["555-0002", "555-0001"]
    assert [d["fault"] for d in _get(sims, "/_sim/webhooks/deliveries")["deliveries"]][1:] == [None, "reorder"]


def test_a_held_event_is_released_after_a_while_when_no_other_comes(sims: Sims, receiver: Receiver) -> None:
    _set_faults(sims, [{"fault": "reorder"}])
    sims.seed("crm", {"account": [{"name": "Alone"}]})
    time.sleep(0.5)
    assert not receiver.received
    receiver.wait_for(lambda got: len(got) >= 1, timeout_s=5)
    assert [r["event"]["operation"] for r in receiver.received] == ["created"]


def test_a_dropped_event_is_never_delivered(sims: Sims, receiver: Receiver) -> None:
    _set_faults(sims, [{"fault": "drop", "kind": "account", "on_event": 2}])
    ids = sims.seed("crm", {"account": [{"name": "Kept"}, {"name": "Lost"}, {"name": "Kept too"}]})["account"]
    receiver.wait_for(lambda got: len(got) >= 2)
    time.sleep(0.5)
    assert sorted(r["event"]["record_id"] for r in receiver.received) == sorted([ids[0], ids[2]])
    faults = _get(sims, "/_sim/webhooks/faults")
    assert [d["record_id"] for d in faults["dropped"]] == [ids[1]]
    [subscription] = _get(sims, "/_sim/webhooks")["subscriptions"]
    assert (subscription["delivered"], subscription["dropped"]) == (2, 1)


def test_a_forged_delivery_follows_the_real_one_and_is_not_retried(sims: Sims, receiver: Receiver) -> None:
    [account] = sims.seed("crm", {"account": [{"name": "Target"}]})["account"]
    receiver.wait_for(lambda got: len(got) >= 1)
    _set_faults(sims, [{"fault": "forge", "kind": "account"}])
    _edit(sims, account, "555-0123")
    receiver.wait_for(lambda got: len(got) >= 3)
    time.sleep(1.5)  # a retry would come after 0.5 s
    real, forged = receiver.received[1:]
    assert real["verified"] and real["event"]["values"] == {"phone": "555-0123"}
    assert not forged["verified"] and forged["event"]["record_id"] == account
    assert forged["event_id"] != real["event_id"] and forged["event"]["values"]["phone"].startswith("forged-")
    last = _get(sims, "/_sim/webhooks/deliveries")["deliveries"][-1]
    assert (last["fault"], last["forged"], last["status"], last["attempt"]) == ("forge", True, 401, 1)
    [subscription] = _get(sims, "/_sim/webhooks")["subscriptions"]
    assert (subscription["refused_forgeries"], subscription["failed_attempts"]) == (1, 0)


def test_the_same_seed_gives_the_same_faults(sims: Sims) -> None:
    def dropped_positions(seed: int) -> list[int]:
        with sims.admin("crm") as admin:
            admin.post("/_sim/reset")
            admin.post("/_sim/webhooks", json={"url": "http://127.0.0.1:9/never", "kinds": ["account"]})
        _set_faults(sims, [{"fault": "drop", "kind": "account", "events": None, "probability": 0.5}], seed=seed)
        ids = sims.seed("crm", {"account": [{"name": f"Account {n}"} for n in range(30)]})["account"]
        dropped = {d["record_id"] for d in _get(sims, "/_sim/webhooks/faults")["dropped"]}
        return [position for position, record_id in enumerate(ids) if record_id in dropped]

    first = dropped_positions(11)
    assert 0 < len(first) < 30
    assert dropped_positions(11) == first
    assert dropped_positions(12) != first


def test_reset_forgets_the_rules_and_the_log(sims: Sims, receiver: Receiver) -> None:
    _set_faults(sims, [{"fault": "duplicate"}])
    sims.seed("crm", {"account": [{"name": "Logged"}]})
    receiver.wait_for(lambda got: len(got) >= 2)
    with sims.admin("crm") as admin:
        admin.post("/_sim/reset")
    assert _get(sims, "/_sim/webhooks/faults") == {"seed": 0, "rules": [], "dropped": []}
    assert _get(sims, "/_sim/webhooks/deliveries") == {"deliveries": []}


@pytest.mark.parametrize(("body", "names"), [
    ({"rules": [{"fault": "explode"}]}, "fault must be one of"),
    ({"rules": [{"fault": "drop", "kind": "spaceship"}]}, "unknown kind 'spaceship'"),
    ({"rules": [{"fault": "drop", "on_event": 0}]}, "on_event must be an integer >= 1"),
    ({"rules": [{"fault": "drop", "events": "all"}]}, "events must be an integer >= 1 or null"),
    ({"rules": [{"fault": "drop", "probability": 2}]}, "probability must be a number from 0 to 1"),
    ({"rules": [{"fault": "drop", "when": "now"}]}, "unknown keys ['when']"),
    ({"rules": ["drop"]}, "rule 1 is not a JSON object"),
    ({"seed": "x", "rules": []}, "seed must be an integer"),
    ({"seed": 1}, "webhook faults need"),
])
def test_bad_fault_rules_are_refused_in_the_control_plane_shape(sims: Sims, body: dict, names: str) -> None:
    with sims.admin("crm") as admin:
        response = admin.put("/_sim/webhooks/faults", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "INVALID_REQUEST" and names in error["message"]
