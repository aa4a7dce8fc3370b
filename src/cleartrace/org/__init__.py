"""The organisation's side: keys, policy signing, the collector and ingest."""

#: The dataset's file formats (see docs/dataset.md); here so that the CLI can
#: offer them without loading pyarrow.
FORMATS = ("parquet", "jsonl")
