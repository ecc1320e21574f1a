"""The files of one scenario given to the connector: its state dir and its dead-letter file.

The workspace lives in a private temporary directory and is removed when the scenario ends (copied
into the report first when asked). Dead letters are read with caps; a dead-letter file that is not a
regular file, too large, or holds a line that is not a dead letter is an `EvidenceError` naming the
file and the line, never silently dropped evidence.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

DEAD_LETTER_MAX_BYTES = 8 * 1024 * 1024
DEAD_LETTER_MAX_LINE = 64 * 1024
DEAD_LETTER_MAX_ENTRIES = 10_000
DEAD_LETTER_KEYS = ("flow", "source_system", "source_id", "reason")
KEEP_STATE_MAX_BYTES = 16 * 1024 * 1024


class EvidenceError(RuntimeError):
    """Evidence the connector left cannot be read as the protocol says; the scenario is in error."""


class Workspace:
    """Per-scenario files given to the connector (SYNCERT_STATE_DIR, SYNCERT_DEAD_LETTER)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="syncert-scenario-"))
        self.state_dir = self.root / "state"
        self.state_dir.mkdir()
        self.dead_letter = self.root / "dead-letter.jsonl"

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every dead letter the connector wrote; raises EvidenceError on a file that breaks the protocol."""
        name = self.dead_letter.name
        handle = self._open_dead_letters()
        if handle is None:
            return []
        with handle:
            size = os.fstat(handle.fileno()).st_size
            if size > DEAD_LETTER_MAX_BYTES:
                raise EvidenceError(f"dead-letter file {name}: {size:,} bytes, over the "
                                    f"{DEAD_LETTER_MAX_BYTES:,}-byte cap (one line per record given up on)")
            entries: list[dict[str, Any]] = []
            for number, raw in enumerate(handle.read(DEAD_LETTER_MAX_BYTES + 1).splitlines(), 1):
                if not raw.strip():
                    continue
                if len(entries) >= DEAD_LETTER_MAX_ENTRIES:
                    raise EvidenceError(f"dead-letter file {name}: more than {DEAD_LETTER_MAX_ENTRIES:,} entries")
                entries.append(_dead_letter(name, number, raw))
        return entries

    def raw_dead_letters(self) -> str:
        """The dead-letter file as text, up to its cap (for the credential-leak check)."""
        with contextlib.suppress(OSError, EvidenceError):
            handle = self._open_dead_letters()
            if handle is not None:
                with handle:
                    return handle.read(DEAD_LETTER_MAX_BYTES).decode("utf-8", "replace")
        return ""

    def _open_dead_letters(self) -> BinaryIO | None:
        """The dead-letter file opened safely: never following a link, never blocking on a pipe, and checked
        on the descriptor itself, so a connector swapping files meanwhile cannot slip anything else in."""
        path = self.dead_letter
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError as error:
            kind = "symbolic link" if error.errno == errno.ELOOP else None
            raise EvidenceError(f"dead-letter file {path.name}: "
                                + (f"is not a regular file (the connector put a {kind} in its place)" if kind
                                   else f"cannot be read ({error.strerror})")) from None
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            raise EvidenceError(f"dead-letter file {path.name}: is not a regular file (the connector put a "
                                f"{_file_kind(mode)} in its place)")
        return os.fdopen(fd, "rb")

    def keep_state(self, destination: Path, scrub: Callable[[str], str]) -> None:
        """Copy the state dir's regular files (up to a total cap) to `destination`, secrets scrubbed."""
        budget = KEEP_STATE_MAX_BYTES
        for source in sorted(self.state_dir.rglob("*")):
            with contextlib.suppress(OSError):
                info = source.lstat()
                if not stat.S_ISREG(info.st_mode) or info.st_size > budget:
                    continue
                target = destination / source.relative_to(self.state_dir)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(scrub(source.read_bytes().decode("latin-1")).encode("latin-1", "replace"))
                budget -= info.st_size

    def empty(self) -> None:
        """Forget what the connector kept: an empty state dir and no dead letters (a fresh start)."""
        self.remove()
        self.state_dir.mkdir(parents=True)

    def remove(self) -> None:
        """Delete everything under the workspace, whatever the connector did to permissions."""
        def make_writable_and_retry(function: Any, path: str, _: Any) -> None:
            with contextlib.suppress(OSError):
                os.chmod(os.path.dirname(path), 0o700)
                os.chmod(path, 0o700)
                function(path)

        shutil.rmtree(self.root, onerror=make_writable_and_retry)


def _dead_letter(name: str, number: int, raw: bytes) -> dict[str, Any]:
    where = f"dead-letter file {name}, line {number}"
    if len(raw) > DEAD_LETTER_MAX_LINE:
        raise EvidenceError(f"{where}: {len(raw):,} bytes, over the {DEAD_LETTER_MAX_LINE:,}-byte cap for one entry")
    try:
        entry = json.loads(raw)
    except RecursionError:
        raise EvidenceError(f"{where}: JSON nested too deeply to be a dead letter") from None
    except ValueError as error:
        raise EvidenceError(f"{where}: not JSON ({error})") from None
    if not isinstance(entry, dict):
        raise EvidenceError(f"{where}: a JSON {type(entry).__name__}, not an object with "
                            f"{', '.join(DEAD_LETTER_KEYS)}")
    missing = [key for key in DEAD_LETTER_KEYS if key not in entry]
    if missing:
        raise EvidenceError(f"{where}: missing {', '.join(missing)} (a dead letter is "
                            '{"flow", "source_system", "source_id", "reason"})')
    if any(isinstance(value, dict | list) for value in entry.values()):
        raise EvidenceError(f"{where}: values must be strings or numbers, not nested objects")
    return entry


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISDIR, "directory"), (stat.S_ISLNK, "symbolic link"), (stat.S_ISFIFO, "named pipe"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "device"), (stat.S_ISBLK, "device")):
        if test(mode):
            return kind
    return "special file"
