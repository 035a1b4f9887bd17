"""Remote sources: fetching, reading the feed formats, preparing entries, the updater."""
