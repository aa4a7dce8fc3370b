"""Review: `--heads-from` given a libpq keyword string (the other form libpq
takes a state in, as `--state` handles) must not echo its password back: the
error goes to the operator's terminal and to whatever logs the run."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import ct

SECRET = "hunter2-not-for-logs"  # noqa: S105 (a canary, searched for)


def test_heads_from_a_keyword_state_with_a_password_is_not_echoed(tmp_path: Path) -> None:
    keys, store = tmp_path / "keys", tmp_path / "store"
    store.mkdir()
    ct("org", "keygen", "--out", str(keys), "--suite", "x25519")
    state = f"host=db.invalid user=ct password={SECRET} dbname=fleet"
    done = ct("org", "ingest", "--from", str(store), "--keys", str(keys),
              "--out", str(tmp_path / "dataset"), "--heads-from", state,
              check=False)  # fmt: skip
    assert done.returncode == 2
    assert SECRET not in done.stderr + done.stdout, done.stderr
