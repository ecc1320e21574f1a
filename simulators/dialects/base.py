"""What every vendor dialect provides to the request pipeline."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod

from starlette.responses import Response

from syncert.simulators.auth.tokens import IssuedSecrets, TokenStore
from syncert.simulators.clock import Clock
from syncert.simulators.dialects.field_map import load_limits, load_object_maps
from syncert.simulators.domain.kinds import CRM_KINDS, ERP_KINDS, DomainError
from syncert.simulators.domain.repository import Repository
from syncert.simulators.domain.schema import Schema
from syncert.simulators.http import ApiRequest
from syncert.simulators.stages.governance import Governor, Rejection

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})

_FROM = re.compile(r"\bfrom\s+(\w+)", re.IGNORECASE)


class ApiDialect(ABC):
    """A vendor's API shape over a system's records: auth, routes, errors, environment.

    A dialect reads and writes canonical records through `repository` and reads its vendor objects,
    field maps and limits from `schema` (this simulator's own copy).
    """

    name: str
    side: str  # "crm" | "erp"
    tokens: TokenStore  # access tokens, created by each dialect with its vendor's prefix

    def __init__(self, repository: Repository, schema: Schema, clock: Clock, governor: Governor):
        self.repository = repository
        self.schema = schema
        self.clock = clock
        self.governor = governor
        self.secrets = IssuedSecrets()

    @classmethod
    def default_schema(cls) -> Schema:
        """A fresh schema: the canonical kinds of this dialect's side and its field map and limits."""
        kinds = CRM_KINDS if cls.side == "crm" else ERP_KINDS
        return Schema(dict(kinds), load_object_maps(cls.name), load_limits(cls.name))

    @staticmethod
    @abstractmethod
    def id_format(schema: Schema, kind: str, number: int) -> str:
        """The vendor-style record id for the `number`-th record of `kind`."""

    @abstractmethod
    def object_name(self, kind: str) -> str:
        """The vendor's name for a canonical kind (Account, salesOrder...)."""

    @abstractmethod
    def environment(self, base_url: str) -> dict[str, str]:
        """The SYNCERT_* variables a connector needs to reach this service (includes secrets)."""

    @abstractmethod
    def rotate_credentials(self) -> None:
        """Replace every connector credential with fresh values and revoke every access token."""

    @abstractmethod
    def classify(self, method: str, path: str) -> tuple[str, str | None, str | None]:
        """What a request is, canonically, for the journal: (access, kind, operation).

        access is "token" (token endpoint), "write" (may change state) or "read"; kind is the canonical
        record kind when the path names one; operation is create, read, update, upsert, delete, query,
        changes, describe, transform... or None."""

    @abstractmethod
    def serves(self, path: str) -> bool:
        """True when `path` is part of the vendor's API (others answer 404 before any credential check)."""

    def auth_needs_body(self, request: ApiRequest) -> bool:
        """True when checking the request's credentials needs its body (a signature over it)."""
        return False

    @abstractmethod
    def is_public(self, request: ApiRequest) -> bool:
        """True for requests served without credentials (token endpoints)."""

    @abstractmethod
    async def handle_public(self, request: ApiRequest) -> Response:
        """Serve a public request (issue tokens)."""

    @abstractmethod
    def authenticate(self, request: ApiRequest) -> Response | None:
        """None when the request carries valid credentials, else the vendor's 401 response."""

    @abstractmethod
    def error(self, status: int, code: str, message: str, fields: tuple[str, ...] = ()) -> Response:
        """An error response in the vendor's shape."""

    @abstractmethod
    def throttled(self, rejection: Rejection) -> Response:
        """The vendor's answer to a request over a governance limit, with Retry-After."""

    @abstractmethod
    def handle(self, request: ApiRequest) -> Response:
        """Serve an authenticated API request."""

    def vendor_fields(self, error: DomainError) -> tuple[str, ...]:
        """The vendor field names of a refusal's canonical fields (for the kind it names)."""
        object_map = self.schema.object_for(error.kind) if error.kind else None
        if object_map is None:
            return error.fields
        return tuple(object_map.vendor_name(name) for name in error.fields)

    def vendor_message(self, error: DomainError) -> str:
        """A refusal's message with `kind.field` names replaced by the vendor's `Object.field` names."""
        message = error.message
        object_map = self.schema.object_for(error.kind) if error.kind else None
        if object_map is None:
            return message
        for name, vendor in zip(error.fields, self.vendor_fields(error), strict=True):
            message = message.replace(f"{error.kind}.{name}", f"{object_map.name}.{vendor}")
        return message

    def method_not_allowed(self, method: str, allowed: tuple[str, ...]) -> Response:
        """405 in the vendor's error shape, with the Allow header RFC 9110 asks for."""
        response = self.error(405, "METHOD_NOT_ALLOWED", f"HTTP method {method} is not allowed here; "
                                                         f"allowed: {', '.join(allowed)}")
        response.headers["Allow"] = ", ".join(allowed)
        return response

    def query_text(self, request: ApiRequest) -> str | None:
        """The query a request carries (SOQL, SuiteQL...), or None; read before the request is served."""
        return None

    def query_kind(self, request: ApiRequest) -> str | None:
        """The canonical kind a query request reads (the table after its first FROM, by object name or the table
        the field map gives it, when that table holds one kind), peeked at before serving it."""
        text = self.query_text(request)
        found = _FROM.search(text) if text else None
        if found is None:
            return None
        table = found.group(1).lower()
        kinds = {m.kind for m in self.schema.objects.values()
                 if str(m.options.get("suiteql_table", m.name)).lower() == table}
        return kinds.pop() if len(kinds) == 1 else None  # a table of several kinds (transaction) names none

    def decorate(self, response: Response) -> None:  # noqa: B027 - optional hook
        """Add per-response headers (usage counters); default: none."""
