"""Figures: every plot takes a result or table and ``ax=`` and returns a matplotlib Figure."""
