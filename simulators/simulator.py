"""One simulated system: its schema, engine, dialect, journal, governance, clock and webhooks, assembled."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from syncert.simulators.clock import Clock
from syncert.simulators.dialects import CRM_DIALECTS, ERP_DIALECTS, ApiDialect
from syncert.simulators.domain.crm import CrmEngine, crm_store
from syncert.simulators.domain.engine import Engine
from syncert.simulators.domain.erp import ErpEngine, erp_store
from syncert.simulators.domain.repository import Repository
from syncert.simulators.domain.schema import Schema
from syncert.simulators.stages.governance import Governor
from syncert.simulators.stages.journal import Journal
from syncert.simulators.webhooks import WebhookDispatcher


@dataclass
class Simulator:
    """Everything one simulated system holds: schema, engine, dialect, journal, limits, clock, webhooks.

    The pipeline reaches the store as `simulator.engine.store`; the dialect sees a Repository only.
    """

    schema: Schema
    engine: Engine
    dialect: ApiDialect
    journal: Journal
    governor: Governor
    clock: Clock
    webhooks: WebhookDispatcher
    admin_token: str
    tls: Any = None  # simulators.host.TlsListener when the host can serve TLS


def build_simulator(side: str, dialect_name: str, store_path: Path | None, admin_token: str | None = None,
                    clock: Clock | None = None) -> Simulator:
    """Assemble a simulator for `side` ("crm" or "erp") speaking `dialect_name`, with its own schema."""
    registry = CRM_DIALECTS if side == "crm" else ERP_DIALECTS
    if dialect_name not in registry:
        raise ValueError(f"unknown {side.upper()} dialect {dialect_name!r}; available: {', '.join(registry)}")
    dialect_class = registry[dialect_name]
    clock = clock or Clock()
    governor = Governor()
    schema = dialect_class.default_schema()
    id_format = partial(dialect_class.id_format, schema)
    engine: Engine
    if side == "crm":
        engine = CrmEngine(crm_store(store_path, schema), clock, id_format, schema)
    else:
        engine = ErpEngine(erp_store(store_path, schema), clock, id_format, schema)
    dialect = dialect_class(Repository(engine), schema, clock, governor)
    webhooks = WebhookDispatcher(dialect.object_name, dialect.name)
    engine.subscribe(webhooks.on_event)
    return Simulator(schema, engine, dialect, Journal(), governor, clock, webhooks,
                     admin_token or secrets.token_urlsafe(24))
