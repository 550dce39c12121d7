"""Registration rules, search as the paramedic types it, and the duplicate check (SCENARIOS.md journey 2)."""

from datetime import date

import pytest

from spoke_client.domain.abha import make_abha_number
from spoke_client.domain.errors import ValidationFailed
from spoke_client.services.patients import LikelyDuplicate, PatientForm, normalize_phone


def kamla(**kw) -> PatientForm:
    base = dict(name="Kamla Devi", sex="female", age_years=58, relative_name="Ramesh Yadav", relative_relation="W/o",
                village="Rampur", phone="")
    base.update(kw)
    return PatientForm(**base)


def test_approximate_age_is_stored_as_approximate_birth_date(services, admin, today):
    p = services.patients.register(admin, kamla())
    assert p.birth_date_approximate and p.age_years(today) == 58
    assert p.age_text(today) == "~58 y"


def test_infant_age_in_months(services, admin, today):
    p = services.patients.register(admin, PatientForm(name="Ravi", sex="male", age_years=0, age_months=11,
                                                      relative_name="Geeta", relative_relation="S/o"))
    assert p.age_text(today) in ("~11 m", "~10 m")


@pytest.mark.parametrize("field,form", [
    ("name", PatientForm(name="", sex="female", age_years=30)),
    ("name", PatientForm(name="R2D2", sex="female", age_years=30)),
    ("sex", PatientForm(name="Sita", sex="", age_years=30)),
    ("age_years", PatientForm(name="Sita", sex="female")),
    ("age_years", PatientForm(name="Sita", sex="female", age_years=140)),
    ("birth_date", PatientForm(name="Sita", sex="female", birth_date=date(2999, 1, 1))),
    ("phone", PatientForm(name="Sita", sex="female", age_years=30, phone="12345")),
    ("phone", PatientForm(name="Sita", sex="female", age_years=30, phone="98765-4321x")),
    ("abha_number", PatientForm(name="Sita", sex="female", age_years=30, abha_number="91-1234-5678")),
    ("relative_relation", PatientForm(name="Sita", sex="female", age_years=30, relative_name="Ram")),
])
def test_bad_fields_are_refused_with_a_sentence(services, admin, field, form):
    with pytest.raises(ValidationFailed) as e:
        services.patients.register(admin, form)
    message = e.value.for_field(field)
    assert message and message[0].isupper() and message.endswith(".")


def test_phone_normalisation():
    assert normalize_phone("+91 98765 43210") == "9876543210"
    assert normalize_phone("09876543210") == "9876543210"
    assert normalize_phone("") == ""


def test_abha_number_stored_as_digits_and_unique(services, admin):
    number = make_abha_number("9112345678901")
    dashed = f"{number[:2]}-{number[2:6]}-{number[6:10]}-{number[10:]}"
    p = services.patients.register(admin, kamla(abha_number=dashed))
    assert p.abha_number == number
    with pytest.raises(ValidationFailed, match="already registered"):
        services.patients.register(admin, PatientForm(name="Someone Else", sex="male", age_years=20, abha_number=number),
                                   confirmed_new=True)


def test_search_as_you_type_finds_kamla_from_rampur(services, admin):
    services.patients.register(admin, kamla())
    services.patients.register(admin, kamla(age_years=34, relative_name="Suresh Pal"), confirmed_new=True)
    services.patients.register(admin, PatientForm(name="Kamla Bai", sex="female", age_years=40, village="Sitapur"))
    services.patients.register(admin, PatientForm(name="Geeta Devi", sex="female", age_years=40, village="Rampur"))
    hits = services.patients.search("kamla ramp")
    assert {h.patient.name for h in hits} == {"Kamla Devi"}
    assert len(hits) == 2


@pytest.mark.parametrize("typed,stored", [
    ("Lakshmi", "Laxmi Bai"), ("laxmi", "Lakshmi Devi"), ("Suneeta", "Sunita Yadav"), ("mohammad", "Mohammed Rafiq"),
    ("kamala", "Kamla Devi"), ("Sunitha", "Sunita Yadav"),
])
def test_spelling_variants_are_found(services, admin, typed, stored):
    services.patients.register(admin, PatientForm(name=stored, sex="female", age_years=30, village="Rampur"))
    services.patients.register(admin, PatientForm(name="Anil Kumar", sex="male", age_years=30, village="Rampur"))
    names = [h.patient.name for h in services.patients.search(typed)]
    assert names and names[0] == stored


def test_a_typo_is_forgiven(services, admin):
    services.patients.register(admin, PatientForm(name="Savitri Kushwaha", sex="female", age_years=50))
    services.patients.register(admin, PatientForm(name="Anil Kumar", sex="male", age_years=30))
    assert [h.patient.name for h in services.patients.search("savtri")][:1] == ["Savitri Kushwaha"]


def test_search_by_phone_suffix_and_abha(services, admin):
    number = make_abha_number("9155555555555")
    services.patients.register(admin, PatientForm(name="Ravi Kumar", sex="male", age_years=30, phone="9876543210"))
    services.patients.register(admin, PatientForm(name="Geeta", sex="female", age_years=30, abha_number=number))
    assert [h.patient.name for h in services.patients.search("43210")] == ["Ravi Kumar"]
    hits = services.patients.search(f"{number[:2]}-{number[2:6]}-{number[6:10]}-{number[10:]}")
    assert [h.patient.name for h in hits] == ["Geeta"] and hits[0].matched == "abha"


def test_search_needs_three_characters(services, admin):
    services.patients.register(admin, kamla())
    assert services.patients.search("ka") == []


def test_update_reindexes_and_bumps_version(services, admin):
    p = services.patients.register(admin, kamla())
    q = services.patients.update(admin, p.id, kamla(village="Lalganj"), expected_version=1)
    assert q.version == 2
    assert [h.patient.id for h in services.patients.search("kamla lalganj")] == [p.id]
    assert services.patients.search("kamla rampur") == []


def test_duplicate_warning_shows_the_closest_first_and_lets_her_go_on(services, admin):
    """Journey 2: two Kamla Devis from Rampur (58 and 34); a new Kamla, about 60, another husband."""
    older = services.patients.register(admin, kamla(age_years=58))
    younger = services.patients.register(admin, kamla(age_years=34, relative_name="Suresh Pal"), confirmed_new=True)
    new = kamla(age_years=60, relative_name="Mohan Lal")
    with pytest.raises(LikelyDuplicate) as e:
        services.patients.register(admin, new)
    ids = [c.patient.id for c in e.value.candidates]
    assert ids[0] == older.id and younger.id in ids
    assert "similar name" in e.value.candidates[0].reasons
    created = services.patients.register(admin, new, confirmed_new=True)
    assert created.id not in (older.id, younger.id)


def test_same_phone_is_a_likely_duplicate(services, admin):
    services.patients.register(admin, PatientForm(name="Ravi Kumar", sex="male", age_years=30, phone="9876543210"))
    with pytest.raises(LikelyDuplicate) as e:
        services.patients.register(admin, PatientForm(name="Meena Kumari", sex="female", age_years=28, phone="+919876543210"))
    assert "same phone number" in e.value.candidates[0].reasons


def test_a_common_name_alone_is_not_a_duplicate(services, admin):
    services.patients.register(admin, PatientForm(name="Ram Singh", sex="male", age_years=70, village="Sitapur"))
    p = services.patients.register(admin, PatientForm(name="Ram Singh", sex="male", age_years=20, village="Madhopur"))
    assert p.name == "Ram Singh"
