"""The cost of one modified-since SOQL poll through HTTP, answered by a scan and by the ordered index.

    python benchmarks/poll_cost.py [--accounts 50000] [--changed 10] [--repeat 5]

Seeds `--accounts` CRM accounts, moves the simulated clock on, changes `--changed` of them and polls
`SELECT Id, Name, SystemModstamp FROM Account WHERE SystemModstamp > <marker>` over HTTP. "scan" turns the
row source's range lookups off (the evaluator then scans the whole kind, as before ordered indexes);
"index" answers from the ordered index. Prints the median time of `--repeat` polls for each.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import datetime, timedelta
from unittest import mock

import httpx

from syncert.simulators.host import SimulatorHost, run_in_background
from syncert.simulators.query.records import RecordSource

BATCH = 10_000


def _poll(client: httpx.Client, soql: str, repeat: int) -> tuple[float, list[str]]:
    timings, ids = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get("/query", params={"q": soql})
        timings.append(time.perf_counter() - started)
        response.raise_for_status()
        ids = sorted(record["Id"] for record in response.json()["records"])
    return statistics.median(timings), ids


def _api_client(host: SimulatorHost) -> httpx.Client:
    base = host.sides["crm"].listener.url
    env = host.environment()
    token = httpx.post(f"{base}/services/oauth2/token", data={"grant_type": "client_credentials"},
                       auth=(env["SYNCERT_CRM_CLIENT_ID"], env["SYNCERT_CRM_CLIENT_SECRET"])).json()["access_token"]
    return httpx.Client(base_url=f"{base}/services/data/v59.0", headers={"Authorization": f"Bearer {token}"},
                        timeout=600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=50_000)
    parser.add_argument("--changed", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with run_in_background() as host, httpx.Client(base_url=host.sides["crm"].listener.url, timeout=600,
                                                   headers={"Authorization": f"Bearer {host.admin_token}"}) as admin:
        ids: list[str] = []
        for first in range(0, args.accounts, BATCH):
            rows = [{"name": f"Account {n}"} for n in range(first, min(first + BATCH, args.accounts))]
            response = admin.post("/_sim/seed", json={"records": {"account": rows}})
            response.raise_for_status()
            ids.extend(response.json()["ids"]["account"])
        marker = datetime.fromisoformat(admin.put("/_sim/clock", json={"offset_s": 60}).json()["now"])
        admin.put("/_sim/clock", json={"offset_s": 120}).raise_for_status()
        changed = ids[:: max(1, len(ids) // args.changed)][:args.changed]
        for record_id in changed:
            admin.patch(f"/_sim/records/account/{record_id}", json={"name": "Changed"}).raise_for_status()
        since = (marker + timedelta(milliseconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        soql = f"SELECT Id, Name, SystemModstamp FROM Account WHERE SystemModstamp > {since}"
        with _api_client(host) as api:
            with mock.patch.object(RecordSource, "range_lookup", lambda *_: None):
                scan, scanned = _poll(api, soql, args.repeat)
            index, indexed = _poll(api, soql, args.repeat)
        assert scanned == indexed == sorted(changed), (len(scanned), len(indexed))
        print(f"modified-since SOQL poll, {args.accounts:,} accounts, {len(changed)} changed "
              f"(median of {args.repeat}, through HTTP):")
        print(f"  scan (before ordered indexes): {scan * 1000:8.1f} ms")
        print(f"  ordered index:                 {index * 1000:8.1f} ms   ({scan / index:,.0f}x faster)")


if __name__ == "__main__":
    main()
