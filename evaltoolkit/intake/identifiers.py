"""Find personal identifiers in a survey export, remove them, and pseudonymise respondent IDs.

Survey exports carry personal data next to the answers: Qualtrics writes ``IPAddress``,
``LocationLatitude`` and ``RecipientEmail``; KoboToolbox writes ``deviceid``, ``phonenumber`` and
``_geolocation``; forms ask for names and postcodes; and people type e-mail addresses into comment
boxes. This module

* finds them (:func:`find_identifiers`): by column **name** (case-insensitive, ignoring Kobo group
  prefixes such as ``admin/`` and separators) and by **content** of text columns (e-mail addresses,
  UK postcodes, phone numbers, IP addresses, "lat, lon" pairs),
* removes them (:func:`drop_identifiers`): whole columns, or single cells of an otherwise useful
  text column,
* replaces respondent IDs by keyed pseudonyms (:func:`pseudonymise`) under a key kept in a file
  beside the data (:func:`load_or_create_key`), so waves still link and nobody without the key can
  go back from a pseudonym to an ID.

No finding and no note ever quotes a value: they name the column and say, in plain words, what
was seen ("41 of 50 values look like e-mail addresses").

Examples
--------
>>> import pandas as pd
>>> raw = pd.DataFrame({
...     "IPAddress": ["192.0.2.1", "192.0.2.7", "198.51.100.3", "192.0.2.9"],
...     "Q1": [4, 5, 3, 4],
...     "comments": ["great", "write to jo@example.org", "fun", "more trips"],
... })
>>> found = find_identifiers(raw)
>>> [(f.column, f.kind, f.scope) for f in found]
[('IPAddress', 'ip address', 'column'), ('comments', 'e-mail', 'cells')]
>>> clean, notes = drop_identifiers(raw, found)
>>> list(clean.columns), clean["comments"].isna().tolist()
(['Q1', 'comments'], [False, True, False, False])
>>> notes[0]
'removed 1 identifying column(s): IPAddress (ip address)'
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from evaltoolkit.errors import DataError

__all__ = [
    "KINDS",
    "IdentifierColumn",
    "drop_identifiers",
    "find_identifiers",
    "load_or_create_key",
    "mask_value",
    "pseudonymise",
]

#: the kinds of identifier a finding can name
KINDS = (
    "ip address",
    "location",
    "name",
    "e-mail",
    "phone",
    "postcode",
    "free-text id",
    "date of birth",
    "respondent id",
)

#: share of a text column's non-blank values that must look identifying for the whole column to go
COLUMN_SHARE = 0.30
#: fewest non-blank values a text column needs before it can be judged as a whole
MIN_VALUES = 3


@dataclass(frozen=True)
class IdentifierColumn:
    """One finding of :func:`find_identifiers`.

    Parameters
    ----------
    column : str
        The column, as named in the frame.
    kind : str
        One of :data:`KINDS`.
    reason : str
        What was seen, in plain words; never quotes a value.
    scope : {"column", "cells"}
        ``"column"``: the column identifies people and goes as a whole. ``"cells"``: a few cells of
        an otherwise useful text column look like identifiers of ``kind``; those cells are blanked.

    Examples
    --------
    >>> IdentifierColumn("IPAddress", "ip address", "column name suggests an IP address")
    IdentifierColumn(column='IPAddress', kind='ip address', reason='column name suggests an IP address', scope='column')
    """

    column: str
    kind: str
    reason: str
    scope: Literal["column", "cells"] = "column"


# --------------------------------------------------------------------------- by column name
#: words (single tokens or adjacent tokens joined) that mark a column, by kind, in priority order
_NAME_WORDS: dict[str, frozenset[str]] = {
    kind: frozenset(words.split())
    for kind, words in {
        "ip address": "ip ipaddress ipaddr ipv4 ipv6",
        "e-mail": "email emailaddress emails",
        "date of birth": "dob dateofbirth birthdate birthday birthdates",
        "phone": "phone phonenumber phoneno telephone tel mobile mobilenumber contactnumber",
        "postcode": "postcode postcodes postalcode zip zipcode",
        "location": "latitude longitude lat lon lng latlon latlong latlng geolocation gps geopoint geotrace "
        "geoshape coordinates address street",
        "name": "firstname lastname surname fullname forename forenames givenname familyname middlename "
        "nickname username recipientfirstname recipientlastname",
        "free-text id": "externalreference externalref externaldatareference deviceid subscriberid simserial "
        "imei nhsnumber ninumber nationalinsurancenumber",
    }.items()
}

#: a "...name" column is a person's name unless one of these words says what is named
_NOT_A_PERSON = frozenset(
    "school team group club class programme program project organisation organization org site venue "
    "centre center provider course activity event wave arm condition scale item question variable "
    "instrument form file field town city area region country place company business unit ward language "
    "product app sheet study partner".split()
)

_NAME_REASONS = {
    "ip address": "column name suggests an IP address",
    "e-mail": "column name suggests an e-mail address",
    "date of birth": "column name suggests a date of birth",
    "phone": "column name suggests a phone number",
    "postcode": "column name suggests a postcode",
    "location": "column name suggests a location (map coordinates or an address)",
    "name": "column name suggests a person's name",
    "free-text id": "column name suggests an external reference or a device identifier",
}

_TOKEN = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+|[^\W\d_A-Za-z]+")


def _name_tokens(column: object) -> list[str]:
    """Lower-case words of a column name, without its Kobo group path.

    Examples
    --------
    >>> _name_tokens("admin/RecipientFirstName"), _name_tokens("IPAddress"), _name_tokens("date-of_birth")
    (['recipient', 'first', 'name'], ['ip', 'address'], ['date', 'of', 'birth'])
    """
    last = str(column).rsplit("/", 1)[-1]
    return [t.lower() for part in re.split(r"[\W_]+", last) for t in _TOKEN.findall(part)]


def _ngrams(tokens: list[str]) -> set[str]:
    """Every run of adjacent tokens, joined: ``["first", "name"]`` -> first, name, firstname."""
    return {"".join(tokens[i:j]) for i in range(len(tokens)) for j in range(i + 1, len(tokens) + 1)}


def _kind_by_name(column: object) -> str | None:
    """The identifier kind a column name suggests, or None.

    Examples
    --------
    >>> [_kind_by_name(c) for c in ["e-mail", "_geolocation", "consent/name", "school_name", "Q2_1"]]
    ['e-mail', 'location', 'name', None, None]
    """
    tokens = _name_tokens(column)
    grams = _ngrams(tokens)
    for kind, words in _NAME_WORDS.items():
        if grams & words:
            return kind
    if {"name", "names"} & set(tokens) and not _NOT_A_PERSON & set(tokens):
        return "name"
    return None


# --------------------------------------------------------------------------- by content
_EMAIL = re.compile(r"[\w.%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_POSTCODE = re.compile(
    r"\b[A-PR-UWYZ][A-HK-Y]?[0-9][A-Z0-9]?\s*[0-9][ABD-HJLNP-UW-Z]{2}\b", flags=re.IGNORECASE
)
_PHONE = re.compile(r"(?<![\w+.])(?:\+\d|\(?0)[\d\s().-]{7,}\d(?![\w.])")
_DECIMAL = re.compile(r"[-+]?\d+\.\d+")
_IPV4 = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
_LATLON = re.compile(r"(?<![\d.])([-+]?\d{1,2}\.\d{3,})\s*[,;\s]\s*([-+]?\d{1,3}\.\d{3,})(?![\d.])")
_WORD = r"[^\W\d_]+(?:['’.-][^\W\d_]+)*\.?"
_PERSON_NAME = re.compile(rf"{_WORD}(?:\s+{_WORD}){{0,3}}")


def _is_phone(text: str) -> bool:
    """A UK or international phone number: 10-15 digits starting with 0 or +, spaces and brackets allowed."""
    for m in _PHONE.finditer(text):
        if _DECIMAL.fullmatch(m.group()):
            continue
        if 10 <= sum(ch.isdigit() for ch in m.group()) <= 15:
            return True
    return False


def _is_ipv6(text: str) -> bool:
    for m in _IPV6.finditer(text):
        try:
            ipaddress.IPv6Address(m.group())
        except ValueError:
            continue
        if sum(bool(g) for g in m.group().split(":")) >= 2:
            return True
    return False


def _is_latlon(text: str) -> bool:
    return any(abs(float(a)) <= 90 and abs(float(b)) <= 180 for a, b in _LATLON.findall(text))


#: content kinds: (kind, what the values look like, test of one value), in the order they are tried
_CONTENT: tuple[tuple[str, str, Callable[[str], bool]], ...] = (
    ("e-mail", "e-mail addresses", lambda s: _EMAIL.search(s) is not None),
    ("ip address", "IP addresses", lambda s: _IPV4.search(s) is not None or _is_ipv6(s)),
    ("location", "map coordinates", _is_latlon),
    ("phone", "phone numbers", _is_phone),
    ("postcode", "postcodes", lambda s: _POSTCODE.search(s) is not None),
)
_LOOKS_LIKE = {kind: words for kind, words, _ in _CONTENT} | {"name": "names"}


def _classify(text: str) -> str | None:
    """The first content kind one value looks like, or None.

    Examples
    --------
    >>> [_classify(s) for s in ["LS6 1AB", "+44 7700 900123", "53.8008, -1.5491", "T01", "ID-0001"]]
    ['postcode', 'phone', 'location', None, None]
    """
    if "@" not in text and not any(ch.isdigit() for ch in text):
        return None  # every kind needs an "@" or a digit: plain words are settled at once
    for kind, _, test in _CONTENT:
        if test(text):
            return kind
    return None


def mask_value(value: str) -> str:
    """``value``, or a placeholder naming its kind when it looks like an e-mail, phone, postcode, IP or location.

    Examples
    --------
    >>> mask_value("07700 900123"), mask_value("7")
    ('(looks like a phone number; not shown)', '7')
    """
    kind = _classify(value) if value else None
    return value if kind is None else f"(looks like {_A[kind]}; not shown)"


_A = {"e-mail": "an e-mail address", "phone": "a phone number", "postcode": "a postcode",
      "ip address": "an IP address", "location": "a location"}  # fmt: skip


def _is_text(col: pd.Series) -> bool:
    """Text columns are checked by content; numbers, booleans and dates never are."""
    dtype = col.dtype
    return not (
        pd.api.types.is_numeric_dtype(dtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_datetime64_any_dtype(dtype)
        or pd.api.types.is_timedelta64_dtype(dtype)
    )


def _non_blank(col: pd.Series) -> pd.Series:
    """The non-blank values of a column, as stripped text."""
    text = col[col.notna()].astype(str).str.strip()
    return text[text != ""]


def _content_kinds(col: pd.Series, classify: Callable[[str], str | None] = _classify) -> pd.Series:
    """The content kind of each non-blank value (None where it looks like nothing), classified once per distinct value."""
    values = _non_blank(col)
    kinds = {v: classify(v) for v in values.unique()}
    return values.map(kinds)


def _looks_like(counts: pd.Series) -> str:
    """``"e-mail addresses or phone numbers"``: the kinds seen, most frequent first."""
    return " or ".join(_LOOKS_LIKE[k] for k in counts.index)


def _by_content(column: str, col: pd.Series) -> list[IdentifierColumn]:
    """Content findings of one text column: the whole column, or the few cells that identify."""
    kinds = _content_kinds(col)
    counts = kinds.value_counts()
    if counts.empty:
        return []
    total, hits = len(kinds), int(counts.sum())
    if total >= MIN_VALUES and hits / total >= COLUMN_SHARE:
        reason = f"{hits} of {total} values look like {_looks_like(counts)}"
        return [IdentifierColumn(column, str(counts.index[0]), reason)]
    return [
        IdentifierColumn(column, str(kind), f"{int(n)} cell(s) look like {_LOOKS_LIKE[kind]}", "cells")
        for kind, n in counts.items()
    ]


def _classify_id(text: str) -> str | None:
    """What a respondent ID looks like: an e-mail address, a phone number, a name, or None (a code)."""
    kind = _classify(text)
    if kind in ("e-mail", "phone"):
        return kind
    return "name" if _PERSON_NAME.fullmatch(text) and sum(ch.isalpha() for ch in text) >= 2 else None


def _respondent_id(column: str, col: pd.Series) -> IdentifierColumn | None:
    """A finding for the respondent-ID column when its values are contacts or names rather than codes."""
    kinds = _content_kinds(col, _classify_id)
    counts = kinds.value_counts()
    total, hits = len(kinds), int(counts.sum())
    if not hits or (total >= MIN_VALUES and hits / total < COLUMN_SHARE):
        return None
    reason = f"{hits} of {total} respondent IDs look like {_looks_like(counts)}"
    return IdentifierColumn(column, "respondent id", reason)


# --------------------------------------------------------------------------- finding
def find_identifiers(
    frame: pd.DataFrame, *, exclude: Iterable[str] = (), id_col: str | None = None
) -> list[IdentifierColumn]:
    """Columns (and single cells) of ``frame`` that identify people.

    A column is flagged

    * by **name** (unless it is in ``exclude``): IP address, latitude/longitude/GPS/geolocation or an
      address, a person's name (first name, surname, full name, username, a bare ``name``; not
      ``school_name`` or ``team_name``), e-mail, phone/mobile/tel, postcode/zip, date of birth, and
      external references or device identifiers (``ExternalReference``, ``deviceid``,
      ``subscriberid``, ``simserial``). Matching ignores case, separators and Kobo group paths, so
      ``admin/phone``, ``IPAddress``, ``ip_address`` and ``LocationLatitude`` all count;
    * by **content**, for text columns only (``exclude`` or not): when at least 30% of at least 3
      non-blank values look like e-mail addresses, UK postcodes, phone numbers, IP addresses or
      "lat, lon" pairs. Below that, each kind seen in a few cells is reported with
      ``scope="cells"``, so a single e-mail address in a comment box is caught too.

    Numeric columns (scores, ages) are never judged by content. The respondent-ID column
    ``id_col`` is not judged as above: it is reported (kind ``"respondent id"``) only when its values
    look like e-mail addresses, phone numbers or names; code-like IDs are left to
    :func:`pseudonymise`.

    Parameters
    ----------
    frame : DataFrame
        The export, as read.
    exclude : iterable of str
        Item and design columns: never flagged by name, still checked by content.
    id_col : str, optional
        The respondent-ID column.

    Returns
    -------
    list of IdentifierColumn
        In column order. Reasons name what was seen and never quote a value.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({
    ...     "admin/phone": ["07700 900123", "", "07700 900456"],
    ...     "arm": ["ncs", "control", "ncs"],
    ...     "age": [16, 17, 16],
    ... })
    >>> for f in find_identifiers(df, exclude=["arm", "age"]):
    ...     print(f.column, "|", f.kind, "|", f.reason)
    admin/phone | phone | column name suggests a phone number
    """
    excluded = {str(c) for c in exclude}
    found: list[IdentifierColumn] = []
    for i, column in enumerate(frame.columns):
        name, col = str(column), frame.iloc[:, i]
        if id_col is not None and name == str(id_col):
            hit = _respondent_id(name, col) if _is_text(col) else None
            found.extend([hit] if hit else [])
            continue
        kind = None if name in excluded else _kind_by_name(column)
        if kind is not None:
            found.append(IdentifierColumn(name, kind, _NAME_REASONS[kind]))
        elif _is_text(col):
            found.extend(_by_content(name, col))
    return found


# --------------------------------------------------------------------------- removing
def _cell_mask(col: pd.Series, kinds: set[str]) -> pd.Series:
    """Cells of ``col`` that contain an identifier of one of ``kinds``."""
    tests = [test for kind, _, test in _CONTENT if kind in kinds]
    values = _non_blank(col)
    hit = {v: any(t(v) for t in tests) for v in values.unique()}
    return values.map(hit).reindex(col.index, fill_value=False).astype(bool)


def _still_identifies(col: pd.Series) -> bool:
    """Whether a respondent-ID column still looks like contacts or names (not yet pseudonymised)."""
    return _respondent_id("id", col) is not None


def _drop_columns(frame: pd.DataFrame, found: list[IdentifierColumn]) -> tuple[dict[str, str], list[str]]:
    """The columns to remove (with their kinds), and the respondent-ID columns kept as pseudonymised."""
    removed: dict[str, str] = {}
    kept: list[str] = []
    for f in found:
        if f.scope != "column" or f.column not in frame.columns or f.column in removed:
            continue
        if f.kind == "respondent id" and not _still_identifies(frame[f.column]):
            kept.append(f.column)
            continue
        removed[f.column] = f.kind
    return removed, kept


def drop_identifiers(
    frame: pd.DataFrame, found: Iterable[IdentifierColumn]
) -> tuple[pd.DataFrame, list[str]]:
    """``frame`` without the identifying columns of ``found`` and with its identifying cells blanked.

    Column findings remove the column. A ``"respondent id"`` finding removes the ID column only if
    its values still look like contacts or names: pseudonymise it first (in place) to keep linking
    waves. Cell findings set to NA the cells of that column that contain an identifier of that kind.

    Parameters
    ----------
    frame : DataFrame
    found : iterable of IdentifierColumn
        What :func:`find_identifiers` returned for ``frame``.

    Returns
    -------
    (DataFrame, list of str)
        A copy of ``frame``, and plain-language notes of what was done (column names, never values).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"email": ["a@b.org", "c@d.org"], "note": ["ok", "ring 07700 900123"]})
    >>> clean, notes = drop_identifiers(df, find_identifiers(df))
    >>> clean.to_dict("list")
    {'note': ['ok', nan]}
    >>> notes
    ['removed 1 identifying column(s): email (e-mail)', 'set 1 cell(s) to missing that looked like phone numbers: note (1)']
    """
    found = list(found)
    removed, kept = _drop_columns(frame, found)
    out = frame.drop(columns=list(removed))
    labels = ", ".join(f"{c} ({k})" for c, k in removed.items())
    notes = [f"removed {len(removed)} identifying column(s): {labels}"] if removed else []
    notes += [
        f"kept respondent-ID column {c}: its values no longer look like contacts or names" for c in kept
    ]
    blanked, kinds_seen = _blank_cells(out, found)
    if blanked:
        where = ", ".join(f"{c} ({n})" for c, n in blanked.items())
        what = " or ".join(_LOOKS_LIKE[k] for k in kinds_seen)
        notes.append(f"set {sum(blanked.values())} cell(s) to missing that looked like {what}: {where}")
    return out, notes


def _blank_cells(out: pd.DataFrame, found: list[IdentifierColumn]) -> tuple[dict[str, int], list[str]]:
    """Blank (in place) the cells named by cell findings; the count per column and the kinds blanked."""
    wanted: dict[str, set[str]] = {}
    for f in found:
        if f.scope == "cells" and f.column in out.columns and f.kind in _LOOKS_LIKE:
            wanted.setdefault(f.column, set()).add(f.kind)
    blanked: dict[str, int] = {}
    kinds_seen: list[str] = []
    for column, kinds in wanted.items():
        mask = _cell_mask(out[column], kinds)
        if mask.any():
            out[column] = out[column].mask(mask)
            blanked[column] = int(mask.sum())
            kinds_seen += [k for k, _, _ in _CONTENT if k in kinds and k not in kinds_seen]
    return blanked, kinds_seen


# --------------------------------------------------------------------------- pseudonyms
def _id_text(value: object) -> str | None:
    """An ID as text: stripped, whole floats without ``.0`` (1.0 -> "1"), blanks and NA as None."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _digest(key: bytes, text: str) -> str:
    """HMAC-SHA256 of ``text`` under ``key``, first 12 hex digits."""
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()[:12]


def pseudonymise(ids: pd.Series, key: bytes, *, prefix: str = "P") -> pd.Series:
    """Replace respondent IDs by keyed pseudonyms: ``prefix`` + 12 hex digits of HMAC-SHA256.

    The same ID gives the same pseudonym under the same key (so waves still link); another key gives
    other pseudonyms; without the key a pseudonym cannot be traced back to its ID. IDs are compared
    as stripped text (``" 17 "``, ``17`` and ``17.0`` are the same ID); NA and blank IDs stay NA.

    Parameters
    ----------
    ids : Series
        Respondent IDs.
    key : bytes
        The secret key (at least 16 bytes), from :func:`load_or_create_key`.
    prefix : str
        Written before the hex digits (default ``"P"``).

    Returns
    -------
    Series
        Same index and name as ``ids``, object dtype.

    Raises
    ------
    ValueError
        If the key is too short, or two different IDs get the same pseudonym.

    Examples
    --------
    >>> import pandas as pd
    >>> key = bytes(range(32))
    >>> pseudonymise(pd.Series(["ID-0001", " ID-0001 ", None]), key).tolist()
    ['P5dc5b67970a6', 'P5dc5b67970a6', <NA>]
    """
    if not isinstance(key, bytes | bytearray) or len(key) < 16:
        raise ValueError("the pseudonymisation key must be at least 16 bytes; use load_or_create_key")
    texts = [_id_text(v) for v in ids]
    distinct = {t for t in texts if t is not None}
    codes = {t: prefix + _digest(bytes(key), t) for t in distinct}
    if len(set(codes.values())) < len(codes):
        raise ValueError(
            "two different respondent IDs got the same pseudonym; create a new key and pseudonymise again"
        )
    values = [pd.NA if t is None else codes[t] for t in texts]
    return pd.Series(values, index=ids.index, name=ids.name, dtype=object)


def _publish(tmp: Path, path: Path) -> bool:
    """Move the finished temporary key file to ``path`` without replacing one; False if ``path`` exists."""
    try:
        os.link(tmp, path)  # atomic and refuses to replace
    except FileExistsError:
        return False
    except OSError:  # no hard links on this file system: replace, having checked
        if path.exists():
            return False
        os.replace(tmp, path)
        return True
    tmp.unlink()
    return True


def _read_key(path: Path) -> bytes:
    """The key in an existing key file (64 hex digits), or a one-line DataError."""
    fix = (
        "it must hold the 64 hexadecimal characters written when it was created; restore it from your "
        "backup (a new key file gives every respondent a new pseudonym)"
    )
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        raise DataError(f"the key file cannot be read: {fix}", file=str(path)) from None
    if not re.fullmatch(r"[0-9A-Fa-f]{64}", text):
        raise DataError(f"this is not a pseudonymisation key file: {fix}", file=str(path))
    return bytes.fromhex(text)


def load_or_create_key(path: Path) -> tuple[bytes, bool]:
    """The pseudonymisation key in ``path``, creating the file with a new random key if there is none.

    A new key is 32 random bytes (:func:`secrets.token_bytes`), written as 64 hex digits to a
    temporary file readable only by its owner (``0o600``) and then moved into place, so the key file
    is never half-written. An existing key file is never overwritten. Keep it apart from the data
    and back it up: the same key is needed to give next wave's respondents the same pseudonyms.

    Parameters
    ----------
    path : Path
        The key file.

    Returns
    -------
    (bytes, bool)
        The 32-byte key, and whether the file was created now.

    Raises
    ------
    DataError
        If ``path`` exists but does not hold a key.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "evaltoolkit.key"
    >>> key, created = load_or_create_key(p)
    >>> len(key), created, load_or_create_key(p) == (key, False)
    (32, True, True)
    """
    path = Path(path)
    if path.exists():
        return _read_key(path), False
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        os.chmod(tmp, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(key.hex() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        created = _publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return (key, True) if created else (_read_key(path), False)
