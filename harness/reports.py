"""Certification reports: report.json (schema `syncert.report/1`), report.html, summary.md.

report.json fields:
  schema, run_id, started_at, finished_at, duration_s, syncert_version, seed,
  connector {name, version, manifest, mode, crm, erp, flows}, requested_level, level_reached (null for a
  partial run), selection (the --only pattern or null), replay (the --replay file or null), jobs (scenarios
  run at a time), cpu {total_s, harness_s (pytest, the simulators, the checks), connector_and_locust_s}, verdict
  ("certified" | "not certified" | "interrupted"; for a partial run chosen with --only or --replay:
  "passed" | "failed", about the selected scenarios),
  levels {"1".."4": {name, status (passed | failed | not_applicable | not_run), reason, scenarios}; empty for a
  partial run},
  flows_certified, flows_not_certified,
  counts {passed, failed, error, not_applicable, skipped},
  metrics {sync_latency_p50_s, sync_latency_p99_s, api_calls_per_synced_record, scenarios_run},
  scenarios [{id, category, level, flows, needs_webhooks, intent, status, duration_s, message, evidence}]
  (evidence.attachments: {file name: its path in the report directory}, e.g. CHAOS-01's chaos-replay.json)
Secrets known to the run are replaced by [REDACTED], in every encoding, in every file before it is written.

Levels: for each level L, the applicable scenarios are those of level L whose flows the connector
declares (and, for those that need change events, that receives them). A level is failed when one of
them failed or errored, passed when at least one passed and none failed, not applicable when none
applies. The level reached is the highest L whose own status is passed while every level up to L is
passed or not applicable. SEC-LEAK-01 (level 4, every connector) fails on any credential the connector
wrote to its output or dead letters; CONTRACT-01 (level 4, every connector) on any request it sent that broke
its vendor's contract.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import statistics
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from syncert.harness.secrets import SecretScrubber, scrub_tree
from syncert.harness.surge import surge_figures

SCHEMA = "syncert.report/1"
LEVELS = {1: "Visibility", 2: "One-way sync", 3: "Two-way sync", 4: "Production-ready"}


RAN = ("passed", "failed", "error")


def assess_levels(scenarios: list[dict[str, Any]], declared_flows: list[str],
                  requested_level: int) -> tuple[int, dict[str, dict[str, Any]]]:
    """The level reached and, per level, its status and the reason for it (see the module docstring)."""
    levels: dict[str, dict[str, Any]] = {}
    reached, blocked_by = 0, None
    for level, name in LEVELS.items():
        of_level = [s for s in scenarios if s["level"] == level]
        ran = [s for s in of_level if s["status"] in RAN]
        failed = [s for s in ran if s["status"] != "passed"]
        if level > requested_level and not ran:
            status, reason = "not_run", f"above the requested level {requested_level}"
        elif failed:
            status = "failed"
            reason = "; ".join(f"{s['id']} {s['status']}: {_first_line(s['message'])}" for s in failed[:5])
        elif ran:
            status, reason = "passed", f"{len(ran)} applicable scenario(s) passed"
        else:
            status = "not_applicable"
            needs = sorted({", ".join(s["flows"]) + (" and change events (webhook_path)" if s.get("needs_webhooks")
                                                     else "")
                            for s in of_level if s["status"] == "not_applicable"})
            reason = (f"no scenario of this level applies to the declared flows ({', '.join(declared_flows)})"
                      + (f"; its scenarios need: {' | '.join(needs)}" if needs else ""))
        if status == "passed" and blocked_by is None:
            reached = level
        elif status == "passed":
            reason += (f", but level {blocked_by} {levels[str(blocked_by)]['status'].replace('_', ' ')}, "
                       "so this level is not reached")
        if status in ("failed", "not_run") and blocked_by is None:
            blocked_by = level
        levels[str(level)] = {"name": name, "status": status, "reason": reason,
                              "scenarios": [s["id"] for s in ran]}
    return reached, levels


def certified_flows(scenarios: list[dict[str, Any]], declared_flows: list[str], reached: int) -> list[str]:
    """Declared flows exercised by a passed scenario at or below the level reached."""
    exercised = {flow for s in scenarios if s["status"] == "passed" and s["level"] <= reached for flow in s["flows"]}
    return [flow for flow in declared_flows if flow in exercised]


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0][:200] if lines else ""


def metrics(scenarios: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's headline figures. A surge counts by its own figures (its `surge` check: the calls and the
    records of the surge), and its lag stands for the latency when only surges ran (`syncert surge`)."""
    surges = [s["evidence"]["checks"]["surge"]["summary"] for s in scenarios
              if "surge" in (s.get("evidence") or {}).get("checks", {})]
    others = [s for s in scenarios if s.get("evidence") and "surge" not in s["evidence"].get("checks", {})]
    latencies = sorted(s["evidence"]["latency_s"] for s in others if s["evidence"].get("latency_s") is not None)
    calls = sum(sum(s["evidence"].get("api_calls", {}).values()) for s in others)
    calls += sum(sum(surge["api_calls"].values()) for surge in surges)
    synced = sum(surge["synced"] for surge in surges) + sum(
        check["summary"].get("synced", 0) for s in others for check in s["evidence"].get("checks", {}).values())
    if len(surges) == 1 and not latencies:
        return {"sync_latency_p50_s": surges[0]["lag_p50_s"], "sync_latency_p99_s": surges[0]["lag_p99_s"],
                "api_calls_per_synced_record": surges[0]["api_calls_per_record"],
                "scenarios_run": sum(1 for s in scenarios if s["status"] in ("passed", "failed"))}

    def percentile(fraction: float) -> float | None:
        if not latencies:
            return None
        if len(latencies) == 1:
            return latencies[0]
        return round(statistics.quantiles(latencies, n=100, method="inclusive")[int(fraction * 100) - 1], 3)

    return {"sync_latency_p50_s": percentile(0.5), "sync_latency_p99_s": percentile(0.99),
            "api_calls_per_synced_record": round(calls / synced, 2) if synced else None,
            "scenarios_run": sum(1 for s in scenarios if s["status"] in ("passed", "failed"))}


def time_text(report: dict[str, Any]) -> str:
    """How long the run took, and whose CPU time it was."""
    cpu, jobs = report.get("cpu") or {}, report["jobs"]
    text = f"time: {report['duration_s']:.0f} s" + (f", {jobs} scenarios at a time" if jobs > 1 else "")
    if cpu.get("total_s"):
        outside = cpu["connector_and_locust_s"]
        text += (f"; CPU {cpu['total_s']:.0f} s: the harness (pytest, simulators, checks) {cpu['harness_s']:.0f} s "
                 f"({cpu['harness_s'] / cpu['total_s']:.0%}), the connector and Locust {outside:.0f} s")
    return text


def build_report(*, run_id: str, started_at: str, finished_at: str, duration_s: float, version: str, seed: int,
                 connector: dict[str, Any], requested_level: int, scenarios: list[dict[str, Any]],
                 selection: str | None = None, interrupted: str | None = None,
                 replay: str | None = None, jobs: int = 1, cpu: dict[str, float] | None = None) -> dict[str, Any]:
    """The report.json document; `interrupted` names the signal that stopped the run, if one did."""
    reached, levels = assess_levels(scenarios, connector["flows"], requested_level)
    counts = {status: sum(1 for s in scenarios if s["status"] == status)
              for status in ("passed", "failed", "error", "not_applicable", "skipped")}
    if interrupted:  # what ended proves nothing about a level
        verdict, reached, levels = "interrupted", None, {}
    elif selection:  # a selection proves what it ran, never a level: nothing is assessed or certified
        verdict = "passed" if counts["passed"] and not counts["failed"] and not counts["error"] else "failed"
        reached, levels = None, {}
    else:
        verdict = "certified" if reached >= requested_level else "not certified"
    weaker = (connector.get("mapping") or {}).get("standard_checks_not_made") or []
    if weaker and verdict == "certified":
        verdict = "not certified"  # a certificate is against the standard mapping, or at least as strict
    flows = certified_flows(scenarios, connector["flows"], reached or 0)
    return {"schema": SCHEMA, "run_id": run_id, "started_at": started_at, "finished_at": finished_at,
            "duration_s": round(duration_s, 2), "syncert_version": version, "seed": seed, "connector": connector,
            "requested_level": requested_level, "level_reached": reached, "selection": selection, "replay": replay,
            "jobs": jobs, "cpu": cpu,
            "verdict": verdict, "interrupted_by": interrupted, "levels": levels, "flows_certified": flows,
            "flows_not_certified": [f for f in connector["flows"] if f not in flows], "counts": counts,
            "metrics": metrics(scenarios), "scenarios": scenarios}


_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def write_reports(report: dict[str, Any], directory: Path, junit_xml: Path | None, scrubber: SecretScrubber,
                  state: Path | None = None) -> list[str]:
    """Write every report file into `directory` (new: it must not exist yet), copy the kept `state` dirs
    into it, and point `<directory>/../latest` at it. Returns warnings for the user.

    The report is scrubbed as data first, then every file again as text. Files are created exclusively
    and links are never followed, so nothing planted in the report directory is written through."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    directory.mkdir()
    report = scrub_tree(report, scrubber)
    files = _attachments(report)
    files.update({"report.json": json.dumps(report, indent=2, default=str), "report.html": render_html(report, files),
                  "summary.md": render_summary(report)})
    if junit_xml is not None and junit_xml.exists():
        files["junit.xml"] = junit_for_ci(junit_xml.read_text(encoding="utf-8", errors="replace"), report)
    for name, text in files.items():
        (directory / name).parent.mkdir(exist_ok=True)
        fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(scrubber.scrub(text))
    if state is not None and state.is_dir():
        shutil.copytree(state, directory / "state", symlinks=True)
    return _point_latest_at(directory)


def _attachments(report: dict[str, Any]) -> dict[str, str]:
    """Files scenarios attached (a replay file...), by path in the report directory (`<scenario id>/<name>`);
    in the report each attachment becomes that path."""
    files = {}
    for scenario in report["scenarios"]:
        evidence = scenario.get("evidence") or {}
        attached = evidence.get("attachments") or {}
        evidence["attachments"] = {}
        for name, text in attached.items():
            if _SAFE_NAME.fullmatch(name) and _SAFE_NAME.fullmatch(scenario["id"]):
                files[f"{scenario['id']}/{name}"] = text
                evidence["attachments"][name] = f"{scenario['id']}/{name}"
    return files


def _point_latest_at(directory: Path) -> list[str]:
    """Replace `latest` with a link to `directory` in one step; anything but a link there is left alone."""
    latest = directory.parent / "latest"
    if latest.exists() and not latest.is_symlink():
        return [f"{latest} is not a link syncert made; it was left as it is (the report is in {directory})"]
    staged = directory.parent / f".latest-{directory.name}"
    os.symlink(directory.name, staged)
    os.replace(staged, latest)
    return []


def junit_for_ci(junit: str, report: dict[str, Any]) -> str:
    """pytest's junit.xml with scenario ids as test names, plus the run-wide checks (SEC-LEAK-01, CONTRACT-01)
    as cases."""
    root = ElementTree.fromstring(junit)
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return junit
    by_nodeid = {s["nodeid"]: s for s in report["scenarios"] if s.get("nodeid")}
    for case in suite.iter("testcase"):
        scenario = by_nodeid.get(f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}")
        if scenario is not None:
            case.set("name", f"{scenario['id']} {case.get('name')}")
    for check in (s for s in report["scenarios"] if not s.get("nodeid")):
        case = ElementTree.SubElement(suite, "testcase", classname="syncert.run_wide_checks", name=check["id"],
                                      time="0")
        if check["status"] != "passed":
            ElementTree.SubElement(case, "failure", message=check["message"][:500]).text = check["message"]
            suite.set("failures", str(int(suite.get("failures", "0")) + 1))
        suite.set("tests", str(int(suite.get("tests", "0")) + 1))
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True)


def level_text(report: dict[str, Any]) -> str:
    if report.get("interrupted_by"):
        return f"interrupted by {report['interrupted_by']}: the scenarios that ended are reported, no level assessed"
    if report.get("replay"):
        return f"replay of {report['replay']} ({report['selection']}): level not assessed"
    if report.get("selection"):
        return f"partial run (--only {report['selection']}): level not assessed"
    flows = ", ".join(report["flows_certified"]) or "none"
    uncovered = (f" (declared but not certified, no passed scenario exercises them: "
                 f"{', '.join(report['flows_not_certified'])})" if report["flows_not_certified"] else "")
    weaker = (report["connector"].get("mapping") or {}).get("standard_checks_not_made") or []
    caveat = (f"; judged by its own mapping, which leaves out or changes {len(weaker)} comparison(s) of the "
              "standard mapping, so no certificate" if weaker else "")
    return (f"level reached {report['level_reached']} ({LEVELS.get(report['level_reached'], 'none')}), "
            f"requested {report['requested_level']}; flows certified: {flows}{uncovered}{caveat}")


def counts_text(report: dict[str, Any]) -> str:
    counts = report["counts"]
    return (f"{counts['passed']} passed, {counts['failed']} failed, {counts['error']} error, "
            f"{counts['not_applicable']} not applicable")


def level_lines(report: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(level, name, status, reason) per level, for the text and HTML reports."""
    return [(level, entry["name"], entry["status"].replace("_", " "), entry["reason"])
            for level, entry in report["levels"].items()]


def render_summary(report: dict[str, Any]) -> str:
    connector, m = report["connector"], report["metrics"]
    lines = [f"## syncert: {connector['name']} {connector['version']} — **{report['verdict'].upper()}**", "",
             f"{_sentence(level_text(report))}. {counts_text(report)}. Run `{report['run_id']}`.", "",
             f"Sync latency p50 {_fmt(m['sync_latency_p50_s'])} s, p99 {_fmt(m['sync_latency_p99_s'])} s; "
             f"API calls per synced record {_fmt(m['api_calls_per_synced_record'])}.", "",
             "| level | | status | why |", "|---|---|---|---|"]
    lines += [f"| {level} | {name} | {status} | {reason.replace('|', '/')[:200]} |"
              for level, name, status, reason in level_lines(report)]
    lines += ["", "| scenario | level | status | time | detail |", "|---|---|---|---|---|"]
    for s in report["scenarios"]:
        detail = (s["message"] or s["intent"]).replace("|", "\\|").replace("\n", " ")[:160]
        lines.append(f"| {s['id']} | {s['level']} | {s['status'].replace('_', ' ')} | {s['duration_s']:.1f}s | "
                     f"{detail} |")
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    return "n/a" if value is None else str(value)


_STYLE = """
img.chart{max-width:100%;background:#fff;border:1px solid #dde1e6} figure{margin:12px 0}
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{padding:24px 32px;color:#fff} header.certified{background:#1f7a4d} header.not{background:#b3261e}
header h1{margin:0 0 4px;font-size:26px} header p{margin:2px 0;opacity:.92}
main{padding:20px 32px;max-width:1200px} table{border-collapse:collapse;width:100%;background:#fff}
th,td{border-bottom:1px solid #e3e6ea;padding:6px 10px;text-align:left;vertical-align:top}
th{background:#eef1f4} .passed{color:#1f7a4d;font-weight:600} .failed{color:#b3261e;font-weight:600}
.not_applicable,.skipped,.not_run{color:#6b7280} .error{color:#8a4b00;font-weight:600}
.metrics{display:flex;gap:16px;margin:16px 0}
.metric{background:#fff;border:1px solid #e3e6ea;border-radius:6px;padding:10px 14px}
.metric b{display:block;font-size:20px} details{background:#fff;border:1px solid #e3e6ea;border-radius:6px;
margin:10px 0;padding:8px 12px} summary{cursor:pointer;font-weight:600} pre{background:#f3f4f6;padding:8px;
overflow:auto;max-height:320px;font-size:12px} .journal{table-layout:fixed}
.journal td{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}
.verdicts td{font-size:12px;word-break:break-word} .verdicts small{color:#6b7280}
"""


def render_html(report: dict[str, Any], attached: dict[str, str] | None = None) -> str:
    """A self-contained page: no scripts, fonts or images from the network. The SVG charts among the
    `attached` files (path in the report directory -> text) are embedded as images (data: URIs in <img>,
    which run no script)."""
    e = html.escape
    connector, m = report["connector"], report["metrics"]
    certified = report["verdict"] in ("certified", "passed")
    rows = "".join(
        f"<tr><td><a href='#{e(s['id'])}'>{e(s['id'])}</a></td><td>{s['level']}</td><td>{e(s['category'])}</td>"
        f"<td class='{e(s['status'])}'>{e(s['status'].replace('_', ' '))}</td><td>{s['duration_s']:.2f}s</td>"
        f"<td>{e(s['intent'])}</td></tr>" for s in report["scenarios"])
    details = "".join(_scenario_html(s, attached or {}) for s in report["scenarios"])
    levels = "".join(f"<tr><td>{e(level)}</td><td>{e(name)}</td><td class='{e(status.replace(' ', '_'))}'>"
                     f"{e(status)}</td><td>{e(reason)}</td></tr>"
                     for level, name, status, reason in level_lines(report))
    metric_boxes = "".join(
        f"<div class='metric'>{e(label)}<b>{e(_fmt(value))}</b></div>" for label, value in (
            ("sync latency p50 (s)", m["sync_latency_p50_s"]), ("sync latency p99 (s)", m["sync_latency_p99_s"]),
            ("API calls per synced record", m["api_calls_per_synced_record"]), ("scenarios run", m["scenarios_run"])))
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>syncert report: {e(connector['name'])} — {e(report['verdict'])}</title><style>{_STYLE}</style></head><body>
<header class="{'certified' if certified else 'not'}"><h1 id="verdict">{e(report['verdict'].upper())}</h1>
<p>{e(connector['name'])} {e(connector['version'])} ({e(connector['mode'])} mode, {e(connector['crm'])} &harr;
{e(connector['erp'])}) &mdash; {e(level_text(report))}</p>{_mapping_note(connector)}
<p>{e(counts_text(report))} &middot; run {e(report['run_id'])} &middot; seed {report['seed']} &middot;
{report['duration_s']}s</p>
</header><main><div class="metrics">{metric_boxes}</div>
<table id="levels"><thead><tr><th>level</th><th></th><th>status</th><th>why</th></tr></thead><tbody>{levels}</tbody>
</table><p></p>
<table id="scenarios"><thead><tr><th>scenario</th><th>level</th><th>category</th><th>status</th><th>time</th>
<th>intent</th></tr></thead><tbody>{rows}</tbody></table><h2>Evidence</h2>{details}</main></body></html>
"""


VERDICT_ROWS = 200


def _mapping_note(connector: dict[str, Any]) -> str:
    """Under the verdict: a connector judged by its own mapping says so, and what it leaves unchecked."""
    mapping = connector.get("mapping") or {}
    if mapping.get("standard", True):
        return ""
    missing = mapping.get("standard_checks_not_made") or []
    return (f"<p>judged by the connector's own mapping ({html.escape(str(mapping.get('path')))})"
            + (f": {len(missing)} comparison(s) of the standard mapping not made: "
               f"{html.escape(', '.join(missing[:20]))}{' ...' if len(missing) > 20 else ''}" if missing else "")
            + "</p>")


def _verdicts_html(verdicts: dict[str, dict[str, Any]]) -> str:
    """Failing business keys of a reconciliation: each differing field with expected, actual and origin."""
    e = html.escape
    rows = []
    for key, verdict in list(verdicts.items())[:VERDICT_ROWS]:
        fields = verdict.get("fields") or [{}]
        note = verdict.get("explained_by")
        for index, diff in enumerate(fields):
            lead = (f"<td rowspan='{len(fields)}'>{e(key)}</td><td rowspan='{len(fields)}'>{e(verdict['outcome'])}"
                    + (f"<br><small>dead letter: {e(note)}</small>" if note else "")
                    + f"<br><small>target: {e(', '.join(verdict.get('target_ids') or ['none']))}</small></td>"
                    if index == 0 else "")
            cells = (f"<td>{e(diff.get('field', ''))}<br><small>{e(diff.get('vendor_field', ''))}</small></td>"
                     f"<td>{e(json.dumps(diff.get('expected'), ensure_ascii=False, default=str))}</td>"
                     f"<td>{e(json.dumps(diff.get('actual'), ensure_ascii=False, default=str))}</td>"
                     f"<td><small>{e(diff.get('came_from', ''))}</small></td>" if diff else "<td colspan='4'></td>")
            rows.append(f"<tr>{lead}{cells}</tr>")
    more = (f"<p>{len(verdicts) - VERDICT_ROWS} more business keys in report.json</p>"
            if len(verdicts) > VERDICT_ROWS else "")
    return ("<table class='verdicts'><tr><th>business key</th><th>outcome</th><th>field</th><th>expected</th>"
            f"<th>actual</th><th>where the expected value came from</th></tr>{''.join(rows)}</table>{more}")


def _scenario_html(s: dict[str, Any], attached: dict[str, str]) -> str:
    e = html.escape
    evidence = s.get("evidence") or {}
    parts = [f"<p>{e(s['intent'])}</p>"]
    if s["message"]:
        parts.append(f"<pre>{e(s['message'])}</pre>")
    for name, check in evidence.get("checks", {}).items():
        if name == "surge":
            parts.append(f"<p><b>surge</b></p><pre>{e(chr(10).join(surge_figures(check['summary'])))}</pre>")
        else:
            parts.append(f"<p><b>{e(name)}</b>: {e(json.dumps(check['summary']))}</p>")
        if check.get("diffs") and all(isinstance(v, dict) and "outcome" in v for v in check["diffs"].values()):
            parts.append(_verdicts_html(check["diffs"]))
        elif check.get("diffs"):
            parts.append(f"<p>expected vs actual:</p><pre>{e(json.dumps(check['diffs'], indent=2, default=str))}</pre>")
    for note in evidence.get("notes", []):
        parts.append(f"<p>{e(note)}</p>")
    charts = [name for name, path in (evidence.get("attachments") or {}).items()
              if name.endswith(".svg") and path in attached]  # shown open: a chart is there to be seen
    for name, path in (evidence.get("attachments") or {}).items():
        if name in charts:
            image = base64.b64encode(attached[path].encode("utf-8")).decode("ascii")
            parts.append(f'<figure><img class="chart" alt="{e(name)}" src="data:image/svg+xml;base64,{image}">'
                         f'<figcaption><a href="{e(path)}">{e(name)}</a></figcaption></figure>')
        else:
            parts.append(f'<p><b>attached</b>: <a href="{e(path)}">{e(name)}</a></p>')
    if evidence.get("dead_letters"):
        parts.append(f"<p><b>dead letters</b></p><pre>{e(json.dumps(evidence['dead_letters'], indent=2))}</pre>")
    if evidence.get("security_findings"):
        parts.append(f"<p><b>credentials written by the connector (redacted)</b></p>"
                     f"<pre>{e(json.dumps(evidence['security_findings'], indent=2))}</pre>")
    broken = (evidence.get("contract_violations") or {}).get("count")
    if broken:
        parts.append(f"<p><b>{broken} request(s) that broke the vendor's contract</b> (the first, with the rule "
                     f"broken)</p><pre>{e(json.dumps(evidence['contract_violations']['first'], indent=2))}</pre>")
    for index, cycle in enumerate(evidence.get("cycles", []), 1):
        output = (cycle["stdout"] + cycle["stderr"]).strip()
        parts.append(f"<p>cycle {index}: {e(cycle['summary'])}</p>" + (f"<pre>{e(output[-3000:])}</pre>"
                                                                      if output and s["status"] != "passed" else ""))
    for side, entries in evidence.get("journal_excerpt", {}).items():
        if entries:
            rows = "".join(f"<tr><td>{x['seq']}</td><td>{e(x['method'])}</td><td>{e(x['path'])}</td>"
                           f"<td>{x['status']} {e(' '.join(x.get('tags', ())))}</td><td>{x['duration_ms']}</td>"
                           f"<td>{e(x['response_body'][:160])}</td></tr>" for x in entries)
            parts.append(f"<p><b>{side.upper()} journal excerpt</b></p><table class='journal'><tr><th>#</th>"
                         f"<th>method</th><th>path</th><th>status, tags</th><th>ms</th><th>response</th></tr>"
                         f"{rows}</table>")
    return (f"<details id='{e(s['id'])}' {'open' if s['status'] == 'failed' or charts else ''}><summary>{e(s['id'])} — "
            f"<span class='{e(s['status'])}'>{e(s['status'].replace('_', ' '))}</span></summary>{''.join(parts)}"
            "</details>")


def _sentence(text: str) -> str:
    """`text` with its first letter in upper case (and nothing else changed: ids and flags keep their case)."""
    return text[:1].upper() + text[1:]
