"""``python -m mockserver`` is ``aurous-mock``."""

from mockserver.cli import main

raise SystemExit(main())
