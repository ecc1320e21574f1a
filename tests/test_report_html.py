"""report.html renders by itself in headless Chromium: the verdict banner and the scenario table."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--window-size=1280,900"]


def _chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
@pytest.mark.parametrize(("manifest", "verdict", "banner"), [
    ("connectors/reference/connector.toml", "PASSED", (0x1F, 0x7A, 0x4D)),
    ("connectors/flawed/ignores-line-discount/connector.toml", "FAILED", (0xB3, 0x26, 0x1E)),
])
def test_report_renders_verdict_and_scenario_table(tmp_path: Path, manifest: str, verdict: str,
                                                   banner: tuple[int, int, int]) -> None:
    subprocess.run([sys.executable, "-m", "syncert", "certify", manifest, "--only", "E2E-Q2C-01",
                    "--report-dir", str(tmp_path / "reports")], cwd=ROOT, capture_output=True, timeout=300)
    page = tmp_path / "reports" / "latest" / "report.html"
    report = json.loads(page.with_name("report.json").read_text())

    dom = _chromium(page, tmp_path / "profile-dom", "--dump-dom").stdout
    assert f'<h1 id="verdict">{verdict}</h1>' in dom
    assert 'id="scenarios"' in dom and all(f">{s['id']}</a>" in dom for s in report["scenarios"])
    if verdict == "FAILED":
        # the failing business key, each differing field in canonical and vendor terms, and its origin
        assert "where the expected value came from" in dom and "corrupted" in dom
        assert "sales_order.lines[item_id=" in dom and "NetSuite salesOrder.item[].rate" in dom
        assert "Salesforce OpportunityLineItem.UnitPrice" in dom

    screenshot = tmp_path / "report.png"
    _chromium(page, tmp_path / "profile-shot", f"--screenshot={screenshot}")
    image = Image.open(screenshot).convert("RGB")
    assert image.size == (1280, 900)
    assert image.getpixel((5, 5)) == banner, "the verdict banner is not rendered in the verdict's colour"
    assert len(set(image.crop((0, 150, 1280, 600)).get_flattened_data())) > 20, "no table rendered below the banner"
