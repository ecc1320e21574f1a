"""SecretScrubber, tail, head and scrub_tree: no issued secret reaches a report, in any form."""

from __future__ import annotations

import base64
import json
import re
import string
from collections.abc import Callable
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncert.harness.secrets import REDACTED, Leak, SecretScrubber, head, scrub_tree, tail

TOKEN = string.ascii_letters + string.digits + "_-!."
UPPER_HEX = "0123456789ABCDEF"
BASE64 = string.ascii_letters + string.digits + "+/="

# Issued secrets: 32-64 characters, with at least one letter or digit (as every real credential has).
secrets = st.one_of(
    st.text(TOKEN, min_size=32, max_size=64), st.text(UPPER_HEX, min_size=32, max_size=64),
    st.text(BASE64, min_size=32, max_size=64),
).filter(lambda s: any(c.isalnum() for c in s))
# Surrounding text: anything but ASCII letters and digits (so it cannot hold a form of the secret by chance)
# and "<", ">" (which delimit the leak below); includes non-ASCII letters whose lower case is longer.
filler = st.text(st.characters(exclude_characters=string.ascii_letters + string.digits + "<>",
                               exclude_categories=["Cs"]) | st.sampled_from("İK\\\n"), max_size=300)


def _every_byte(secret: str, template: str) -> str:
    return "".join(template.format(byte) for byte in secret.encode())


def _every_char(secret: str, template: str) -> str:
    units = secret.encode("utf-16-be")
    return "".join(template.format(int.from_bytes(units[i : i + 2])) for i in range(0, len(units), 2))


def _basic(client_id: str) -> Callable[[str], str]:
    return lambda s: base64.b64encode(f"{client_id}:{s}".encode()).decode()


ENCODINGS: dict[str, tuple[str, Callable[[str], str]]] = {
    "raw": ("raw", lambda s: s),
    "quote": ("url-encoded", lambda s: quote(s, safe="")),
    "quote-slash": ("url-encoded", quote),
    "quote_plus": ("url-encoded", quote_plus),
    "quote-lower": ("url-encoded", lambda s: re.sub("%[0-9A-F]{2}", lambda m: m[0].lower(), quote(s, safe=""))),
    "percent-upper": ("url-encoded", lambda s: _every_byte(s, "%{:02X}")),
    "percent-lower": ("url-encoded", lambda s: _every_byte(s, "%{:02x}")),
    "json": ("json-escaped", lambda s: json.dumps(s)[1:-1]),
    "json-slash": ("json-escaped", lambda s: json.dumps(s)[1:-1].replace("/", "\\/")),
    "json-u-upper": ("json-escaped", lambda s: _every_char(s, "\\u{:04X}")),
    "json-u-lower": ("json-escaped", lambda s: _every_char(s, "\\u{:04x}")),
    "hex-lower": ("hex", lambda s: s.encode().hex()),
    "hex-upper": ("hex", lambda s: s.encode().hex().upper()),
    "base64": ("base64", lambda s: base64.b64encode(s.encode()).decode()),
    "base64-unpadded": ("base64", lambda s: base64.b64encode(s.encode()).decode().rstrip("=")),
    "base64-offset-1": ("base64", _basic("")),
    "basic-auth": ("base64", _basic("client-7")),
    "basic-auth-offset-2": ("base64", _basic("cl")),
    "base64url": ("base64url", lambda s: base64.urlsafe_b64encode(s.encode()).decode()),
    "base64url-unpadded": ("base64url", lambda s: base64.urlsafe_b64encode(s.encode()).decode().rstrip("=")),
    "base32": ("base32", lambda s: base64.b32encode(s.encode()).decode()),
    "base32-lower-unpadded": ("base32", lambda s: base64.b32encode(s.encode()).decode().lower().rstrip("=")),
    **{f"base32-offset-{n}": ("base32", lambda s, n=n: base64.b32encode(b"u" * n + s.encode()).decode())
       for n in range(1, 5)},
}
SEPARATORS = re.compile(r"\s|\\+[nrt]")


def expected_forms(encoding: str, secret: str) -> set[str]:
    """Names `find` may give: an encoding that leaves the secret as it is is "raw", and a base64url string
    without "-" or "_" is also base64."""
    name, encode = ENCODINGS[encoding]
    return {name} | ({"raw"} if encode(secret) == secret else set()) | ({"base64"} if name == "base64url" else set())


def assert_gone(scrubbed: str, secret: str, leak: str) -> None:
    """Neither the secret nor its encoding, nor any 8 characters of them, survive (separators aside)."""
    squeezed = SEPARATORS.sub("", scrubbed)
    for form in (secret, SEPARATORS.sub("", leak)):
        assert not any(form[i : i + 8] in squeezed for i in range(len(form) - 7)), (form, scrubbed)


def chunked(text: str, size: int, joiner: str) -> str:
    return joiner.join(text[i : i + size] for i in range(0, len(text), size))


def _redacted_and_found(secret: str, leak: str, before: str, after: str) -> Leak:
    """Scrub `leak` between two lines of filler: exactly it is redacted; `find` reports one leak."""
    text = f"{before}\n<{leak}>\n{after}"
    scrubber = SecretScrubber([secret])

    scrubbed = scrubber.scrub(text)

    assert scrubbed == f"{before}\n<{REDACTED}>\n{after}"
    assert_gone(scrubbed, secret, leak)
    [found] = scrubber.find(text)
    return found


@pytest.mark.parametrize("encoding", ENCODINGS)
@given(secret=secrets, before=filler, after=filler)
def test_every_form_is_redacted_and_found_on_its_line(encoding: str, secret: str, before: str, after: str) -> None:
    leak = ENCODINGS[encoding][1](secret)
    found = _redacted_and_found(secret, leak, before, after)
    assert found.form in expected_forms(encoding, secret)
    assert found.line == before.count("\n") + 2
    assert found.excerpt.startswith(f"<{REDACTED}>") and len(found.excerpt) <= 200


# Chunks joined by whitespace, or (inside a JSON-serialized string) by escapes; a form that holds backslashes
# would be escaped again there, a nested encoding this module does not search.
SPLITS = [(encoding, joiner) for encoding in ENCODINGS for joiner in ["\n", "\r\n", " ", "\t", "\\n", "\\r\\n", "\\t"]
          if not (joiner.startswith("\\") and encoding in ("json-slash", "json-u-upper", "json-u-lower"))]


@pytest.mark.parametrize(("encoding", "joiner"), SPLITS)
@settings(max_examples=25)
@given(secret=secrets, before=filler, after=filler)
def test_every_form_split_into_chunks_is_redacted_and_found(
    encoding: str, joiner: str, secret: str, before: str, after: str
) -> None:
    leak = ENCODINGS[encoding][1](secret)
    if joiner.startswith("\\"):
        leak = json.dumps(chunked(leak, 5, json.loads(f'"{joiner}"')))[1:-1]
    else:
        leak = chunked(leak, 5, joiner)
    found = _redacted_and_found(secret, leak, before, after)
    names = expected_forms(encoding, secret)
    assert found.form in {"split across lines" if name == "raw" else f"{name}, split across lines" for name in names}
    assert found.line == before.count("\n") + 2


@given(secret=secrets, client_id=st.text(TOKEN, max_size=40), before=filler)
def test_a_secret_inside_http_basic_auth_redacts_the_whole_credential(secret: str, client_id: str, before: str) -> None:
    token = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    text = f"{before}\nAuthorization: Basic {token}\nnext line"

    scrubbed = SecretScrubber([secret]).scrub(text)

    assert scrubbed == f"{before}\nAuthorization: Basic {REDACTED}\nnext line"


@given(text=st.text(st.characters(exclude_characters=string.ascii_letters + string.digits, exclude_categories=["Cs"])),
       issued=st.lists(secrets, max_size=5))
def test_text_without_secrets_comes_back_unchanged(text: str, issued: list[str]) -> None:
    scrubber = SecretScrubber(issued)

    assert scrubber.scrub(text) == text
    assert scrubber.find(text) == []
    assert tail(text, 50, scrubber) == (f"[{len(text) - 50} earlier characters dropped]\n{text[-50:]}"
                                        if len(text) > 50 else text)
    assert head(text, 50, scrubber) == (f"{text[:50]}\n[{len(text) - 50} later characters dropped]"
                                        if len(text) > 50 else text)


def test_ordinary_report_text_is_untouched() -> None:
    text = ('{"flow": "accounts", "source_id": "001xx000003DGb2AAG", "reason": "HTTP 400: Name required"}\n'
            "2024-05-01T10:00:00Z INFO cycle done: 12 synced, 0 failed; see https://example.test/a?b=c%20d\n")
    scrubber = SecretScrubber(["Zq8-vT2!mW9.xL4_pR7kN3sB6yH1cF5g", "9F86D081884C7D659A2FEAA0C55AD015"])

    assert scrubber.scrub(text) == text


def test_find_reports_each_leak_with_its_line_and_a_redacted_excerpt() -> None:
    secret, other = "Zq8-vT2!mW9.xL4_pR7kN3sB6yH1cF5g", "9F86D081884C7D659A2FEAA0C55AD015"
    text = "\n".join([
        "start", f"client_secret={secret}", "x" * 500 + f" sig={other.lower()} " + "y" * 500,
        "Authorization: Basic " + base64.b64encode(f"id:{secret}".encode()).decode(), chunked(secret, 8, "\n"), "end",
    ])

    leaks = SecretScrubber([secret, other]).find(text)

    assert [(leak.form, leak.line) for leak in leaks] == [
        ("raw", 2), ("raw", 3), ("base64", 4), ("split across lines", 5)]
    assert leaks[0].excerpt == f"client_secret={REDACTED}"
    assert REDACTED in leaks[1].excerpt and len(leaks[1].excerpt) == 200
    assert leaks[3].excerpt == REDACTED


def test_short_and_duplicate_secrets_are_ignored_and_add_extends() -> None:
    scrubber = SecretScrubber(["short", "Zq8-vT2!mW9.xL4_pR7kN3sB6yH1cF5g", "Zq8-vT2!mW9.xL4_pR7kN3sB6yH1cF5g"])
    later = "later-issued-token-0123456789abc"

    assert scrubber.scrub("short Zq8-vT2!mW9.xL4_pR7kN3sB6yH1cF5g " + later) == f"short {REDACTED} {later}"
    scrubber.add([later])
    assert scrubber.scrub(later) == REDACTED


CUTS = [(encoding, joiner) for encoding in ["raw", "quote", "json-u-lower", "hex-lower", "basic-auth", "base32"]
        for joiner in ["", "\n", "\\n"] if not (encoding == "json-u-lower" and joiner == "\\n")]


@pytest.mark.parametrize(("encoding", "joiner"), CUTS)
@settings(max_examples=5, deadline=None)
@given(secret=secrets)
def test_tail_and_head_leak_nothing_of_a_secret_cut_at_any_offset(encoding: str, joiner: str, secret: str) -> None:
    leak = chunked(ENCODINGS[encoding][1](secret), 5, joiner) if joiner else ENCODINGS[encoding][1](secret)
    before, after = "#; " * 40 + "\n", "\n" + " ;#" * 40
    text = before + leak + after
    scrubber = SecretScrubber([secret])

    for cut in range(len(before) - 1, len(before) + len(leak) + 2):
        kept_tail = tail(text, len(text) - cut, scrubber)
        kept_head = head(text, cut, scrubber)

        body = re.sub(r"\A\[\d+ earlier characters dropped\]\n", "", kept_tail)
        assert len(body) <= len(text) - cut
        assert_gone(body, secret, leak)
        body = re.sub(r"\n\[\d+ later characters dropped\]\Z", "", kept_head)
        assert len(body) <= cut
        assert_gone(body, secret, leak)


def test_tail_and_head_keep_a_secret_far_from_the_cut_redacted() -> None:
    secret = "Zq8-vT2!mW9.xL4_pR7kN3sB6yH1cF5g"
    text = "a" * 1000 + f" {secret} " + "b" * 1000
    scrubber = SecretScrubber([secret])

    kept_a = 1100 - len(f" {REDACTED} ") - 1000
    assert tail(text, 1100, scrubber) == (f"[{1000 - kept_a} earlier characters dropped]\n"
                                          + "a" * kept_a + f" {REDACTED} " + "b" * 1000)
    assert head(text, 1020, scrubber) == "a" * 1000 + f" {REDACTED} " + "b" * 8 + (
        f"\n[{1000 - 8} later characters dropped]")
    assert tail(text, 5000, scrubber) == head(text, 5000, scrubber) == scrubber.scrub(text)


def test_scrub_tree_scrubs_every_string_and_key_of_a_copy() -> None:
    secret = "Zq8-vT2!mW9.xL4_pR7kN3sB6yH1cF5g"
    tree = {"env": {"SYNCERT_CRM_SECRET": secret, secret: [1, 2.5, True, None, f"Bearer {secret}"]},
            "lines": (quote(secret), "ok")}

    scrubbed = scrub_tree(tree, SecretScrubber([secret]))

    assert scrubbed == {"env": {"SYNCERT_CRM_SECRET": REDACTED, REDACTED: [1, 2.5, True, None, f"Bearer {REDACTED}"]},
                        "lines": (REDACTED, "ok")}
    assert tree["env"]["SYNCERT_CRM_SECRET"] == secret
