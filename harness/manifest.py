"""The connector manifest (`connector.toml`): loading and validation.

Every error names the file, the key and what is allowed, in one paragraph, so `syncert certify` can
print it and exit 2 without a traceback.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syncert.harness.mapping import MappingError, load_mapping
from syncert.simulators.dialects import CRM_DIALECTS, ERP_DIALECTS

FLOWS = ("accounts", "contacts", "orders", "invoices", "payments", "inventory", "items", "credit")
CONFLICT_POLICIES = ("field-ownership", "last-write-wins", "conflict-queue")
MODES = ("command", "service", "python", "container")
TOP_LEVEL_KEYS = {"name", "version", "crm", "erp", "flows", "conflict_policy", "mapping", "run"}
RUN_KEYS = {"mode", "command", "timeout_s", "entrypoint", "image", "webhook_path", "health_path", "startup_timeout_s"}


class ManifestError(ValueError):
    """A manifest that cannot be used; the message names the file, the key and what is allowed."""


@dataclass(frozen=True)
class RunSpec:
    """How the harness runs the connector (the [run] table)."""

    mode: str
    command: tuple[str, ...] = ()
    timeout_s: float = 60.0
    entrypoint: str | None = None
    image: str | None = None
    webhook_path: str | None = None
    health_path: str = "/health"
    startup_timeout_s: float = 30.0

    @property
    def receives_webhooks(self) -> bool:
        """Whether syncert delivers change events to the connector (service or python mode, `webhook_path`)."""
        return self.webhook_path is not None and self.mode in ("service", "python")


@dataclass(frozen=True)
class Manifest:
    """A validated connector manifest."""

    path: Path
    name: str
    version: str
    crm: str
    erp: str
    flows: tuple[str, ...]
    run: RunSpec
    conflict_policy: str = "field-ownership"
    mapping: Path | None = None

    @property
    def directory(self) -> Path:
        return self.path.parent


def load_manifest(path: Path | str) -> Manifest:
    """Read and validate a connector.toml; raises ManifestError."""
    path = Path(path)
    if path.is_dir():
        path = path / "connector.toml"
    if not path.is_file():
        raise ManifestError(f"{path}: no such manifest file. Pass the path of a connector.toml "
                            "(or of the directory that holds one).")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ManifestError(f"{path}: not valid TOML: {error}.") from None
    check = _Checker(path)
    unknown = sorted(set(data) - TOP_LEVEL_KEYS)
    if unknown:
        check.fail(unknown[0], f"is not a manifest key; the keys are {', '.join(sorted(TOP_LEVEL_KEYS))}")
    name = check.text(data, "name")
    version = check.text(data, "version")
    crm = check.choice(data, "crm", tuple(CRM_DIALECTS))
    erp = check.choice(data, "erp", tuple(ERP_DIALECTS))
    flows = data.get("flows")
    if not isinstance(flows, list) or not flows or not all(isinstance(f, str) for f in flows):
        check.fail("flows", f"must be a non-empty list of flow names from: {', '.join(FLOWS)}")
    bad_flows = [f for f in flows if f not in FLOWS]
    if bad_flows:
        check.fail("flows", f"names unknown flow(s) {', '.join(map(repr, bad_flows))}; known flows: {', '.join(FLOWS)}")
    policy = check.choice(data, "conflict_policy", CONFLICT_POLICIES, default="field-ownership")
    mapping = None
    if "mapping" in data:
        mapping = path.parent / check.text(data, "mapping")
        if mapping.is_dir():
            check.fail("mapping", f"names {mapping}, which is a directory, not a mapping file")
        if not mapping.is_file():
            check.fail("mapping", f"names {mapping}, which does not exist")
        try:
            own = load_mapping(mapping)
        except MappingError as error:
            check.fail("mapping", f"names a mapping that cannot be used: {error}")
        if own.conflict_policy != policy:
            check.fail("mapping", f"declares conflict_policy {own.conflict_policy!r} but the manifest declares "
                                  f"{policy!r}; make them agree")
    return Manifest(path=path.resolve(), name=name, version=version, crm=crm, erp=erp, flows=tuple(flows),
                    run=_run_spec(check, data.get("run")), conflict_policy=policy, mapping=mapping)


def _run_spec(check: _Checker, run: Any) -> RunSpec:
    if not isinstance(run, dict):
        check.fail("run", "is missing: add a [run] table with at least `mode`")
    check.prefix = "[run]."
    unknown = sorted(set(run) - RUN_KEYS)
    if unknown:
        check.fail(unknown[0], f"is not a [run] key; the keys are {', '.join(sorted(RUN_KEYS))}")
    mode = check.choice(run, "mode", MODES)
    timeout_s = check.positive(run, "timeout_s", 60.0)
    startup_timeout_s = check.positive(run, "startup_timeout_s", 30.0)
    command: tuple[str, ...] = ()
    if mode in ("command", "service"):
        raw = run.get("command")
        if not isinstance(raw, list) or not raw or not all(isinstance(p, str) and p for p in raw):
            check.fail("command", f"is required in {mode} mode: a non-empty list of strings, "
                                  'e.g. ["python", "-m", "acme_sync", "sync"]')
        command = tuple(raw)
    entrypoint = None
    if mode == "python":
        entrypoint = check.text(run, "entrypoint")
        module, _, factory = entrypoint.partition(":")
        if not module or not factory:
            check.fail("entrypoint", f"must look like \"package.module:factory\", not {entrypoint!r}")
    image = check.text(run, "image") if mode == "container" else None
    webhook_path = check.text(run, "webhook_path") if "webhook_path" in run else None
    health_path = check.text(run, "health_path") if "health_path" in run else "/health"
    for key, value in (("webhook_path", webhook_path), ("health_path", health_path)):
        if value is not None and not value.startswith("/"):
            check.fail(key, f"must be a path starting with '/', not {value!r}")
    return RunSpec(mode=mode, command=command, timeout_s=timeout_s, entrypoint=entrypoint, image=image,
                   webhook_path=webhook_path, health_path=health_path, startup_timeout_s=startup_timeout_s)


class _Checker:
    """Typed reads from a TOML table that raise ManifestError naming the file and key."""

    def __init__(self, path: Path):
        self.path = path
        self.prefix = ""

    def fail(self, key: str, problem: str) -> Any:
        raise ManifestError(f"{self.path}: `{self.prefix}{key}` {problem}.")

    def text(self, table: dict, key: str) -> str:
        value = table.get(key)
        if value is None:
            self.fail(key, "is missing: a non-empty string is required")
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"must be a non-empty string, not {value!r}")
        return value

    def choice(self, table: dict, key: str, allowed: tuple[str, ...], default: str | None = None) -> str:
        value = table.get(key, default)
        if value is None:
            self.fail(key, f"is missing: one of {', '.join(allowed)}")
        if value not in allowed:
            self.fail(key, f"is {value!r}; allowed: {', '.join(allowed)}")
        return value

    def positive(self, table: dict, key: str, default: float) -> float:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            self.fail(key, f"must be a positive number of seconds, not {value!r}")
        return float(value)
