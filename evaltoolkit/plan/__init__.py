"""Analysis plans: run a design's analyses (``run``, ``runners``), pool sites, power."""
