"""The loading recipes docs/dataset.md and the README show an ML engineer, run
as written on a real ingested dataset: every ```python block (with the real
`datasets`, polars, pyarrow) in a fresh interpreter, every ```sql block in
DuckDB. (Spark's is tagged ```pyspark: no Spark here.)

The dataset is made so that the first JSON Lines file a reader meets lacks a
kind (a bundle of typing only, on an earlier day): the case `datasets`' JSON
loader failed on before the features files."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from tests.support.ingest_world import World, at, recorded_session, typed

ROOT = Path(__file__).resolve().parents[2]
_BLOCK = re.compile(r"^```(python|sql)\n(.*?)^```", re.DOTALL | re.MULTILINE)
#: What a recipe leaves behind that must hold rows when it ran on a dataset.
_RESULTS = ("events", "actions", "episodes", "table", "keys_by_app")

_RUNNER = """
import sys, json
blocks = json.load(open(sys.argv[1]))
for i, block in enumerate(blocks):
    scope = {"__name__": "__doc__"}
    try:
        exec(compile(block, f"<block {i}>", "exec"), scope)
    except Exception as exc:
        sys.exit(f"block {i} failed: {type(exc).__name__}: {exc}\\n{block}")
    for name in RESULTS:
        if name in scope and len(scope[name]) == 0:
            sys.exit(f"block {i}: {name} is empty\\n{block}")
print("ran", len(blocks))
"""


def blocks(text: str, language: str) -> list[str]:
    return [body for lang, body in _BLOCK.findall(text) if lang == language]


def readme_ml_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## Training on it")
    return text[start : text.index("\n## ", start + 1)]


@pytest.fixture
def dataset(world: World, tmp_path: Path) -> Path:
    """A dataset ingested from two devices, copied to `DATASET` in a working directory."""
    recorded_session(world, world.device())
    early = world.device()
    early.give(at(-3000))
    early_session = "e" * 32
    world.collector.upload(early, early.bundle(typed("hello", at(-2000)), early_session))
    world.ingest()
    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(world.out, work / "DATASET")
    first = sorted((work / "DATASET" / "events").rglob("*.jsonl"))[0]
    assert '"kind":"scroll"' not in first.read_text()
    return work / "DATASET"


def run_python(blocks_: list[str], dataset: Path) -> None:
    work = dataset.parent
    (work / "blocks.json").write_text(json.dumps(blocks_))
    env = {
        **os.environ,
        "HF_HOME": str(work / "hf"),
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
    }
    runner = f"RESULTS = {_RESULTS!r}\n" + textwrap.dedent(_RUNNER)
    done = subprocess.run(
        [sys.executable, "-c", runner, "blocks.json"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"ran {len(blocks_)}" in done.stdout


def run_sql(blocks_: list[str], dataset: Path) -> None:
    for block in blocks_:
        rows = duckdb.sql(block.replace("DATASET/", f"{dataset}/")).fetchall()
        assert rows, block


def test_the_documented_recipes_run(dataset: Path) -> None:
    text = (ROOT / "docs" / "dataset.md").read_text(encoding="utf-8")
    python, sql = blocks(text, "python"), blocks(text, "sql")
    assert len(python) >= 5
    assert len(sql) >= 2
    assert any("polars" in b for b in python)
    assert any("Features" in b for b in python)
    run_python(python, dataset)
    run_sql(sql, dataset)


def test_the_readme_recipes_run(dataset: Path) -> None:
    section = readme_ml_section()
    python, sql = blocks(section, "python"), blocks(section, "sql")
    assert python
    assert sql
    joined = "\n".join(python + sql)
    for library in ("datasets", "polars", "read_parquet"):
        assert library in joined
    run_python(python, dataset)
    run_sql(sql, dataset)


def test_without_the_features_the_json_loader_fails_on_this_dataset(dataset: Path) -> None:
    """Why the recipe passes the features: the same load without them fails."""
    bare = (
        "from datasets import load_dataset\n"
        "events = load_dataset('json', data_files='DATASET/events/**/*.jsonl', split='train')\n"
    )
    work = dataset.parent
    env = {**os.environ, "HF_HOME": str(work / "hf"), "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", bare],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode != 0
    assert "Couldn't cast" in done.stderr or "DatasetGenerationError" in done.stderr
