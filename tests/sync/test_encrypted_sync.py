"""Sync on encrypted data: what one PC sends and another of its facility pulls (records and a document) is readable by
the services of each, and in neither PC's files (database, day's copy, key file, media) is a patient's name, phone
or ABHA number."""

from __future__ import annotations

from spoke_client.domain.model import AttachmentKind
from spoke_client.services.patients import PatientForm
from spoke_client.services.runtime import take_good_copy
from spoke_client.services.sync_local import enroll, sync_once
from tests.services.test_encryption import secrets_in


def test_a_patient_pushed_by_one_pc_and_pulled_by_another_stays_encrypted_at_both(hub, hub_server, facilities, spoke):
    pc1, admin1, paths1 = spoke("pc1")
    enroll(pc1.store, paths1, hub_server.url, hub.enroll_code(facilities[0]), "PC-1")
    kamla = pc1.patients.register(admin1, PatientForm(name="Kamla Devi", sex="female", age_years=60, phone="9876543210",
                                                      abha_number="91-1234-5678-9012", address="Sitapur Road"))
    case = pc1.cases.open_case(admin1, kamla.id)
    discharge = b"%PDF-1.4\n% Discharge summary: Kamla Devi, 9876543210, chest pain since morning\n" + bytes(200_000)
    document = pc1.attachments.attach(admin1, case.id, AttachmentKind.DOCUMENT, discharge, "application/pdf", "discharge")
    assert sync_once(pc1.store, paths1).ok
    assert hub.record("patient", kamla.id).payload["phone"] == "9876543210", "the hub gets the content (over TLS)"

    pc2, _admin2, paths2 = spoke("pc2")
    enroll(pc2.store, paths2, hub_server.url, hub.enroll_code(facilities[0]), "PC-2")
    report = sync_once(pc2.store, paths2)
    assert report.ok and report.pulled >= 1
    assert [h.patient.id for h in pc2.patients.search("9876543210")] == [kamla.id]
    assert sync_once(pc2.store, paths2).ok                   # the file comes with the round after its record
    [fetched] = pc2.attachments.list(case.id)
    assert pc2.attachments.read_bytes(fetched) == discharge, "PC-2 reads the file it fetched"
    assert pc1.attachments.read_bytes(document) == discharge
    for services, paths in ((pc1, paths1), (pc2, paths2)):
        take_good_copy(paths, key=services.key)
        # The WAL included (its pages are encrypted too), and the media folder: the document is sealed at both PCs.
        assert secrets_in(paths.root, leave_out=()) == [], paths.root.name
        assert list(paths.media.rglob("*")), "the media folder holds the document"
