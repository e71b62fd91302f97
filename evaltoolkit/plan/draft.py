"""Draft a design from the data: ``evaltoolkit design init`` and :func:`design_from`.

Given the instruments and one export (or one per wave), the drafter reads the files through intake (so Kobo
paths, Qualtrics question IDs, value labels and identifying columns are handled as everywhere else), then guesses

* the **id**, **wave**, **arm** and **cluster** columns and the **covariates** - each guess with the reason
  (its name, its values), every one overridable by an argument (a CLI flag);
* which arm is the **programme group** (names and labels like "programme", "intervention", "participants"; the
  comparison like "control", "comparison", "wait-list");
* the **outcomes**: every scale of the instruments whose items are in the data (``scale:`` links them, so the
  scored columns go straight into ``analyse``); the first is primary unless ``primary=`` says otherwise;
* the **analyses**, from the data's shape: pre/post with a comparison group -> balance, difference-in-differences
  (primary) and ANCOVA; one wave -> an adjusted comparison (ANCOVA); clusters -> cluster-aware inference, and a
  cluster-randomised design when the arm never varies within a cluster.

The draft is validated (schema, instrument links, and the data bound to it) before it is returned or written.

Examples
--------
>>> import tempfile
>>> from evaltoolkit.simulate.surveys import simulate_exports
>>> files = simulate_exports("ncs_prepost_control", tempfile.mkdtemp(), format="spss", n=200, seed=1)
>>> draft = design_from(files, "ncs_social_mixing")
>>> d = draft.design
>>> d.columns.id, d.columns.arm, d.columns.clusters, d.arms.treated
('pid', 'arm', ['site', 'team'], 'ncs_participants')
>>> [a.type for a in d.analyses]
['balance', 'did', 'ancova']
>>> draft.reason("columns.arm")
"named like an arm column and holds 2 groups; 'NCS participants' looks like the programme group"
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaltoolkit.design.schema import Design, load_design
from evaltoolkit.errors import UsageError
from evaltoolkit.intake.labels import norm_label, slug

__all__ = ["DesignDraft", "Guess", "design_from"]

_ID_NAMES = ("id", "pid", "respondent_id", "participant_id", "person_id", "child_id", "student_id", "pupil_id",
             "resp_id", "case_id", "record_id", "uid", "user_id", "respondent", "participant", "serial")  # fmt: skip
_WAVE_NAMES = ("wave", "time", "timepoint", "time_point", "round", "survey", "period", "phase", "occasion", "visit",
               "sweep")  # fmt: skip
_ARM_NAMES = ("arm", "group", "condition", "treatment", "treated", "intervention", "programme", "program", "cohort",
              "allocation", "assignment", "trial_arm", "study_group")  # fmt: skip
_CLUSTER_NAMES = ("school", "team", "site", "class", "classroom", "cluster", "area", "centre", "center", "town",
                  "la", "local_authority", "ward", "club", "group_id", "unit", "setting", "provider")  # fmt: skip
_COVARIATE_NAMES = ("age", "female", "male", "gender", "sex", "ethnicity", "ethnic_group", "year_group", "yeargroup",
                    "grade", "year", "disability", "sen", "fsm", "free_school_meals", "unemployed", "income",
                    "education", "religion", "deprivation", "imd", "segregation")  # fmt: skip
_TREATED_WORDS = re.compile(r"programme|program|treat|interven|particip|arts|ncs|pilot|active|yes|^1$|^t$")
_CONTROL_WORDS = re.compile(
    r"control|comparison|compar|wait|non.?particip|not|usual|business|no$|^0$|^c$|matched"
)
_BASELINE_WORDS = re.compile(r"baseline|before|pre|^t0$|^t1$|^w1$|wave.?1|time.?1|start|intake")


@dataclass(frozen=True)
class Guess:
    """One choice the drafter made: the design field, what it chose, and why (or ``"given"``)."""

    field: str
    value: Any
    reason: str


@dataclass
class DesignDraft:
    """A drafted, validated design and the guesses behind it."""

    design: Design
    guesses: list[Guess] = field(default_factory=list)

    def reason(self, field_name: str) -> str:
        """Why ``field_name`` was chosen (``"given"`` for choices passed in)."""
        return next((g.reason for g in self.guesses if g.field == field_name), "")

    def to_yaml(self) -> str:
        """The design as YAML, headed by a comment listing every guess and its reason."""
        import yaml

        lines = [
            "# Drafted by `evaltoolkit design init`; check every guess below before fielding the analysis.",
            "#",
        ]
        lines += [f"# {g.field}: {_short(g.value)} - {g.reason}" for g in self.guesses]
        body = self.design.model_dump(mode="json", exclude={"source", "simulation"}, exclude_defaults=True)
        return "\n".join(lines) + "\n" + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=110)

    def write(self, path: str | Path) -> Path:
        """Write :meth:`to_yaml` to ``path`` (atomically; an existing file is refused)."""
        from evaltoolkit.io.outputs import write_text

        p = Path(path)
        if p.exists():
            raise UsageError(f"{p} already exists: choose another --out, or delete it first", file=str(p))
        write_text(p, self.to_yaml())
        return p


def _short(v: Any) -> str:
    return ", ".join(map(str, v)) if isinstance(v, list | tuple) else str(v)


# --------------------------------------------------------------------------- reading
def _read(files: Sequence[Path], instruments: list[str], id_col: str | None, waves: Sequence[str] | None,
          wave_col: str | None) -> tuple[pd.DataFrame, dict[str, dict[float, str]], list[str] | None]:  # fmt: skip
    """The files as one frame (items as codes), the value labels of non-item columns, and the wave per file."""
    from evaltoolkit.intake.read import read_responses, read_waves
    from evaltoolkit.io.readers import read_raw

    labels: dict[str, dict[float, str]] = {}
    heads: list[str] = []
    for f in files:
        raw = read_raw(f, file=f.name)
        labels.update(raw.value_labels)
        heads = heads or [n.rsplit("/", 1)[-1] for n in raw.names]
    if id_col is None:  # read with the guessed ID column, so that IDs are checked and waves linked by it
        from evaltoolkit.intake.platforms import is_metadata

        id_col = next(iter(_named([n for n in heads if n and not is_metadata(n)], _ID_NAMES)), None)
    if len(files) > 1:
        names = list(waves) if waves else [f.stem for f in files]
        if len(names) != len(files):
            raise UsageError(
                f"{len(names)} wave name(s) for {len(files)} file(s): give one per file, in order"
            )
        data, _ = read_waves(dict(zip(names, files, strict=True)), instruments, id_col=id_col,
                             wave_col=wave_col or "wave")  # fmt: skip
        return data.drop(columns=["source_file"]), labels, names
    data, _ = read_responses(files[0], instruments, id_col=id_col or "id", wave_col=wave_col or "auto")
    return data, labels, None


def _named(columns: Iterable[str], names: Sequence[str]) -> list[str]:
    """Columns whose normalised name is one of ``names`` (in ``names`` order), then those ending in one."""
    by = {slug(c): c for c in columns}
    exact = [by[n] for n in names if n in by]
    ends = [c for s, c in by.items() if c not in exact and any(s.endswith("_" + n) for n in names)]
    return exact + ends


# --------------------------------------------------------------------------- guessing
def _guess_id(df: pd.DataFrame, free: list[str], wave: str | None) -> Guess:
    for c in _named(free, _ID_NAMES):
        dup = df.duplicated([c, wave]).any() if wave else df[c].duplicated().any()
        if df[c].notna().mean() > 0.9 and not dup:
            return Guess(
                "columns.id", c, "named like an ID and unique" + (" within each wave" if wave else "")
            )
    for c in free:
        s = df[c]
        if s.notna().all() and not (df.duplicated([c, wave]).any() if wave else s.duplicated().any()):
            if df[c].nunique() > 0.5 * len(df):
                return Guess(
                    "columns.id",
                    c,
                    "the first column whose values are unique" + (" within each wave" if wave else ""),
                )
    raise UsageError("no column looks like a respondent ID (unique per person and wave): name it with --id")


def _guess_wave(df: pd.DataFrame, free: list[str], given_files: list[str] | None) -> Guess | None:
    if given_files is not None:
        return Guess("columns.wave", "wave", f"one file per wave ({', '.join(given_files)})")
    for c in _named(free, _WAVE_NAMES):
        k = df[c].nunique()
        if 2 <= k <= 8:
            return Guess("columns.wave", c, f"named like a wave column and holds {k} waves")
    return None


def _guess_arm(df: pd.DataFrame, free: list[str], labels: Mapping[str, Mapping[float, str]]) -> Guess:
    candidates = _named(free, _ARM_NAMES)
    candidates += [c for c in free if c not in candidates and 2 <= df[c].nunique() <= 3
                   and any(_TREATED_WORDS.search(_value_text(v, labels.get(c))) or _CONTROL_WORDS.search(_value_text(v, labels.get(c)))
                           for v in df[c].dropna().unique())]  # fmt: skip
    for c in candidates:
        k = df[c].nunique()
        if 2 <= k <= 4:
            why = "named like an arm column" if c in _named([c], _ARM_NAMES) else "its values name groups"
            return Guess("columns.arm", c, f"{why} and holds {k} groups")
    raise UsageError("no column looks like the arm (programme vs comparison group): name it with --arm")


def _value_text(v: Any, labels: Mapping[float, str] | None) -> str:
    if labels and isinstance(v, int | float | np.integer | np.floating) and float(v) in labels:
        return norm_label(labels[float(v)])
    return norm_label(f"{v:g}" if isinstance(v, float) else v)


def _guess_treated(values: list[Any], labels: Mapping[float, str] | None) -> tuple[Any, str]:
    texts = {v: _value_text(v, labels) for v in values}
    treated = [v for v, t in texts.items() if _TREATED_WORDS.search(t) and not _CONTROL_WORDS.search(t)]
    control = [v for v, t in texts.items() if _CONTROL_WORDS.search(t)]
    if len(treated) == 1:
        return treated[0], f"'{_label_or(treated[0], labels)}' looks like the programme group"
    if len(control) == len(values) - 1:
        rest = next(v for v in values if v not in control)
        return (
            rest,
            f"the others look like comparison groups, so '{_label_or(rest, labels)}' is the programme group",
        )
    first = sorted(values, key=str)[0]
    return (
        first,
        f"could not tell which group had the programme; took '{_label_or(first, labels)}' - check, or pass --treated",
    )


def _label_or(v: Any, labels: Mapping[float, str] | None) -> str:
    if labels and isinstance(v, int | float | np.integer | np.floating) and float(v) in labels:
        return labels[float(v)]
    return f"{v:g}" if isinstance(v, float) else str(v)


def _guess_clusters(df: pd.DataFrame, free: list[str], arm: str) -> Guess | None:
    found = []
    for c in _named(free, _CLUSTER_NAMES):
        k = df[c].nunique()
        if 2 <= k <= max(2, len(df) // 3):
            found.append((k, c))
    if not found:
        return None
    cols = [c for _, c in sorted(found)]  # outermost (fewest clusters) first
    desc = ", ".join(f"{c} ({df[c].nunique()})" for c in cols)
    return Guess("columns.clusters", cols, f"named like cluster columns, with few values each: {desc}")


# --------------------------------------------------------------------------- names and labels
def _names_for(
    values: list[Any], labels: Mapping[float, str] | None
) -> tuple[dict[Any, str], dict[str, str]]:
    """Design names for data values (slugs of their labels when coded) and the labels to show."""
    names: dict[Any, str] = {}
    shown: dict[str, str] = {}
    for v in values:
        text = _label_or(v, labels)
        name = slug(text) or f"group_{len(names) + 1}"
        if name != text:
            shown[name] = text
        names[v] = name
    if len(set(names.values())) < len(names):
        raise UsageError(
            "two groups get the same name from their labels; name the arms in the data or with --treated/--control"
        )
    return names, shown


def _order_waves(values: list[Any], labels: Mapping[float, str] | None) -> list[Any]:
    nums = pd.to_numeric(pd.Series(values), errors="coerce")
    if nums.notna().all():
        return [values[i] for i in np.argsort(nums.to_numpy(), kind="stable")]
    base = [v for v in values if _BASELINE_WORDS.search(_value_text(v, labels))]
    return base[:1] + [v for v in values if v not in base[:1]]


# --------------------------------------------------------------------------- outcomes and analyses
def _outcomes(
    df: pd.DataFrame, instruments: list[str], primary: Sequence[str] | None
) -> list[dict[str, Any]]:
    from evaltoolkit.instruments.library import load_instruments

    outs: list[dict[str, Any]] = []
    for inst in load_instruments(instruments):
        for sc in inst.scales:
            answered = [i for i in sc.items if i in df.columns and df[i].notna().any()]
            need = sc.min_items if sc.min_items is not None else -(-len(sc.items) // 2)
            if len(answered) >= max(1, need):
                outs.append({"name": sc.id, "label": sc.label, "scale": sc.id})
    if not outs:
        raise UsageError(
            "no scale of the instruments has its items in the data: check --instrument and the column names"
        )
    chosen = list(primary) if primary else [outs[0]["name"]]
    unknown = [p for p in chosen if p not in {o["name"] for o in outs}]
    if unknown:
        from evaltoolkit.design.schema import did_you_mean

        raise UsageError(
            f"--primary '{unknown[0]}' is not a scale found in the data{did_you_mean(unknown[0], [o['name'] for o in outs])}"
        )
    for o in outs:
        o["family"] = "primary" if o["name"] in chosen else "secondary"
    return outs


def _analyses(names: list[str], post: list[str], cluster: str | None, panel: bool) -> list[dict[str, Any]]:
    extra = {"cluster": cluster} if cluster else {}
    if not panel:
        return [{"id": "comparison", "type": "ancova", "outcomes": names, **extra, "primary": True}]
    return [
        {"id": "balance", "type": "balance"},
        {"id": "did_primary", "type": "did", "outcomes": names, "post": post, **extra, "primary": True},
        {"id": "ancova", "type": "ancova", "outcomes": names, "post": post[:1], **extra},
    ]


# --------------------------------------------------------------------------- main
def design_from(
    files: str | Path | Sequence[str | Path],
    instruments: str | Sequence[str],
    *,
    waves: Sequence[str] | None = None,
    id: str | None = None,
    wave: str | None = None,
    arm: str | None = None,
    treated: str | None = None,
    control: Sequence[str] | None = None,
    clusters: Sequence[str] | None = None,
    covariates: Sequence[str] | None = None,
    primary: Sequence[str] | None = None,
    name: str | None = None,
    title: str | None = None,
) -> DesignDraft:
    """Draft a validated design from instruments and one data file, or one file per wave.

    Parameters
    ----------
    files : path or list of paths
        One export with a wave column (or a single wave), or one export per wave in wave order.
    instruments : str or list of str
        The instruments the questionnaire used (bundled ids or YAML paths).
    waves : list of str, optional
        The wave of each file (default: the file names).
    id, wave, arm, clusters, covariates : optional
        The columns, when the guesses would be wrong (``clusters`` outermost first).
    treated, control : optional
        The programme group's value (or label) and the comparison groups'.
    primary : list of str, optional
        The primary outcome scale(s) (default: the first scale found).
    name, title : str, optional
        The design's name and title.

    Returns
    -------
    DesignDraft
        ``.design`` (validated), ``.guesses`` (field, value, reason), ``.to_yaml()``, ``.write(path)``.

    Raises
    ------
    UsageError
        A column cannot be guessed, or a given name is not in the data.
    """
    paths = [Path(files)] if isinstance(files, str | Path) else [Path(f) for f in files]
    insts = [instruments] if isinstance(instruments, str) else list(instruments)
    df, labels, file_waves = _read(paths, insts, id, waves, wave)
    guesses: list[Guess] = []
    items = _item_codes(insts)
    free = [c for c in df.columns if c not in items and not str(c).startswith("_")]
    for given, what in ((id, "--id"), (arm, "--arm"), (wave, "--wave"), *((c, "--cluster") for c in clusters or []),
                        *((c, "--covariate") for c in covariates or [])):  # fmt: skip
        if given and given not in df.columns:
            from evaltoolkit.design.schema import did_you_mean

            raise UsageError(f"{what} '{given}' is not a column of the data{did_you_mean(given, free)}")

    def pick(given: Any, guess: Guess | None, fld: str) -> Any:
        if given:
            guesses.append(Guess(fld, given, "given"))
            return given
        if guess is not None:
            guesses.append(guess)
            return guess.value
        return None

    wave_col = pick(wave, _guess_wave(df, free, file_waves), "columns.wave")
    id_col = pick(id, _guess_id(df, [c for c in free if c != wave_col], wave_col), "columns.id")
    rest = [c for c in free if c not in (wave_col, id_col)]
    arm_col = pick(arm, _guess_arm(df, rest, labels), "columns.arm")
    rest = [c for c in rest if c != arm_col]
    cluster_cols = list(
        pick(list(clusters or []), _guess_clusters(df, rest, arm_col), "columns.clusters") or []
    )
    rest = [c for c in rest if c not in cluster_cols]
    covs = pick(list(covariates or []), _guess_covariates(df, rest), "covariates") or []
    arms = _arms(df, arm_col, labels.get(arm_col), treated, control, guesses)
    wave_list, baseline = _waves(df, wave_col, labels.get(wave_col), file_waves, guesses)
    outcomes = _outcomes(df, insts, primary)
    panel = len(wave_list) > 1
    kind = (
        "post_only"
        if not panel
        else ("cluster_rct" if cluster_cols and _by_cluster(df, arm_col, cluster_cols) else "panel")
    )
    if kind == "cluster_rct":
        guesses.append(
            Guess("kind", kind, f"the arm never varies within a {cluster_cols[0]}: clusters were assigned")
        )
    base = (
        paths[0].stem
        if len(paths) == 1
        else re.sub(r"[_-]?(baseline|pre|post|w\d|wave\d|t\d)$", "", paths[0].stem)
    )
    raw = {
        "name": name or slug(base) or "my_design",
        "title": title or f"Evaluation with {', '.join(insts)}",
        "kind": kind,
        "columns": {"id": id_col, "arm": arm_col, "wave": wave_col or "wave", "clusters": cluster_cols},
        "arms": arms,
        "waves": wave_list,
        **({"baseline": baseline} if panel else {}),
        "instruments": insts,
        "outcomes": outcomes,
        "covariates": covs,
        "analyses": _analyses(
            [o["name"] for o in outcomes],
            [w["name"] for w in wave_list[1:]],
            cluster_cols[-1] if cluster_cols else None,
            panel,
        ),
        "families": {
            f: [o["name"] for o in outcomes if o["family"] == f]
            for f in ("primary", "secondary")
            if any(o["family"] == f for o in outcomes)
        },
    }
    design = load_design(raw)
    from evaltoolkit.plan.run import check_sources

    check_sources(design)
    return DesignDraft(design, guesses)


def _item_codes(instruments: list[str]) -> set[str]:
    from evaltoolkit.instruments.library import load_instruments

    return {it.code for inst in load_instruments(instruments) for it in inst.items}


def _guess_covariates(df: pd.DataFrame, free: list[str]) -> Guess | None:
    from evaltoolkit.intake.platforms import is_metadata

    covs = [c for c in _named(free, _COVARIATE_NAMES) if not is_metadata(c) and df[c].nunique() >= 2
            and df[c].notna().mean() >= 0.8]  # fmt: skip
    if not covs:
        return None
    return Guess("covariates", covs, "named like background characteristics, mostly answered")


def _arms(df, arm_col, labels, treated, control, guesses) -> dict[str, Any]:
    values = list(pd.unique(df[arm_col].dropna()))
    names, shown = _names_for(values, labels)
    by_text = {norm_label(_label_or(v, labels)): v for v in values} | {
        norm_label(n): v for v, n in names.items()
    }
    if treated:
        if norm_label(treated) not in by_text:
            raise UsageError(f"--treated '{treated}' is not a value of column '{arm_col}'")
        t = by_text[norm_label(treated)]
        guesses.append(Guess("arms.treated", names[t], "given"))
    else:
        t, why = _guess_treated(values, labels)
        guesses.append(Guess("arms.treated", names[t], why))
        guesses[[g.field for g in guesses].index("columns.arm")] = Guess(
            "columns.arm", arm_col, next(g.reason for g in guesses if g.field == "columns.arm") + "; " + why
        )
    ctrl = [by_text[norm_label(c)] for c in control] if control else [v for v in values if v != t]
    # the data's own values are the design's names when they are already plain names
    plain = all(isinstance(v, str) and v == slug(v) for v in values)
    name_of = {v: (v if plain else names[v]) for v in values}
    return {"treated": name_of[t], "control": [name_of[c] for c in ctrl], "labels": {} if plain else shown}


def _waves(df, wave_col, labels, file_waves, guesses) -> tuple[list[dict[str, Any]], str | None]:
    if wave_col is None or wave_col not in df.columns:
        guesses.append(Guess("waves", "post", "no wave column: one wave (an after-only comparison)"))
        return [{"name": "post", "label": "After the programme"}], None
    values = file_waves or _order_waves(list(pd.unique(df[wave_col].dropna())), labels)
    names, shown = _names_for(values, labels)
    plain = all(isinstance(v, str) and v == slug(v) for v in values)
    out = [
        {"name": v if plain else names[v], **({"label": shown[names[v]]} if names[v] in shown else {})}
        for v in values
    ]
    guesses.append(Guess("baseline", out[0]["name"], "the first file" if file_waves else "the earliest wave"))
    return out, out[0]["name"]


def _by_cluster(df: pd.DataFrame, arm: str, clusters: list[str]) -> bool:
    return bool((df.groupby(clusters[0])[arm].nunique() <= 1).all())
