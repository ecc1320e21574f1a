"""What every vendor dialect provides to the request pipeline."""

from __future__ import annotations

from abc import ABC, abstractmethod

from starlette.responses import Response

from syncert.simulators.auth.tokens import IssuedSecrets, TokenStore
from syncert.simulators.clock import Clock
from syncert.simulators.domain.engine import Engine
from syncert.simulators.http import ApiRequest
from syncert.simulators.stages.governance import Governor, Rejection

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


class ApiDialect(ABC):
    """A vendor's API shape over a domain engine: auth, routes, errors, environment."""

    name: str
    side: str  # "crm" | "erp"
    tokens: TokenStore  # access tokens, created by each dialect with its vendor's prefix

    def __init__(self, engine: Engine, clock: Clock, governor: Governor):
        self.engine = engine
        self.clock = clock
        self.governor = governor
        self.secrets = IssuedSecrets()

    @staticmethod
    @abstractmethod
    def id_format(kind: str, number: int) -> str:
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

    def method_not_allowed(self, method: str, allowed: tuple[str, ...]) -> Response:
        """405 in the vendor's error shape, with the Allow header RFC 9110 asks for."""
        response = self.error(405, "METHOD_NOT_ALLOWED", f"HTTP method {method} is not allowed here; "
                                                         f"allowed: {', '.join(allowed)}")
        response.headers["Allow"] = ", ".join(allowed)
        return response

    def decorate(self, response: Response) -> None:  # noqa: B027 - optional hook
        """Add per-response headers (usage counters); default: none."""
