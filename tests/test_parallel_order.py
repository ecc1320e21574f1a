"""`--jobs N`: the longest scenarios start first, in every worker's first slice (pytest_plugin._longest_first)."""

from __future__ import annotations

from types import SimpleNamespace

from syncert.harness.pytest_plugin import _longest_first


def _item(name: str, expected_s: float) -> SimpleNamespace:
    marker = SimpleNamespace(kwargs={"expected_s": expected_s})
    return SimpleNamespace(name=name, get_closest_marker=lambda _: marker)


def test_each_workers_slice_starts_with_its_longest_and_the_slices_take_about_as_long() -> None:
    durations = [50, 33, 30, 29, 27, 21, 18, 17, 16, 12, 8, 6, 5, 5] + [2] * 57
    items = [_item(f"s{n}", d) for n, d in enumerate(durations)]
    ordered = _longest_first(items, 4)
    assert sorted(i.name for i in ordered) == sorted(i.name for i in items)
    # pytest-xdist (worksteal) first hands the workers 17, 18, 18 and 18 consecutive items
    sizes, slices, start = [17, 18, 18, 18], [], 0
    for size in sizes:
        slices.append([i.get_closest_marker("scenario").kwargs["expected_s"] for i in ordered[start:start + size]])
        start += size
    assert [s[0] for s in slices] == sorted((s[0] for s in slices), reverse=True) == [50, 33, 30, 29]
    assert all(s == sorted(s, reverse=True) for s in slices)
    totals = [sum(s) for s in slices]
    assert max(totals) - min(totals) <= 12, totals


def test_one_worker_keeps_every_item() -> None:
    items = [_item("a", 1), _item("b", 9)]
    assert [i.name for i in _longest_first(items, 1)] == ["b", "a"]
