"""Locust for a surge, its settings received only once it is non-dumpable, its figures sent back the same way.

`python -m syncert.harness.locust_process SOCKET` makes itself non-dumpable, then connects to the
harness's Unix socket SOCKET and reads one line of JSON, {"arguments": [...], "environment": {...}}:
Locust's command-line arguments and the SYNCERT_SURGE_* settings, the simulators' admin token among them.
The harness sends them only to this process (its pid, from the socket's peer credentials) and only when
nothing traces it; they never appear in a command line, an initial environment or a pipe that another
process of the same user could open through /proc before this one became non-dumpable.

When Locust quits, the lead process (alone, or the master) sends its request figures back on the same
connection: {name: {"requests", "failures", "p50_ms", "p95_ms", "p99_ms"}}. They never pass through a file,
which a connector of the same user could rewrite.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from typing import Any

from syncert.harness.containment import make_undumpable


def main() -> None:
    make_undumpable()
    channel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    channel.connect(sys.argv[1])
    received = b""
    while not received.endswith(b"\n") and (chunk := channel.recv(65536)):
        received += chunk
    settings = json.loads(received)
    os.environ.update(settings["environment"])
    sys.argv = ["locust", *settings["arguments"]]
    from locust import events  # monkey-patches with gevent: after the settings are read
    from locust.main import main as locust_main
    from locust.runners import WorkerRunner

    @events.quitting.add_listener
    def send_figures(environment: Any, **_: Any) -> None:
        if not isinstance(environment.runner, WorkerRunner):
            figures = {entry.name: {"requests": entry.num_requests, "failures": entry.num_failures,
                                    **{f"p{p}_ms": entry.get_response_time_percentile(p / 100) for p in (50, 95, 99)}}
                       for entry in environment.stats.entries.values()}
            channel.sendall(json.dumps(figures).encode())
        channel.close()

    locust_main()


if __name__ == "__main__":
    main()
