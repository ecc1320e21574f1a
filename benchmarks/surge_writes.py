"""Simulator write throughput during a surge, journal on: API creates per second with and without Locust.

    python benchmarks/surge_writes.py [--profile black-friday] [--scale 10] [--duration 10] [--connections 16]

Starts `syncert sim` (its journal on, as in every scenario) and seeds what a surge acts on (CRM accounts,
products with standard prices, ERP customers and items). Then, side by side in one run:
  alone   wrk (one thread, --connections keep-alive connections) POSTs new Accounts to the simulated
          Salesforce API for --duration seconds: each one token-checked, governed, validated, stored and
          committed before its answer, and journaled;
  surge   the same, while Locust acts out the profile at --scale on the same simulators (its deal closers
          seeding deals with their lines through the control plane, its interactive users reading).
Business writes per second during the surge = the API's creates + the records Locust's users wrote in
the same window (deals and their lines, counted from the simulator's change feed). Goal (issue 17): at
least 2,000 business writes per second during a surge.
Needs wrk (Debian package; installed when missing and run as root). Results: stdout and
benchmarks/results/surge_writes.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from syncert.harness.surge import SurgeSettings, locust_run
from syncert.scenarios.volume.profiles import PROFILES
from syncert.simulators.clock import parse_datetime

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from throughput import ACCOUNT_PATH, ensure_wrk, process, run_wrk  # noqa: E402  (a sibling script)

RESULTS = HERE / "results"


def seed_base(env: dict[str, str], accounts: int, items: int) -> dict[str, list]:
    """What the surge's users act on, seeded through the control plane; the ids, as the surge's base."""
    admin = {"Authorization": f"Bearer {env['SYNCERT_ADMIN_TOKEN']}"}
    crm, erp = env["SYNCERT_CRM_URL"], env["SYNCERT_ERP_URL"]

    def seed(base: str, records: dict) -> dict[str, list[str]]:
        response = httpx.post(f"{base}/_sim/seed", json={"records": records}, headers=admin, timeout=60)
        response.raise_for_status()
        return response.json()["ids"]

    for base in (crm, erp):
        httpx.put(f"{base}/_sim/limits", json={"daily_api_requests": 100_000_000},
                  headers=admin).raise_for_status()
    state = httpx.get(f"{crm}/_sim/state", params={"kinds": "pricebook"}, headers=admin).json()
    standard = next(p["id"] for p in state["records"]["pricebook"] if p["is_standard"])
    ids = seed(crm, {"account": [{"name": f"Surge Buyer {n:05d}"} for n in range(accounts)],
                     "product": [{"_ref": f"p{n}", "sku": f"SURGE-{n:03d}", "name": f"Surge item {n}"}
                                 for n in range(items)],
                     "pricebook_entry": [{"pricebook_id": standard, "product_id": {"$ref": f"p{n}"},
                                          "unit_price": f"{10 + n}.50"} for n in range(items)]})
    erp_ids = seed(erp, {"customer": [{"name": f"Surge Buyer {n:05d}"} for n in range(accounts)],
                         "item": [{"sku": f"SURGE-{n:03d}", "name": f"Surge item {n}", "price": f"{10 + n}.50",
                                   "quantity_on_hand": "100000"} for n in range(items)]})
    return {"accounts": ids["account"], "entries": [{"id": entry} for entry in ids["pricebook_entry"]],
            "customers": erp_ids["customer"], "items": erp_ids["item"]}


DEAL_KINDS = "opportunity,opportunity_line_item"


def deal_feed(env: dict[str, str], since: int) -> tuple[list[dict], int]:
    """Deals and deal lines changed since the CRM change feed's cursor `since`, and the cursor after them."""
    admin = {"Authorization": f"Bearer {env['SYNCERT_ADMIN_TOKEN']}"}
    records: list[dict] = []
    while True:
        page = httpx.get(f"{env['SYNCERT_CRM_URL']}/_sim/state", params={"kinds": DEAL_KINDS, "since": since},
                         headers=admin, timeout=60).json()
        records += [record for kind_records in page["records"].values() for record in kind_records]
        since = page["next"]
        if not page["more"]:
            return records, since


def api_target(env: dict[str, str]) -> dict:
    base = env["SYNCERT_CRM_URL"]
    token = httpx.post(f"{base}/services/oauth2/token", data={"grant_type": "client_credentials"},
                       auth=(env["SYNCERT_CRM_CLIENT_ID"], env["SYNCERT_CRM_CLIENT_SECRET"])).json()["access_token"]
    return {"url": f"{base}{ACCOUNT_PATH}/", "headers": {"Authorization": f"Bearer {token}"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="black-friday", choices=sorted(PROFILES))
    parser.add_argument("--scale", type=float, default=10.0)
    parser.add_argument("--duration", type=int, default=10, help="seconds of wrk load in each measurement")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    ensure_wrk()
    profile = PROFILES[args.profile]
    # the surge's busiest phase must cover the measured window: the phases are stretched to fit it
    busiest = max(profile.phases, key=lambda phase: sum(phase.users.values()))
    pace = max(1.0, (args.duration + 4) / busiest.seconds)
    paced = profile.paced(pace)
    with tempfile.TemporaryDirectory() as scratch, process(
            [sys.executable, "-m", "syncert", "sim", "--json", "--data-dir", scratch], [],
            stdout=subprocess.PIPE, text=True) as sim:
        env = json.loads(sim.stdout.readline())  # type: ignore[union-attr]
        base = seed_base(env, round(profile.accounts * args.scale), profile.items)
        target = api_target(env)
        run_wrk(target, "create", 3, args.connections, [])  # warm-up, unmeasured
        alone = run_wrk(target, "create", args.duration, args.connections, [])
        urls = {"crm": env["SYNCERT_CRM_URL"], "erp": env["SYNCERT_ERP_URL"]}
        users = sum(paced.user_counts(args.scale).values())
        with locust_run(paced.id, paced.seconds, users, SurgeSettings(args.scale, 0, pace), urls,
                        env["SYNCERT_ADMIN_TOKEN"], base, Path(scratch) / "locust") as locust:
            busiest_starts = sum(phase.seconds for phase in paced.phases[:profile.phases.index(busiest)])
            time.sleep(max(0.0, locust.t0 + busiest_starts + 2 - time.time()))
            _, cursor = deal_feed(env, 0)
            started = time.time()
            during = run_wrk(target, "create", args.duration, args.connections, [])
            ended = time.time()
            made, _ = deal_feed(env, cursor)
            locust.wait(timeout_s=locust.run_s + 60)
        figures = locust.figures()
    deals = figures.get("CRM: close a deal won", {"requests": 0, "failures": 0})
    window = ended - started
    in_window = sum(1 for record in made if started <= parse_datetime(record["created_at"]).timestamp() <= ended)
    locust_writes_s = in_window / window
    result = {"profile": args.profile, "scale": args.scale, "pace": pace, "connections": args.connections,
              "duration_s": args.duration, "measured_window_s": round(window, 1),
              "api_creates_per_s_alone": round(alone), "api_creates_per_s_during_surge": round(during),
              "locust_deals": deals["requests"], "locust_failures": deals["failures"],
              "locust_business_writes_per_s": round(locust_writes_s),
              "business_writes_per_s_during_surge": round(during + locust_writes_s), "goal": 2000,
              "machine": {"cpus": len(os.sched_getaffinity(0)), "python": platform.python_version()}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "surge_writes.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"API creates/s alone {result['api_creates_per_s_alone']:,}, during the {args.profile} surge at scale "
          f"{args.scale:g} {result['api_creates_per_s_during_surge']:,}; Locust's users wrote "
          f"{result['locust_business_writes_per_s']:,} records/s in the same window ({deals['requests']} deals in "
          f"all, {deals['failures']} refused): {result['business_writes_per_s_during_surge']:,} business writes/s "
          f"during the surge (goal 2,000)")


if __name__ == "__main__":
    main()
