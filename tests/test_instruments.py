"""Instrument schema, validation errors and the bundled item library.

The pinned wordings are quoted from their sources: the Best of Us items from the seed essay
(Abrams & Van de Vyver, lines 3941-3985 of the British Academy collection), the SCI-2 items
from Chavis, Lee & Acosta (2008), the ethnic-group categories from the GOV.UK GSS
harmonised standard (Annex C, 18 March 2025). Tests never read ../shared/.
"""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import pytest

import evaltoolkit as et
from evaltoolkit.errors import EvalToolkitWarning, InstrumentError
from evaltoolkit.instruments.library import (
    VERIFIED_MARKS,
    Instrument,
    ResponseScale,
    library_path,
    list_instruments,
    load_instrument,
    load_instruments,
)

BUNDLED = sorted(p.stem for p in library_path().glob("*.yaml"))

GOOD = """\
id: mini
version: "1.0"
title: Mini
construct: test
placeholders: {place: Kent}
response_scales:
  agree5:
    type: ordinal
    labels: {1: Strongly disagree, 2: Disagree, 3: Neither, 4: Agree, 5: Strongly agree}
    missing: {-99: "Don't know"}
  therm:
    type: numeric
    min: 0
    max: 100
items:
  - {code: a1, wording: "I like {place}", response_scale: agree5, source: s, licence: l, verified: V}
  - {code: a2, wording: "I dislike {place}", response_scale: agree5, reverse: true, source: s, licence: l, verified: R}
  - {code: t1, wording: "Warmth", response_scale: therm, source: s, licence: l, verified: V}
scales:
  - {id: liking, label: Liking, items: [a1, a2], method: mean, min_items: 1}
"""


def write(tmp_path: Path, text: str, name: str = "mini.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


# ------------------------------------------------------------------ the schema
def test_minimal_instrument_loads_and_exposes_the_schema(tmp_path):
    inst = load_instrument(write(tmp_path, GOOD))
    assert isinstance(inst, Instrument)
    assert inst.item_codes == ["a1", "a2", "t1"]
    assert inst.wording("a1") == "I like Kent"
    assert inst.wording("a1", place="Ramsgate") == "I like Ramsgate"
    rs = inst.response_scales["agree5"]
    assert (rs.min_code, rs.max_code, rs.valid_codes) == (1, 5, [1, 2, 3, 4, 5])
    assert rs.missing == {-99: "Don't know"}
    # reverse keying is min_code + max_code - x (schema contract)
    assert [rs.reverse(x) for x in (1, 2, 5)] == [5, 4, 1]
    th = inst.response_scales["therm"]
    assert (th.min_code, th.max_code, th.valid_codes) == (0, 100, None)
    assert inst.scale("liking").items == ["a1", "a2"]
    assert inst.item("a2").reverse is True
    assert inst.response_scale_of("t1") is th


def test_scale_min_items_defaults_to_half_rounded_up(tmp_path):
    text = GOOD.replace("method: mean, min_items: 1}", "method: sum}")
    inst = load_instrument(write(tmp_path, text))
    assert inst.scale("liking").min_items == 1
    assert inst.scale("liking").method == "sum"


def test_item_and_scale_lookup_errors_name_what_exists(tmp_path):
    inst = load_instrument(write(tmp_path, GOOD))
    with pytest.raises(InstrumentError, match=r"no item 'zz' \(items: a1, a2, t1\)"):
        inst.item("zz")
    with pytest.raises(InstrumentError, match=r"no scale 'zz' \(scales: liking\)"):
        inst.scale("zz")


@pytest.mark.parametrize(
    ("old", "new", "field", "pattern"),
    [
        # unknown response scale
        (
            "response_scale: therm,",
            "response_scale: therm7,",
            "items[2].response_scale",
            r"item 't1': unknown response scale 'therm7'",
        ),
        # duplicate item codes
        ("code: t1,", "code: a1,", "items[2].code", r"item 'a1': duplicate item code"),
        # scale refers to an unknown item
        (
            "items: [a1, a2]",
            "items: [a1, a9]",
            "scales[0].items",
            r"scale 'liking': refers to unknown item 'a9'",
        ),
        # verification mark outside the allowed set
        (
            "licence: l, verified: R}",
            "licence: l, verified: maybe}",
            "items[1].verified",
            r"item 'a2': 'maybe' is not allowed",
        ),
        # missing required field
        (
            "agree5, source: s, licence: l, verified: V}",
            "agree5, licence: l, verified: V}",
            "items[0].source",
            r"item 'a1': required field is missing",
        ),
        # misspelt field
        ("reverse: true,", "reversed: true,", "items[1].reversed", r"item 'a2': unknown field"),
        # placeholder without a default
        (
            "I like {place}",
            "I like {town}",
            "items[0].wording",
            r"item 'a1': placeholder\(s\) \['town'\] have no default",
        ),
        # item code that cannot be a column / XLSForm name
        ("code: t1,", "code: t 1,", "items[2].code", r"item 't 1': item code 't 1' must start with a letter"),
        # numeric scale without max
        (
            "    max: 100\n",
            "",
            "response_scales.therm",
            r"response scale 'therm': a numeric scale needs both 'min' and 'max'",
        ),
        # missing code that is also an answer code
        (
            'missing: {-99: "Don\'t know"}',
            'missing: {5: "Don\'t know"}',
            "response_scales.agree5",
            r"missing codes \[5\] are also valid",
        ),
        # minimum items larger than the scale
        ("min_items: 1}", "min_items: 3}", "scales[0]", r"scale 'liking': min_items must be between 1 and"),
        # unquoted version number
        ('version: "1.0"', "version: 1.0", "version", r'must be a quoted string, e.g. version: "1.0"'),
    ],
)
def test_schema_errors_name_file_item_and_field(tmp_path, old, new, field, pattern):
    assert old in GOOD, old
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(InstrumentError, match=pattern) as info:
        load_instrument(path)
    err = info.value
    assert err.file == str(path)
    assert err.field == field
    assert str(err).startswith(f"{path}, field '{field}': ")


def test_yaml_boolean_labels_get_a_plain_hint(tmp_path):
    text = GOOD.replace("  therm:\n", "  yn: {type: nominal, labels: {1: Yes, 0: No}}\n  therm:\n")
    with pytest.raises(InstrumentError, match=r"read by YAML as a boolean.*put the label in quotes") as info:
        load_instrument(write(tmp_path, text))
    assert info.value.field == "response_scales.yn.labels"


def test_invalid_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, "id: x\nitems: [\n  - a: b\n   c\n")
    with pytest.raises(InstrumentError, match=r"invalid YAML at line \d+, column \d+") as info:
        load_instrument(path)
    assert info.value.file == str(path)


def test_not_a_mapping_and_missing_file(tmp_path):
    with pytest.raises(InstrumentError, match="must contain a YAML mapping"):
        load_instrument(write(tmp_path, "- just\n- a list\n"))
    with pytest.raises(InstrumentError, match="file not found"):
        load_instrument(tmp_path / "absent.yaml")


def test_nominal_items_cannot_be_scored_or_reversed(tmp_path):
    base = GOOD.replace("  therm:\n", "  sex: {type: nominal, labels: {1: Female, 2: Male}}\n  therm:\n")
    scored = base.replace("response_scale: agree5, reverse: true", "response_scale: sex")
    with pytest.raises(InstrumentError, match="nominal response scale and cannot be scored") as info:
        load_instrument(write(tmp_path, scored))
    assert info.value.field == "scales[0].items"
    reversed_ = base.replace(
        '{code: t1, wording: "Warmth", response_scale: therm,',
        '{code: t1, wording: "W", response_scale: sex, reverse: true,',
    )
    with pytest.raises(InstrumentError, match="nominal response scale cannot be reverse-keyed"):
        load_instrument(write(tmp_path, reversed_))


def test_scale_id_may_not_equal_an_item_code(tmp_path):
    with pytest.raises(InstrumentError, match="scale id is also an item code"):
        load_instrument(write(tmp_path, GOOD.replace("id: liking", "id: a1")))


def test_file_name_must_match_id_warns_for_user_files(tmp_path):
    with pytest.warns(EvalToolkitWarning, match="differs from the file name"):
        load_instrument(write(tmp_path, GOOD, name="other.yaml"))


def test_unknown_library_id_lists_what_is_available():
    with pytest.raises(
        InstrumentError, match=r"no bundled instrument 'nope' \(available: .*ncs_social_mixing"
    ):
        load_instrument("nope")


def test_load_instrument_returns_loaded_objects_unchanged(tmp_path):
    inst = load_instrument(write(tmp_path, GOOD))
    assert load_instrument(inst) is inst
    with pytest.raises(InstrumentError, match="expected an instrument id"):
        load_instrument(42)  # type: ignore[arg-type]


def test_load_instruments_detects_clashing_codes(tmp_path):
    a = write(tmp_path, GOOD)
    b = write(tmp_path, GOOD.replace("id: mini", "id: mini2"), name="mini2.yaml")
    with pytest.raises(InstrumentError, match="'a1' is used by both 'mini' and 'mini2'"):
        load_instruments([a, b])
    assert [i.id for i in load_instruments(["ncs_social_mixing", "demographics"])] == [
        "ncs_social_mixing",
        "demographics",
    ]


def test_response_scale_validation_directly():
    with pytest.raises(ValueError, match="at least two codes"):
        ResponseScale(type="ordinal", labels={1: "only"})
    with pytest.raises(ValueError, match="lie inside the valid range"):
        ResponseScale(type="numeric", min=-100, max=100, missing={-99: "DK"})
    with pytest.raises(InstrumentError, match="cannot be reverse-keyed"):
        ResponseScale(type="nominal", labels={1: "a", 2: "b"}).reverse(1)


# ------------------------------------------------------------------ the bundled library
@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_instrument_loads_and_is_complete(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no id/file-name mismatch warnings
        inst = load_instrument(name)
    assert inst.id == name
    assert inst.items
    for it in inst.items:
        assert it.verified in VERIFIED_MARKS
        assert it.source.strip() and it.licence.strip()
        # every wording renders with the default placeholders
        assert "{" not in inst.wording(it.code)
    for sc in inst.scales:
        assert set(sc.items) <= set(inst.item_codes)


def test_library_has_the_instruments_of_the_issue():
    assert {
        "best_of_us_children",
        "best_of_us_adults",
        "ncs_social_mixing",
        "sci2",
        "feeling_thermometer",
        "social_distance",
        "allport_conditions",
        "demographics",
    } <= set(BUNDLED)


def test_list_instruments_table():
    df = et.list_instruments()
    assert list(df.columns[:7]) == [
        "id",
        "version",
        "title",
        "construct",
        "n_items",
        "n_scales",
        "n_unverified",
    ]
    assert sorted(df["id"]) == BUNDLED
    row = df.set_index("id").loc["best_of_us_children"]
    assert (row["n_items"], row["n_scales"], row["n_unverified"], row["n_user_slots"]) == (8, 2, 5, 5)
    assert list_instruments().equals(df)


def test_best_of_us_children_verbatim_items_and_user_slots():
    inst = et.load_instrument("best_of_us_children")
    # seed essay lines 3941-3945 and 3954-3961
    assert inst.wording("bouc_like_part") == "I like being part of Newington"
    assert inst.wording("bouc_proud_part") == "I feel proud to be a part of Newington"
    assert inst.wording("bouc_like_part", place="Ramsgate") == "I like being part of Ramsgate"
    assert inst.wording("bouc_kind_1") == (
        "You see a child running across the park but trips over a rock and falls down. The child gets up "
        "and begins to cry. Would you go over and comfort the child?"
    )
    rs = inst.response_scales["notalot5"]
    assert (rs.labels[1], rs.labels[5]) == ("Not at all", "A lot")
    assert inst.response_scales["definitely5"].labels[5] == "Definitely would"
    slots = [it.code for it in inst.items if it.verified == "user"]
    assert slots == [f"bouc_kind_{i}" for i in range(2, 7)]
    assert inst.unfilled_slots() == slots
    # the file says that the five scenarios must be supplied and are never invented
    text = (library_path() / "best_of_us_children.yaml").read_text(encoding="utf-8")
    assert "never invents them" in text and "NOT published" in text


def test_fill_slots_supplies_user_wording_only():
    inst = et.load_instrument("best_of_us_children")
    filled = inst.fill_slots({"bouc_kind_2": "You see a child sitting alone. Would you ask them to play?"})
    assert filled.wording("bouc_kind_2").startswith("You see a child sitting alone")
    assert filled.item("bouc_kind_2").verified == "user"
    assert "bouc_kind_2" not in filled.unfilled_slots()
    assert "bouc_kind_2" in inst.unfilled_slots()  # the original is unchanged
    with pytest.raises(InstrumentError, match="not a user slot"):
        inst.fill_slots({"bouc_like_part": "I love it here"})
    with pytest.raises(InstrumentError, match="supplied wording is empty"):
        inst.fill_slots({"bouc_kind_3": "  "})


def test_best_of_us_adults_items_and_arts_slots():
    inst = et.load_instrument("best_of_us_adults")
    # seed essay lines 3977-3985
    assert [
        inst.wording(c) for c in ("boua_proud_part", "boua_belong", "boua_involvement", "boua_contribute")
    ] == [
        "I feel proud to be part of Newington",
        "I belong in Newington",
        "I think that involvement in programmes to improve my community is important",
        "I think that people should find the time to contribute to their communities",
    ]
    assert all(inst.item(c).verified == "V-seed" for c in ("boua_proud_part", "boua_belong"))
    arts = [it for it in inst.items if it.code.startswith("boua_arts")]
    assert len(arts) == 6 and all(it.verified == "user" and it.is_unfilled_slot for it in arts)
    assert {s.id for s in inst.scales} == {
        "boua_connectedness",
        "boua_engagement",
        "boua_arts_engagement",
        "boua_arts_valuing",
    }


def test_ncs_block_never_ships_recalled_stems_as_verified():
    inst = et.load_instrument("ncs_social_mixing")
    # research note section 1.3: no NCS questionnaire wording could be read -> R
    for code in ("ncs_dating_comfort", "ncs_help_seeking", "ncs_pos_contact", "ncs_neg_contact"):
        assert inst.item(code).verified == "R", code
    # the cohesion stem is the verified CLS/GOV.UK wording
    assert inst.wording("ncs_getalong") == (
        "To what extent do you agree or disagree that your local area is a place where people from "
        "different backgrounds get on well together?"
    )
    assert inst.response_scales["frequency5"].labels[4] == "Quite often"
    assert inst.response_scales["thermometer"].type == "numeric"
    assert len([c for c in inst.item_codes if c.startswith("ncs_warmth_")]) == 4


def test_recalled_wordings_of_the_research_note_are_marked_r():
    # research note: SCI-2 items 23-24, Barlow et al. (2012) and the GES pairs are recalled
    sci2 = et.load_instrument("sci2")
    assert [sci2.item(f"sci2_{i:02d}").verified for i in (22, 23, 24)] == ["V", "R", "R"]
    ic = et.load_instrument("intergroup_contact_scales")
    assert all(ic.item(c).verified == "R" for c in ic.item_codes if c.startswith(("ic_barlow", "ic_ges")))
    assert ic.item("ic_quality_coop").verified == "V-secondary"
    allport = et.load_instrument("allport_conditions")
    assert {it.verified for it in allport.items} == {"R"}  # drafted, not a published scale


def test_sci2_structure_and_wording():
    inst = et.load_instrument("sci2")
    # Chavis, Lee & Acosta (2008), items 1 and 12
    assert inst.wording("sci2_01") == "I get important needs of mine met because I am part of this community."
    assert inst.wording("sci2_12") == "Being a member of this community is a part of my identity."
    assert inst.response_scales["sci4"].labels == {
        0: "Not at all",
        1: "Somewhat",
        2: "Mostly",
        3: "Completely",
    }
    total = inst.scale("sci2_total")
    assert (len(total.items), total.method) == (24, "sum")
    assert [
        len(inst.scale(s).items)
        for s in ("sci2_needs", "sci2_membership", "sci2_influence", "sci2_emotional")
    ] == [
        6,
        6,
        6,
        6,
    ]


def test_demographics_use_the_gss_ethnic_groups():
    inst = et.load_instrument("demographics")
    rs = inst.response_scale_of("demo_ethnic_group")
    assert rs.type == "nominal"
    assert len(rs.labels) == 19
    assert rs.labels[1] == "White: English, Welsh, Scottish, Northern Irish or British"
    assert rs.labels[4] == "White: Roma"
    assert rs.labels[18] == "Other ethnic group: Arab"
    assert inst.item("demo_ethnic_group").verified == "V"


def test_social_distance_reverse_item_and_sum_scale():
    inst = et.load_instrument("social_distance")
    assert inst.item("sd_exclude").reverse is True
    assert "sd_exclude" not in inst.scale("sd_acceptance").items
    assert inst.scale("sd_acceptance").method == "sum"
    assert (
        inst.wording("sd_marriage", group="Roma people")
        == "Would you be willing to have Roma people as close relatives by marriage?"
    )
