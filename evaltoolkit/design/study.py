"""A study: a design (analysis plan) bound to survey data, validated at the boundary.

``Study(design, data)`` checks that the data can carry the plan - every column the design names
exists, every arm and wave label occurs, there is more than one cluster, each wave has treated and
control people, nobody answers the same wave twice - and raises a :class:`DesignError` or
:class:`DataError` naming the field or column otherwise. Rows whose arm or wave is not in the design
are set aside and *counted* (``study.excluded``), never silently lost.

Examples
--------
>>> import evaltoolkit as et
>>> sim = et.simulate_study("ncs_prepost_control", n=300, seed=2)
>>> study = et.Study(sim.design, sim.data)
>>> study.flow().columns.tolist()
['arm', 'wave', 'n', 'retention']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from evaltoolkit.design.schema import Design, did_you_mean, load_design
from evaltoolkit.errors import DataError, DesignError


@dataclass
class Exclusion:
    """Rows set aside before analysis, with the reason."""

    reason: str
    n_rows: int


@dataclass
class Study:
    """Design + data. See the module docstring.

    Parameters
    ----------
    design : Design, str or Path
        The analysis plan (object, bundled name or YAML path).
    data : DataFrame
        Long data: one row per person per wave (``post_only`` designs: one row per person).
    source : str, optional
        File the data came from (used in error messages).
    """

    design: Design
    data: pd.DataFrame
    source: str | None = None
    excluded: list[Exclusion] = field(default_factory=list)
    read_as: dict[str, str] = field(default_factory=dict)
    #: the row of the file (as the user sees it: header on row 1) of each row of ``data``
    file_rows: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.design, Design):
            self.design = load_design(self.design if not isinstance(self.design, Path) else str(self.design))
        if not isinstance(self.data, pd.DataFrame):
            raise DataError("data must be a pandas DataFrame (one row per person per wave)", file=self.source)
        self.data = self._validate(self.data.copy())

    # ------------------------------------------------------------------------------------------
    def _validate(self, data: pd.DataFrame) -> pd.DataFrame:
        d, src = self.design, self.source
        cols = d.columns
        data = self._read_scored_columns(data)
        required = {
            "columns.id": cols.id,
            "columns.arm": cols.arm,
            **({"columns.wave": cols.wave} if d.kind != "post_only" else {}),
            **{f"columns.clusters[{i}]": c for i, c in enumerate(cols.clusters)},
        }
        for fld, col in required.items():
            if col not in data.columns:
                raise DesignError(
                    f"the design names column '{col}', which is not in the data{did_you_mean(col, data.columns)} "
                    f"(columns are: {', '.join(map(str, data.columns[:15]))}"
                    f"{'...' if data.shape[1] > 15 else ''})",
                    field=fld,
                    file=src,
                )
        for o in d.outcomes:
            if o.name not in data.columns:
                from_scale = f" (nor is its scale '{o.scale}')" if o.scale else ""
                raise DesignError(
                    f"outcome '{o.name}' is not a column of the data{from_scale}"
                    f"{did_you_mean(o.scale or o.name, data.columns)}; score the export first (evaltoolkit score "
                    "--design ...) or correct the outcome name",
                    field="outcomes",
                    file=src,
                )
        for group, names in (
            ("covariates", d.covariates),
            ("moderators", d.moderators),
            ("mediators", d.mediators),
        ):
            for c in names:
                if c not in data.columns:
                    raise DesignError(
                        f"'{c}' is not a column of the data{did_you_mean(c, data.columns)}",
                        field=group,
                        file=src,
                    )
        for name in dict.fromkeys(
            [*(o.name for o in d.outcomes), *(m for m in d.mediators if m in data.columns)]
        ):
            data[name] = self._numeric(data, name)
        data[cols.arm] = self._design_names(data[cols.arm], d.arms.all, d.arms.labels)
        present_arms = set(data[cols.arm].unique())
        for arm in d.arms.all:
            if arm not in present_arms:
                raise DesignError(
                    f"arm label '{arm}' does not occur in column '{cols.arm}' "
                    f"(labels found: {', '.join(sorted(present_arms)[:10])})",
                    field="arms",
                    file=src,
                )
        unknown_arm = ~data[cols.arm].isin(d.arms.all)
        if unknown_arm.any():
            k = int(data.loc[unknown_arm, cols.arm].nunique())  # values not quoted: they may identify people
            self.excluded.append(
                Exclusion(
                    f"value in column '{cols.arm}' not an arm of the design ({k} distinct value(s))",
                    int(unknown_arm.sum()),
                )
            )
            data = data.loc[~unknown_arm]
        if d.kind != "post_only":
            data[cols.wave] = self._design_names(
                data[cols.wave], d.wave_names, {w.name: w.label for w in d.waves if w.label}
            )
            present_waves = set(data[cols.wave].unique())
            for w in d.wave_names:
                if w not in present_waves:
                    raise DesignError(
                        f"wave '{w}' does not occur in column '{cols.wave}' "
                        f"(waves found: {', '.join(sorted(present_waves)[:10])})",
                        field="waves",
                        file=src,
                    )
            unknown_wave = ~data[cols.wave].isin(d.wave_names)
            if unknown_wave.any():
                self.excluded.append(Exclusion("wave not in the design", int(unknown_wave.sum())))
                data = data.loc[~unknown_wave]
            for w in d.wave_names:
                arms_here = set(data.loc[data[cols.wave] == w, cols.arm])
                if d.arms.treated not in arms_here:
                    raise DesignError(
                        f"wave '{w}' has no treated ({d.arms.treated}) people", field="waves", file=src
                    )
                if not arms_here & set(d.arms.control):
                    raise DesignError(f"wave '{w}' has no control people", field="waves", file=src)
            key = [cols.id, cols.wave]
        else:
            key = [cols.id]
        dup = data.duplicated(key, keep=False).to_numpy()
        if dup.any():
            pos = int(np.flatnonzero(dup)[0])
            label = data.index[pos]
            # row as the user sees it in the file: header on line 1, first data row on line 2
            row = int(label) + 2 if isinstance(label, int | np.integer) and data.index.is_unique else pos + 2
            raise DataError(
                f"{int(dup.sum())} rows share an id{' and wave' if len(key) > 1 else ''} "
                "(the first at the row named); each person may answer each wave once",
                column=cols.id,
                row=row,
                file=src,
            )
        for c in cols.clusters:
            if data[c].nunique() < 2:
                raise DesignError(
                    f"cluster column '{c}' has only one cluster; clustered inference needs several",
                    field="columns.clusters",
                    file=src,
                )
        labels = data.index
        ints = labels.is_unique and all(isinstance(x, int | np.integer) for x in labels[:1000])
        self.file_rows = np.asarray(labels, dtype=int) + 2 if ints else np.arange(len(data)) + 2
        return data.reset_index(drop=True)

    @staticmethod
    def _design_names(values: pd.Series, names: list[str], labels: dict[str, str]) -> pd.Series:
        """Arm or wave values as text; values written as the design's labels (any case) read as its names."""
        text = values.astype(str)
        if text.isin(names).all():
            return text
        table = {" ".join(str(k).lower().split()): n for n in names for k in (n, labels.get(n, n))}
        return text.map(lambda v: table.get(" ".join(v.lower().split()), v) if isinstance(v, str) else v)

    def _read_scored_columns(self, data: pd.DataFrame) -> pd.DataFrame:
        """Scored data name a measure by its instrument scale (``ncs_attitudes``); read it as the design's column.

        A column already named as in the design wins; each column read under its scale's name is listed in
        ``self.read_as`` (the report's data section says so).
        """
        for column, source in self.design.sources.items():
            if column not in data.columns and source in data.columns:
                data[column] = data[source]
                self.read_as[column] = source
        return data

    def _numeric(self, data: pd.DataFrame, name: str) -> pd.Series:
        """An outcome or mediator column as numbers; text that is not a number is refused, naming the cell."""
        col = data[name]
        if pd.api.types.is_numeric_dtype(col):
            return col
        num = pd.to_numeric(col, errors="coerce")
        bad = num.isna() & col.notna() & (col.astype(str).str.strip() != "")
        if bad.any():
            pos = int(np.flatnonzero(bad.to_numpy())[0])
            label = data.index[pos]
            row = int(label) + 2 if isinstance(label, int | np.integer) and data.index.is_unique else pos + 2
            value = str(col.iloc[pos])
            hint = (
                "; the file seems to use decimal commas: save it with decimal points (or as .xlsx)"
                if "," in value and pd.notna(pd.to_numeric(value.replace(",", "."), errors="coerce"))
                else "; correct or blank that cell (missing answers are left blank)"
            )
            raise DataError(
                f"column '{name}' should hold numbers (it is an outcome or mediator of the design), "
                f"but holds text ({int(bad.sum())} such cell(s), the first at the row named){hint}",
                column=name,
                row=row,
                file=self.source,
            )
        return num

    # ------------------------------------------------------------------------------------------
    @property
    def n_people(self) -> int:
        return int(self.data[self.design.columns.id].nunique())

    def flow(self) -> pd.DataFrame:
        """People responding per arm and wave, and retention relative to baseline.

        Returns
        -------
        DataFrame with columns ``arm, wave, n, retention`` (raw counts; apply
        :func:`evaltoolkit.privacy.suppress_small_cells` before publishing).
        """
        d, c = self.design, self.design.columns
        if d.kind == "post_only":
            counts = self.data.groupby(c.arm)[c.id].nunique()
            return pd.DataFrame(
                {"arm": counts.index, "wave": "post", "n": counts.to_numpy(), "retention": np.nan}
            )
        counts = self.data.groupby([c.arm, c.wave])[c.id].nunique().rename("n").reset_index()
        counts.columns = ["arm", "wave", "n"]
        base = counts[counts["wave"] == d.baseline].set_index("arm")["n"]
        counts["retention"] = counts["n"] / counts["arm"].map(base)
        order = {w: i for i, w in enumerate(d.wave_names)}
        arm_order = {a: i for i, a in enumerate(d.arms.all)}
        return counts.sort_values(
            ["arm", "wave"], key=lambda s: s.map(order if s.name == "wave" else arm_order)
        ).reset_index(drop=True)

    def cell_means(self, outcome: str, alpha: float = 0.05, transform=None) -> pd.DataFrame:
        """Mean, SD, n and 95% CI of ``outcome`` per arm and wave (raw; suppress before publishing).

        ``transform`` (a function of the column) is applied first, e.g. a % agree indicator times 100; missing
        values stay missing.
        """
        from scipy import stats

        d, c = self.design, self.design.columns
        by = [c.arm] if d.kind == "post_only" else [c.arm, c.wave]
        data = self.data
        if transform is not None:
            col = data[outcome]
            data = data.assign(**{outcome: pd.Series(transform(col), index=col.index).where(col.notna())})
        g = data.groupby(by)[outcome]
        out = g.agg(mean="mean", sd="std", n="count").reset_index()
        if d.kind == "post_only":
            out.insert(1, "wave", "post")
        out.columns = ["arm", "wave", "mean", "sd", "n"]
        se = out["sd"] / np.sqrt(out["n"])
        tcrit = stats.t.ppf(1 - alpha / 2, np.maximum(out["n"] - 1, 1))
        out["ci_lower"] = out["mean"] - tcrit * se
        out["ci_upper"] = out["mean"] + tcrit * se
        out["outcome"] = outcome
        return out
