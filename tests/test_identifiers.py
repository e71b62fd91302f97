"""Identifiers: found by column name and by content, removed, and respondent IDs pseudonymised under a key file.

Every value planted below is fictitious (RFC 5737 IP addresses, Ofcom drama phone numbers, made-up names).
The last tests check that no finding and no note ever quotes one of them.
"""

from __future__ import annotations

import os
import stat
import sys

import numpy as np
import pandas as pd
import pytest

from evaltoolkit.errors import DataError
from evaltoolkit.intake import identifiers
from evaltoolkit.intake.identifiers import (
    KINDS,
    IdentifierColumn,
    drop_identifiers,
    find_identifiers,
    load_or_create_key,
    pseudonymise,
)

EMAILS = ["amy.khan@example.org", "ben@example.co.uk", "cara_o'neil@example.net", "dev+ncs@example.com"]
POSTCODES = ["LS6 1AB", "sw1a 2aa", "M11AE", "EC1A 1BB"]
PHONES = ["07700 900123", "+44 7700 900456", "(0113) 496 0000", "0161-496-0999"]
IPS = ["192.0.2.10", "198.51.100.23", "203.0.113.7", "2001:db8::8a2e:370:7334"]
NAMES = ["Amy", "Khan", "Ben", "Okafor", "Jo Smith"]
COORDS = ["53.800755", "-1.549077", "53.8008,-1.5491", "51.501364 -0.141890"]
PLANTED = EMAILS + POSTCODES + PHONES + IPS + NAMES + COORDS


def qualtrics() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "StartDate": ["2024-03-01 09:15:00"] * 4,
            "IPAddress": IPS,
            "ResponseId": ["R_1aB2", "R_3cD4", "R_5eF6", "R_7gH8"],
            "RecipientLastName": ["Khan", "Okafor", "Lee", "Shaw"],
            "RecipientFirstName": ["Amy", "Ben", "Cara", "Dev"],
            "RecipientEmail": EMAILS,
            "LocationLatitude": [53.800755, 53.81, 51.5, 51.49],
            "LocationLongitude": [-1.549077, -1.55, -0.14, -0.12],
            "DistributionChannel": ["anonymous"] * 4,
            "UserLanguage": ["EN"] * 4,
            "Q1": [4, 5, 3, 2],
            "Q2_1": [1.0, 2.0, np.nan, 5.0],
        }
    )


def kobo() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "start": ["2024-03-01T09:00:00"] * 3,
            "deviceid": ["collect:abc123", "collect:def456", "collect:ghi789"],
            "admin/phone": ["07700 900123", "07700 900456", ""],
            "consent/name": ["Amy", "Ben", "Jo Smith"],
            "grp_att/ncs_getalong": [4, 5, 3],
            "_geolocation": ["[53.800755, -1.549077]", "[53.8008, -1.5491]", "[51.501364, -0.141890]"],
            "_uuid": [
                "0c0a1b2e-1f3d-4e5a-9b6c-7d8e9f0a1b2c",
                "1d1b2c3f-2a4e-5f6b-0c7d-8e9f0a1b2c3d",
                "2e2c3d4a-3b5f-6a7c-1d8e-9f0a1b2c3d4e",
            ],
        }
    )


def flagged(frame: pd.DataFrame, **kw) -> dict[str, str]:
    return {f.column: f.kind for f in find_identifiers(frame, **kw) if f.scope == "column"}


# --------------------------------------------------------------------------- by column name
def test_qualtrics_export():
    assert flagged(qualtrics()) == {
        "IPAddress": "ip address",
        "RecipientLastName": "name",
        "RecipientFirstName": "name",
        "RecipientEmail": "e-mail",
        "LocationLatitude": "location",
        "LocationLongitude": "location",
    }


def test_kobo_export_group_prefixes_ignored():
    assert flagged(kobo()) == {
        "deviceid": "free-text id",
        "admin/phone": "phone",
        "consent/name": "name",
        "_geolocation": "location",
    }


@pytest.mark.parametrize(
    ("column", "kind"),
    [
        ("ip_address", "ip address"),
        ("IP", "ip address"),
        ("latitude", "location"),
        ("longitude", "location"),
        ("gps_lat", "location"),
        ("home/lon", "location"),
        ("lng", "location"),
        ("gps", "location"),
        ("home_address", "location"),
        ("first_name", "name"),
        ("Surname", "name"),
        ("full name", "name"),
        ("name", "name"),
        ("username", "name"),
        ("email", "e-mail"),
        ("E-Mail", "e-mail"),
        ("email_address", "e-mail"),
        ("phone", "phone"),
        ("phonenumber", "phone"),
        ("PhoneNumber", "phone"),
        ("mobile", "phone"),
        ("tel", "phone"),
        ("postcode", "postcode"),
        ("post_code", "postcode"),
        ("Post Code", "postcode"),
        ("zip", "postcode"),
        ("dob", "date of birth"),
        ("date_of_birth", "date of birth"),
        ("BirthDate", "date of birth"),
        ("ExternalReference", "free-text id"),
        ("subscriberid", "free-text id"),
        ("simserial", "free-text id"),
    ],
)
def test_column_names(column, kind):
    found = find_identifiers(pd.DataFrame({column: [1, 2, 3]}))
    assert [(f.column, f.kind, f.scope) for f in found] == [(column, kind, "column")]
    assert found[0].reason.startswith("column name suggests")


@pytest.mark.parametrize(
    "column",
    ["age", "Q1", "ResponseId", "school_name", "team_name", "wave", "arm", "hotel_stay", "relationship"],
)
def test_names_that_are_not_identifiers(column):
    assert find_identifiers(pd.DataFrame({column: [1, 2, 3]})) == []


def test_excluded_columns_are_not_flagged_by_name():
    df = pd.DataFrame({"phone": [1, 2, 3], "name": ["a", "b", "c"]})
    assert flagged(df, exclude=["phone", "name"]) == {}
    assert flagged(df, exclude=["phone"]) == {"name": "name"}


def test_numeric_coordinates_flagged_by_name_only():
    coords = pd.DataFrame({"latitude": [53.8, 53.81, 51.5], "y": [53.8, 53.81, 51.5]})
    assert flagged(coords) == {"latitude": "location"}


# --------------------------------------------------------------------------- by content
@pytest.mark.parametrize(
    ("values", "kind"),
    [(EMAILS, "e-mail"), (POSTCODES, "postcode"), (PHONES, "phone"), (IPS, "ip address")],
)
def test_content_of_an_unnamed_text_column(values, kind):
    found = find_identifiers(pd.DataFrame({"v3": values}))
    assert [(f.column, f.kind, f.scope) for f in found] == [("v3", kind, "column")]
    assert found[0].reason.endswith(
        f"{len(values)} of {len(values)} values look like "
        + {
            "e-mail": "e-mail addresses",
            "postcode": "postcodes",
            "phone": "phone numbers",
            "ip address": "IP addresses",
        }[kind]
    )


def test_postcodes_in_an_excluded_arm_column_are_caught():
    df = pd.DataFrame({"arm": [*POSTCODES, "ncs", "control"]})
    found = find_identifiers(df, exclude=["arm"])
    assert [(f.kind, f.scope, f.reason) for f in found] == [
        ("postcode", "column", "4 of 6 values look like postcodes")
    ]


def test_ip_addresses_in_a_meta_column():
    assert flagged(pd.DataFrame({"meta": [*IPS[:3], "web"]})) == {"meta": "ip address"}


def test_coordinate_pairs_in_text():
    df = pd.DataFrame({"where": ["53.8008,-1.5491", "51.501364 -0.141890", "[53.800755, -1.549077]"]})
    assert flagged(df) == {"where": "location"}


def test_threshold_needs_30_percent_of_3_values():
    few = pd.DataFrame({"c": [EMAILS[0], "fine", None, ""]})  # 1 of 2 non-blank: too few to judge the column
    assert [(f.kind, f.scope) for f in find_identifiers(few)] == [("e-mail", "cells")]
    share = pd.DataFrame({"c": [EMAILS[0], "a", "b", "c"]})  # 25%
    assert [f.scope for f in find_identifiers(share)] == ["cells"]
    share = pd.DataFrame({"c": [EMAILS[0], EMAILS[1], "a", "b", "c"]})  # 40%
    assert [f.scope for f in find_identifiers(share)] == ["column"]


def test_stray_identifiers_in_a_comment_column_are_cells():
    comments = [
        "loved it",
        f"email me {EMAILS[0]}",
        "my number is 07700 900123",
        "fun",
        "ok",
        "more trips",
        "x",
    ]
    found = find_identifiers(pd.DataFrame({"comments": comments}))
    assert {(f.kind, f.scope, f.reason) for f in found} == {
        ("e-mail", "cells", "1 cell(s) look like e-mail addresses"),
        ("phone", "cells", "1 cell(s) look like phone numbers"),
    }


def test_mixed_identifiers_are_counted_together():
    df = pd.DataFrame({"contact": [EMAILS[0], PHONES[0], "none", "n/a", "ask"]})  # 20% + 20%
    (f,) = find_identifiers(df)
    assert (f.scope, f.reason) == ("column", "2 of 5 values look like e-mail addresses or phone numbers")


def test_negatives_are_not_flagged():
    df = pd.DataFrame(
        {
            "age": [14, 15, 16, 17, 16, 15],
            "score": [1, 2, 3, 4, 5, 3],
            "score_text": ["1", "2", "3", "4", "5", "3"],
            "team": ["T01", "T02", "T03", "T01", "T02", "T10"],
            "wave": ["baseline", "follow-up", "wave 1", "wave 2", "pre", "post"],
            "arm": ["ncs", "control", "ncs", "control", "ncs", "control"],
            "school": [
                "Leeds Park Primary",
                "St Mary's High",
                "Oakwood Academy",
                "Hill View",
                "Ash Grove",
                "Elm",
            ],
            "id": ["ID-0001", "ID-0002", "ID-0003", "ID-0004", "ID-0005", "ID-0006"],
            "date": ["2024-03-01", "01/03/2024", "2024-03-01 09:15:00", "01.03.2024", "1 March", "March"],
            "ratio": ["0.12345678901", "0.5", "1.25", "3.0", "0.75", "2.5"],
            "version": ["vAbc123", "vAbc123", "vDef456", "vDef456", "vAbc123", "vDef456"],
        }
    )
    assert find_identifiers(df, id_col="id") == []


def test_numeric_columns_are_never_judged_by_content():
    df = pd.DataFrame({"v": [7700900123, 7700900456, 7700900789], "w": [1.5, 2.5, 3.5]})
    assert find_identifiers(df) == []


# --------------------------------------------------------------------------- the respondent-ID column
def test_code_like_ids_are_left_to_pseudonymisation():
    df = pd.DataFrame({"pid": ["ID-0001", "ID-0002", "ID-0003"]})
    assert find_identifiers(df, id_col="pid") == []


@pytest.mark.parametrize(
    ("ids", "what"),
    [(EMAILS, "e-mail addresses"), (PHONES, "phone numbers"), (NAMES, "names")],
)
def test_ids_that_are_contacts_or_names(ids, what):
    found = find_identifiers(pd.DataFrame({"email": ids}), id_col="email")
    assert [(f.column, f.kind, f.scope) for f in found] == [("email", "respondent id", "column")]
    assert found[0].reason == f"{len(ids)} of {len(ids)} respondent IDs look like {what}"


# --------------------------------------------------------------------------- removing
def test_drop_removes_columns_and_blanks_cells():
    df = qualtrics().assign(comments=["ok", f"mail {EMAILS[1]}", "good", "fine"])
    clean, notes = drop_identifiers(df, find_identifiers(df))
    assert list(clean.columns) == [
        "StartDate", "ResponseId", "DistributionChannel", "UserLanguage", "Q1", "Q2_1", "comments",
    ]  # fmt: skip
    assert clean["comments"].isna().tolist() == [False, True, False, False]
    assert notes == [
        "removed 6 identifying column(s): IPAddress (ip address), RecipientLastName (name), "
        "RecipientFirstName (name), RecipientEmail (e-mail), LocationLatitude (location), "
        "LocationLongitude (location)",
        "set 1 cell(s) to missing that looked like e-mail addresses: comments (1)",
    ]
    assert "IPAddress" in df.columns  # the input is not changed


def test_drop_blanks_only_the_kind_found():
    df = pd.DataFrame({"c": ["LS6 1AB", EMAILS[0], "a", "b", "c", "d", "e", "f"]})
    found = [IdentifierColumn("c", "e-mail", "1 cell(s) look like e-mail addresses", "cells")]
    clean, _ = drop_identifiers(df, found)
    assert clean["c"].isna().tolist() == [False, True] + [False] * 6


def test_drop_with_nothing_found():
    df = pd.DataFrame({"Q1": [1, 2]})
    clean, notes = drop_identifiers(df, [])
    assert notes == [] and clean.equals(df)


def test_respondent_id_column_dropped_unless_pseudonymised():
    df = pd.DataFrame({"email": EMAILS, "Q1": [1, 2, 3, 4]})
    found = find_identifiers(df, id_col="email")
    clean, notes = drop_identifiers(df, found)
    assert list(clean.columns) == ["Q1"] and notes == [
        "removed 1 identifying column(s): email (respondent id)"
    ]
    df["email"] = pseudonymise(df["email"], bytes(32))
    clean, notes = drop_identifiers(df, found)
    assert list(clean.columns) == ["email", "Q1"]
    assert notes == ["kept respondent-ID column email: its values no longer look like contacts or names"]


# --------------------------------------------------------------------------- pseudonyms
KEY = bytes(range(32))


def test_pseudonyms_are_deterministic_and_shaped():
    ids = pd.Series(["ID-0001", " ID-0001 ", "ID-0002"], index=[5, 6, 7], name="pid")
    out = pseudonymise(ids, KEY)
    assert out.index.tolist() == [5, 6, 7] and out.name == "pid"
    assert out[5] == out[6] != out[7]
    assert all(len(p) == 13 and p.startswith("P") and int(p[1:], 16) >= 0 for p in out)
    assert pseudonymise(pd.Series(["ID-0001"]), KEY, prefix="S-")[0] == "S-" + out[5][1:]


def test_pseudonyms_depend_on_the_key():
    ids = pd.Series(["ID-0001", "ID-0002"])
    assert (pseudonymise(ids, KEY) != pseudonymise(ids, bytes(32))).all()


def test_pseudonyms_are_hmac_sha256():
    import hashlib
    import hmac

    expected = "P" + hmac.new(KEY, b"ID-0001", hashlib.sha256).hexdigest()[:12]
    assert pseudonymise(pd.Series(["ID-0001"]), KEY)[0] == expected


def test_pseudonyms_keep_na_and_link_numbers_across_types():
    out = pseudonymise(pd.Series([17, None, 17.0, " 17", "", np.nan], dtype=object), KEY)
    assert out.isna().tolist() == [False, True, False, False, True, True]
    assert out[0] == out[2] == out[3]
    assert pseudonymise(pd.Series([17.0, np.nan]), KEY)[0] == out[0]


def test_pseudonym_collision_raises(monkeypatch):
    monkeypatch.setattr(identifiers, "_digest", lambda key, text: "000000000000")
    with pytest.raises(ValueError, match="same pseudonym"):
        pseudonymise(pd.Series(["ID-0001", "ID-0002"]), KEY)
    assert pseudonymise(pd.Series(["ID-0001", "ID-0001"]), KEY).tolist() == ["P000000000000"] * 2


def test_short_key_refused():
    with pytest.raises(ValueError, match="16 bytes"):
        pseudonymise(pd.Series(["ID-0001"]), b"secret")


# --------------------------------------------------------------------------- key file
def test_key_file_created_then_reused(tmp_path):
    path = tmp_path / "keys" / "evaltoolkit.key"
    key, created = load_or_create_key(path)
    assert created and len(key) == 32
    assert path.read_text(encoding="ascii").strip() == key.hex()
    assert load_or_create_key(path) == (key, False)
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_new_keys_differ(tmp_path):
    assert load_or_create_key(tmp_path / "a.key")[0] != load_or_create_key(tmp_path / "b.key")[0]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_key_file_is_private(tmp_path):
    path = tmp_path / "evaltoolkit.key"
    load_or_create_key(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest.mark.parametrize("content", ["", "not a key", "ab" * 31, "ab" * 33, "zz" * 32])
def test_malformed_key_file(tmp_path, content):
    path = tmp_path / "evaltoolkit.key"
    path.write_text(content, encoding="ascii")
    with pytest.raises(DataError) as err:
        load_or_create_key(path)
    message = str(err.value)
    assert message.startswith(str(path)) and "\n" not in message and "restore it" in message
    assert path.read_text(encoding="ascii") == content  # never overwritten


def test_key_file_lost_race_keeps_the_first_key(tmp_path, monkeypatch):
    path = tmp_path / "evaltoolkit.key"
    first = "cd" * 32
    real_link = os.link

    def link_after_rival(src, dst):  # another process writes its key between our check and our publish
        path.write_text(first + "\n", encoding="ascii")
        return real_link(src, dst)

    monkeypatch.setattr(identifiers.os, "link", link_after_rival)
    assert load_or_create_key(path) == (bytes.fromhex(first), False)
    assert path.read_text(encoding="ascii").strip() == first


# --------------------------------------------------------------------------- no value ever quoted
def _everything() -> pd.DataFrame:
    n = len(PLANTED)
    cycle = lambda values: [values[i % len(values)] for i in range(n)]  # noqa: E731
    return pd.DataFrame(
        {
            "mix": PLANTED,
            "emails": cycle(EMAILS),
            "arm": cycle(POSTCODES),
            "contact": cycle(PHONES),
            "meta": cycle(IPS),
            "where": cycle(COORDS),
            "comments": [f"see {PLANTED[0]}"] + ["fine"] * (n - 1),
            "name": cycle(NAMES),
            "pid": cycle(EMAILS),
        }
    )


def test_no_reason_or_note_quotes_a_value():
    df = pd.concat([_everything(), qualtrics().reindex(range(len(PLANTED)))], axis=1)
    found = find_identifiers(df, exclude=["arm"], id_col="pid")
    assert {f.column for f in found} >= {
        "mix",
        "emails",
        "arm",
        "contact",
        "meta",
        "where",
        "comments",
        "name",
    }
    _, notes = drop_identifiers(df, found)
    texts = [f.reason for f in found] + notes
    for value in PLANTED:
        for text in texts:
            assert value.lower() not in text.lower(), (value, text)


def test_kinds_are_the_documented_ones():
    df = pd.concat([_everything(), kobo().reindex(range(len(PLANTED))), qualtrics()], axis=1)
    df["dob"] = "2008-01-01"
    df["ExternalReference"] = "x"
    assert {f.kind for f in find_identifiers(df, id_col="pid")} == set(KINDS)
