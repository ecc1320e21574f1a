"""The detection matrix: every scenario against every flawed connector (and the reference).

    python -m syncert.harness.detection [--out reports/detection-matrix.md]

A cell is "caught" when the scenario fails on that connector. Each flawed connector has one defect
and one scenario built to catch it (the diagonal); other scenarios may catch it too.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from syncert import connectors

FLAWED = Path(connectors.__file__).parent / "flawed"
REFERENCE = Path(connectors.__file__).parent / "reference" / "connector.toml"


def run_catalogue(manifest: Path) -> dict[str, str]:
    """Scenario id -> status, from a full certify run in a child process."""
    with tempfile.TemporaryDirectory() as reports:
        subprocess.run([sys.executable, "-m", "syncert", "certify", str(manifest), "--report-dir", reports],
                       capture_output=True, text=True, timeout=900)
        report = json.loads((Path(reports) / "latest" / "report.json").read_text())
    return {s["id"]: s["status"] for s in report["scenarios"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("reports") / "detection-matrix.md")
    args = parser.parse_args()
    sys.path.insert(0, str(FLAWED))
    from run_flawed import DEFECTS

    rows = {"reference": run_catalogue(REFERENCE)}
    for defect in DEFECTS:
        rows[defect] = run_catalogue(FLAWED / defect / "connector.toml")
        print(f"{defect}: {sum(v == 'failed' for v in rows[defect].values())} scenario(s) caught it", flush=True)
    scenarios = list(rows["reference"])
    mark = {"failed": "caught", "passed": "·", "not_applicable": "n/a", "skipped": "skip"}
    lines = ["| connector | " + " | ".join(scenarios) + " |", "|---" * (len(scenarios) + 1) + "|"]
    for name, statuses in rows.items():
        cells = [("**caught**" if name != "reference" and DEFECTS[name][1] == s and statuses.get(s) == "failed"
                  else mark.get(statuses.get(s, ""), "?")) for s in scenarios]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    missed = [d for d, (_, target) in DEFECTS.items() if rows[d].get(target) != "failed"]
    lines += ["", f"Reference: {sum(v == 'passed' for v in rows['reference'].values())}/{len(scenarios)} passed. "
              f"Defects caught by their own scenario: {len(DEFECTS) - len(missed)}/{len(DEFECTS)}."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    sys.exit(1 if missed or any(v != "passed" for v in rows["reference"].values()) else 0)


if __name__ == "__main__":
    main()
