"""The recording proxy behind `syncert contracts record --upstream URL`.

A client pointed at the proxy (plain HTTP on 127.0.0.1) talks to the upstream (a real vendor org, or any
server) through it; every interaction is kept as the upstream sent it and saved, after each one, into one JSON
file: request (method, path, query, headers, body) and response (status, headers, body), the vendor operation
it exercised, and the response fields that differ from run to run (`volatile`: ids, timestamps, links,
tokens), which replay verification ignores. Absolute URLs of the upstream in answers are rewritten for the
client so that it stays on the proxy (an `instance_url` too).

Secrets never reach the file. Credentials are recognised where the protocols carry them: the Authorization
header (Bearer, Basic, OAuth 1.0a: consumer key, token and signature), cookies, the form fields and query
parameters of OAuth grants (client secret, password, refresh token, code, assertions) and the tokens a token
endpoint answers. They are replaced by [REDACTED] where found, and every value seen so far is then scrubbed
from the whole file in every encoding `SecretScrubber` knows (raw, URL-encoded, JSON-escaped, hex, base64,
base32), so a token echoed in a body or split across lines is caught too. The file on disk is rewritten
scrubbed after each interaction: an interrupted recording loses nothing and leaks nothing.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import gzip
import json
import os
import re
import signal
import socket
import tempfile
import threading
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx
import uvicorn
from starlette.requests import Request
from starlette.responses import Response

from syncert.contracts import load_yaml
from syncert.harness.secrets import REDACTED, SecretScrubber, scrub_tree

RECORDING_FORMAT = 1
DIALECTS = ("salesforce", "netsuite")
# Hop-by-hop headers (RFC 9110 7.6.1) and those the proxy recomputes; never forwarded either way.
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
               "host", "content-length", "content-encoding", "accept-encoding"}
_CREDENTIAL_HEADERS = {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-sfdc-session"}
_OAUTH1_SECRETS = {"oauth_consumer_key", "oauth_token", "oauth_signature"}
# Form fields and query parameters of OAuth grants, and keys of token answers, whose values are credentials
# (a username too: a recording may be published).
_CREDENTIAL_FIELDS = {"client_id", "client_secret", "username", "password", "refresh_token", "code", "client_assertion",
                      "assertion", "access_token", "id_token", "signature", "session_id", "sessionid", "token",
                      "subject_token"}
_VOLATILE_KEYS = {"remaining", "max",  # an org's limits and how much of them is used
                  "id", "internalid", "createddate", "lastmodifieddate", "systemmodstamp", "createdbyid",
                  "lastmodifiedbyid", "ownerid", "datecreated", "issued_at", "instance_url", "nextrecordsurl",
                  "url", "href", "location", "etag", "date", "last-modified", "sforce-limit-info", "x-request-id",
                  "set-cookie", "content-length", "server"}
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
_ID = re.compile(r"^(?=.*\d)[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$|^\d+$")  # a Salesforce id or a number
_KEPT_RESPONSE_HEADERS = {"content-type", "location", "retry-after", "sforce-limit-info", "etag"}
_SCRUB_MIN_LENGTH = 6  # an echo shorter than this is too likely an ordinary word; the fields themselves are masked


class RecordingError(Exception):
    """Recording could not start (a bad upstream URL, an unwritable file); the message says why."""


@dataclass
class _Credentials:
    """Every credential value seen in the session, for the final scrub."""

    values: set[str] = field(default_factory=set)

    def note(self, value: str) -> str:
        if value and value != REDACTED:
            for form in {value, unquote(value)}:
                # its case changed, and each part of a Salesforce session id ("00D...!secret")
                self.values |= {form, form.lower(), form.upper(), *form.split("!")}
        return REDACTED


def _masked_header(name: str, value: str, credentials: _Credentials) -> str:
    """The header as recorded: credential parts replaced, the scheme and harmless parameters kept."""
    if name not in _CREDENTIAL_HEADERS:
        return value
    scheme, _, rest = value.partition(" ")
    if name in ("authorization", "proxy-authorization") and scheme.lower() == "basic":
        credentials.note(rest.strip())
        try:
            user, _, password = base64.b64decode(rest.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return f"{scheme} {REDACTED}"
        credentials.note(user)
        credentials.note(password)
        return f"{scheme} {REDACTED}"
    if name in ("authorization", "proxy-authorization") and scheme.lower() == "oauth":
        return f"{scheme} " + ", ".join(_masked_oauth1_parameter(part, credentials) for part in rest.split(","))
    if name in ("authorization", "proxy-authorization") and rest:
        credentials.note(rest.strip())
        return f"{scheme} {REDACTED}"
    credentials.note(value)
    for cookie in re.split(r"[;,]\s*", value):
        credentials.note(cookie.partition("=")[2])
    return REDACTED


def _masked_oauth1_parameter(part: str, credentials: _Credentials) -> str:
    name, _, quoted = part.strip().partition("=")
    if name.lower() in _OAUTH1_SECRETS:
        credentials.note(quoted.strip('"'))
        return f'{name}="{REDACTED}"'
    return part.strip()


def _masked_fields(value: Any, credentials: _Credentials) -> Any:
    """A copy of a JSON or form body with the values of credential fields (at any depth) replaced."""
    if isinstance(value, dict):
        masked = {}
        for key, item in value.items():
            if str(key).lower() in _CREDENTIAL_FIELDS and isinstance(item, str | int):
                masked[key] = credentials.note(str(item))
            else:
                masked[key] = _masked_fields(item, credentials)
        return masked
    if isinstance(value, list):
        return [_masked_fields(item, credentials) for item in value]
    return value


def _decoded(content: bytes, encoding: str) -> bytes:
    """A request body as sent before its Content-Encoding (gzip or deflate), so that it is redacted like others."""
    try:
        if encoding.strip().lower() in ("gzip", "x-gzip"):
            return gzip.decompress(content)
        if encoding.strip().lower() == "deflate":
            return zlib.decompress(content)
    except (OSError, zlib.error, EOFError):
        return b""  # not what it claims to be: nothing of it is recorded
    return content


def parsed_body(content: bytes, content_type: str) -> tuple[str, Any]:
    """(format, body): JSON as its value, a form as a dict of its fields, else text (or base64 when binary)."""
    if not content:
        return "none", None
    media = content_type.split(";")[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        return "form", dict(parse_qsl(content.decode("latin-1"), keep_blank_values=True))
    try:
        text = content.decode()
    except UnicodeDecodeError:
        return "base64", base64.b64encode(content).decode()
    if media.endswith("json") or media.endswith("+json"):
        try:
            return "json", json.loads(text)
        except ValueError:
            return "text", text
    return "text", text


def volatile_paths(response: dict[str, Any]) -> list[str]:
    """DeepDiff paths, in a recorded response, of the values that differ from run to run."""
    found: list[str] = []

    def walk(value: Any, path: str, key: str) -> None:
        if isinstance(value, dict):
            for name, item in value.items():
                walk(item, f"{path}[{name!r}]", str(name).lower())
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]", key)
        elif key in _VOLATILE_KEYS or value == REDACTED or (key.endswith("id") and _ID.match(str(value))) or (
                isinstance(value, str) and _TIMESTAMP.match(value)):
            found.append(path)

    walk(response.get("headers", {}), "root['headers']", "")
    walk(response.get("body"), "root['body']", "")
    return found


def operation_of(dialect: str, method: str, path: str) -> str | None:
    """'METHOD /template' of the contract operation a request exercises (the most literal template), or None."""
    for template, pattern in _templates(dialect):
        if pattern.fullmatch(path):
            operations = load_yaml(dialect, "openapi.yaml")["paths"][template]
            if method.lower() in operations:
                return f"{method.upper()} {template}"
    return None


def _templates(dialect: str) -> list[tuple[str, re.Pattern[str]]]:
    if dialect not in _TEMPLATE_CACHE:
        paths = load_yaml(dialect, "openapi.yaml")["paths"]
        compiled = [(template, re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "/?"))
                    for template in paths]
        _TEMPLATE_CACHE[dialect] = sorted(compiled, key=lambda pair: -len(re.sub(r"\{[^}]+\}", "", pair[0])))
    return _TEMPLATE_CACHE[dialect]


_TEMPLATE_CACHE: dict[str, list[tuple[str, re.Pattern[str]]]] = {}


class RecordingProxy:
    """A Starlette app that forwards to `upstream` and records each interaction into `out`."""

    def __init__(self, dialect: str, upstream: str, out: Path, upstream_ca: Path | None = None,
                 timeout_s: float = 120.0):
        if dialect not in DIALECTS:
            raise RecordingError(f"unknown dialect {dialect!r}: one of {', '.join(DIALECTS)}")
        parts = urlsplit(upstream)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RecordingError(f"--upstream {upstream!r} is not an http(s) URL")
        self.dialect = dialect
        self.upstream = f"{parts.scheme}://{parts.netloc}"
        self.out = out
        self.interactions: list[dict[str, Any]] = []
        self.on_interaction: list[Any] = []  # callbacks(number, interaction) for progress
        self._credentials = _Credentials()
        self._lock = threading.Lock()
        self._started = datetime.now(UTC).isoformat(timespec="seconds")
        self._client = httpx.AsyncClient(base_url=self.upstream, timeout=timeout_s, trust_env=False,
                                         verify=str(upstream_ca) if upstream_ca else True)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            self._write()
        except OSError as error:
            raise RecordingError(f"cannot write the recording {out}: {error.strerror}") from None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        response = await self._forward(request)
        await response(scope, receive, send)

    async def close(self) -> None:
        await self._client.aclose()

    async def _forward(self, request: Request) -> Response:
        content = await request.body()
        headers = [(name, value) for name, value in request.headers.items() if name.lower() not in _HOP_BY_HOP]
        query = request.url.query
        try:
            answer = await self._client.request(request.method, request.url.path + (f"?{query}" if query else ""),
                                                headers=headers, content=content)
        except httpx.HTTPError as error:
            message = f"syncert recording proxy: the upstream {self.upstream} did not answer ({type(error).__name__})"
            return Response(message, status_code=502, media_type="text/plain")
        self._record(request, content, answer)
        own_origin = f"{request.url.scheme}://{request.url.netloc}"
        body = answer.content.replace(self.upstream.encode(), own_origin.encode())
        kept = [(name, value.replace(self.upstream, own_origin)) for name, value in answer.headers.items()
                if name.lower() not in _HOP_BY_HOP]
        response = Response(body, status_code=answer.status_code)
        response.raw_headers = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in kept]
        response.headers["content-length"] = str(len(body))
        return response

    def _record(self, request: Request, content: bytes, answer: httpx.Response) -> None:
        credentials = self._credentials
        content = _decoded(content, request.headers.get("content-encoding", ""))
        request_format, request_body = parsed_body(content, request.headers.get("content-type", ""))
        response_format, response_body = parsed_body(answer.content, answer.headers.get("content-type", ""))
        query = dict(parse_qsl(request.url.query, keep_blank_values=True))
        response = {
            "status": answer.status_code,
            "headers": {name.lower(): _masked_header(name.lower(), value, credentials)
                        for name, value in answer.headers.items()
                        if name.lower() in _KEPT_RESPONSE_HEADERS | _CREDENTIAL_HEADERS},
            "body_format": response_format,
            "body": _masked_fields(response_body, credentials),
        }
        interaction = {
            "operation": operation_of(self.dialect, request.method, request.url.path),
            "request": {
                "method": request.method,
                "path": request.url.path,
                "query": _masked_fields(query, credentials),
                "headers": {name: _masked_header(name, value, credentials) for name, value in request.headers.items()
                            if name not in _HOP_BY_HOP},
                "body_format": request_format,
                "body": _masked_fields(request_body, credentials),
            },
            "response": response,
            "volatile": volatile_paths(response),
        }
        with self._lock:
            self.interactions.append(interaction)
            self._write()
            number = len(self.interactions)
        for callback in self.on_interaction:
            callback(number, interaction)

    def _write(self) -> None:
        """The whole recording, scrubbed of every credential seen so far, replacing the file atomically."""
        scrubber = SecretScrubber(self._credentials.values, min_length=_SCRUB_MIN_LENGTH)
        document = {"syncert_recording": RECORDING_FORMAT, "dialect": self.dialect, "upstream": self.upstream,
                    "recorded_at": self._started, "interactions": scrub_tree(self.interactions, scrubber)}
        text = json.dumps(document, indent=1, ensure_ascii=False) + "\n"
        handle, temporary = tempfile.mkstemp(dir=self.out.parent, prefix=".recording-", suffix=".json")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, self.out)

    @property
    def credentials_seen(self) -> int:
        return len(self._credentials.values)


def serve_recording_proxy(dialect: str, upstream: str, out: Path, port: int, upstream_ca: Path | None,
                          max_interactions: int | None, duration_s: float | None, tls: bool = False) -> int:
    """Serve the recording proxy on 127.0.0.1 until Ctrl-C, SIGTERM, `max_interactions` or `duration_s`.

    With `tls`, the proxy serves HTTPS with a certificate from a CA made for this run (clients such as
    simple-salesforce always use https for the instance URL); the CA's PEM file is printed for the client to trust.
    """
    if (max_interactions is not None and max_interactions < 1) or (duration_s is not None and duration_s <= 0):
        raise RecordingError("--max-interactions and --duration must be positive")
    if upstream_ca is not None and not upstream_ca.is_file():
        raise RecordingError(f"--upstream-ca {upstream_ca}: no such file")
    proxy = RecordingProxy(dialect, upstream, out, upstream_ca)
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listening.bind(("127.0.0.1", port))
        listening.listen(128)  # clients that connect before the server runs wait in the backlog
    except OSError as error:
        listening.close()
        raise RecordingError(f"cannot listen on 127.0.0.1:{port}: {error.strerror}") from None
    scratch = tempfile.TemporaryDirectory(prefix="syncert-proxy-")
    options = _tls_files(Path(scratch.name)) if tls else {}
    server = uvicorn.Server(uvicorn.Config(proxy, lifespan="off", log_level="warning", access_log=False,
                                           server_header=False, timeout_graceful_shutdown=3, **options))

    def progress(number: int, interaction: dict[str, Any]) -> None:
        asked = interaction["request"]
        print(f"{number:6d}  {asked['method']} {asked['path']}  {interaction['response']['status']}", flush=True)
        if max_interactions is not None and number >= max_interactions:
            server.should_exit = True

    proxy.on_interaction.append(progress)

    async def serve() -> None:
        if duration_s is not None:
            asyncio.get_running_loop().call_later(duration_s, setattr, server, "should_exit", True)
        try:
            await server.serve(sockets=[listening])
        finally:
            await proxy.close()

    print(f"recording {dialect} traffic to {proxy.upstream} into {out}", flush=True)
    if tls:
        print(f"the proxy's CA (trust it in the client): {scratch.name}/proxy-ca.pem", flush=True)
    scheme = "https" if tls else "http"
    print(f"point your client at {scheme}://127.0.0.1:{listening.getsockname()[1]} (Ctrl-C to stop)", flush=True)
    previous = signal.signal(signal.SIGTERM, _stop)
    with scratch:
        try:
            asyncio.run(serve())  # uvicorn raises the signal that stopped it again once it has shut down
        except (KeyboardInterrupt, _Stopped):
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
    print(f"{len(proxy.interactions)} interactions saved to {out} "
          f"({proxy.credentials_seen} credential values redacted)", flush=True)
    return 0


class _Stopped(Exception):
    """SIGTERM: stop as on Ctrl-C."""


def _stop(signum: int, frame: Any) -> None:
    raise _Stopped


def _tls_files(folder: Path) -> dict[str, str]:
    """A CA for this run and a certificate for 127.0.0.1 from it, as uvicorn's ssl options."""
    import trustme

    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(folder / "proxy-ca.pem"))
    issued = ca.issue_cert("127.0.0.1", "localhost")
    chain, key = folder / "proxy-chain.pem", folder / "proxy-key.pem"
    chain.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    issued.private_key_pem.write_to_path(str(key))
    key.chmod(0o600)
    return {"ssl_certfile": str(chain), "ssl_keyfile": str(key)}


def load_recording(path: Path) -> dict[str, Any]:
    """A recording file, checked enough to replay; RecordingError names what is wrong with it."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise RecordingError(f"cannot read the recording {path}: {error.strerror}") from None
    except ValueError as error:
        raise RecordingError(f"{path} is not JSON: {error}") from None
    if not isinstance(document, dict) or "syncert_recording" not in document:
        raise RecordingError(f"{path} is not a syncert recording (no 'syncert_recording' format number)")
    if document["syncert_recording"] != RECORDING_FORMAT:
        raise RecordingError(f"{path}: recording format {document['syncert_recording']!r} is not supported "
                             f"(this syncert reads format {RECORDING_FORMAT})")
    if document.get("dialect") not in DIALECTS or not isinstance(document.get("interactions"), list):
        raise RecordingError(f"{path}: 'dialect' must be one of {', '.join(DIALECTS)} and 'interactions' a list")
    if not document["interactions"]:
        raise RecordingError(f"{path}: the recording has no interactions")
    for number, interaction in enumerate(document["interactions"], start=1):
        problem = _malformed(interaction)
        if problem:
            raise RecordingError(f"{path}: interaction {number}: {problem}")
    return document


def _malformed(interaction: Any) -> str | None:
    """What makes one recorded interaction unplayable, or None."""
    request = interaction.get("request") if isinstance(interaction, dict) else None
    response = interaction.get("response") if isinstance(interaction, dict) else None
    if not isinstance(request, dict) or not isinstance(response, dict):
        return "needs a 'request' and a 'response' object"
    if request.get("method") not in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"):
        return f"method {request.get('method')!r} is not an HTTP method"
    path = request.get("path")
    if not isinstance(path, str) or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return f"path {path!r} is not a path on the server (it must start with a single /)"
    if not isinstance(response.get("status"), int) or isinstance(response.get("status"), bool):
        return f"status {response.get('status')!r} is not an integer"
    for name in ("query", "headers"):
        if not isinstance(request.get(name, {}), dict):
            return f"request {name} must be an object"
    if request.get("body_format", "none") not in ("none", "json", "form", "text", "base64"):
        return f"body_format {request.get('body_format')!r} is not one of none, json, form, text, base64"
    return None


def recordings_in(folders: Iterable[Path]) -> list[Path]:
    """Every *.json recording under the folders, sorted."""
    return sorted(path for folder in folders for path in folder.rglob("*.json") if not path.name.startswith("."))
