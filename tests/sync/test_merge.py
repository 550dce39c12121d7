"""Patient demographics merge field by field, the same at every end; a value that lost to an edit that had not
seen it is kept as a conflict record and shown to the user."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from spoke_client.services.patients import PatientForm
from spoke_client.services.sync_local import enroll, sync_once
from sync.merge import FIELD_META, PATIENT_GROUPS, merge, stamp_edit

BASE = {"id": "p1", "name": "Kamla Devi", "sex": "female", "birth_date": "1966-01-01", "birth_date_approximate": True,
        "relative_name": "Ram Lal", "relative_relation": "W/o", "phone": "", "village": "Rampur", "address": "",
        "abha_number": "", "abha_address": "", "version": 1}


def stamp(ms: int, node: str) -> str:
    return f"{ms:015d}-00000-{node}"


def registered() -> dict:
    s0 = stamp(1000, "A")
    return BASE | {FIELD_META: stamp_edit({}, list(PATIENT_GROUPS), s0)}, s0


def edit(record: dict, at: str, **values) -> dict:
    after = record | values
    groups = [g for g in PATIENT_GROUPS if any(f in values for f in PATIENT_GROUPS[g])]
    return after | {FIELD_META: stamp_edit(record[FIELD_META], groups, at), "version": record["version"] + 1}


def test_edits_of_different_fields_both_survive_without_conflict():
    r, s0 = registered()
    a = (edit(r, stamp(2000, "A"), phone="9876543210"), stamp(2000, "A"))
    b = (edit(r, stamp(2500, "B"), village="Rampur Kalan"), stamp(2500, "B"))
    for (first, s1), (second, s2) in ((a, b), (b, a)):
        merged, conflicts = merge(first, s1, second, s2)
        assert (merged["phone"], merged["village"], conflicts) == ("9876543210", "Rampur Kalan", [])


def test_the_same_field_edited_on_both_sides_keeps_the_loser():
    r, s0 = registered()
    a = edit(r, stamp(2000, "A"), phone="9876543210")
    b = edit(r, stamp(3000, "B"), phone="9123456780")
    merged, conflicts = merge(a, stamp(2000, "A"), b, stamp(3000, "B"))
    assert merged["phone"] == "9123456780"
    [c] = conflicts
    assert (c.group, c.kept, c.lost, c.lost_device) == ("phone", {"phone": "9123456780"}, {"phone": "9876543210"}, "A")


def test_a_sequential_edit_is_not_a_conflict_even_when_its_predecessor_arrives_late():
    r, s0 = registered()
    a = edit(r, stamp(2000, "A"), phone="9876543210")
    b = edit(a, stamp(3000, "B"), phone="9123456780")      # B saw A's number and corrected it
    c = edit(b, stamp(4000, "C"), phone="9000000001")      # and C saw B's
    merged, conflicts = merge(c, stamp(4000, "C"), a, stamp(2000, "A"))
    assert merged["phone"] == "9000000001" and conflicts == []


def test_an_approximate_birth_date_moves_with_its_flag():
    r, s0 = registered()
    a = edit(r, stamp(2000, "A"), birth_date="1965-06-15", birth_date_approximate=False)
    b = edit(r, stamp(1500, "B"), birth_date="1970-01-01", birth_date_approximate=True)
    merged, conflicts = merge(b, stamp(1500, "B"), a, stamp(2000, "A"))
    assert (merged["birth_date"], merged["birth_date_approximate"]) == ("1965-06-15", False)
    assert conflicts[0].lost == {"birth_date": "1970-01-01", "birth_date_approximate": True}


def test_a_payload_from_before_field_stamps_counts_as_a_whole_record_edit():
    r, s0 = registered()
    legacy = {k: v for k, v in (BASE | {"phone": "9111111111"}).items()}
    merged, _c = merge(r, s0, legacy, stamp(5000, "OLD"))
    assert merged["phone"] == "9111111111" and merged[FIELD_META]["phone"][0] == stamp(5000, "OLD")


edits = st.lists(st.tuples(st.sampled_from(["A", "B", "H"]), st.sampled_from(["phone", "village", "name", "address"]),
                           st.text(alphabet="abc123", min_size=1, max_size=4)), min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(edits, st.randoms(use_true_random=False))
def test_any_arrival_order_gives_the_same_record(script, rnd):
    """Each device edits its own copy; the changes then arrive anywhere in any order, some twice."""
    r, s0 = registered()
    copies = {"A": (r, s0), "B": (r, s0), "H": (r, s0)}
    changes = []
    for i, (node, field, value) in enumerate(script):
        record, _s = copies[node]
        at = stamp(2000 + i, node)
        record = edit(record, at, **{field: value})
        copies[node] = (record, at)
        changes.append((record, at))
    orders = [changes, list(reversed(changes)), rnd.sample(changes, len(changes)), changes + changes[:2]]
    results = []
    for order in orders:
        state, state_stamp = r, s0
        for record, at in order:
            state, _conflicts = merge(state, state_stamp, record, at)
            state_stamp = max(state_stamp, at)
        results.append({k: v for k, v in state.items() if k != "version"})
    assert all(x == results[0] for x in results[1:])
    latest = {}
    for i, (node, field, value) in enumerate(script):
        latest[field] = value
    for field, value in latest.items():
        assert results[0][field] == value, "the last edit of each field wins"


# --- end to end: two PCs of one facility and the hub ------------------------------------------------
def test_two_pcs_and_the_hub_edit_one_patient_offline(hub, hub_server, facilities, spoke):
    import requests

    from tests.sync.conftest import ADMIN_TOKEN

    pc1, admin1, paths1 = spoke("pc1")
    pc2, admin2, paths2 = spoke("pc2")
    for s, p, name in ((pc1, paths1, "PC-1"), (pc2, paths2, "PC-2")):
        enroll(s.store, p, hub_server.url, hub.enroll_code(facilities[0]), name)
    kamla = pc1.patients.register(admin1, PatientForm(name="Kamla Devi", sex="female", age_years=60, village="Rampur"))
    assert sync_once(pc1.store, paths1).ok and sync_once(pc2.store, paths2).ok
    on2 = pc2.patients.get(admin2, kamla.id)

    # Offline on both PCs, and at the hub: PC-1 and PC-2 both change the phone; PC-2 also the village;
    # the hub doctor corrects the name.
    pc1.patients.update(admin1, kamla.id, PatientForm(name="Kamla Devi", sex="female", age_years=60, village="Rampur",
                                                      phone="9876543210"), kamla.version)
    pc2.patients.update(admin2, kamla.id, PatientForm(name="Kamla Devi", sex="female", age_years=60,
                                                      village="Rampur Kalan", phone="9123456780"), on2.version)
    r = requests.post(f"{hub_server.url}/v1/hub/patients/{kamla.id}", json={"name": "Kamla Devi Kushwaha"},
                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
    assert r.status_code == 200, r.text

    for _round in range(2):
        for s, p in ((pc1, paths1), (pc2, paths2)):
            assert sync_once(s.store, p).ok
    one, two = pc1.patients.get(admin1, kamla.id), pc2.patients.get(admin2, kamla.id)
    hub_view = hub.record("patient", kamla.id).payload
    for view in (one, two):
        assert (view.name, view.village, view.phone) == ("Kamla Devi Kushwaha", "Rampur Kalan", "9123456780")
    assert (hub_view["name"], hub_view["village"], hub_view["phone"]) == ("Kamla Devi Kushwaha", "Rampur Kalan", "9123456780")
    # PC-1's number lost to PC-2's, which had not seen it: kept, and shown on PC-1 (and PC-2).
    [c1] = pc1.conflicts.open_conflicts(kamla.id)
    assert (c1.what, c1.kept, c1.other, c1.other_from) == ("Phone", "9123456780", "9876543210", "another computer")
    assert [c.other for c in pc2.conflicts.open_conflicts()] == ["9876543210"]
    assert pc1.patients.search("kushwaha"), "the merged name is searchable"

    # PC-1's user knows better: takes the other number. It travels as a new edit; nobody sees a new conflict.
    pc1.patients.use_conflict_value(admin1, c1.id)
    assert pc1.conflicts.open_conflicts() == []
    for s, p in ((pc1, paths1), (pc2, paths2)):
        assert sync_once(s.store, p).ok
    assert pc2.patients.get(admin2, kamla.id).phone == "9876543210"
    assert hub.record("patient", kamla.id).payload["phone"] == "9876543210"
    [c2] = pc2.conflicts.open_conflicts()
    pc2.conflicts.keep(admin2, c2.id)
    assert pc2.conflicts.open_conflicts() == [] and pc2.conflicts.open_count() == 0


def test_the_hub_refuses_unknown_demographic_fields(hub, hub_server, facilities, spoke):
    import requests

    from tests.sync.conftest import ADMIN_TOKEN

    pc1, admin1, paths1 = spoke("pc1")
    enroll(pc1.store, paths1, hub_server.url, hub.enroll_code(facilities[0]), "PC-1")
    kamla = pc1.patients.register(admin1, PatientForm(name="Kamla Devi", sex="female", age_years=60, village="Rampur"))
    sync_once(pc1.store, paths1)
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    r = requests.post(f"{hub_server.url}/v1/hub/patients/{kamla.id}", json={"blood_group": "B+"}, headers=auth, timeout=10)
    assert r.status_code == 400 and "blood_group" in r.json()["message"]
    r = requests.post(f"{hub_server.url}/v1/hub/patients/nobody", json={"name": "X"}, headers=auth, timeout=10)
    assert r.status_code == 404
    r = requests.post(f"{hub_server.url}/v1/hub/patients/{kamla.id}", json={"name": "X"}, timeout=10)
    assert r.status_code == 401
