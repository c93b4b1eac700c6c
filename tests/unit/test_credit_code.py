"""Unified social credit codes (GB 32100-2015): real codes pass, each broken rule is named, typing errors are caught."""

from __future__ import annotations

import random

import pytest

from server.services.credit_code import (
    ALPHABET,
    ENTITY_TYPES,
    WEIGHTS,
    check_character,
    is_valid,
    make_code,
    normalise,
    organisation_code,
    problem,
)

# Real codes, each quoted with its holder's name in several public sources (business-registry extracts, invoice
# headers, a TLS certificate). Every one also carries a valid GB 11714 organisation code in characters 9-17.
REAL_CODES = {
    "914403001922038216": "华为技术有限公司",
    "9144030071526726XG": "腾讯科技（深圳）有限公司",
    "91330100716105852F": "阿里巴巴（中国）网络技术有限公司",
    "91440300192317458F": "比亚迪股份有限公司",
    "9144030010001686XA": "招商银行股份有限公司",  # also the serialNumber of its EV TLS certificate
    "91110108558521630L": "小米通讯技术有限公司",
    "91110000802100433B": "北京百度网讯科技有限公司",
    "91440400192548256N": "珠海格力电器股份有限公司",
    "91520000214434146R": "中航重机股份有限公司",
    "12100000400000624D": "清华大学",  # 1 机构编制, 2 事业单位: the university's invoice header
    "53100000500021676K": "北京理工大学教育基金会",  # 5 民政, 3 基金会
}
HUAWEI = "914403001922038216"

FULL_WIDTH = {chr(code): chr(code + 0xFEE0) for code in range(0x21, 0x7F)}


def full_width(text: str) -> str:
    return "".join(FULL_WIDTH.get(char, char) for char in text)


def with_valid_check(first17: str) -> str:
    """17 characters plus the check character that makes the mod-31 rule pass, so only other rules can fail."""
    return first17 + check_character(first17)


def rule(code: str) -> str | None:
    found = problem(code)
    return found.rule if found else None


# --- the tables -------------------------------------------------------------------------------------------------


def test_alphabet_has_31_characters_without_i_o_z_s_v() -> None:
    assert len(ALPHABET) == len(set(ALPHABET)) == 31
    assert set(ALPHABET) == set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") - set("IOZSV")


def test_weights_are_powers_of_three_mod_31() -> None:
    assert list(WEIGHTS) == [3**i % 31 for i in range(17)]
    assert WEIGHTS == (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def test_authority_table_is_the_standards() -> None:
    assert {authority: sorted(types) for authority, types in ENTITY_TYPES.items()} == {
        "1": ["1", "2", "3", "9"],
        "2": ["1", "9"],
        "3": ["1", "2", "3", "4", "5", "9"],
        "4": ["1", "9"],
        "5": ["1", "2", "3", "9"],
        "6": ["1", "2"],
        "7": ["1", "2", "3", "9"],
        "8": ["1", "9"],
        "9": ["1", "2", "3"],
        "A": ["1", "9"],
        "N": ["1", "2", "3", "9"],
        "Y": ["1"],
    }


# --- valid codes ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(REAL_CODES))
def test_real_codes_are_valid(code: str) -> None:
    assert problem(code) is None, REAL_CODES[code]
    assert is_valid(code)
    assert check_character(code[:17]) == code[17]


@pytest.mark.parametrize("code", sorted(REAL_CODES))
def test_real_codes_carry_their_organisation_code(code: str) -> None:
    assert organisation_code(code[8:16]) == code[8:17]


@pytest.mark.parametrize("code", sorted(REAL_CODES))
def test_real_codes_rebuilt_by_make_code(code: str) -> None:
    assert make_code(code[0], code[1], code[2:8], code[8:17]) == code


@pytest.mark.parametrize("code", sorted(REAL_CODES))
def test_lower_case_full_width_and_surrounding_whitespace_are_accepted(code: str) -> None:
    for typed in (code.lower(), full_width(code), full_width(code.lower()), f"  {code}\n\t", f"\u3000{full_width(code)}\u3000"):
        assert normalise(typed) == code, typed
        assert is_valid(typed), typed


def test_normalise_keeps_inner_characters() -> None:
    assert normalise(" 9144-0300 ") == "9144-0300"


# --- each broken rule -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["", "   ", "\t\n", "\u3000"])
def test_empty(typed: str) -> None:
    found = problem(typed)
    assert found is not None
    assert found.rule == "empty"
    assert found.message == "Please enter the unified social credit code."
    assert not is_valid(typed)


@pytest.mark.parametrize(
    ("typed", "length"), [(HUAWEI[:17], 17), (HUAWEI + "6", 19), ("9", 1), (HUAWEI * 2, 36), ("9144 0300 1922 0382 16", 22)]
)
def test_length(typed: str, length: int) -> None:
    found = problem(typed)
    assert found is not None
    assert found.rule == "length"
    assert found.params == {"length": length}
    assert found.message % found.params == f"A unified social credit code has 18 characters; this one has {length}."


@pytest.mark.parametrize("letter", list("IOZSV"))
@pytest.mark.parametrize("position", [1, 2, 5, 12, 17, 18])
def test_forbidden_letters(letter: str, position: int) -> None:
    typed = HUAWEI[: position - 1] + letter + HUAWEI[position:]
    for variant in (typed, typed.lower()):
        found = problem(variant)
        assert found is not None
        assert found.rule == "alphabet"
        assert found.params == {"char": letter, "position": position}
        assert "I, O, Z, S and V" in found.message % found.params


@pytest.mark.parametrize(("char", "shown"), [("-", "-"), ("*", "*"), ("é", "É"), ("中", "中"), ("．", ".")])
def test_other_characters_outside_the_alphabet(char: str, shown: str) -> None:
    found = problem(HUAWEI[:9] + char + HUAWEI[10:])
    assert found is not None
    assert (found.rule, found.params) == ("alphabet", {"char": shown, "position": 10})


def test_alphabet_reports_the_first_bad_character() -> None:
    found = problem("9I4403001922038S16")
    assert found is not None
    assert found.params == {"char": "I", "position": 2}


@pytest.mark.parametrize("pair", ["B1", "01", "C9", "M1", "X1", "94", "99", "90", "9Y", "Y2", "Y9", "69", "24", "A2", "N4", "74"])
def test_authority_and_type_pair(pair: str) -> None:
    assert pair[1] not in ENTITY_TYPES.get(pair[0], {})
    typed = with_valid_check(pair + HUAWEI[2:17])
    found = problem(typed)
    assert found is not None
    assert found.rule == "authority"
    assert found.params == {"pair": pair}
    assert f"“{pair}”" in found.message % found.params


def test_every_defined_pair_is_accepted() -> None:
    pairs = [authority + entity_type for authority, types in ENTITY_TYPES.items() for entity_type in types]
    assert len(pairs) == 36
    for pair in pairs:
        assert is_valid(with_valid_check(pair + HUAWEI[2:17])), pair


def test_changed_last_character_names_the_expected_one() -> None:
    found = problem(HUAWEI[:17] + "7")
    assert found is not None
    assert found.rule == "check"
    assert found.params["expected"] == "6"
    assert found.message % found.params == (
        "The last character should be “6” for the first 17 characters; please check the code for a typing error."
    )


@pytest.mark.parametrize("code", sorted(REAL_CODES))
def test_single_changed_character_fails_the_check(code: str) -> None:
    changed = code[:10] + ("1" if code[10] != "1" else "2") + code[11:]
    found = problem(changed)
    assert found is not None
    assert found.rule == "check"
    assert found.params["expected"] == check_character(changed[:17])
    assert found.params["expected"] != changed[17]


@pytest.mark.parametrize("code", sorted(REAL_CODES))
def test_transposed_neighbours_fail_the_check(code: str) -> None:
    swapped_any = False
    for index in range(2, 17):
        if code[index] == code[index + 1]:
            continue
        swapped = code[:index] + code[index + 1] + code[index] + code[index + 2 :]
        assert rule(swapped) == "check", (index, swapped)
        swapped_any = True
    assert swapped_any


def test_rules_are_reported_in_order() -> None:
    # A forbidden letter, a bad pair and a wrong check: the letter is reported; one character short, the length.
    assert rule("B4I403001922038211") == "alphabet"
    assert rule("B4I40300192203821") == "length"
    # A bad pair and a wrong check: the pair.
    assert rule("B44403001922038211") == "authority"


# --- properties -------------------------------------------------------------------------------------------------


def test_every_single_character_change_is_caught() -> None:
    """18 positions x 30 other characters: the mod-31 check (weights coprime to 31) catches each one."""
    for position in range(18):
        for char in ALPHABET:
            if char == HUAWEI[position]:
                continue
            changed = HUAWEI[:position] + char + HUAWEI[position + 1 :]
            assert not is_valid(changed), changed
            if position >= 2:
                assert rule(changed) == "check", changed


def test_make_code_is_always_valid() -> None:
    rng = random.Random(32100)
    authorities = sorted(ENTITY_TYPES)
    for _ in range(500):
        authority = rng.choice(authorities)
        entity_type = rng.choice(sorted(ENTITY_TYPES[authority]))
        division = "".join(rng.choices("0123456789", k=6))
        if rng.random() < 0.5:
            organisation = "".join(rng.choices(ALPHABET, k=9))
        else:
            organisation = organisation_code("".join(rng.choices(ALPHABET, k=8)))
        code = make_code(authority, entity_type, division, organisation)
        assert len(code) == 18
        assert code[:17] == authority + entity_type + division + organisation
        assert problem(code) is None, code
        assert is_valid(code.lower())


def test_organisation_code_examples() -> None:
    assert organisation_code("D2143569") == "D2143569X"  # the GB 11714 worked example: check 10 is written X
    assert organisation_code("19220382") == "192203821"  # 华为技术有限公司
    assert organisation_code("71526726") == "71526726X"  # 腾讯科技（深圳）有限公司
    assert organisation_code("10001686") == "10001686X"  # 招商银行股份有限公司


def test_organisation_code_writes_eleven_as_zero() -> None:
    rng = random.Random(11714)
    seen = set()
    for _ in range(2000):
        code = organisation_code("".join(rng.choices("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=8)))
        assert len(code) == 9
        seen.add(code[8])
    assert seen == set("0123456789X")


# --- bad arguments ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("first17", ["", HUAWEI[:16], HUAWEI, HUAWEI[:16] + "I", "9144030071526726x", HUAWEI[:16] + "-"])
def test_check_character_refuses_bad_input(first17: str) -> None:
    with pytest.raises(ValueError):
        check_character(first17)


@pytest.mark.parametrize(
    ("authority", "entity_type", "division", "organisation"),
    [
        ("9", "4", "440300", "192203821"),
        ("B", "1", "440300", "192203821"),
        ("9", "1", "44030", "192203821"),
        ("9", "1", "440300", "19220382"),
        ("9", "1", "440300", "19220382I"),
        ("91", "", "440300", "192203821"),
    ],
)
def test_make_code_refuses_bad_parts(authority: str, entity_type: str, division: str, organisation: str) -> None:
    with pytest.raises(ValueError):
        make_code(authority, entity_type, division, organisation)


@pytest.mark.parametrize("body", ["", "1922038", "192203821", "1922038a", "1922038-"])
def test_organisation_code_refuses_bad_bodies(body: str) -> None:
    with pytest.raises(ValueError):
        organisation_code(body)
