"""Bounded capture of a connector's output: a thread drains a pipe and keeps its head and tail.

However much a connector prints, the harness holds at most HEAD_BYTES + TAIL_BYTES of it per stream
and counts the rest, so a connector printing 500 MiB costs the harness a few hundred KiB. Secrets
are scrubbed later, from the text kept here, before anything is truncated again for a report.
"""

from __future__ import annotations

import os
import select
import threading

HEAD_BYTES = 64 * 1024
TAIL_BYTES = 192 * 1024
_CHUNK = 64 * 1024


class OutputCapture:
    """One output stream of a connector process, read through a pipe until its writers close it."""

    def __init__(self, head_bytes: int = HEAD_BYTES, tail_bytes: int = TAIL_BYTES):
        self._head_limit, self._tail_limit = head_bytes, tail_bytes
        self._lock = threading.Lock()
        self._head = bytearray()
        self._tail = bytearray()
        self._dropped = 0
        self._read_fd, self.write_fd = os.pipe()
        self._thread = threading.Thread(target=self._drain, name="syncert-output", daemon=True)
        self._thread.start()

    def writer_handed_over(self) -> None:
        """Close the harness's copy of the write end once the child holds its own."""
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self._read_fd, _CHUNK)
            except OSError:
                break
            if not chunk:
                break
            self._keep(chunk)
        os.close(self._read_fd)

    def _keep(self, chunk: bytes) -> None:
        with self._lock:
            room = self._head_limit - len(self._head)
            if room > 0:
                self._head += chunk[:room]
                chunk = chunk[room:]
            self._tail += chunk
            excess = len(self._tail) - self._tail_limit
            if excess > 0:
                del self._tail[:excess]
                self._dropped += excess

    def settle(self) -> None:
        """Wait briefly until what the child wrote so far has been read (the pipe looks empty)."""
        for _ in range(50):
            try:
                readable, _, _ = select.select([self._read_fd], [], [], 0)
            except (OSError, ValueError):
                return
            if not readable:
                return
            threading.Event().wait(0.005)

    def take(self) -> str:
        """The output kept since the last take(), as text, then start afresh."""
        with self._lock:
            head, tail, dropped = bytes(self._head), bytes(self._tail), self._dropped
            self._head.clear()
            self._tail.clear()
            self._dropped = 0
        middle = f"\n[{dropped} bytes of output dropped here]\n".encode() if dropped else b""
        return (head + middle + tail).decode("utf-8", "replace")

    def finish(self, wait_s: float = 2.0) -> str:
        """Wait for the end of the stream (every writer gone) up to `wait_s`, then take()."""
        self.writer_handed_over()
        self._thread.join(wait_s)
        return self.take()
