"""Opening a home: keys, the encrypted store and the ledger, in that order."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from cleartrace.consent.exclusions import seal_plaintext_list
from cleartrace.consent.ledger import Ledger
from cleartrace.paths import Paths, ensure_private_dirs
from cleartrace.store.db import connect
from cleartrace.store.key_files import save_device_public
from cleartrace.store.keys import Keys
from cleartrace.store.rotation import open_keys
from cleartrace.store.sessions import Store

__all__ = ["Home"]


@dataclass(slots=True)
class Home:
    """An opened home. The store and the ledger use separate connections so
    the writer thread and the control thread never share one."""

    paths: Paths
    keys: Keys
    store: Store
    ledger: Ledger

    @classmethod
    def open(cls, paths: Paths, *, create: bool) -> Home:
        """Open the home; with `create`, set up keys and the store on first use.

        Raises:
            HomeError: the home directory is unsafe.
            KeyStorageError: keys are missing (never silently replaced).
            UsageError: a master key rotation in another process did not finish in time.
            StoreError: the store is corrupt, full or does not match the key.
        """
        ensure_private_dirs(paths)
        keys = open_keys(paths, create=create)
        save_device_public(paths, keys.device.public_key().public_bytes_raw())
        store = Store.open(paths, keys)
        try:
            ledger = Ledger(connect(paths.db), paths.db, keys.device)
        except BaseException:
            store.close()
            raise
        try:
            # Whatever opens the home (not only what reads the list) moves a
            # list an older version kept in plaintext out of sight at once.
            seal_plaintext_list(ledger, keys.master)
        except BaseException:
            ledger.close()
            store.close()
            raise
        return cls(paths=paths, keys=keys, store=store, ledger=ledger)

    def close(self) -> None:
        self.store.close()
        with contextlib.suppress(Exception):
            self.ledger.close()
