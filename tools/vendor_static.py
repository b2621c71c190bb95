#!/usr/bin/env python3
"""Fetch the browser libraries sandu serves itself (no CDN): Apache ECharts from the npm registry, checked against
its pinned SHA-256, into src/sandu/web/static/vendor/. Run by `make setup`; needs `npm` (apt-get install npm)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "src" / "sandu" / "web" / "static" / "vendor"
PACKAGES = [  # (npm spec, file inside the package, served as, sha256 of that file)
    ("echarts@5.6.0", "package/dist/echarts.min.js", "echarts-5.6.0.min.js", "bf4a223524e40b77c304bec67e1222cf551f14880cf42c69dc046558e11c07b1"),
]


def main() -> int:
    npm = shutil.which("npm")
    if npm is None:
        print("vendor_static: npm is needed to fetch ECharts from the registry (apt-get install npm)", file=sys.stderr)
        return 2
    VENDOR.mkdir(parents=True, exist_ok=True)
    for spec, member, name, sha in PACKAGES:
        target = VENDOR / name
        if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == sha:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            packed = subprocess.run([npm, "pack", spec, "--silent"], cwd=tmp, capture_output=True, text=True, timeout=300)
            if packed.returncode != 0:
                print(f"vendor_static: npm pack {spec} failed: {packed.stderr.strip()[:300]}", file=sys.stderr)
                return 2
            tgz = Path(tmp) / packed.stdout.strip().splitlines()[-1]
            with tarfile.open(tgz) as tar:
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha:
            print(f"vendor_static: {spec} {member} has SHA-256 {digest}, expected {sha}: not installed", file=sys.stderr)
            return 2
        target.write_bytes(data)
        print(f"vendor_static: {name} ({len(data):,} bytes) from {spec}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
