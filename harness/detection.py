"""The detection matrix: every scenario against every flawed connector (and the reference).

    python -m syncert.harness.detection [--out reports/detection-matrix.md] [--jobs N]

A cell is "caught" when the scenario fails on that connector. Each flawed connector has one defect
and one scenario built to catch it (the diagonal); other scenarios may catch it too.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from syncert import connectors

FLAWED = Path(connectors.__file__).parent / "flawed"
REFERENCE = Path(connectors.__file__).parent / "reference" / "connector.toml"


def run_catalogue(manifest: Path) -> dict[str, str]:
    """Scenario id -> status, from a full certify run in a child process."""
    with tempfile.TemporaryDirectory() as reports:
        subprocess.run([sys.executable, "-m", "syncert", "certify", str(manifest), "--report-dir", reports],
                       capture_output=True, text=True, timeout=1800)
        report = json.loads((Path(reports) / "latest" / "report.json").read_text())
    return {s["id"]: s["status"] for s in report["scenarios"]}


def render(rows: dict[str, dict[str, str]], targets: dict[str, str]) -> list[str]:
    """One row per connector: the scenario aimed at its defect, whether it caught it, and every other
    scenario that failed on it (the matrix's off-diagonal); the reference row lists any failure."""
    lines = ["| connector | aimed at | caught by it | also caught by |", "|---|---|---|---|"]
    for name, statuses in rows.items():
        failed = [scenario for scenario, status in statuses.items() if status in ("failed", "error")]
        target = targets.get(name)
        caught = "—" if target is None else ("**yes**" if statuses.get(target) == "failed" else "**NO**")
        others = [scenario for scenario in failed if scenario != target]
        lines.append(f"| {name} | {target or '(no defect)'} | {caught} | {', '.join(others) or '·'} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("reports") / "detection-matrix.md")
    parser.add_argument("--jobs", type=int, default=1, help="connectors certified at once (default 1)")
    args = parser.parse_args()
    sys.path.insert(0, str(FLAWED))
    from run_flawed import DEFECTS

    started = time.monotonic()
    manifests = {"reference": REFERENCE, **{defect: FLAWED / defect / "connector.toml" for defect in DEFECTS}}
    rows: dict[str, dict[str, str]] = {}
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for name, statuses in zip(manifests, pool.map(run_catalogue, manifests.values()), strict=True):
            rows[name] = statuses
            print(f"{name}: {sum(v == 'failed' for v in statuses.values())} scenario(s) failed "
                  f"({time.monotonic() - started:.0f}s)", flush=True)
    lines = render(rows, {name: target for name, (_, target) in DEFECTS.items()})
    missed = [d for d, (_, target) in DEFECTS.items() if rows[d].get(target) != "failed"]
    lines += ["", f"Reference: {sum(v == 'passed' for v in rows['reference'].values())}/{len(rows['reference'])} "
              f"passed. Defects caught by their own scenario: {len(DEFECTS) - len(missed)}/{len(DEFECTS)}. "
              f"Measured in {time.monotonic() - started:.0f}s with --jobs {args.jobs}."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    sys.exit(1 if missed or any(v != "passed" for v in rows["reference"].values()) else 0)


if __name__ == "__main__":
    main()
