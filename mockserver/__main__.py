"""``python -m mockserver`` is ``aurous-mock``."""

try:
    from mockserver.cli import main
except KeyboardInterrupt:  # Ctrl-C while Python is still importing: as quiet as one a moment later (cli.main)
    raise SystemExit(130) from None

raise SystemExit(main())
