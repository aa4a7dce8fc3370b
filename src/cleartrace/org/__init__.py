"""The organisation's side: keys, policy signing, the collector and ingest."""
