"""Time SecretScrubber on a 5 MB report-like text against 3,000 secrets.

The text is log and JSON lines of ordinary words with 200 leaks in various forms (raw, URL-encoded, hex,
base64 inside HTTP Basic, split into 8-character lines). Prints the time to build the scrubber, to scrub
and to find, and checks that every leak was caught.

Run: python benchmarks/scrub.py [--megabytes 5] [--secrets 3000]
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import string
import time
from urllib.parse import quote

from syncert.harness.secrets import SecretScrubber

ALPHABET = string.ascii_letters + string.digits + "_-!."
WORDS = ["account", "order", "sync", "cycle", "record", "NetSuite", "Salesforce", "retry", "status=200",
         "GET", "/services/data/v59.0/sobjects/Account", "id=001xx000003DGb2AAG", "latency_ms=42", "ok"]


def leak(secret: str, rng: random.Random) -> str:
    forms = [
        lambda: f"password={secret}",
        lambda: "url=https://x/?token=" + quote(secret, safe=""),
        lambda: "sig " + secret.encode().hex(),
        lambda: "Authorization: Basic " + base64.b64encode(f"client-42:{secret}".encode()).decode(),
        lambda: "\n".join(secret[i : i + 8] for i in range(0, len(secret), 8)),
    ]
    return rng.choice(forms)()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=5)
    parser.add_argument("--secrets", type=int, default=3000)
    args = parser.parse_args()
    rng = random.Random(7)
    secrets = ["".join(rng.choices(ALPHABET, k=rng.randint(32, 64))) for _ in range(args.secrets)]
    lines, size = [], 0
    while size < args.megabytes * 1_000_000:
        words = " ".join(rng.choices(WORDS, k=12))
        line = json.dumps({"level": "info", "msg": words}) if rng.random() < 0.5 else f"2024-05-01 INFO {words}"
        lines.append(line)
        size += len(line) + 1
    leaks = 200
    for i in range(leaks):
        lines.insert(rng.randrange(len(lines)), leak(secrets[i * len(secrets) // leaks], rng))
    text = "\n".join(lines)

    started = time.perf_counter()
    scrubber = SecretScrubber(secrets)
    built = time.perf_counter()
    scrubbed = scrubber.scrub(text)
    scrubbed_at = time.perf_counter()
    found = scrubber.find(text)
    found_at = time.perf_counter()
    assert len(found) == leaks, f"{len(found)} leaks found, {leaks} planted"
    assert not any(s in scrubbed for s in secrets)
    print(f"{len(text) / 1e6:.1f} MB x {len(secrets):,} secrets: build {built - started:.2f} s, "
          f"scrub {scrubbed_at - built:.2f} s, find {found_at - scrubbed_at:.2f} s")


if __name__ == "__main__":
    main()
