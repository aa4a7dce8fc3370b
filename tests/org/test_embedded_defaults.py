"""The embedded defaults need no server and load none of the engines beyond
one machine: a collector's state in DATA/collector.db, ingest in-process into
a directory. An organisation that installs ClearTrace without the
`postgresql`, `iceberg` or `ray` extras gets a working collector and ingest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

_SCRIPT = """
import json, sys
from pathlib import Path
from cleartrace.org.ingest import ingest
from cleartrace.org.keys import generate
from cleartrace.org.state import open_state

root = Path(sys.argv[1])
state = open_state(root / "data", None)
tokens = state.issue_tokens(1)
state.close()
generate(root / "keys")
(root / "store").mkdir()
summary = ingest(str(root / "store"), root / "keys", root / "dataset")
engines = ("psycopg", "pyiceberg", "ray", "duckdb", "sqlalchemy")
print(json.dumps({
    "tokens": len(tokens),
    "bundles": summary.bundles_read,
    "loaded": sorted(m for m in sys.modules if m.split(".")[0] in engines),
}))
"""


def test_the_default_collector_state_and_ingest_load_no_engine(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"tokens": 1, "bundles": 0, "loaded": []}
    assert (tmp_path / "data" / "collector.db").is_file()
    assert (tmp_path / "dataset").is_dir()
