"""ABHA numbers and addresses; phonetic keys for Indian names typed in Latin letters."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spoke_client.domain.abha import (
    abha_advisories,
    format_abha_number,
    luhn_ok,
    make_abha_number,
    normalize_abha_address,
    normalize_abha_number,
)
from spoke_client.domain.errors import ValidationFailed
from spoke_client.domain.names import name_key, name_similarity, normalize_name, phonetic_key


def test_abha_number_forms():
    good = make_abha_number("9112345678901")
    dashed = format_abha_number(good)
    assert dashed.count("-") == 3 and len(dashed) == 17
    for form in (good, dashed, dashed.replace("-", " ")):
        assert normalize_abha_number(form) == good
    assert luhn_ok(good) and abha_advisories(good) == []


@pytest.mark.parametrize("bad", ["91-1234-5678", "9112345678901a", "911234567890123", "", "٩١١٢٣٤٥٦٧٨٩٠١٢"])
def test_malformed_abha_numbers_are_refused(bad):
    with pytest.raises(ValidationFailed, match="14 digits"):
        normalize_abha_number(bad)


def test_failed_check_digit_and_prefix_are_warnings():
    good = make_abha_number("9112345678901")
    wrong = good[:-1] + str((int(good[-1]) + 1) % 10)
    assert "check digit" in abha_advisories(wrong)[0].message
    assert any("start with 91" in a.message for a in abha_advisories(make_abha_number("1212345678901")))


def test_abha_address():
    assert normalize_abha_address(" Kamla.Devi@ABDM ") == "kamla.devi@abdm"
    assert normalize_abha_address("ravi_1@sbx") == "ravi_1@sbx"
    assert normalize_abha_address("") == ""
    for bad in ("kamla@gmail.com", "ab@abdm", "kamla devi@abdm"):
        with pytest.raises(ValidationFailed):
            normalize_abha_address(bad)


SAME = [
    ("Laxmi", "Lakshmi"), ("Lakshman", "Laxman"), ("Sunita", "Suneeta"), ("Sunita", "Sunitha"), ("Mohammed", "Mohammad"),
    ("Mohammad", "Muhammad"), ("Mohamed", "Mohammad"), ("Shyam", "Syam"), ("Shyam", "Shiam"), ("Pooja", "Puja"),
    ("Vijay", "Wijay"), ("Devi", "Devee"), ("Kamla", "Kamala"), ("Kamlesh", "Kamalesh"), ("Rampur", "Raampur"),
    ("Chaudhary", "Choudhary"), ("Chaudhary", "Chaudhari"), ("Geeta", "Gita"), ("Seeta", "Sita"), ("Meena", "Mina"),
    ("Reena", "Rina"), ("Rekha", "Reka"), ("Bharat", "Barat"), ("Prakash", "Prakaash"),
    ("Dinesh", "Dinesh"), ("Pinky", "Pinki"), ("Sonu", "Sunu"), ("Ashok", "Asok"), ("Santosh", "Santos"),
    ("Jhansi", "Jansi"), ("Phoolwati", "Fulwati"), ("Zaheer", "Jaheer"), ("Shanti", "Santi"), ("Savitri", "Savithri"),
    ("Radha", "Rada"), ("Krishna", "Krisna"), ("Subhash", "Subash"), ("Abhishek", "Abishek"), ("Chhaya", "Chaya"),
    ("Ganesh", "Ganesh"), ("Kusum", "Kusoom"),
]
DIFFERENT = [
    ("Ram", "Raju"), ("Sita", "Gita"), ("Anil", "Sunil"), ("Rekha", "Radha"), ("Kamla", "Komal"), ("Ramesh", "Suresh"),
    ("Mahesh", "Mukesh"), ("Pooja", "Puneet"), ("Usha", "Asha"), ("Meena", "Mona"), ("Rakesh", "Rajesh"),
    ("Vijay", "Ajay"), ("Sunita", "Sarita"), ("Manoj", "Mohan"), ("Kiran", "Karan"), ("Lalita", "Lata"),
    ("Geeta", "Meeta"), ("Yadav", "Jadhav"), ("Devi", "Dev"), ("Rampur", "Raipur"),
]


@pytest.mark.parametrize("a,b", SAME)
def test_spelling_variants_share_a_key(a, b):
    assert phonetic_key(a) == phonetic_key(b)


@pytest.mark.parametrize("a,b", DIFFERENT)
def test_different_names_keep_different_keys(a, b):
    assert phonetic_key(a) != phonetic_key(b)


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=15))
def test_phonetic_key_is_idempotent(word):
    once = phonetic_key(word)
    assert phonetic_key(once) == once


def test_normalize_and_similarity():
    assert normalize_name("  Kamlā  DEVI, W/o ") == "kamla devi w o"
    assert name_key("Lakshmi Devi") == name_key("Laxmi Devee")
    assert name_similarity("Kamla Devi", "Kamala Devi") == 1.0
    assert name_similarity("Kamla Devi", "Anil Kumar") < 0.5
