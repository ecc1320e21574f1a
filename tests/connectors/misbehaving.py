"""Connectors that misbehave on purpose: `python misbehaving.py hang|crash|idle|garbage|leak`."""

import json
import os
import subprocess
import sys
import time

import httpx

behaviour = sys.argv[1]
if behaviour == "hang":
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])  # a grandchild that must die too
    time.sleep(300)
elif behaviour == "crash":
    print("connecting...")
    print("Traceback (most recent call last):\n  KeyError: 'Id'", file=sys.stderr)
    sys.exit(3)
elif behaviour == "garbage":
    sys.stdout.buffer.write(os.urandom(200_000))
    sys.exit(0)
elif behaviour == "leak":
    token = httpx.post(f"{os.environ['SYNCERT_CRM_URL']}/services/oauth2/token",
                       data={"grant_type": "client_credentials"},
                       auth=(os.environ["SYNCERT_CRM_CLIENT_ID"], os.environ["SYNCERT_CRM_CLIENT_SECRET"])).json()
    secrets = {k: v for k, v in os.environ.items() if k.startswith("SYNCERT_") and any(
        word in k for word in ("SECRET", "TOKEN", "PASSWORD"))}
    secrets["ACCESS_TOKEN"] = token["access_token"]
    with open(os.environ["LEAK_FILE"], "a") as handle:
        handle.write(json.dumps(secrets) + "\n")
    print(f"debug: {secrets}")
    print(f"Authorization: Bearer {token['access_token']}", file=sys.stderr)
    sys.exit(1)
# "idle": exit 0 having done nothing
