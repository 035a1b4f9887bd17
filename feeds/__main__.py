"""`python -m feeds` runs the CLI."""

from feeds.cli.main import main

raise SystemExit(main())
