"""Fifty devices in fifty processes uploading at once: nothing lost, nothing twice."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cleartrace.org.keys import OrgKeys
from cleartrace.org.registry import Registry
from tests.support import SUPPORT
from tests.support.org_process import collector_running, leftovers

DEVICES = 50
UPLOADS = 3
FLEET = SUPPORT / "org_device.py"


def test_fifty_concurrent_devices_lose_and_duplicate_nothing(
    tmp_path: Path, org_keys: OrgKeys
) -> None:
    data = tmp_path / "data"
    org_file = tmp_path / "bundle.pub"
    org_file.write_text(json.dumps(org_keys.bundle_public.as_json()))
    with collector_running(data) as collector:
        tokens = collector.tokens(DEVICES)
        fleet = subprocess.run(
            [sys.executable, str(FLEET), collector.url, str(org_file), str(UPLOADS), *tokens],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    assert fleet.returncode == 0, fleet.stderr
    reports = json.loads(fleet.stdout)
    assert [r["error"] for r in reports if "error" in r] == []
    assert len(reports) == DEVICES
    assert all(r["statuses"] == [201] * UPLOADS for r in reports)
    assert all(r["replay"] == [200, False] for r in reports)
    names = [n for r in reports for n in r["names"]]
    assert len(set(names)) == DEVICES * UPLOADS

    stored = {p.name.removesuffix(".ctb") for p in (data / "bundles").iterdir()}
    assert stored == set(names)
    assert leftovers(data) == []
    registry = Registry.open(data)
    try:
        assert registry.bundle_count() == DEVICES * UPLOADS
        heads = {d.hex: [d.head.seq, d.head.hash] for d in registry.devices()}
    finally:
        registry.close()
    assert heads == {r["device"]: r["head"] for r in reports}
    for r in reports:
        head_file = json.loads((data / "heads" / f"{r['device']}.json").read_text())
        assert [head_file["seq"], head_file["hash"]] == r["head"]
        assert head_file["bundle"] == r["names"][-1]
