"""The surge's charts, as SVG text: backlog and lag over time, the ERP's interactive latency before and during.

Drawn with matplotlib (its Agg backend: no display needed); each chart marks the profile's phases.
The report embeds them in report.html and saves them beside it (evidence attachments).
"""

from __future__ import annotations

import io
from typing import Any

from syncert.harness.surge import SurgeMetrics

COLOURS = {"orders": "#1f77b4", "invoices": "#ff7f0e", "payments": "#2ca02c", "accounts": "#9467bd"}


def surge_charts(metrics: SurgeMetrics, title: str) -> dict[str, str]:
    """File name -> SVG text for each chart the metrics can draw."""
    import matplotlib

    matplotlib.use("Agg")
    charts = {"surge-backlog.svg": _backlog(metrics, title), "surge-lag.svg": _lag(metrics, title)}
    if metrics.interactive:
        charts["surge-erp-latency.svg"] = _latency(metrics, title)
    return charts


def _figure() -> tuple[Any, Any]:
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(8, 3.6), dpi=100)
    axes.grid(True, alpha=0.3)
    return figure, axes


def _phases(axes: Any, metrics: SurgeMetrics) -> None:
    for index, (name, start, end) in enumerate(metrics.phases):
        if index % 2:
            axes.axvspan(start, end, color="#888888", alpha=0.08, linewidth=0)
        axes.text(start, 1.0, f" {name}", transform=axes.get_xaxis_transform(), fontsize=7, va="bottom",
                  color="#555555")


def _svg(figure: Any) -> str:
    from matplotlib import pyplot

    buffer = io.StringIO()
    figure.tight_layout()
    figure.savefig(buffer, format="svg", metadata={"Date": None})  # no date: the same figures, the same file
    pyplot.close(figure)
    return buffer.getvalue()


def _backlog(metrics: SurgeMetrics, title: str) -> str:
    figure, axes = _figure()
    flows = sorted({flow for flow, points in metrics.lag_points.items() if points}
                   | {flow for _, backlog in metrics.backlog for flow, waiting in backlog.items() if waiting})
    times = [t for t, _ in metrics.backlog]
    for flow in flows:
        axes.step(times, [backlog.get(flow, 0) for _, backlog in metrics.backlog], where="post", label=flow,
                  color=COLOURS.get(flow))
    _phases(axes, metrics)
    axes.set_xlabel("seconds since the surge began")
    axes.set_ylabel("records waiting to sync")
    axes.set_title(f"{title}: backlog", fontsize=10, pad=14)
    if flows:
        axes.legend(fontsize=8, loc="upper left")
    return _svg(figure)


def _lag(metrics: SurgeMetrics, title: str) -> str:
    figure, axes = _figure()
    for flow, points in sorted(metrics.lag_points.items()):
        if points:
            axes.scatter([t for t, _ in points], [lag for _, lag in points], s=8, label=flow,
                         color=COLOURS.get(flow))
    _phases(axes, metrics)
    axes.set_xlabel("seconds since the surge began (when the target showed the change)")
    axes.set_ylabel("sync lag (s)")
    axes.set_title(f"{title}: sync lag per record", fontsize=10, pad=14)
    if any(metrics.lag_points.values()):
        axes.legend(fontsize=8, loc="upper left")
    return _svg(figure)


def _latency(metrics: SurgeMetrics, title: str) -> str:
    figure, axes = _figure()
    periods = [p for p in ("before", "during") if p in metrics.interactive]
    width = 0.38
    for offset, period in enumerate(periods):
        figures = metrics.interactive[period]
        values = [figures[f"p{p}_ms"] for p in (50, 95, 99)]
        positions = [index + (offset - 0.5) * width for index in range(3)]
        axes.bar(positions, values, width, label=f"{period} the surge ({figures['requests']} requests)",
                 color="#7f7f7f" if period == "before" else "#d62728")
    axes.set_xticks(range(3), ["p50", "p95", "p99"])
    axes.set_ylabel("ERP interactive latency (ms)")
    axes.set_title(f"{title}: what the ERP's users saw", fontsize=10)
    axes.legend(fontsize=8)
    return _svg(figure)
