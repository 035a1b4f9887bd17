"""`python -m feeds` runs the CLI."""

from feeds.cli import main

raise SystemExit(main())
