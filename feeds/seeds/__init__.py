"""Seed documents: decoding, parsing text dumps into stories, ingesting them."""
