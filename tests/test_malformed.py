"""Malformed input, generated: every corruption x file format x command, run in-process through the CLI.

Each case writes one small input file (a corrupted copy of clean data) in one format, runs ``validate``,
``score`` or ``analyse`` on it with :class:`typer.testing.CliRunner`, and asserts the same five things:

(a) no traceback and no library text: exit 0, 1 or 2, no exception other than ``SystemExit``, none of
    :data:`LEAKS` in the output, an error is one line naming the file;
(b) the input file (and the design YAML) is byte-for-byte unchanged, mtime included;
(c) no planted identifier (:data:`IDENTIFIERS`) in stdout, stderr or any file written under the output folder
    (``scored.csv`` excepted: it is the analyst's own respondent-level data, keyed by ID on purpose);
(d) garbage is refused (exit != 0, a clear one-line message) or flagged (a caution naming the column) - never
    a silent number: a missing-value code or an impossible score gives the same estimates as a blank cell;
(e) rows are accounted for: rows analysed + rows left out by reason, as the report says, = rows in the file.

Data: one simulated study (``ncs_prepost_control``, n=120) for ``analyse`` and a 40-row item-level export of
``ncs_social_mixing`` for ``validate`` and ``score``. The design is a copy of ``ncs_prepost_control`` planning
only its cheap analyses (balance, DiD, weighted DiD, ANCOVA, multilevel); figures are built but not laid out or
encoded (``tight_layout`` and the PNG step are stubbed), so an ``analyse`` call takes a fraction of a second.
"""

from __future__ import annotations

import hashlib
import html
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import evaltoolkit
from evaltoolkit.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
INSTRUMENT = "ncs_social_mixing"

#: planted in ID, arm, covariate and free-text cells: none may reach any output
IDENTIFIERS = ("jo.bloggs@example.org", "LS6 1AB", "07700 900123", "ID-100178")
#: library text that must never reach the user
LEAKS = (
    "Traceback", "Error tokenizing", "No columns to parse", "Unnamed:", "ZeroDivisionError", "TypeError",
    "KeyError", "ValueError", "LinAlgError", "unexpected error",
)  # fmt: skip
FORMATS = ("csv", "xlsx", "sav", "dta", "parquet")
SUFFIX = {"csv": ".csv", "xlsx": ".xlsx", "sav": ".sav", "dta": ".dta", "parquet": ".parquet"}
COMMANDS = ("validate", "score", "analyse")

OUTCOME = "attitudes"  # the scored outcome corrupted in analyse cases (a 1-5 scale mean)
ITEM = "ncs_getalong"  # the item corrupted in validate/score cases (1-5 agree scale)
CODED_ROWS = (5, 9, 14)  # positions of the corrupted cells (in rows of the post wave for analyse)


# --------------------------------------------------------------------------- clean data
@pytest.fixture(scope="module", autouse=True)
def _fast_figures():
    """Figures are built (so a plot that cannot cope with the data still fails) but not laid out or encoded."""
    import matplotlib.figure

    import evaltoolkit.report.render as render

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(matplotlib.figure.Figure, "tight_layout", lambda self, *a, **k: None)
        mp.setattr(render, "figure_to_html", lambda fig, alt="figure", dpi=110: f'<img alt="{alt}">')
        yield


@pytest.fixture(scope="module")
def clean() -> dict[str, pd.DataFrame]:
    """The clean scored study (analyse) and item-level export (validate, score), identifiers planted."""
    sim = evaltoolkit.simulate_study("ncs_prepost_control", n=120, seed=5)
    data = sim.data
    items = [
        c for c in data.columns if "_" in c and data[c].dtype.name == "Int64" and c != "att_comfort_dating"
    ]
    data = data.drop(columns=items).copy()
    people = data["pid"].drop_duplicates().tolist()
    ids = {p: f"P{k:04d}" for k, p in enumerate(people)}
    ids[people[3]], ids[people[7]] = "ID-100178", "jo.bloggs@example.org"
    data["pid"] = data["pid"].map(ids)
    data["comments"] = ""
    data.loc[data.index[[2, 11]], "comments"] = ["call me on 07700 900123", "I live at LS6 1AB"]
    data.loc[data.index[20], "comments"] = "jo.bloggs@example.org"
    data["att_comfort_dating"] = data["att_comfort_dating"].astype(float)
    data = data.reset_index(drop=True)

    rng = np.random.default_rng(5)
    n = 40
    export = pd.DataFrame({"id": [f"R{k:03d}" for k in range(n)]})
    export.loc[[3, 8], "id"] = ["ID-100178", "jo.bloggs@example.org"]
    for code in ("ncs_dating_comfort", "ncs_help_seeking", "ncs_pos_contact", "ncs_neg_contact", ITEM):
        export[code] = rng.integers(1, 6, n).astype(float)
    for k in range(1, 5):
        export[f"ncs_warmth_{k}"] = rng.integers(0, 101, n).astype(float)
    export["comments"] = ""
    export.loc[[1, 6, 12], "comments"] = ["07700 900123", "LS6 1AB", "write to jo.bloggs@example.org"]
    return {"analyse": data, "items": export}


def design_dict(**changes) -> dict:
    """The bundled NCS design with only its cheap analyses (``changes`` replace top-level fields)."""
    d = yaml.safe_load((ROOT / "designs" / "ncs_prepost_control.yaml").read_text(encoding="utf-8"))
    d["name"] = "malformed_ncs"
    d["analyses"] = [a for a in d["analyses"] if a["type"] in ("balance", "did", "ancova", "multilevel")]
    for a in d["analyses"]:
        if a["id"] == "did_primary":
            a["outcomes"] = ["attitudes", "positive_contact", "att_comfort_dating"]
    d.update(changes)
    return d


# --------------------------------------------------------------------------- writing files
def write_frame(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    """``frame`` in format ``fmt`` (text columns as text; SPSS/Stata need one type per column)."""
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "xlsx":
        frame.to_excel(path, index=False)
    elif fmt == "parquet":
        _typed(frame).to_parquet(path, index=False)
    else:
        import pyreadstat

        out = _typed(frame)
        for c in out.columns:
            if not pd.api.types.is_numeric_dtype(out[c]):
                out[c] = out[c].fillna("").astype(str)
        (pyreadstat.write_sav if fmt == "sav" else pyreadstat.write_dta)(out, str(path))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns that mix numbers and text become text (as a survey tool would export them)."""
    out = frame.copy()
    for c in out.columns:
        if out[c].dtype == object or str(out[c].dtype) in ("str", "string"):
            num = pd.to_numeric(out[c], errors="coerce")
            if num.notna().sum() == out[c].notna().sum() and out[c].notna().any():
                out[c] = num
            else:
                out[c] = out[c].map(lambda v: None if pd.isna(v) else str(v)).astype(object)
        elif str(out[c].dtype) == "Int64":
            out[c] = out[c].astype(float)
    return out


def csv_text(frame: pd.DataFrame, sep: str = ",") -> str:
    return frame.to_csv(index=False, sep=sep)


def write_xlsx_rows(rows: list[list], path: Path) -> None:
    """Cells as given, row by row (for layouts pandas would not write: title rows, repeated names)."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    for r in rows:
        ws.append([None if (isinstance(v, float) and np.isnan(v)) else v for v in r])
    wb.save(path)


def frame_rows(frame: pd.DataFrame) -> list[list]:
    return [list(frame.columns), *frame.astype(object).where(frame.notna(), None).values.tolist()]


# --------------------------------------------------------------------------- corruptions
@dataclass(frozen=True)
class Corruption:
    """One way an input can be wrong.

    ``frame(df, target)`` corrupts the clean frame (written in every format); ``raw(df, fmt, target)`` instead
    returns the file's bytes (for corruptions a frame cannot carry); ``design`` changes the design YAML text.
    ``expect``: "refuse" (exit != 0 and a one-line message), "flag" (exit 0/1 and ``names`` in a caution),
    "ok" (exit 0), "no-crash" (any of 0/1/2; the invariants (a)-(c) still hold).
    """

    id: str
    expect: str
    frame: Callable | None = None
    raw: Callable | None = None
    design: Callable[[dict], object] | None = None
    formats: tuple[str, ...] = FORMATS
    commands: tuple[str, ...] = COMMANDS
    names: tuple[str, ...] = ()
    same_as_blank: bool = False  # analyse: estimates equal those with the corrupted cells left blank
    args: Callable | None = None  # (input, out, design) -> extra/replacement CLI arguments
    xfail: dict[str, str] = field(default_factory=dict)  # "command-fmt" or "command" -> reason
    expect_by: dict[str, str] = field(default_factory=dict)  # command -> expect, where it differs
    extra_rows: int = 0  # data rows the raw file has beyond the frame's (a line of commas)

    def expected(self, cmd: str) -> str:
        return self.expect_by.get(cmd, self.expect)


def _target(kind: str) -> str:
    return OUTCOME if kind == "analyse" else ITEM


def _rows(df: pd.DataFrame, kind: str) -> pd.Index:
    """The rows whose cells a corruption changes (post-wave rows for analyse, so the DiD uses them)."""
    pool = df.index[df["wave"] == "post"] if kind == "analyse" else df.index
    return pool[list(CODED_ROWS)]


def set_cells(value) -> Callable:
    def apply(df: pd.DataFrame, kind: str) -> pd.DataFrame:
        col = _target(kind)
        if isinstance(value, str):
            df[col] = df[col].astype(object)
        df.loc[_rows(df, kind), col] = value
        return df

    return apply


def set_column(value) -> Callable:
    def apply(df: pd.DataFrame, kind: str) -> pd.DataFrame:
        df[_target(kind)] = value
        return df

    return apply


def drop_column(col: str | None = None) -> Callable:
    def apply(df: pd.DataFrame, kind: str) -> pd.DataFrame:
        return df.drop(columns=[col or ("id" if kind != "analyse" else "pid")])

    return apply


def set_some(cols: str | tuple[str, ...], value, every: int = 17) -> Callable:
    """Set ``cols`` to ``value`` in every ``every``-th row (all rows with ``every=1``)."""

    def apply(df: pd.DataFrame, kind: str) -> pd.DataFrame:
        rows = df.index[3::every] if every > 1 else df.index
        for col in (cols,) if isinstance(cols, str) else cols:
            df[col] = df[col].astype(object)
            df.loc[rows, col] = value
        return df

    return apply


def _duplicate_id(df: pd.DataFrame) -> pd.DataFrame:
    first = df.index[df["wave"] == "post"][0] if "wave" in df else df.index[0]
    dup = df.loc[[first]].copy()
    return pd.concat([df, dup], ignore_index=True)


def _one_arm_empty(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    return df[df["arm"] != "control"].reset_index(drop=True) if kind == "analyse" else df


def _rare_category(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    """A text covariate where one person is the only one in their category (and the category is a postcode)."""
    if kind != "analyse":
        df["ethnicity"] = ["White"] * (len(df) - 1) + ["LS6 1AB"]
        return df
    people = df["pid"].drop_duplicates()
    eth = dict(zip(people, np.resize(["White", "Asian", "Black", "Mixed"], len(people)), strict=True))
    eth[people.iloc[4]] = "LS6 1AB"
    df["ethnicity"] = df["pid"].map(eth)
    return df


def _trailing_commas(df: pd.DataFrame, fmt: str, kind: str) -> bytes | None:
    text = csv_text(df) + "," * (df.shape[1] - 1) + "\n"
    return text.encode()


def _header_only(df: pd.DataFrame, fmt: str, kind: str) -> bytes | None:
    if fmt == "csv":
        return (",".join(df.columns) + "\n").encode()
    return _via_writer(df.iloc[:0], fmt)


def _via_writer(df: pd.DataFrame, fmt: str) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / f"x{SUFFIX[fmt]}"
        write_frame(df, p, fmt)
        return p.read_bytes()


def _garbage(df, fmt, kind) -> bytes:
    return np.random.default_rng(99).integers(0, 256, 3000, dtype=np.uint8).tobytes()


def _encoded(encoding: str, bom: bool = True) -> Callable:
    def make(df: pd.DataFrame, fmt: str, kind: str) -> bytes:
        df = df.copy()
        df.loc[df.index[[0, 4]], "comments"] = ["très bien, café", "Zoë's naïve façade"]
        text = csv_text(df)
        if encoding == "utf-16" and not bom:
            return text.encode("utf-16-le")
        return text.encode(encoding)

    return make


def _delimited(sep: str) -> Callable:
    return lambda df, fmt, kind: csv_text(df, sep).encode()


def _overlong_row(df: pd.DataFrame, fmt: str, kind: str) -> bytes:
    lines = csv_text(df).splitlines()
    lines[6] += ",surplus,values"
    return ("\n".join(lines) + "\n").encode()


def _duplicate_names(df: pd.DataFrame, fmt: str, kind: str) -> bytes:
    col = _target(kind)
    df = df.copy()
    df.insert(3, "comments_again", df[col])
    names = [col if c == "comments_again" else c for c in df.columns]
    if fmt == "csv":
        return csv_text(df.set_axis(names, axis=1)).encode()
    rows = frame_rows(df)
    rows[0] = names
    return _xlsx_bytes(rows)


def _title_row(df: pd.DataFrame, fmt: str, kind: str) -> bytes:
    if fmt == "csv":
        return ("Youth survey export, downloaded 2026-11-30\n" + csv_text(df)).encode()
    return _xlsx_bytes([["Youth survey export, downloaded 2026-11-30"], *frame_rows(df)])


def _xlsx_bytes(rows: list[list]) -> bytes:
    buf = io.BytesIO()
    write_xlsx_rows(rows, buf)  # openpyxl saves to a file object too
    return buf.getvalue()


def _broken_yaml(d: dict) -> str:
    return yaml.safe_dump(d, sort_keys=False).replace("analyses:\n", "analyses:\n  - id: [unclosed\n", 1)


def _design_edit(fn: Callable[[dict], None]) -> Callable[[dict], str]:
    def make(d: dict) -> str:
        fn(d)
        return yaml.safe_dump(d, sort_keys=False)

    return make


def _out_is_input(inp: Path, out: Path, design: Path) -> dict:
    return {"out": inp}


def _out_holds_input(inp: Path, out: Path, design: Path) -> dict:
    return {"out": inp.parent}


def _missing_input(inp: Path, out: Path, design: Path) -> dict:
    return {"data": inp.with_name("no_such_file" + inp.suffix)}


def _missing_design(inp: Path, out: Path, design: Path) -> dict:
    return {"design": design.with_name("no_such_design.yaml")}


CODES = {"minus99": -99, "code999": 999, "minus9": -9, "code99": 99, "huge": 1e12, "out-of-range": 7}
ANALYSE = ("analyse",)
INTAKE = ("validate", "score")

# fmt: off
CORRUPTIONS: list[Corruption] = [
    *(
        Corruption(
            name, "flag", frame=set_cells(v), names=(OUTCOME, ITEM), same_as_blank=True,
            # -99 is the instrument's own "Don't know" code: validate and score recode it, as documented
            expect_by={"validate": "ok", "score": "ok"} if v == -99 else {},
        )
        for name, v in CODES.items()
    ),
    Corruption("text-in-number", "flag-or-refuse", frame=set_cells("about five"), names=(OUTCOME, ITEM)),
    Corruption("phone-in-number", "flag-or-refuse", frame=set_cells("07700 900123"), names=(OUTCOME, ITEM)),
    Corruption("blank-arm", "flag", frame=set_some("arm", None), commands=ANALYSE, names=("arm",)),
    Corruption("arm-not-in-design", "flag", frame=set_some("arm", "LS6 1AB"), commands=ANALYSE, names=("arm",)),
    Corruption("one-arm-empty", "refuse", frame=_one_arm_empty, commands=ANALYSE, names=("arm",)),
    # everyone giving the same answer is data, not an error, for validate and score
    Corruption("constant-outcome", "flag-or-refuse", frame=set_column(3.0), names=(OUTCOME, ITEM),
               expect_by={"validate": "ok", "score": "ok"}),
    Corruption("all-missing-outcome", "flag-or-refuse", frame=set_column(np.nan),
               names=(OUTCOME, ITEM, "ncs_cohesion")),  # score names the scale built from the item
    Corruption("trailing-commas", "ok", raw=_trailing_commas, formats=("csv",), extra_rows=1),
    Corruption("header-only", "refuse", raw=_header_only),
    Corruption("empty-file", "refuse", raw=lambda df, fmt, kind: b""),
    Corruption("binary-garbage", "refuse", raw=_garbage),
    Corruption("utf16-bom", "ok", raw=_encoded("utf-16"), formats=("csv",)),
    Corruption("utf16-no-bom", "ok", raw=_encoded("utf-16", bom=False), formats=("csv",)),
    Corruption("cp1252", "ok", raw=_encoded("cp1252"), formats=("csv",)),
    Corruption("semicolons", "ok", raw=_delimited(";"), formats=("csv",)),
    Corruption("tabs", "ok", raw=_delimited("\t"), formats=("csv",)),
    Corruption("overlong-row", "refuse", raw=_overlong_row, formats=("csv",)),
    Corruption("duplicate-columns", "refuse", raw=_duplicate_names, formats=("csv", "xlsx"), names=(OUTCOME, ITEM)),
    Corruption("title-row", "refuse", raw=_title_row, formats=("csv", "xlsx")),
    Corruption("no-id-column", "refuse", frame=drop_column(), names=("pid", "id")),
    Corruption("no-wave-column", "refuse", frame=drop_column("wave"), commands=ANALYSE, names=("wave",)),
    Corruption("no-arm-column", "refuse", frame=drop_column("arm"), commands=ANALYSE, names=("arm",)),
    Corruption("no-cluster-column", "refuse", frame=drop_column("team"), commands=ANALYSE, names=("team",)),
    Corruption("duplicate-id", "flag-or-refuse", frame=lambda df, kind: _duplicate_id(df), names=("pid", "id")),
    Corruption("wave-not-in-design", "flag", frame=set_some("wave", "week 3"), commands=ANALYSE, names=("wave",)),
    Corruption("rare-category", "no-crash", frame=_rare_category,
               design=_design_edit(lambda d: d.__setitem__("covariates", ["female", "age", "ethnicity"]))),
    Corruption("single-cluster", "refuse", frame=set_some(("site", "team"), "one", every=1), commands=ANALYSE,
               names=("site", "team")),
    # design YAML (analyse reads it; validate and score take it with --design)
    Corruption("yaml-syntax", "refuse", design=_broken_yaml),
    Corruption("yaml-unknown-key", "refuse", design=_design_edit(lambda d: d.__setitem__("clusterz", ["team"]))),
    Corruption("yaml-misspelt-family-outcome", "refuse", names=("families",),
               design=_design_edit(lambda d: d["families"]["primary"].append("atitudes"))),
    Corruption("yaml-misspelt-instrument", "refuse", names=("instruments",),
               design=_design_edit(lambda d: d.__setitem__("instruments", ["ncs_social_mixng"]))),
    Corruption("yaml-unknown-analysis", "refuse", names=("analyses",),
               design=_design_edit(lambda d: d["analyses"].append({"id": "x", "type": "diff_in_diff"}))),
    Corruption("yaml-missing-field", "refuse",
               design=_design_edit(lambda d: d.pop("arms"))),
    # paths
    Corruption("missing-input", "refuse", args=_missing_input),
    Corruption("missing-design", "refuse", args=_missing_design),
    Corruption("out-is-input", "refuse", args=_out_is_input),
    Corruption("out-holds-input", "ok", args=_out_holds_input),
]
# fmt: on
BY_ID = {c.id: c for c in CORRUPTIONS}


def cases() -> list:
    out = []
    for c in CORRUPTIONS:
        for cmd in c.commands:
            for fmt in c.formats:
                marks = []
                reason = c.xfail.get(f"{cmd}-{fmt}") or c.xfail.get(cmd)
                if reason:
                    marks.append(pytest.mark.xfail(strict=True, reason=reason))
                out.append(pytest.param(cmd, fmt, c.id, id=f"{cmd}-{fmt}-{c.id}", marks=marks))
    return out


# --------------------------------------------------------------------------- running a case
@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    exception: BaseException | None
    out: Path
    files: dict[str, str]  # every file written under the output folder, as text

    @property
    def text(self) -> str:
        return self.stdout + self.stderr

    @property
    def report(self) -> str:
        """report.html with its entities decoded (``'`` rather than ``&#39;``)."""
        return html.unescape(self.files.get("report.html", ""))


def fingerprint(path: Path) -> tuple | None:
    if not path.is_file():
        return None
    st = path.stat()
    return hashlib.sha256(path.read_bytes()).hexdigest(), st.st_mtime_ns, st.st_size


def file_text(path: Path) -> str:
    """A written file as text (workbook cells joined; other binary files decoded leniently)."""
    if path.suffix == ".xlsx":
        import openpyxl

        wb = openpyxl.load_workbook(path, read_only=True)
        return "\n".join(
            " ".join("" if v is None else str(v) for v in row)
            for ws in wb
            for row in ws.iter_rows(values_only=True)
        )
    return path.read_bytes().decode("utf-8", errors="replace")


def _snapshot(folder: Path) -> dict[Path, tuple | None]:
    return {p: fingerprint(p) for p in folder.rglob("*") if p.is_file()} if folder.is_dir() else {}


def invoke(args: list, out: Path) -> Run:
    """Run the CLI in-process; ``files`` are the files it wrote (new or changed) under ``out``."""
    folder = out if out.is_dir() or not out.exists() else out.parent
    before = _snapshot(folder)
    res = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "250", "NO_COLOR": "1"})
    files = {
        p.name: file_text(p) for p, print_ in sorted(_snapshot(folder).items()) if before.get(p) != print_
    }
    return Run(res.exit_code, res.stdout, res.stderr, res.exception, out, files)


def build_input(tmp: Path, cmd: str, fmt: str, c: Corruption, clean: dict) -> tuple[Path, Path]:
    """The corrupted input file and the design YAML for one case."""
    kind = "analyse" if cmd == "analyse" else "items"
    df = clean[kind].copy()
    if c.frame is not None:
        df = c.frame(df, "analyse" if cmd == "analyse" else kind)
    inp = tmp / f"survey{SUFFIX[fmt]}"
    if c.raw is not None:
        inp.write_bytes(c.raw(df, fmt, "analyse" if cmd == "analyse" else kind))
    else:
        write_frame(df, inp, fmt)
    design = tmp / "design.yaml"
    d = design_dict()
    design.write_text(c.design(d) if c.design else yaml.safe_dump(d, sort_keys=False), encoding="utf-8")
    return inp, design


def command_line(cmd: str, inp: Path, out: Path, design: Path, c: Corruption) -> list:
    where = {"data": inp, "out": out, "design": design}
    if c.args is not None:
        where.update(c.args(inp, out, design))
    use_design = c.design is not None or c.id == "missing-design"
    if cmd == "analyse":
        return ["analyse", where["data"], "--design", where["design"], "--out", where["out"]]
    args = [cmd, where["data"], "--instrument", INSTRUMENT, "--out", where["out"]]
    if use_design:
        args += ["--design", where["design"], "--id-col", "id", "--wave-col", "none"]
    return args


# --------------------------------------------------------------------------- the assertions
def assert_no_traceback(run: Run, files: list[Path]) -> None:  # (a)
    assert run.code in (0, 1, 2), f"exit {run.code}: {run.exception!r}\n{run.text}"
    assert run.exception is None or isinstance(run.exception, SystemExit), repr(run.exception)
    for leak in LEAKS:
        assert leak not in run.text, f"{leak!r} in the output:\n{run.text}"
        for name, text in run.files.items():
            if name.endswith(".html"):
                assert leak not in text, f"{leak!r} in {name}"
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    if run.code == 2 and "Usage:" not in run.stderr:
        assert len(errors) == 1, f"expected one error line:\n{run.stderr}"
        assert any(f.name in errors[0] for f in files), f"the error names no input file: {errors[0]}"


def assert_unchanged(before: dict[Path, tuple | None]) -> None:  # (b)
    for path, print_ in before.items():
        assert fingerprint(path) == print_, f"{path.name} was changed"


def assert_no_identifiers(run: Run) -> None:  # (c)
    for ident in IDENTIFIERS:
        assert ident not in run.text, f"{ident!r} in the console output"
        for name, text in run.files.items():
            if name == "scored.csv":
                continue  # respondent-level scores for the analyst, keyed by ID on purpose
            assert ident not in text, f"{ident!r} in {name}"


def assert_refused_or_flagged(run: Run, c: Corruption, cmd: str) -> None:  # (d)
    expect = c.expected(cmd)
    if expect == "ok":
        assert run.code == 0, run.text
        return
    if expect == "no-crash":
        return
    refused = run.code != 0 and bool(run.stderr.strip() or run.stdout.strip())
    if expect == "refuse" and cmd != "analyse" and run.code == 0:
        # validate and score list every problem and exit 0 (--strict stops): an error naming the column
        listed = [line for line in run.stdout.splitlines() if "error" in line]
        assert any(n in line for line in listed for n in c.names or ("",)), f"accepted:\n{run.text[-2000:]}"
        return
    if expect == "refuse":
        assert run.code != 0, f"accepted:\n{run.text[-2000:]}"
        assert refused
    elif expect == "flag":
        assert run.code in (0, 1), run.text
    else:  # flag-or-refuse
        assert run.code in (0, 1, 2)
    if run.code == 0 or (cmd == "analyse" and run.code == 1):
        where = run.report + run.text + "".join(t for n, t in run.files.items() if n.endswith("issues.csv"))
        if c.names:
            assert any(n in where for n in c.names), f"no caution names {c.names}:\n{run.text[-1500:]}"


def estimates(run: Run) -> pd.DataFrame:
    est = pd.read_csv(io.StringIO(run.files["estimates.csv"]))
    return est.sort_values(["analysis", "outcome", "term"]).reset_index(drop=True)


_BLANK_RUNS: dict[str, pd.DataFrame] = {}


def blank_estimates(tmp: Path, fmt: str, clean: dict) -> pd.DataFrame:
    """The estimates with the corrupted cells left blank (once per format)."""
    if fmt not in _BLANK_RUNS:
        case = Corruption("blank", "ok", frame=set_cells(np.nan))
        inp, design = build_input(tmp, "analyse", fmt, case, clean)
        run = invoke(command_line("analyse", inp, tmp / "blank-out", design, case), tmp / "blank-out")
        assert run.code == 0, run.text
        _BLANK_RUNS[fmt] = estimates(run)
    return _BLANK_RUNS[fmt]


def assert_same_as_blank(run: Run, tmp: Path, fmt: str, clean: dict, n_coded: int) -> None:  # (d), numbers
    got, want = estimates(run), blank_estimates(tmp, fmt, clean)
    num = ["estimate", "std_error", "ci_lower", "ci_upper", "p_value", "n_obs"]
    assert got[["analysis", "outcome", "term"]].equals(want[["analysis", "outcome", "term"]])
    np.testing.assert_allclose(got[num].to_numpy(float), want[num].to_numpy(float), rtol=1e-9, equal_nan=True)
    assert re.search(rf"column '{OUTCOME}'\): {n_coded} value\(s\)", run.report), "the count is not reported"


def assert_rows_accounted(run: Run, n_rows: int) -> None:  # (e)
    m = re.search(
        r"The data file has ([\d,]+) data rows?: ([\d,]+) analysed(?:; set aside: ([^<]*?))?\.<", run.report
    )
    assert m, "the report does not account for the rows of the file"
    n_file, n_used = int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))
    items = (m.group(3) or "").split("; ") if m.group(3) else []
    dropped = sum(int(re.match(r"[\d,]+", item).group(0).replace(",", "")) for item in items)
    assert n_file == n_rows, (n_file, n_rows)
    assert n_used + dropped == n_file, m.group(0)


# --------------------------------------------------------------------------- the suite
@pytest.mark.parametrize(("cmd", "fmt", "case"), cases())
def test_malformed_input(cmd: str, fmt: str, case: str, clean: dict, tmp_path: Path) -> None:
    c = BY_ID[case]
    inp, design = build_input(tmp_path, cmd, fmt, c, clean)
    args = command_line(cmd, inp, tmp_path / "out", design, c)
    before = {p: fingerprint(p) for p in (inp, design)}
    run = invoke(args, Path(args[args.index("--out") + 1]))
    assert_no_traceback(run, [Path(a) for a in args if isinstance(a, Path)])
    assert_unchanged(before)
    assert_no_identifiers(run)
    assert_refused_or_flagged(run, c, cmd)
    if cmd == "analyse" and run.code in (0, 1) and "report.html" in run.files:
        clean_rows = len(c.frame(clean["analyse"].copy(), "analyse")) if c.frame else len(clean["analyse"])
        assert_rows_accounted(run, clean_rows + c.extra_rows)
        if c.same_as_blank:
            assert_same_as_blank(run, tmp_path, fmt, clean, len(CODED_ROWS))
    if cmd == "score" and run.code == 0 and "scored.csv" in run.files:
        scored = pd.read_csv(io.StringIO(run.files["scored.csv"]))
        score_cols = [c for c in scored.columns if c.startswith("ncs_") and c not in clean["items"].columns]
        agree = [c for c in score_cols if "warmth" not in c]
        assert ((scored[agree] >= 1) & (scored[agree] <= 5) | scored[agree].isna()).all().all(), (
            "impossible score"
        )


def test_the_suite_is_big_enough() -> None:
    assert len(cases()) >= 300


# --------------------------------------------------------------------------- the fixes, one test each
def _analyse_csv(tmp: Path, frame: pd.DataFrame, *extra: str, design: dict | None = None) -> Run:
    inp, yml, out = tmp / "study.csv", tmp / "design.yaml", tmp / "out"
    frame.to_csv(inp, index=False)
    yml.write_text(yaml.safe_dump(design or design_dict(), sort_keys=False), encoding="utf-8")
    return invoke(["analyse", inp, "--design", yml, "--out", out, *extra], out)


def _coded(clean: dict, value: float) -> pd.DataFrame:
    return set_cells(value)(clean["analyse"].copy(), "analyse")


def test_strict_stops_at_a_missing_value_code_naming_file_column_row_and_count(clean, tmp_path):
    run = _analyse_csv(tmp_path, _coded(clean, -99), "--strict")
    assert run.code == 1 and not run.files
    (line,) = run.stderr.strip().splitlines()
    first = int(clean["analyse"].index[clean["analyse"]["wave"] == "post"][CODED_ROWS[0]]) + 2
    assert "study.csv" in line and "column 'attitudes'" in line and f"row {first}" in line
    assert "holds 3 value(s)" in line and "(-99)" in line
    relaxed = _analyse_csv(tmp_path, _coded(clean, -99))  # without --strict: set to missing, counted, named
    assert (
        relaxed.code == 0 and "column 'attitudes'): 3 value(s) a missing-value code (-99)" in relaxed.report
    )


def test_an_impossible_score_is_caught_from_the_designs_simulation_block(clean, tmp_path):
    # no outcome names an instrument scale here: the simulation block says attitudes is a mean of 1-5 items
    run = _analyse_csv(tmp_path, _coded(clean, 1e12), "--strict")
    assert run.code == 1 and "outside the scale's range 1 to 5" in run.stderr


def test_each_analysis_section_counts_the_rows_it_left_out(clean, tmp_path):
    data = clean["analyse"].copy()
    people = data["pid"].drop_duplicates().iloc[:5]
    data.loc[data["pid"].isin(people), "age"] = np.nan
    run = _analyse_csv(tmp_path, data)
    assert run.code == 0, run.text
    text = run.report
    n_post = int((data["wave"] == "post").sum())
    lost_post = int(data.loc[data["wave"] == "post", "pid"].isin(people).sum())
    # multilevel and ANCOVA: people at the post wave, by reason; the counts add up
    ml = re.search(
        r"Attitudes to other ethnic groups: (\d+) of (\d+) people left out: ([^;]*); (\d+) analysed", text
    )
    assert ml and int(ml.group(2)) == n_post and int(ml.group(1)) + int(ml.group(4)) == n_post
    assert f"missing age ({lost_post})" in ml.group(3)
    # weighted DiD: the rows given zero weight (no baseline age) are counted, not lost silently
    weighted = text[text.index("with propensity-score weights") :]
    m = re.search(r"weight 0 \(a baseline covariate missing, trimmed or unmatched\) \((\d+)\)", weighted)
    assert m and int(m.group(1)) >= int(data["pid"].isin(people).sum())


def test_a_failed_primary_analysis_exits_1_and_every_failure_has_its_own_plain_section(clean, tmp_path):
    data = clean["analyse"].copy()
    data["attitudes"] = 3.0
    run = _analyse_csv(tmp_path, data)
    assert run.code == 1 and "report.html" in run.files
    (line,) = [x for x in run.stderr.splitlines() if x.startswith("error:")]
    assert (
        line.startswith("error: ")
        and "study.csv" in line
        and "'did_primary'" in line
        and "same value" in line
    )
    assert "Not completed: did analysis 'did_primary'" in run.report
    assert "What to try:" in run.report and "The other analyses in this report ran." in run.report
    assert "Baseline balance" in run.report or "Not completed: balance" in run.report  # the others ran


def test_small_categories_of_a_text_covariate_are_merged_and_never_named(clean, tmp_path):
    data = _rare_category(clean["analyse"].copy(), "analyse")
    run = _analyse_csv(tmp_path, data, design=design_dict(covariates=["female", "age", "ethnicity"]))
    assert run.code == 0, run.text
    assert "Column 'ethnicity': 1 category with fewer than 10 people" in run.report
    assert "LS6 1AB" not in run.report + "".join(run.files.values())


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("pid,arm,wave\n", "header but no data rows"),
        ("pid,arm,wave\n,,\n,,\n", "all 2 rows are blank"),
        ("Survey export, 2026\npid,arm,wave,site,team\n1,a,b,c,d\n", "row 1: row 1 looks like a title"),
    ],
    ids=["header-only", "only-blank-rows", "title-row"],
)
def test_readers_say_what_is_wrong_with_the_layout(tmp_path, content, needle):
    from evaltoolkit.errors import DataError
    from evaltoolkit.io.readers import read_table

    p = tmp_path / "x.csv"
    p.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(needle)):
        read_table(p)


def test_utf16_without_a_byte_order_mark_is_read(tmp_path):
    from evaltoolkit.io.readers import read_table

    p = tmp_path / "x.csv"
    p.write_bytes("pid,name\n1,Zoë\n2,José\n".encode("utf-16-le"))
    frame = read_table(p)
    assert frame["name"].tolist() == ["Zoë", "José"]
    assert any("UTF-16" in n for n in frame.attrs["read_notes"])
    assert frame.attrs["blank_rows"] == 0


def test_out_naming_a_file_is_refused_before_any_work(clean, tmp_path):
    inp = tmp_path / "study.csv"
    clean["analyse"].to_csv(inp, index=False)
    yml = tmp_path / "d.yaml"
    yml.write_text(yaml.safe_dump(design_dict()), encoding="utf-8")
    run = invoke(["analyse", inp, "--design", yml, "--out", inp], tmp_path)
    assert run.code == 2 and "is a file" in run.stderr and not run.files


def test_a_caution_names_the_files_row_after_rows_were_set_aside(clean, tmp_path):
    data = clean["analyse"].copy()
    data.loc[[0, 1], "arm"] = "other"  # set aside by Study
    data.loc[10, "attitudes"] = -99  # file row 12
    run = _analyse_csv(tmp_path, data)
    assert "-99) were treated as missing, not as scores (first at row 12)" in run.report
