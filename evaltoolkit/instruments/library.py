"""Survey instruments as data: the YAML schema, its validation and the bundled library.

An *instrument* is a YAML file with response scales (codes and labels, missing codes),
items (code, wording with ``{placeholders}``, response scale, reverse key, source,
licence and whether the wording was verified against its source) and scales (item
sets scored by mean or sum with a minimum number of answered items).

The bundled library lives in the top-level ``instruments/`` directory, installed as the
package ``evaltoolkit.instruments_library``. :func:`load_instrument` takes a library id
(``"ncs_social_mixing"``) or a path to your own YAML file; every problem is reported as
an :class:`~evaltoolkit.errors.InstrumentError` naming the file, the item and the field.

This module is imported when the CLI starts, so it keeps its imports light (pandas is
imported inside :func:`list_instruments`).

Examples
--------
>>> import evaltoolkit as et
>>> inst = et.load_instrument("best_of_us_children")
>>> inst.wording("bouc_like_part", place="Ramsgate")
'I like being part of Ramsgate'
>>> inst.item("bouc_like_part").verified
'V-seed'
>>> inst.response_scales["notalot5"].valid_codes
[1, 2, 3, 4, 5]
"""

from __future__ import annotations

import math
import re
import string
import warnings
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evaltoolkit.errors import EvalToolkitWarning, InstrumentError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "VERIFIED_MARKS",
    "Instrument",
    "Item",
    "ResponseScale",
    "Scale",
    "Section",
    "library_path",
    "list_instruments",
    "load_instrument",
    "load_instruments",
]

#: Allowed values of ``Item.verified`` and what they mean.
VERIFIED_MARKS: dict[str, str] = {
    "V": "verified: wording read in the named source",
    "V-seed": "verified: wording quoted in the seed essay (line range in source)",
    "V-secondary": "verified in a secondary source that quotes the item; original not read",
    "R": "recalled, NOT verified against its source: check before fielding",
    "user": "slot: the wording is not published; the user must supply it",
}

_CODE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")

Verified = Literal["V", "V-seed", "V-secondary", "R", "user"]


def _placeholder_names(text: str) -> list[str]:
    """Names of the ``{placeholders}`` in a wording (``{{`` escapes a brace)."""
    try:
        return [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError as exc:  # unbalanced braces
        raise ValueError(f"wording has unbalanced braces ({exc}); write a literal brace as '{{{{'") from exc


def _num(x: float | None) -> float:
    """An integral float as int (0.0 -> 0), otherwise unchanged."""
    return int(x) if x is not None and float(x).is_integer() else x  # type: ignore[return-value]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False)


class ResponseScale(_Model):
    """A response format: coded labels (ordinal or nominal) or a numeric range, plus missing codes.

    Parameters
    ----------
    type : {"ordinal", "numeric", "nominal"}
        ``ordinal``: ordered codes with labels (Likert); ``numeric``: any number between
        ``min`` and ``max`` (feeling thermometer, age); ``nominal``: unordered coded
        categories (ethnicity, gender) that are never scored or reverse-keyed.
    labels : dict[int, str]
        Code -> label. Required for ordinal and nominal scales.
    missing : dict[int, str]
        Missing-value codes -> label (e.g. ``{-99: "Don't know"}``). They become NA on intake.
    min, max : float, optional
        Range of a numeric scale (required for numeric scales).

    Examples
    --------
    >>> rs = ResponseScale(type="ordinal", labels={1: "No", 2: "Maybe", 3: "Yes"}, missing={-99: "Don't know"})
    >>> rs.min_code, rs.max_code, rs.valid_codes
    (1, 3, [1, 2, 3])
    """

    type: Literal["ordinal", "numeric", "nominal"]
    labels: dict[int, str] = Field(default_factory=dict)
    missing: dict[int, str] = Field(default_factory=dict)
    min: float | None = None
    max: float | None = None
    note: str | None = None

    @field_validator("labels", "missing", mode="before")
    @classmethod
    def _no_yaml_booleans(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            for code, label in value.items():
                if isinstance(label, bool) or isinstance(code, bool):
                    raise ValueError(
                        f"code {code!r} / label {label!r} was read by YAML as a boolean "
                        "(Yes/No/On/Off/True/False); put the label in quotes"
                    )
                if label is None or (isinstance(label, str) and not label.strip()):
                    raise ValueError(f"code {code!r} has an empty label")
        return value

    @model_validator(mode="after")
    def _check(self) -> ResponseScale:
        if self.type in ("ordinal", "nominal"):
            if len(self.labels) < 2:
                raise ValueError(f"a {self.type} scale needs 'labels' with at least two codes")
            if self.min is not None or self.max is not None:
                raise ValueError(
                    f"'min'/'max' are only for numeric scales; a {self.type} scale uses 'labels'"
                )
        else:
            if self.min is None or self.max is None:
                raise ValueError("a numeric scale needs both 'min' and 'max'")
            if not (math.isfinite(self.min) and math.isfinite(self.max)) or self.min >= self.max:
                raise ValueError(f"'min' ({self.min}) must be smaller than 'max' ({self.max})")
            if self.labels:
                # anchors for numeric scales must lie inside the range
                bad = [c for c in self.labels if not self.min <= c <= self.max]
                if bad:
                    raise ValueError(f"anchor labels {bad} lie outside min-max {self.min}-{self.max}")
        overlap = sorted(set(self.missing) & set(self.valid_codes or []))
        if overlap:
            raise ValueError(f"missing codes {overlap} are also valid answer codes")
        if self.type == "numeric":
            inside = [c for c in self.missing if self.min <= c <= self.max]  # type: ignore[operator]
            if inside:
                raise ValueError(f"missing codes {inside} lie inside the valid range {self.min}-{self.max}")
        return self

    @property
    def min_code(self) -> float:
        """Smallest valid answer (lowest label code, or ``min`` for numeric scales)."""
        return min(self.labels) if self.type != "numeric" else _num(self.min)

    @property
    def max_code(self) -> float:
        """Largest valid answer (highest label code, or ``max`` for numeric scales)."""
        return max(self.labels) if self.type != "numeric" else _num(self.max)

    @property
    def valid_codes(self) -> list[int] | None:
        """Sorted label codes for ordinal/nominal scales; ``None`` for numeric scales (any value in range)."""
        return sorted(self.labels) if self.type != "numeric" else None

    @property
    def is_integer(self) -> bool:
        """True if every valid answer is a whole number."""
        if self.type != "numeric":
            return True
        return float(self.min).is_integer() and float(self.max).is_integer()  # type: ignore[arg-type]

    def reverse(self, x: float) -> float:
        """Reverse-key one answer: ``min_code + max_code - x``."""
        if self.type == "nominal":
            raise InstrumentError("a nominal response scale cannot be reverse-keyed")
        return self.min_code + self.max_code - x


class Item(_Model):
    """One question.

    ``verified`` is one of ``V``, ``V-seed``, ``V-secondary``, ``R`` (recalled, not verified)
    or ``user`` (a slot whose wording the user supplies). See :data:`VERIFIED_MARKS`.
    An unfilled ``user`` slot has a wording in square brackets that describes what to supply.
    """

    code: str
    wording: str
    response_scale: str
    reverse: bool = False
    source: str
    licence: str
    verified: Verified
    note: str | None = None
    section: str | None = None

    @field_validator("code")
    @classmethod
    def _code_ok(cls, value: str) -> str:
        if not _CODE_RE.match(value):
            raise ValueError(
                f"item code {value!r} must start with a letter or '_' and contain only letters, "
                "digits and '_' (it becomes a column name and an XLSForm name)"
            )
        return value

    @field_validator("wording", "source", "licence")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("wording")
    @classmethod
    def _braces_ok(cls, value: str) -> str:
        _placeholder_names(value)
        return value

    @field_validator("section")
    @classmethod
    def _section_ok(cls, value: str | None) -> str | None:
        if value is not None and not _CODE_RE.match(value):
            raise ValueError(f"section {value!r} must be a valid name (letters, digits, '_')")
        return value

    @property
    def is_unfilled_slot(self) -> bool:
        """True for a ``user`` slot whose wording is still the bracketed instruction."""
        w = self.wording.strip()
        return self.verified == "user" and w.startswith("[") and w.endswith("]")

    @property
    def placeholders(self) -> list[str]:
        """Names of the placeholders used in the wording."""
        return _placeholder_names(self.wording)


class Section(_Model):
    """A block of items shown together (an XLSForm group, a heading in the printable questionnaire)."""

    label: str
    intro: str | None = None


class Scale(_Model):
    """A scored set of items.

    ``min_items`` (the minimum number of answered items for a score, else NA) defaults
    to half the items, rounded up.
    """

    id: str
    label: str
    items: list[str]
    method: Literal["mean", "sum"] = "mean"
    min_items: int | None = None
    note: str | None = None

    @field_validator("id")
    @classmethod
    def _id_ok(cls, value: str) -> str:
        if not _CODE_RE.match(value):
            raise ValueError(f"scale id {value!r} must contain only letters, digits and '_'")
        return value

    @model_validator(mode="after")
    def _check(self) -> Scale:
        if not self.items:
            raise ValueError("a scale needs at least one item")
        dup = sorted({c for c in self.items if self.items.count(c) > 1})
        if dup:
            raise ValueError(f"items listed twice: {dup}")
        if self.min_items is None:
            self.min_items = math.ceil(len(self.items) / 2)
        if not 1 <= self.min_items <= len(self.items):
            raise ValueError(f"min_items must be between 1 and the number of items ({len(self.items)})")
        return self


# ``construct`` is part of the agreed schema; it shadows pydantic's deprecated ``BaseModel.construct``.
warnings.filterwarnings("ignore", message='Field name "construct"', category=UserWarning)


class Instrument(_Model):
    """A validated instrument (see the module docstring for the YAML layout).

    Examples
    --------
    >>> import evaltoolkit as et
    >>> inst = et.load_instrument("ncs_social_mixing")
    >>> inst.scale("ncs_positive_contact").items
    ['ncs_pos_contact']
    """

    id: str
    version: str
    title: str
    construct: str
    description: str = ""
    placeholders: dict[str, str] = Field(default_factory=dict)
    response_scales: dict[str, ResponseScale]
    items: list[Item]
    scales: list[Scale] = Field(default_factory=list)
    sections: dict[str, Section] = Field(default_factory=dict)
    notes: str | None = None
    #: where the instrument was read from (not part of the YAML)
    path: str | None = Field(default=None, exclude=True)

    @field_validator("version", mode="before")
    @classmethod
    def _version_str(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(f'version {value!r} must be a quoted string, e.g. version: "{value}"')
        return value

    @field_validator("id")
    @classmethod
    def _id_ok(cls, value: str) -> str:
        if not _ID_RE.match(value):
            raise ValueError(f"instrument id {value!r} must be lower-case letters, digits and '_'")
        return value

    @model_validator(mode="after")
    def _cross_check(self) -> Instrument:
        if not self.items:
            raise ValueError("an instrument needs at least one item")
        seen: dict[str, int] = {}
        for i, item in enumerate(self.items):
            if item.code in seen:
                raise _Located(
                    f"item '{item.code}': duplicate item code (also item {seen[item.code]})",
                    ("items", i, "code"),
                )
            seen[item.code] = i
            rs = self.response_scales.get(item.response_scale)
            if rs is None:
                raise _Located(
                    f"item '{item.code}': unknown response scale '{item.response_scale}' "
                    f"(defined: {', '.join(sorted(self.response_scales)) or 'none'})",
                    ("items", i, "response_scale"),
                )
            if item.reverse and rs.type == "nominal":
                raise _Located(
                    f"item '{item.code}': a nominal response scale cannot be reverse-keyed",
                    ("items", i, "reverse"),
                )
            if item.section is not None and self.sections and item.section not in self.sections:
                raise _Located(
                    f"item '{item.code}': unknown section '{item.section}' "
                    f"(defined: {', '.join(sorted(self.sections))})",
                    ("items", i, "section"),
                )
            unknown = [p for p in item.placeholders if p not in self.placeholders]
            if unknown:
                raise _Located(
                    f"item '{item.code}': placeholder(s) {unknown} have no default in 'placeholders'",
                    ("items", i, "wording"),
                )
        scale_ids: set[str] = set()
        for j, scale in enumerate(self.scales):
            if scale.id in scale_ids:
                raise _Located(f"scale '{scale.id}': duplicate scale id", ("scales", j, "id"))
            if scale.id in seen:
                raise _Located(
                    f"scale '{scale.id}': scale id is also an item code (score columns would clash)",
                    ("scales", j, "id"),
                )
            scale_ids.add(scale.id)
            for code in scale.items:
                if code not in seen:
                    raise _Located(
                        f"scale '{scale.id}': refers to unknown item '{code}'", ("scales", j, "items")
                    )
                rs = self.response_scales[self.items[seen[code]].response_scale]
                if rs.type == "nominal":
                    raise _Located(
                        f"scale '{scale.id}': item '{code}' has a nominal response scale and cannot be scored",
                        ("scales", j, "items"),
                    )
        return self

    # ----------------------------------------------------------------- access
    @property
    def item_codes(self) -> list[str]:
        """Item codes in questionnaire order."""
        return [it.code for it in self.items]

    def item(self, code: str) -> Item:
        """The item with this code (``InstrumentError`` naming the known codes if absent)."""
        for it in self.items:
            if it.code == code:
                return it
        raise InstrumentError(
            f"instrument '{self.id}' has no item '{code}' (items: {', '.join(self.item_codes)})",
            file=self.path,
        )

    def scale(self, id: str) -> Scale:
        """The scale with this id."""
        for sc in self.scales:
            if sc.id == id:
                return sc
        known = ", ".join(s.id for s in self.scales) or "none"
        raise InstrumentError(f"instrument '{self.id}' has no scale '{id}' (scales: {known})", file=self.path)

    def response_scale_of(self, code: str) -> ResponseScale:
        """The :class:`ResponseScale` of item ``code``."""
        return self.response_scales[self.item(code).response_scale]

    def wording(self, code: str, **placeholders: str) -> str:
        """Item wording with placeholders filled (defaults from the file, overridden by keywords).

        Examples
        --------
        >>> import evaltoolkit as et
        >>> et.load_instrument("ncs_social_mixing").wording("ncs_getalong", place="Leeds")[:40]
        'To what extent do you agree or disagree '
        """
        values = {**self.placeholders, **{k: str(v) for k, v in placeholders.items()}}
        item = self.item(code)
        try:
            return item.wording.format(**values)
        except (KeyError, IndexError) as exc:  # pragma: no cover - caught at load time
            raise InstrumentError(
                f"item '{code}': no value for placeholder {exc}", file=self.path, field="wording"
            ) from exc

    def section_label(self, section: str | None) -> str | None:
        """Heading of a section (its ``label``, or the id with underscores as spaces)."""
        if section is None:
            return None
        if section in self.sections:
            return self.sections[section].label
        return section.replace("_", " ").capitalize()

    def fill(self, text: str | None, **placeholders: str) -> str | None:
        """Substitute placeholders in any text of this instrument (section intros, notes)."""
        if text is None:
            return None
        values = {**self.placeholders, **{k: str(v) for k, v in placeholders.items()}}
        try:
            return text.format(**values)
        except (KeyError, IndexError, ValueError):
            return text

    def unfilled_slots(self) -> list[str]:
        """Codes of ``user`` slots whose wording has not been supplied yet."""
        return [it.code for it in self.items if it.is_unfilled_slot]

    def fill_slots(self, wordings: Mapping[str, str]) -> Instrument:
        """Return a copy with user-supplied wordings for ``user`` slots.

        Only items marked ``verified: user`` can be filled; their mark stays ``user``
        (the wording came from the user, not from a verified source).

        Examples
        --------
        >>> import evaltoolkit as et
        >>> inst = et.load_instrument("best_of_us_children")
        >>> filled = inst.fill_slots({"bouc_kind_2": "You see a child sitting alone. Would you ask them to play?"})
        >>> "bouc_kind_2" in filled.unfilled_slots()
        False
        """
        new = self.model_copy(deep=True)
        for code, text in wordings.items():
            item = new.item(code)
            if item.verified != "user":
                raise InstrumentError(
                    f"item '{code}' is not a user slot (verified: {item.verified}); edit a copy of the YAML "
                    "file to change a published wording",
                    file=self.path,
                    field="wording",
                )
            if not str(text).strip():
                raise InstrumentError(f"item '{code}': the supplied wording is empty", field="wording")
            _placeholder_names(str(text))
            item.wording = str(text).strip()
            item.note = ((item.note + " ") if item.note else "") + "Wording supplied by the user."
        return new


class _Located(ValueError):
    """A cross-field error with its location inside the YAML document."""

    def __init__(self, message: str, loc: tuple[Any, ...]) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc


# ------------------------------------------------------------------ loading
def library_path() -> Path:
    """Directory of the bundled instrument YAML files."""
    return Path(str(resources.files("evaltoolkit.instruments_library")))


def _library_files() -> dict[str, Path]:
    return {p.stem: p for p in sorted(library_path().glob("*.yaml"))}


def _describe_loc(data: Any, loc: tuple[Any, ...]) -> tuple[str, str]:
    """Turn a pydantic location into ('item 'code'' prefix, dotted field path)."""
    where = ""
    parts: list[str] = []
    node = data
    for i, key in enumerate(loc):
        if isinstance(key, int):
            parts[-1] = f"{parts[-1]}[{key}]" if parts else f"[{key}]"
        else:
            parts.append(str(key))
        # name the item/scale by its code/id when we can
        if isinstance(node, Mapping):
            node = node.get(key)
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
            parent = loc[i - 1] if i else None
            if isinstance(node, Mapping):
                if parent == "items" and "code" in node:
                    where = f"item '{node['code']}'"
                elif parent == "scales" and "id" in node:
                    where = f"scale '{node['id']}'"
        else:
            node = None
        if i == 1 and loc[0] == "response_scales":
            where = f"response scale '{key}'"
    return where, ".".join(parts)


def _errors_from_validation(exc: ValidationError, data: Any, file: str) -> InstrumentError:
    problems: list[tuple[str, str]] = []
    for err in exc.errors():
        ctx_err = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_err, _Located):
            where, field = _describe_loc(data, ctx_err.loc)
            problems.append(
                (
                    field,
                    ctx_err.message
                    if not where or ctx_err.message.startswith(where.split()[0])
                    else f"{where}: {ctx_err.message}",
                )
            )
            continue
        loc = tuple(err["loc"])
        # pydantic puts the tagged-union/model name in the loc of model validators; drop non-fields
        where, field = _describe_loc(data, loc)
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err["type"] == "missing":
            msg = "required field is missing"
        elif err["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; see docs/instruments.md for the allowed fields)"
        elif err["type"] == "literal_error":
            got = err.get("input")
            msg = f"{got!r} is not allowed: {msg.replace('Input should be ', 'use ')}"
        problems.append((field, f"{where}: {msg}" if where else msg))
    field, message = problems[0]
    if len(problems) > 1:
        extra = "; ".join(f"{f}: {m}" for f, m in problems[1:6])
        more = f" (and {len(problems) - 6} more)" if len(problems) > 6 else ""
        message = f"{message} [also: {extra}{more}]"
    return InstrumentError(message, file=file, field=field or None)


def _from_yaml_file(path: Path) -> Instrument:
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InstrumentError("file not found", file=file) from exc
    except UnicodeDecodeError as exc:
        raise InstrumentError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=file) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InstrumentError(f"invalid YAML{where}: {problem}", file=file) from exc
    if not isinstance(data, dict):
        raise InstrumentError("the file must contain a YAML mapping (id, version, items, ...)", file=file)
    try:
        inst = Instrument.model_validate(data)
    except ValidationError as exc:
        raise _errors_from_validation(exc, data, file) from None
    inst.path = file
    return inst


def load_instrument(name_or_path: str | Path | Instrument) -> Instrument:
    """Load and validate an instrument.

    Parameters
    ----------
    name_or_path : str, Path or Instrument
        A bundled instrument id (see :func:`list_instruments`), a path to a YAML file,
        or an already loaded :class:`Instrument` (returned unchanged).

    Returns
    -------
    Instrument

    Raises
    ------
    InstrumentError
        Unknown id, missing file, invalid YAML or an invalid definition; the message
        names the file, the item (or scale) and the field.

    Examples
    --------
    >>> import evaltoolkit as et
    >>> inst = et.load_instrument("ncs_social_mixing")
    >>> inst.item("ncs_getalong").response_scale
    'agree5'
    """
    if isinstance(name_or_path, Instrument):
        return name_or_path
    if not isinstance(name_or_path, str | Path):
        raise InstrumentError(
            f"expected an instrument id, a YAML path or an Instrument, got {type(name_or_path).__name__}"
        )
    text = str(name_or_path)
    path = Path(text).expanduser()
    looks_like_path = isinstance(name_or_path, Path) or text.endswith((".yaml", ".yml")) or "/" in text
    if looks_like_path or path.is_file():
        inst = _from_yaml_file(path)
        if path.stem != inst.id:
            warnings.warn(
                f"{path}: instrument id '{inst.id}' differs from the file name '{path.stem}'",
                EvalToolkitWarning,
                stacklevel=2,
            )
        return inst
    files = _library_files()
    if text not in files:
        raise InstrumentError(
            f"no bundled instrument '{text}' (available: {', '.join(files)}); pass a path to load your own YAML"
        )
    inst = _from_yaml_file(files[text])
    if inst.id != text:
        raise InstrumentError(
            f"id '{inst.id}' must equal the file name '{text}'", file=str(files[text]), field="id"
        )
    return inst


def load_instruments(
    instruments: str | Path | Instrument | Iterable[str | Path | Instrument],
) -> list[Instrument]:
    """Load one or several instruments and check that their item codes and scale ids do not clash.

    Examples
    --------
    >>> [i.id for i in load_instruments(["ncs_social_mixing", "demographics"])]
    ['ncs_social_mixing', 'demographics']
    """
    if isinstance(instruments, str | Path | Instrument):
        instruments = [instruments]
    loaded = [load_instrument(x) for x in instruments]
    owner: dict[str, str] = {}
    for inst in loaded:
        for name in [*inst.item_codes, *(s.id for s in inst.scales)]:
            if name in owner and owner[name] != inst.id:
                raise InstrumentError(
                    f"item/scale name '{name}' is used by both '{owner[name]}' and '{inst.id}'; "
                    "rename one of them in a copy of the YAML file",
                    file=inst.path,
                )
            owner[name] = inst.id
    return loaded


def list_instruments() -> pd.DataFrame:
    """The bundled instruments, one row each.

    Returns
    -------
    pandas.DataFrame
        Columns ``id, version, title, construct, n_items, n_scales, n_unverified,
        n_user_slots``. ``n_unverified`` counts items marked ``R`` (recalled) or ``user``.

    Examples
    --------
    >>> import evaltoolkit as et
    >>> df = et.list_instruments()
    >>> "ncs_social_mixing" in set(df["id"])
    True
    """
    import pandas as pd

    rows = []
    for name in _library_files():
        inst = load_instrument(name)
        rows.append(
            {
                "id": inst.id,
                "version": inst.version,
                "title": inst.title,
                "construct": inst.construct,
                "n_items": len(inst.items),
                "n_scales": len(inst.scales),
                "n_unverified": sum(it.verified in ("R", "user") for it in inst.items),
                "n_user_slots": sum(it.verified == "user" for it in inst.items),
            }
        )
    cols = ["id", "version", "title", "construct", "n_items", "n_scales", "n_unverified", "n_user_slots"]
    return pd.DataFrame(rows, columns=cols)
