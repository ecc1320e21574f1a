"""The child-process side of python mode: import the connector's factory and call it on request.

    python -I -m syncert.harness.python_shim --directory DIR --result-fd N ENTRYPOINT

The harness never imports a connector: it starts this shim in a process of its own, with the same
environment as command mode, and sends one JSON command per line on stdin: {"op": "sync"}, or {"op":
"webhook", "headers": {...}, "body": "<base64>"} for a change event the harness received on the
connector's behalf (manifests with `webhook_path`). The shim answers each with one JSON line on the
result pipe: {"ready": true} once the factory has returned, then {"ok": true} or {"ok": false, "error":
"..."} per command, with the command's "id"; {"ok": false, "refused": true, ...} when handle_webhook()
raised PermissionError (it refuses the event: its signature does not verify). The connector's prints go
to the shim's stdout and stderr, which the harness captures. A shim that dies without answering is a
failed cycle.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, TextIO


def _send(channel: TextIO, message: dict[str, Any]) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def _load(entrypoint: str) -> Any:
    module_name, _, factory_name = entrypoint.partition(":")
    factory = getattr(importlib.import_module(module_name), factory_name)
    if not callable(factory):
        raise TypeError(f"{entrypoint} is a {type(factory).__name__}, not a callable factory")
    return factory


def _call_for(connector: Any, command: dict[str, Any]) -> Callable[[], Any]:
    """The connector call a command asks for: sync(), or handle_webhook(headers, body)."""
    if command["op"] == "sync":
        return connector.sync
    if command["op"] == "webhook":
        handle = connector.handle_webhook  # AttributeError: the connector takes no webhooks
        return lambda: handle(dict(command["headers"]), base64.b64decode(command["body"]))
    raise ValueError(f"unknown op {command['op']!r}")


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:2000]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python_shim")
    parser.add_argument("--directory", required=True)
    parser.add_argument("--result-fd", type=int, required=True)
    parser.add_argument("entrypoint")
    args = parser.parse_args()
    results = os.fdopen(args.result_fd, "w", encoding="utf-8")
    extra_path = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[:0] = [args.directory, *extra_path]
    try:
        connector = _load(args.entrypoint)()
        if not callable(getattr(connector, "sync", None)):
            raise TypeError(f"{args.entrypoint} returned a {type(connector).__name__}, which has no sync() method")
    except BaseException as error:  # anything the connector raises is reported, not a shim crash
        traceback.print_exc()
        _send(results, {"ready": False, "error": _describe(error)})
        return 3
    _send(results, {"ready": True})
    for line in sys.stdin:
        command: dict[str, Any] = {}
        try:
            parsed = json.loads(line)
            command = parsed if isinstance(parsed, dict) else {}
            call = _call_for(connector, command)
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            _send(results, {"id": command.get("id"), "ok": False, "error": f"unusable command: {_describe(error)}"})
            continue
        answer: dict[str, Any] = {"id": command.get("id"), "ok": True}
        try:
            call()
        except SystemExit as stop:
            if stop.code not in (0, None):
                answer = {**answer, "ok": False, "error": f"{command['op']} raised SystemExit({stop.code!r})"}
        except PermissionError as error:
            answer = {**answer, "ok": False, "refused": command["op"] == "webhook", "error": _describe(error)}
        except BaseException as error:
            traceback.print_exc()
            answer = {**answer, "ok": False, "error": _describe(error)}
        _send(results, answer)
    close = getattr(connector, "close", None)
    if callable(close):
        close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
