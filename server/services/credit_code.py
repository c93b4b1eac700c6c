"""Checking a unified social credit code (统一社会信用代码, GB 32100-2015) as the user types it.

Every legal entity and other organisation registered in China has one 18-character code, printed on its
business licence or registration certificate:

- character 1: the registration authority (9 is market regulation, formerly 工商; 5 civil affairs; ...);
- character 2: the kind of entity that authority registers (for 9: 1 enterprise, 2 individual business, ...);
- characters 3-8: the administrative division (GB/T 2260) of the registering office;
- characters 9-17: the entity's identifier, its GB 11714 organisation code (8 characters and a check character);
- character 18: a check character over the first 17.

Characters come from a 31-character alphabet: digits and capital letters without I, O, Z, S and V (too easily
read as 1, 0, 2, 5 and U). A character's value is its index in the alphabet, position i (from 0) weighs
3**i mod 31, and the check character is the one whose value brings the weighted sum to a multiple of 31. 31 is
prime and no weight is a multiple of it, so a single mistyped character always breaks the check, and so does
swapping two neighbours (their weights differ).

Only what the standard fixes is checked here: length, alphabet, the authority/entity-type pair, and the check
character. The division and organisation parts are not checked against lists: registries issue codes there that
older rules did not foresee, and refusing a real code costs the user more than accepting a mistyped one that
still passes the check.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any

from server.i18n import N_

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
VALUES: dict[str, int] = {char: value for value, char in enumerate(ALPHABET)}
LENGTH = 18

# Weight of position i (0-based) in the first 17 characters: 3**i mod 31.
WEIGHTS: tuple[int, ...] = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

# Registration authority (character 1) -> the entity types (character 2) it registers, per the standard's table.
ENTITY_TYPES: dict[str, dict[str, str]] = {
    # 机构编制 (establishment and staffing offices)
    "1": {
        "1": "state organ",  # 机关
        "2": "public institution",  # 事业单位
        "3": "mass organisation staffed by the Central Establishment Office",  # 中央编办直接管理机构编制的群众团体
        "9": "other",  # 其他
    },
    # 外交 (foreign affairs)
    "2": {
        "1": "resident office of a foreign news agency",  # 外国常驻新闻机构
        "9": "other",  # 其他
    },
    # 司法行政 (justice administration)
    "3": {
        "1": "law firm",  # 律师执业机构
        "2": "notary office",  # 公证处
        "3": "grassroots legal service office",  # 基层法律服务所
        "4": "forensic appraisal institution",  # 司法鉴定机构
        "5": "arbitration commission",  # 仲裁委员会
        "9": "other",  # 其他
    },
    # 文化 (culture)
    "4": {
        "1": "foreign cultural centre in China",  # 外国在华文化中心
        "9": "other",  # 其他
    },
    # 民政 (civil affairs)
    "5": {
        "1": "social organisation",  # 社会团体
        "2": "private non-enterprise unit",  # 民办非企业单位
        "3": "foundation",  # 基金会
        "9": "other",  # 其他
    },
    # 旅游 (tourism)
    "6": {
        "1": "resident office of a foreign tourism authority",  # 外国旅游部门常驻代表机构
        "2": "resident office of a Hong Kong, Macao or Taiwan tourism authority",  # 港澳台地区旅游部门常驻内地（大陆）代表机构
    },
    # 宗教 (religious affairs)
    "7": {
        "1": "venue for religious activities",  # 宗教活动场所
        "2": "religious school",  # 宗教院校
        "3": "religious group",  # 宗教团体
        "9": "other",  # 其他
    },
    # 工会 (trade unions)
    "8": {
        "1": "trade union",  # 基层工会
        "9": "other",  # 其他
    },
    # 工商 (industry and commerce, now market regulation)
    "9": {
        "1": "enterprise",  # 企业
        "2": "individual business",  # 个体工商户
        "3": "farmers' specialised cooperative",  # 农民专业合作社
    },
    # 中央军委改革和编制办公室 (Central Military Commission reform and establishment office)
    "A": {
        "1": "military public institution",  # 军队事业单位
        "9": "other",  # 其他
    },
    # 农业 (agriculture)
    "N": {
        "1": "group-level collective economic organisation",  # 组级集体经济组织
        "2": "village-level collective economic organisation",  # 村级集体经济组织
        "3": "township-level collective economic organisation",  # 乡镇级集体经济组织
        "9": "other",  # 其他
    },
    # 其他 (other registration authorities)
    "Y": {
        "1": "other",  # 其他
    },
}

# GB 11714 organisation code (characters 9-17): 8 digits or capitals, then a mod-11 check character.
ORGANISATION_BODY_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ORGANISATION_WEIGHTS: tuple[int, ...] = (3, 7, 9, 10, 5, 8, 4, 2)


@dataclass(frozen=True)
class CodeProblem:
    """The first rule a code breaks: `message` is an untranslated msgid, `params` fill its placeholders."""

    rule: str  # "empty" | "length" | "alphabet" | "authority" | "check"
    message: str
    params: dict[str, Any] = field(default_factory=dict)


def normalise(code: str) -> str:
    """Full-width characters to half-width (NFKC), surrounding whitespace off, upper case."""
    return unicodedata.normalize("NFKC", code).strip().upper()


def _check_value(first17: str) -> int:
    return (31 - sum(VALUES[char] * weight for char, weight in zip(first17, WEIGHTS, strict=True)) % 31) % 31


def check_character(first17: str) -> str:
    """The 18th character for these 17 (already normalised); ValueError if they are not 17 alphabet characters."""
    if len(first17) != LENGTH - 1:
        msg = f"Expected {LENGTH - 1} characters, got {len(first17)}: {first17!r}"
        raise ValueError(msg)
    bad = [char for char in first17 if char not in VALUES]
    if bad:
        msg = f"Characters outside the credit code alphabet: {''.join(bad)!r}"
        raise ValueError(msg)
    return ALPHABET[_check_value(first17)]


def problem(code: str) -> CodeProblem | None:
    """The first rule the code breaks, in the order empty, length, alphabet, authority (with type), check; None if valid."""
    code = normalise(code)
    if not code:
        return CodeProblem("empty", N_("Please enter the unified social credit code."), {})
    if len(code) != LENGTH:
        return CodeProblem(
            "length",
            N_("A unified social credit code has 18 characters; this one has %(length)d."),
            {"length": len(code)},
        )
    for index, char in enumerate(code):
        if char not in VALUES:
            return CodeProblem(
                "alphabet",
                N_(
                    "The character “%(char)s” at position %(position)d cannot appear in a credit code "
                    "(letters I, O, Z, S and V are never used)."
                ),
                {"char": char, "position": index + 1},
            )
    if code[1] not in ENTITY_TYPES.get(code[0], {}):
        return CodeProblem(
            "authority",
            N_("The first two characters “%(pair)s” are not a registration authority and entity type the standard defines."),
            {"pair": code[:2]},
        )
    expected = ALPHABET[_check_value(code[:17])]
    if code[17] != expected:
        return CodeProblem(
            "check",
            N_("The last character should be “%(expected)s” for the first 17 characters; please check the code for a typing error."),
            {"expected": expected, "actual": code[17]},
        )
    return None


def is_valid(code: str) -> bool:
    return problem(code) is None


def organisation_code(body8: str) -> str:
    """The 9-character GB 11714 organisation code: the 8-character body and its check character.

    Values are 0-9 for digits and 10-35 for A-Z; the check is 11 - (weighted sum mod 11), written X for 10 and 0 for 11.
    """
    if len(body8) != len(ORGANISATION_WEIGHTS) or any(char not in ORGANISATION_BODY_ALPHABET for char in body8):
        msg = f"An organisation code body is 8 digits or capital letters, not {body8!r}"
        raise ValueError(msg)
    total = sum(ORGANISATION_BODY_ALPHABET.index(char) * weight for char, weight in zip(body8, ORGANISATION_WEIGHTS, strict=True))
    check = 11 - total % 11
    return body8 + {10: "X", 11: "0"}.get(check, str(check))


def make_code(authority: str, entity_type: str, division: str, organisation: str) -> str:
    """A valid code from its parts (demo data, tests); ValueError if a part has the wrong length or characters
    or the authority does not register that entity type."""
    if entity_type not in ENTITY_TYPES.get(authority, {}):
        msg = f"Authority {authority!r} does not register entity type {entity_type!r}"
        raise ValueError(msg)
    if len(division) != 6:
        msg = f"A division code has 6 characters, not {division!r}"
        raise ValueError(msg)
    if len(organisation) != 9:
        msg = f"An organisation code has 9 characters, not {organisation!r}"
        raise ValueError(msg)
    first17 = authority + entity_type + division + organisation
    return first17 + check_character(first17)
