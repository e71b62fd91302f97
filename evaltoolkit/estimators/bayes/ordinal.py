"""Bayesian cumulative-logit (proportional-odds) multilevel model for a single Likert item.

Single items such as the NCS question on comfort with a relative dating someone of another ethnic
background are ordinal: treating "strongly disagree" ... "strongly agree" as 1-5 and averaging
assumes equal spacing. :func:`bayes_ordinal` models the answer categories directly::

    P(y_i <= k) = logistic(c_k - η_i),   c_0 < c_1 < ... < c_{K-2}

    η_i = β T_i + γ post_i + δ T_i post_i + Σ_levels u_level[g(i)] + v_person[i]      (two waves)
    η_i = δ T_i + Σ_levels u_level[g(i)]                                              (one wave)

with varying intercepts by group (non-centred) and, for a two-wave panel, person intercepts. The
effect is reported two ways: ``δ`` on the log-odds scale and, more usefully, as the change in
**P(agree or strongly agree)** (the top ``top`` categories) in percentage points, averaged over the
treated people at the post wave (the effect on the treated: their predicted probability with the
programme minus without it, all else equal).

Priors (latent scale; the logistic latent variable has SD π/√3 ≈ 1.81): the effect prior comes from
:mod:`evaltoolkit.estimators.bayes.priors` with ``outcome_sd = π/√3`` (so a "0.1 SD" prior means 0.18 log-odds);
other coefficients Normal(0, 2.5); cut-points Normal(0, 5) subject to ordering; group SDs
Half-Normal(1); person SD Half-Normal(2). Sampling is nutpie's NUTS on an analytic gradient (the
same machinery as :func:`evaltoolkit.estimators.bayes.did.bayes_did`); diagnostics are those of
:func:`evaltoolkit.estimators.bayes.did.diagnose`.

Examples
--------
>>> from evaltoolkit.estimators.bayes.ordinal import bayes_ordinal
>>> from evaltoolkit.simulate.dgps import simulate_likert
>>> df = simulate_likert(n_teams=20, people_per_team=20, effect=1.0, seed=1)
>>> res = bayes_ordinal(df, "item", "arm", treated="treated", wave="wave", unit="pid",
...                     groups="team", draws=500, chains=2, seed=1)
>>> post = res.logodds  # about 0.88 (SD 0.26) with the locked versions; any valid stream passes below
>>> bool(post["sd"] <= 1.0 / 3)  # informative enough for a recovery check: SD at most a third of the effect
True
>>> bool(abs(post["mean"] - 1.0) < 4 * post["sd"])  # the true log-odds effect, 1.0, lies well inside
True
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from evaltoolkit import _compat
from evaltoolkit.errors import DataError, DesignError, EstimationError, EvalToolkitWarning
from evaltoolkit.estimators.balance import resolve_control
from evaltoolkit.estimators.bayes.did import _as_tuple, _flat, _resolve_prior, _sample_nutpie, diagnose, hdi
from evaltoolkit.results import EffectResult

__all__ = ["BayesOrdinalResult", "bayes_ordinal"]

__getattr__ = _compat.moved_names(__name__)  # 0.1 names that moved elsewhere

#: SD of the standard logistic distribution (the latent scale of a cumulative-logit model)
LOGISTIC_SD = math.pi / math.sqrt(3.0)
COEF_PRIOR_SD = 2.5
CUT_PRIOR_SD = 5.0
GROUP_SD_SCALE = 1.0
PERSON_SD_SCALE = 2.0


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class _OrdinalDensity:
    """Cumulative-logit log posterior with analytic gradient.

    Layout: ``[a (K-1 cut-point parameters: c_0 = a_0, c_j = c_{j-1} + exp(a_j)), coefficients (p),
    per level: log σ, z (G)]``.
    """

    def __init__(
        self,
        y,
        X,
        effect_col,
        level_codes,
        level_names,
        level_labels,
        n_cat,
        prior_mu,
        prior_sd,
        person_level,
    ):
        self.y = y
        self.X = X
        self.n_cat = n_cat
        self.p = X.shape[1]
        self.effect_col = effect_col
        self.codes = level_codes
        self.names = level_names
        self.labels = level_labels
        self.prior_mu, self.prior_sd = prior_mu, prior_sd
        self.person_level = person_level
        self.sizes = [int(c.max()) + 1 for c in level_codes]
        self.ndim = (n_cat - 1) + self.p + sum(1 + g for g in self.sizes)

    def _unpack(self, x):
        K1 = self.n_cat - 1
        a = x[:K1]
        cuts = a[0] + np.concatenate([[0.0], np.cumsum(np.exp(a[1:]))])
        beta = x[K1 : K1 + self.p]
        pos = K1 + self.p
        lv = []
        for g in self.sizes:
            lv.append((pos, x[pos], x[pos + 1 : pos + 1 + g]))
            pos += 1 + g
        return a, cuts, beta, lv

    def logp_grad(self, x):
        x = np.asarray(x, dtype=float)
        K = self.n_cat
        a, cuts, beta, lv = self._unpack(x)
        eta = self.X @ beta
        for (_, ls, z), codes in zip(lv, self.codes):
            eta = eta + math.exp(ls) * z[codes]
        y = self.y
        ext = np.concatenate([[-np.inf], cuts, [np.inf]])
        u = ext[y + 1] - eta  # upper
        lo = ext[y] - eta  # lower
        # log(F(u) - F(l)) computed stably
        lfu = np.where(np.isfinite(u), _log_sigmoid(np.where(np.isfinite(u), u, 0.0)), 0.0)
        lfl = np.where(np.isfinite(lo), _log_sigmoid(np.where(np.isfinite(lo), lo, 0.0)), -np.inf)
        with np.errstate(divide="ignore", invalid="ignore"):
            ld = lfu + np.log1p(-np.exp(np.minimum(lfl - lfu, -1e-300)))
        logp = float(ld.sum())
        prob = np.maximum(np.exp(ld), 1e-300)
        fu = np.where(np.isfinite(u), _sigmoid(np.where(np.isfinite(u), u, 0.0)), 1.0)
        fl = np.where(np.isfinite(lo), _sigmoid(np.where(np.isfinite(lo), lo, 0.0)), 0.0)
        du = np.where(np.isfinite(u), fu * (1 - fu), 0.0) / prob
        dl = -np.where(np.isfinite(lo), fl * (1 - fl), 0.0) / prob
        g_eta = -(du + dl)
        g_cut = np.bincount(y, du, minlength=K)[: K - 1] + np.bincount(y, dl, minlength=K)[1:K]
        # cut-point prior N(0, CUT_PRIOR_SD) and Jacobian of the ordered transform
        logp += -0.5 * float(cuts @ cuts) / CUT_PRIOR_SD**2 + float(a[1:].sum())
        g_cut = g_cut - cuts / CUT_PRIOR_SD**2
        grad = np.zeros(self.ndim)
        rc = np.cumsum(g_cut[::-1])[::-1]
        grad[0] = g_cut.sum()
        grad[1 : K - 1] = np.exp(a[1:]) * rc[1:] + 1.0
        K1 = K - 1
        gb = self.X.T @ g_eta
        psd = np.full(self.p, COEF_PRIOR_SD)
        pmu = np.zeros(self.p)
        psd[self.effect_col], pmu[self.effect_col] = self.prior_sd, self.prior_mu
        logp += -0.5 * float((((beta - pmu) / psd) ** 2).sum())
        grad[K1 : K1 + self.p] = gb - (beta - pmu) / psd**2
        for li, ((pos, ls, z), codes) in enumerate(zip(lv, self.codes)):
            s = math.exp(ls)
            scale = PERSON_SD_SCALE if (self.person_level and li == len(self.codes) - 1) else GROUP_SD_SCALE
            Gz = np.bincount(codes, g_eta, minlength=z.size)
            grad[pos + 1 : pos + 1 + z.size] = Gz * s - z
            grad[pos] = s * float(Gz @ z) - s * s / scale**2 + 1.0
            logp += -0.5 * s * s / scale**2 + ls - 0.5 * float(z @ z)
        return logp, grad

    def expand(self, x):
        _, cuts, beta, lv = self._unpack(np.asarray(x, dtype=float))
        out = {"cutpoints": np.asarray(cuts, dtype=float), "coef": np.asarray(beta, dtype=float)}
        out["effect_logodds"] = np.array(beta[self.effect_col])
        for name, (_, ls, z) in zip(self.names, lv):
            out[f"sd_{name}"] = np.array(math.exp(ls))
            out[f"z_{name}"] = np.asarray(z, dtype=float)
        return out

    def init_point(self, rng):
        x = rng.uniform(-0.2, 0.2, self.ndim)
        props = np.bincount(self.y, minlength=self.n_cat) + 0.5
        cum = np.cumsum(props)[:-1] / props.sum()
        c = np.log(cum / (1 - cum))
        x[0] = c[0]
        x[1 : self.n_cat - 1] = np.log(np.maximum(np.diff(c), 0.05))
        pos = (self.n_cat - 1) + self.p
        for g in self.sizes:
            x[pos] = math.log(0.3)
            pos += 1 + g
        return x

    def var_info(self):
        names = ["cutpoints", "coef", "effect_logodds"]
        shapes = [(self.n_cat - 1,), (self.p,), ()]
        dims = {"cutpoints": ("cut",), "coef": ("coef_name",)}
        coords: dict[str, Any] = {
            "cut": [str(i) for i in range(self.n_cat - 1)],
            "coef_name": list(self._coef_names),
        }
        for name, labels in zip(self.names, self.labels):
            names += [f"sd_{name}", f"z_{name}"]
            shapes += [(), (len(labels),)]
            dims[f"z_{name}"] = (name,)
            coords[name] = list(labels)
        return names, shapes, dims, coords


@dataclass(repr=False)
class BayesOrdinalResult(EffectResult):
    """Result of :func:`bayes_ordinal`.

    ``estimate`` is the posterior mean change in P(top categories) for the treated, in percentage
    points; ``std_error`` its posterior SD; ``ci_lower``/``ci_upper`` the 95% HDI; ``p_value`` is NaN.

    Attributes
    ----------
    idata : arviz.InferenceData
    logodds : dict
        Posterior mean, SD and 95% HDI of the effect on the log-odds (latent) scale.
    prob_positive : float
        P(effect > 0).
    categories : list
        Answer categories in order; ``top_categories`` are the ones counted as "agree".
    diagnostics : dict
        See :func:`evaltoolkit.estimators.bayes.did.diagnose`.
    """

    idata: Any = None
    logodds: dict[str, float] = field(default_factory=dict)
    prob_positive: float = math.nan
    categories: list[Any] = field(default_factory=list)
    top_categories: list[Any] = field(default_factory=list)
    prior: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def summary(self, units: str = "percentage points") -> str:
        """Plain-language summary."""
        top = " or ".join(map(str, self.top_categories))
        txt = (
            f"{self.outcome}: the programme changed the share answering {top} by {self.estimate:+.1f} "
            f"{units} (95% credible interval {self.ci_lower:+.1f} to {self.ci_upper:+.1f}); probability "
            f"that the effect is positive: {100 * self.prob_positive:.0f}%."
        )
        if self.warnings:
            txt += " Caution: " + " ".join(self.warnings)
        return txt


def bayes_ordinal(
    data: pd.DataFrame,
    item: str,
    arm: str,
    *,
    treated: Any,
    control: Any = None,
    wave: str | None = None,
    pre: Any = "baseline",
    post: Any = "post",
    unit: str | None = None,
    groups: str | Sequence[str] = ("team",),
    categories: Sequence[Any] | None = None,
    top: int = 2,
    prior: Any = "default",
    draws: int = 1000,
    chains: int = 4,
    tune: int | None = None,
    seed: int | None = None,
    analysis: str = "bayes_ordinal",
) -> BayesOrdinalResult:
    """Cumulative-logit multilevel model for one Likert item; effect on P(agree or strongly agree).

    Parameters
    ----------
    data : DataFrame
        One row per answer (long format if two waves).
    item : str
        The item column (ordered answers: integers, or labels ordered by ``categories``).
    arm : str
        Arm column; ``treated`` (and ``control`` if there are more than two arms) name the arms.
    wave, pre, post : optional
        For a before/after design give the wave column and labels (DiD on the latent scale with
        person intercepts, needs ``unit``); with ``wave=None`` the comparison is between arms at
        a single time (e.g. Best of Us adults, post only).
    unit : str, optional
        Person identifier (needed with ``wave``).
    groups : str or sequence of str
        Grouping columns for varying intercepts, outermost first (nested labels are made unique).
    categories : sequence, optional
        Answer categories in order (default: sorted distinct values).
    top : int
        How many top categories count as "agree" (2: agree or strongly agree on a 5-point item).
    prior : str, Prior or (mu, sigma)
        Effect prior on the latent scale (SD π/√3); see module docstring.
    draws, chains, tune, seed
        Sampler settings (nutpie NUTS).

    Returns
    -------
    BayesOrdinalResult
        ``estimate`` in percentage points, ``logodds`` summary, ``idata``, ``diagnostics``, ``table``.

    Raises
    ------
    DataError
        Missing columns, answers outside ``categories``, an arm or wave label that does not occur.
    DesignError
        Bad arguments (``top`` not between 1 and the number of categories - 1; ``wave`` without
        ``unit``).

    Examples
    --------
    >>> from evaltoolkit.simulate.dgps import simulate_likert
    >>> df = simulate_likert(n_teams=6, people_per_team=15, effect=1.0, waves=False, seed=4)
    >>> res = bayes_ordinal(df, "item", "arm", treated="treated", groups="team",
    ...                     draws=300, chains=2, seed=2)
    >>> res.term
    'P(top 2 categories) [pp]'
    """
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    groups_t = _as_tuple(groups)
    cols = [item, arm, *groups_t] + ([wave] if wave else []) + ([unit] if unit else [])
    for col in cols:
        if col not in data.columns:
            raise DataError("column not found", column=col)
    if wave and not unit:
        raise DesignError("a before/after ordinal model needs unit= (the person identifier)", field="unit")
    for nm, val in [("draws", draws), ("chains", chains)]:
        if not isinstance(val, (int, np.integer)) or val < 1:
            raise DesignError(f"{nm} must be a positive whole number, got {val!r}", field=nm)
    df, control, n_rows, n_other_wave, n_missing, n_other_arm, warns = _rows(
        data, cols, item, arm, wave, pre, post, treated, control
    )
    cats, K = _categories(df, item, categories, top)
    y = pd.Categorical(df[item], categories=cats, ordered=True).codes.astype(np.int64)
    T = (df[arm] == treated).to_numpy(dtype=float)
    if T.sum() == 0 or T.sum() == len(T):
        raise DesignError("both arms need answers", field="arm")
    X, coef_names, eff_col = _fixed_design(df, T, wave, post)
    level_codes, level_names, level_labels = _levels(df, groups_t, wave, unit)
    pname, pmu, psd = _resolve_prior(prior, LOGISTIC_SD)
    dens = _OrdinalDensity(y, X, eff_col, level_codes, level_names, level_labels, K, pmu, psd, bool(wave))
    dens._coef_names = coef_names
    seed = int(np.random.SeedSequence().entropy % (2**31)) if seed is None else int(seed)
    tune = int(min(1000, max(200, draws // 2))) if tune is None else int(tune)
    idata = _sample_nutpie(dens, int(draws), tune, int(chains), seed, ())

    pp = _top_share_effect(idata, X, T, wave, level_names, level_codes, K, top, eff_col)
    lo, hi = hdi(pp)
    lodds = _flat(idata, "coef")[:, eff_col]
    llo, lhi = hdi(lodds)
    diag = diagnose(idata, headline="effect_logodds")
    warns += diag["warnings"]
    if groups_t and len(level_labels[0]) < 5:
        warns.append(
            f"Only {len(level_labels[0])} {groups_t[0]} cluster(s): the between-cluster variation leans on its prior."
        )
    for w in warns:
        warnings.warn(w, EvalToolkitWarning, stacklevel=2)
    n_clusters = len(level_labels[0]) if groups_t else None
    method = (
        f"Bayesian cumulative-logit model ({'DiD, person intercepts' if wave else 'post only'}; varying "
        f"intercepts by {', '.join(groups_t) or 'none'}), NUTS via nutpie; effect on P(top {top}) in pp; no p-value"
    )
    extra = [_logodds_row(lodds, llo, lhi, analysis, item, len(y), n_clusters, method)]
    return BayesOrdinalResult(
        analysis=analysis,
        outcome=item,
        term=f"P(top {top} categories) [pp]",
        estimate=float(pp.mean()),
        std_error=float(pp.std(ddof=1)),
        ci_lower=lo,
        ci_upper=hi,
        p_value=math.nan,
        n_obs=len(y),
        n_clusters=n_clusters,
        method=method,
        extra_rows=extra,
        warnings=warns,
        details={
            "n_rows": n_rows,
            "n_other_wave_rows": n_other_wave,
            "n_dropped": n_missing + n_other_arm,
            "dropped": {
                "missing values": n_missing,
                "other arms": n_other_arm,
                "other waves": n_other_wave,
            },
            "n_other_arm_rows": n_other_arm,
            "observed_top_share": {
                str(a): float((y[(T > 0) == (a == treated)] >= K - top).mean()) for a in (treated, control)
            },
            "seed": seed,
            "p_value_note": "NaN by design: see prob_positive.",
        },
        idata=idata,
        logodds={
            "mean": float(lodds.mean()),
            "sd": float(lodds.std(ddof=1)),
            "hdi_lower": llo,
            "hdi_upper": lhi,
        },
        prob_positive=float((pp > 0).mean()),
        categories=cats,
        top_categories=cats[K - top :],
        prior={"name": pname, "mu": pmu, "sigma": psd, "scale": "latent logistic (SD π/√3)"},
        diagnostics=diag,
    )


def _rows(data, cols, item, arm, wave, pre, post, treated, control):
    """The two waves and two arms with every value present; counts of what was left out."""
    df = data[cols].copy()
    n_rows = len(df)
    if wave:
        df = df.loc[df[wave].isin([pre, post])]
        for lab, role in [(pre, "pre"), (post, "post")]:
            if not (df[wave] == lab).any():
                raise DataError(f"{role} wave {lab!r} does not occur", column=wave)
    n_other_wave = n_rows - len(df)
    miss = df.isna().any(axis=1)
    warns: list[str] = []
    if miss.any():
        warns.append(f"{int(miss.sum())} row(s) with a missing answer, arm or group were excluded.")
        df = df.loc[~miss]
    n_missing = int(miss.sum())
    control = resolve_control(df, arm, treated, control)
    n_other_arm = int((~df[arm].isin([treated, control])).sum())
    df = df.loc[df[arm].isin([treated, control])]
    return df, control, n_rows, n_other_wave, n_missing, n_other_arm, warns


def _fixed_design(df, T, wave, post):
    """Treated, post and their interaction (two waves) or treated alone (one wave); the effect column."""
    if wave:
        P = (df[wave] == post).to_numpy(dtype=float)
        X = np.column_stack([T, P, T * P])
        coef_names = ["treated", "post", "treated:post"]
        eff_col = 2
    else:
        X = T[:, None]
        coef_names = ["treated"]
        eff_col = 0
    return X, coef_names, eff_col


def _levels(df, groups_t, wave, unit):
    """Integer codes of each grouping level (nested labels), plus persons with two waves."""
    level_codes, level_names, level_labels = [], [], []
    keys = [df[g].astype(str).to_numpy() for g in groups_t]
    for li, g in enumerate(groups_t):
        lab = np.array(["/".join(t) for t in zip(*keys[: li + 1])], dtype=object)
        codes, uniq = pd.factorize(lab, sort=True)
        level_codes.append(codes.astype(np.int64))
        level_names.append(g)
        level_labels.append([str(u) for u in uniq])
    if wave:
        codes, uniq = pd.factorize(df[unit], sort=True)
        level_codes.append(codes.astype(np.int64))
        level_names.append("person")
        level_labels.append([str(u) for u in uniq])
    return level_codes, level_names, level_labels


def _top_share_effect(idata, X, T, wave, level_names, level_codes, K, top, eff_col):
    """Posterior draws of the effect on P(top categories) for the treated at post, in percentage points."""
    target = (T > 0) & ((X[:, 1] > 0) if wave else True)
    cut_d = _flat(idata, "cutpoints")
    coef_d = _flat(idata, "coef")
    eta = coef_d @ X[target].T  # S x n_target
    for name, codes in zip(level_names, level_codes):
        eta = eta + _flat(idata, f"sd_{name}")[:, None] * _flat(idata, f"z_{name}")[:, codes[target]]
    thr = cut_d[:, K - 1 - top][:, None]  # P(y >= K - top) = 1 - F(c_{K-top-1} - eta)
    p1 = 1.0 - _sigmoid(thr - eta)
    p0 = 1.0 - _sigmoid(thr - (eta - coef_d[:, eff_col][:, None]))
    pp = 100.0 * (p1 - p0).mean(axis=1)
    return pp


def _categories(df, item, categories, top):
    """The ordered answer categories (given or observed) and their number; answers outside them refused."""
    cats = list(categories) if categories is not None else sorted(pd.unique(df[item]))
    K = len(cats)
    if K < 2:
        raise EstimationError(f"item '{item}' has only {K} answer category; nothing to model")
    bad = ~df[item].isin(cats)
    if bad.any():
        i = df.index[int(np.flatnonzero(bad.to_numpy())[0])]
        raise DataError(
            f"answer {df.at[i, item]!r} is not one of the categories {cats}", column=item, row=int(i)
        )
    if not (isinstance(top, (int, np.integer)) and 1 <= top <= K - 1):
        raise DesignError(f"top must be between 1 and {K - 1}, got {top!r}", field="top")
    return cats, K


def _logodds_row(lodds, llo, lhi, analysis, item, n_obs, n_clusters, method) -> dict[str, Any]:
    """The effect on the latent log-odds scale, as an estimates row."""
    return {
        "analysis": analysis,
        "outcome": item,
        "term": "effect (log-odds)",
        "estimate": float(lodds.mean()),
        "std_error": float(lodds.std(ddof=1)),
        "ci_lower": llo,
        "ci_upper": lhi,
        "p_value": math.nan,
        "n_obs": n_obs,
        "n_clusters": n_clusters,
        "method": method,
    }
