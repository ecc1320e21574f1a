"""The recorded contracts: OpenAPI documents and canonical field maps per dialect (package data)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml


def contract_path(dialect: str, name: str) -> Path:
    """Path of a contract file shipped with syncert, e.g. contract_path("salesforce", "openapi.yaml")."""
    return Path(str(files(__name__) / dialect / name))


def load_yaml(dialect: str, name: str) -> Any:
    with contract_path(dialect, name).open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)
