from __future__ import annotations

from cleartrace.cli import main

raise SystemExit(main())
