"""Publishing: rendering feeds and pages from the store, writing the exported tree."""
