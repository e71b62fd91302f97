"""How answer labels, column names and design values are compared: one normalisation for all of intake.

Examples
--------
>>> norm_label("  Don\u2019t   KNOW ")
"don't know"
>>> slug("Don't know"), lookup({"strongly_agree": 5.0}, "Strongly agree")
('don_t_know', 5.0)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TypeVar

__all__ = ["label_keys", "lookup", "norm_label", "slug"]

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " "})
T = TypeVar("T")


def norm_label(text: str) -> str:
    """Lower-case, straight quotes, single spaces: how labels are compared."""
    return " ".join(str(text).translate(_QUOTES).lower().split())


def slug(text: str) -> str:
    """``"Don't know" -> "don_t_know"``: how Kobo choice names are usually derived from labels."""
    return re.sub(r"[^0-9a-z]+", "_", norm_label(text)).strip("_")


def label_keys(text: str) -> tuple[str, str, str]:
    """The forms under which a label is looked up: normalised, slug, slug without apostrophes."""
    return norm_label(text), slug(text), slug(str(text).translate(_QUOTES).replace("'", ""))


def lookup(table: Mapping[str, T], text: str) -> T | None:
    """The entry of ``table`` (keyed by :func:`label_keys` forms) for ``text``, or None."""
    for key in label_keys(text):
        if key in table:
            return table[key]
    return None
