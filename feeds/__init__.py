"""newsroom-feeds: seed documents and remote feeds -> per-section RSS, Atom and JSON Feed."""

__version__ = "0.1.0"
