"""SQL LIKE without regular expressions: at worst O(len(text) * len(pattern)), never exponential.

A pattern is split at `%` into segments of fixed length (`_` matches any one character). The first
segment must match at the start, the last at the end, and the middle ones are placed leftmost in
order: placing a segment as early as possible never prevents a later one from matching.
"""

from __future__ import annotations

ANY_ONE = None  # a `_` inside a segment

Segment = tuple[str | None, ...]


class LikePattern:
    """A compiled LIKE pattern; `escape` makes the next `%`, `_` or escape character literal."""

    def __init__(self, pattern: str, escape: str | None = None, case_sensitive: bool = True):
        self.case_sensitive = case_sensitive
        segments: list[list[str | None]] = [[]]
        characters = iter(pattern if case_sensitive else pattern.lower())
        for character in characters:
            if escape is not None and character == (escape if case_sensitive else escape.lower()):
                following = next(characters, None)
                if following is None:
                    raise ValueError(f"LIKE pattern {pattern!r} ends with its escape character")
                segments[-1].append(following)
            elif character == "%":
                segments.append([])
            elif character == "_":
                segments[-1].append(ANY_ONE)
            else:
                segments[-1].append(character)
        self.segments: list[Segment] = [tuple(segment) for segment in segments]

    def matches(self, text: str) -> bool:
        if not self.case_sensitive:
            text = text.lower()
        first, last = self.segments[0], self.segments[-1]
        if len(self.segments) == 1:
            return len(text) == len(first) and _matches_at(text, first, 0)
        end = len(text) - len(last)
        if end < len(first) or not _matches_at(text, first, 0) or not _matches_at(text, last, end):
            return False
        position = len(first)
        for segment in self.segments[1:-1]:
            found = _find(text, segment, position, end)
            if found < 0:
                return False
            position = found + len(segment)
        return True


def like(text: str, pattern: str, escape: str | None = None, case_sensitive: bool = True) -> bool:
    """Whether `text` matches the LIKE `pattern`."""
    return LikePattern(pattern, escape, case_sensitive).matches(text)


def literal_pattern(text: str, escape: str = "\\") -> str:
    """`text` with its wildcards and escape characters escaped, for building CONTAINS-like patterns."""
    return "".join(escape + c if c in ("%", "_", escape) else c for c in text)


def _matches_at(text: str, segment: Segment, start: int) -> bool:
    if start + len(segment) > len(text):
        return False
    return all(want is ANY_ONE or text[start + i] == want for i, want in enumerate(segment))


def _find(text: str, segment: Segment, start: int, end: int) -> int:
    """Leftmost position p in [start, end - len(segment)] where `segment` matches, or -1."""
    if ANY_ONE not in segment:
        return text.find("".join(segment), start, end)  # type: ignore[arg-type]
    for position in range(start, end - len(segment) + 1):
        if _matches_at(text, segment, position):
            return position
    return -1
