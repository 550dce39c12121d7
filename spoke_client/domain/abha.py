"""ABHA (Ayushman Bharat Health Account) numbers and addresses: format, check digit, normalisation."""

from __future__ import annotations

import re

from spoke_client.domain.errors import Advisory, FieldProblem, ValidationFailed
from spoke_client.i18n import _

_ADDRESS = re.compile(r"^[a-z0-9._]{3,50}@(abdm|sbx|ndhm)$")


def normalize_abha_number(text: str) -> str:
    """'91-1234-5678-9012', '91 1234 5678 9012' or '91123456789012' -> the 14 digits."""
    digits = re.sub(r"[\s-]", "", text)
    if not (digits.isdigit() and digits.isascii() and len(digits) == 14):
        raise ValidationFailed([FieldProblem("abha_number", _("An ABHA number has 14 digits, written like 91-1234-5678-9012."))])
    return digits


def format_abha_number(digits: str) -> str:
    return f"{digits[:2]}-{digits[2:6]}-{digits[6:10]}-{digits[10:14]}"


def _luhn_sum(digits: str) -> int:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total


def luhn_ok(digits: str) -> bool:
    return digits.isdigit() and _luhn_sum(digits) % 10 == 0


def make_abha_number(prefix13: str) -> str:
    """Appends the Luhn check digit (for tests and demo data)."""
    check = (10 - _luhn_sum(prefix13 + "0") % 10) % 10
    return prefix13 + str(check)


def abha_advisories(digits: str) -> list[Advisory]:
    """Warnings, not refusals: the check-digit rule is not published by NHA (see DOMAIN.md)."""
    out = []
    if not luhn_ok(digits):
        out.append(Advisory("abha_number", _("The ABHA number's check digit does not match: please check it against the card.")))
    if not digits.startswith("91"):
        out.append(Advisory("abha_number", _("ABHA numbers issued so far start with 91: please check it against the card.")))
    return out


def normalize_abha_address(text: str) -> str:
    cleaned = text.strip().lower()
    if not cleaned:
        return ""
    if not _ADDRESS.match(cleaned):
        raise ValidationFailed([FieldProblem(
            "abha_address", _("An ABHA address looks like name@abdm (3 to 50 letters, digits, '.' or '_' before the @)."))])
    return cleaned
