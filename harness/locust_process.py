"""Locust for a surge, its settings read from standard input once it is non-dumpable (harness/surge.py).

`python -m syncert.harness.locust_process` reads one JSON line, {"arguments": [...], "environment": {...}}:
Locust's command-line arguments and the SYNCERT_SURGE_* settings, the simulators' admin token among them.
They never appear in this process's command line or initial environment, which other processes of the
same user can read; after make_undumpable() its memory is out of their reach too.
"""

from __future__ import annotations

import json
import os
import sys

from syncert.harness.containment import make_undumpable


def main() -> None:
    make_undumpable()
    settings = json.loads(sys.stdin.readline())
    os.environ.update(settings["environment"])
    sys.argv = ["locust", *settings["arguments"]]
    from locust.main import main as locust_main  # monkey-patches with gevent: after the settings are read

    locust_main()


if __name__ == "__main__":
    main()
