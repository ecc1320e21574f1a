"""Locust for a surge, its settings received only once it is non-dumpable (harness/surge.py).

`python -m syncert.harness.locust_process SOCKET` makes itself non-dumpable, then connects to the
harness's Unix socket SOCKET and reads one JSON document, {"arguments": [...], "environment": {...}}:
Locust's command-line arguments and the SYNCERT_SURGE_* settings, the simulators' admin token among them.
The harness sends them only to this process (its pid, from the socket's peer credentials) and only when
nothing traces it; they never appear in a command line, an initial environment or a pipe that another
process of the same user could open through /proc before this one became non-dumpable.
"""

from __future__ import annotations

import json
import os
import socket
import sys

from syncert.harness.containment import make_undumpable


def main() -> None:
    make_undumpable()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as channel:
        channel.connect(sys.argv[1])
        received = b""
        while chunk := channel.recv(65536):
            received += chunk
    settings = json.loads(received)
    os.environ.update(settings["environment"])
    sys.argv = ["locust", *settings["arguments"]]
    from locust.main import main as locust_main  # monkey-patches with gevent: after the settings are read

    locust_main()


if __name__ == "__main__":
    main()
