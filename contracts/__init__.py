"""The recorded contracts: OpenAPI documents and canonical field maps per dialect (package data)."""

from __future__ import annotations

import copy
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml


def contract_path(dialect: str, name: str) -> Path:
    """Path of a contract file shipped with syncert, e.g. contract_path("salesforce", "openapi.yaml")."""
    return Path(str(files(__name__) / dialect / name))


def load_yaml(dialect: str, name: str) -> Any:
    """A contract file's content (a copy of its own: callers may change it)."""
    return copy.deepcopy(_parsed(dialect, name))


@cache
def _parsed(dialect: str, name: str) -> Any:
    # package data does not change while syncert runs: parse each file once per process, with libyaml if present
    with contract_path(dialect, name).open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
