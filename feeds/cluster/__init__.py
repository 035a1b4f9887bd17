"""Fetch workers past one machine: jobs and results over a Redis task queue, one store writer.

``queue`` is the adapter to the queue library (Dramatiq on Redis), ``codec``
turns records into message bodies and back, ``worker`` is what a ``feeds
worker`` process runs, ``dispatch`` is the daemon's side (sending jobs,
storing results) and ``status`` what ``feeds status`` and /healthz show.
"""
