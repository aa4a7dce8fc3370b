from __future__ import annotations

from cleartrace.launch import main

raise SystemExit(main())
