"""Control-plane capabilities for change detection: edits triggered in the middle of a connector's read
(`/_sim/triggers`), a stopped clock (`/_sim/clock` frozen), SOQL queries journaled with their kind; and
change events delivered a bounded number at a time, however many changes there are."""

from __future__ import annotations

import asyncio
import time

from syncert.simulators.domain.kinds import ChangeEvent
from syncert.simulators.webhooks import WebhookDispatcher
from tests.conftest import Sims


def _account_trigger(account: str, count: int = 1) -> dict:
    return {"after": {"kind": "account", "operation": "query", "count": count},
            "edit": {"kind": "account", "id": account, "changes": {"phone": "+1 555 0199"}}}


def test_a_trigger_edits_once_the_nth_matching_request_is_answered(sims: Sims) -> None:
    [first, *_] = sims.seed("crm", {"account": [{"name": f"Paged {n}", "phone": "+1 555 0100"}
                                                for n in range(5)]})["account"]
    with sims.admin("crm") as admin:
        created = admin.post("/_sim/triggers", json=_account_trigger(first, count=2))
        assert created.status_code == 201, created.text
    with sims.crm() as crm:
        crm.get("/sobjects/Account/" + first)  # a read, not a query: not counted
        assert crm.get("/query", params={"q": "SELECT Id FROM Product2"}).status_code == 200  # another kind
        pages = [crm.get("/query", params={"q": "SELECT Id, Phone FROM Account"},
                         headers={"Sforce-Query-Options": "batchSize=200"}).json() for _ in range(2)]
        later = crm.get("/query", params={"q": f"SELECT Phone FROM Account WHERE Id = '{first}'"}).json()
    # the second query's answer was built before the edit: it still shows the old phone
    assert [r["Phone"] for r in pages[1]["records"] if r["Id"] == first] == ["+1 555 0100"]
    assert later["records"][0]["Phone"] == "+1 555 0199"
    with sims.admin("crm") as admin:
        [trigger] = admin.get("/_sim/triggers").json()["triggers"]
        entries = admin.get("/_sim/journal", params={"tag": "triggered"}).json()["entries"]
        third_query = admin.get("/_sim/journal").json()["entries"][-1]
    assert (trigger["seen"], trigger["fired"], trigger["error"]) == (2, True, None)
    assert len(entries) == 1 and (entries[0]["kind"], entries[0]["operation"]) == ("account", "query")
    assert "triggered" not in third_query["tags"]  # fires once


def test_a_trigger_whose_record_went_away_says_so(sims: Sims) -> None:
    [account] = sims.seed("crm", {"account": [{"name": "Going"}]})["account"]
    with sims.admin("crm") as admin:
        assert admin.post("/_sim/triggers", json={
            "after": {"operation": "query"},
            "edit": {"kind": "account", "id": account, "changes": {"name": "Gone"}}}).status_code == 201
        assert admin.delete(f"/_sim/records/account/{account}").status_code == 200
    with sims.crm() as crm:
        assert crm.get("/query", params={"q": "SELECT Id FROM Account"}).status_code == 200
    with sims.admin("crm") as admin:
        [trigger] = admin.get("/_sim/triggers").json()["triggers"]
        assert trigger["fired"] and trigger["error"].startswith("NOT_FOUND")
        assert admin.post("/_sim/reset").status_code == 200
        assert admin.get("/_sim/triggers").json()["triggers"] == []


def test_bad_triggers_answer_the_control_plane_error(sims: Sims) -> None:
    [account] = sims.seed("crm", {"account": [{"name": "Checked"}]})["account"]
    good = _account_trigger(account)
    with sims.admin("crm") as admin:
        for body, status, code in [
                ({}, 400, "INVALID_REQUEST"),
                ({**good, "extra": 1}, 400, "INVALID_REQUEST"),
                ({**good, "after": {"count": 0}}, 400, "INVALID_REQUEST"),
                ({**good, "after": {"count": True}}, 400, "INVALID_REQUEST"),
                ({**good, "after": {"kind": "planet"}}, 400, "UNKNOWN_KIND"),
                ({**good, "edit": {"kind": "account", "id": account}}, 400, "INVALID_REQUEST"),
                ({**good, "edit": {"kind": "account", "id": account, "changes": {}}}, 400, "INVALID_REQUEST"),
                ({**good, "edit": {"kind": "account", "id": "001nothere", "changes": {"name": "X"}}}, 404,
                 "NOT_FOUND"),
                ({**good, "edit": {"kind": "account", "id": account, "changes": {"nope": 1}}}, 400, "INVALID_FIELD"),
                ({**good, "edit": {"kind": "account", "id": account, "changes": {"name": None}}}, 400,
                 "REQUIRED_FIELD_MISSING")]:
            response = admin.post("/_sim/triggers", json=body)
            assert (response.status_code, response.json()["error"]["code"]) == (status, code), body
        assert admin.get("/_sim/triggers").json()["triggers"] == []
    assert sims.state("crm")["account"][0]["name"] == "Checked"  # the checks left no trace


def test_a_frozen_clock_gives_every_write_the_same_stamp(sims: Sims) -> None:
    with sims.admin("crm") as admin:
        frozen = admin.put("/_sim/clock", json={"frozen": True}).json()
        assert frozen["frozen"] is True
        sims.seed("crm", {"account": [{"name": "Same 1"}]})
        with sims.crm() as crm:
            crm.post("/sobjects/Account/", json={"Name": "Same 2"})
        stamps = {a["modified_at"] for a in sims.state("crm")["account"]}
        assert stamps == {frozen["now"]}
        moved = admin.put("/_sim/clock", json={"offset_s": 60}).json()  # still frozen, a minute later
        assert moved["frozen"] is True and moved["now"] > frozen["now"]
        running = admin.put("/_sim/clock", json={"frozen": False, "offset_s": 0}).json()
        assert running["frozen"] is False
        for body in ({}, {"frozen": "yes"}, {"frozen": True, "speed": 2}):
            assert admin.put("/_sim/clock", json=body).status_code == 400, body
        admin.put("/_sim/clock", json={"frozen": True})
        assert admin.post("/_sim/reset").status_code == 200
        clock = admin.get("/_sim/clock").json()
        assert (clock["frozen"], clock["offset_s"]) == (False, 0)


def test_many_changes_are_delivered_a_bounded_number_at_a_time() -> None:
    open_now, most_open, received = 0, 0, 0

    async def slow_receiver(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now, most_open, received
        open_now += 1
        most_open = max(most_open, open_now)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        await reader.readexactly(length)
        await asyncio.sleep(0.05)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()
        open_now -= 1
        received += 1

    async def deliver_many() -> None:
        server = await asyncio.start_server(slow_receiver, "127.0.0.1", 0, backlog=1000)
        dispatcher = WebhookDispatcher(lambda kind: kind, "test")
        dispatcher.subscribe(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook")
        for n in range(100):
            dispatcher.on_event(ChangeEvent("crm", "account", f"a{n}", "created", "2026-01-01T00:00:00.000Z"))
        deadline = time.monotonic() + 20
        while received < 100 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await dispatcher.close()
        server.close()

    asyncio.run(deliver_many())
    assert received == 100
    assert 1 < most_open <= 16  # concurrent, but never one connection per change
