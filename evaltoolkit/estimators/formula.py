"""A small formula interface for :func:`~evaltoolkit.estimators.did.did` and :func:`~evaltoolkit.estimators.ancova.ancova`.

An estimator's ``outcome`` may be a formula ``"y ~ x1 + C(x2)"``: the left-hand side is the outcome column and the
right-hand side the covariates, exactly as if they were given as ``covariates=["x1", "C(x2)"]``. Only ``+``, column
names and ``C(column)`` (a categorical covariate) are understood; anything else (``*``, ``:``, ``|``, ``-``,
``I(...)``, numbers) is refused with an error naming it, so a formula never means something other than it says.
Arms, waves, clusters and fixed effects stay keyword arguments.

Examples
--------
>>> parse_formula("attitudes ~ female + C(site)")
Formula(outcome='attitudes', covariates=('female', 'C(site)'))
>>> outcome_and_covariates("attitudes ~ age", ())
('attitudes', ['age'])
>>> outcome_and_covariates("attitudes", ["age"])
('attitudes', ['age'])
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from evaltoolkit.errors import UsageError

__all__ = ["Formula", "covariate_column", "outcome_and_covariates", "parse_formula"]

_NAME = r"[^\W\d]\w*"
_COLUMN = re.compile(rf"^{_NAME}$")
_CATEGORICAL = re.compile(rf"^C\(\s*({_NAME})\s*\)$")
_HELP = "only column names joined by '+' and C(column) are understood"


@dataclass(frozen=True)
class Formula:
    """A parsed ``"outcome ~ covariate + C(covariate)"``: the outcome column and the covariate terms, in order."""

    outcome: str
    covariates: tuple[str, ...]


def parse_formula(text: str) -> Formula:
    """Read ``"y ~ x1 + C(x2)"``; raise :class:`~evaltoolkit.errors.UsageError` naming any token not understood.

    Examples
    --------
    >>> parse_formula("y ~ C( site ) + age").covariates
    ('C(site)', 'age')
    >>> parse_formula("y ~ treat * post")
    Traceback (most recent call last):
    ...
    evaltoolkit.errors.UsageError: cannot read 'treat * post' in the formula 'y ~ treat * post': only column names joined by '+' and C(column) are understood
    """
    sides = str(text).split("~")
    if len(sides) != 2:
        raise UsageError(f"a formula has one '~' between the outcome and the covariates: {text!r}")
    lhs, rhs = (side.strip() for side in sides)
    if not _COLUMN.match(lhs):
        raise UsageError(f"cannot read the outcome {lhs!r} in the formula {text!r}: give one column name")
    terms = []
    for token in (t.strip() for t in rhs.split("+")):
        categorical = _CATEGORICAL.match(token)
        if categorical:
            terms.append(f"C({categorical.group(1)})")
        elif _COLUMN.match(token):
            terms.append(token)
        else:
            raise UsageError(f"cannot read {token!r} in the formula {text!r}: {_HELP}")
    return Formula(lhs, tuple(terms))


def outcome_and_covariates(outcome: str, covariates: Sequence[str] | str) -> tuple[str, list[str]]:
    """The outcome column and covariate terms from ``outcome`` (a column or a formula) and ``covariates``.

    Covariates come from the formula or from ``covariates=``, not both (an ambiguous call is refused).

    Examples
    --------
    >>> outcome_and_covariates("y ~ a + b", [])
    ('y', ['a', 'b'])
    >>> outcome_and_covariates("y ~ a", ["b"])
    Traceback (most recent call last):
    ...
    evaltoolkit.errors.UsageError: give the covariates in the formula or in covariates=, not both
    """
    covariates = [covariates] if isinstance(covariates, str) else list(covariates)
    if not isinstance(outcome, str) or "~" not in outcome:
        return outcome, covariates
    if covariates:
        raise UsageError("give the covariates in the formula or in covariates=, not both")
    formula = parse_formula(outcome)
    return formula.outcome, list(formula.covariates)


def covariate_column(term: str) -> tuple[str, bool]:
    """A covariate term's data column and whether it is categorical: ``"C(site)" -> ("site", True)``.

    Examples
    --------
    >>> covariate_column("C(site)"), covariate_column("age")
    (('site', True), ('age', False))
    """
    categorical = _CATEGORICAL.match(str(term).strip())
    return (categorical.group(1), True) if categorical else (term, False)
