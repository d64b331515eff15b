"""README's first command: `bash scripts/dev example` sets up, runs the bundled example (pipelines.yaml +
fixtures/), verifies its last image with the trust policy (signature, provenance, SBOM) and ends with
`pipeline tree` of it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_bundled_example_runs_attests_and_ends_with_its_tree() -> None:
    done = subprocess.run(["bash", "scripts/dev", "example"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((ROOT / "reports" / "example.json").read_text())
    last = report["images"][-1]["reference"]
    lines = done.stdout.strip().splitlines()
    tree = lines[lines.index(last) :]  # the tree is the last thing printed, headed by the image
    assert any("https://slsa.dev/provenance/v1" in line and ".att" in line for line in tree), tree
    assert any("https://cyclonedx.org/bom" in line and "referrer" in line for line in tree), tree
    assert any(line.lstrip("│├└─ ").startswith("signatures (") for line in tree), tree
    assert f"{last}: verified (" in done.stdout and "provenance (builder" in done.stdout
    # The base's SBOM names the Debian package its busybox comes from, read from the pushed layers.
    base = next(i["reference"] for i in report["images"] if i["name"] == "base")
    sbom = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "pipeline"), "verify", "-f", "pipelines.yaml", base, "--type", "sbom", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert sbom.returncode == 0, sbom.stderr
    components = json.loads(sbom.stdout)["attestations"][0]["predicate"]["components"]
    assert any(c["name"] == "busybox-static" and c.get("purl", "").startswith("pkg:deb/debian/") for c in components)
