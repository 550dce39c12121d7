"""Attachments on a case: files by SHA-256 on disk, written atomically, with the reference and its change-log
entry in one transaction; documents are checked by their content, not their name."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest
from sqlalchemy import select

from spoke_client.db.models import AttachmentRow, ChangeRow, MediaBlobRow
from spoke_client.domain.errors import NotAllowed, ValidationFailed
from spoke_client.domain.model import AttachmentKind, CaseStatus
from spoke_client.services.patients import PatientForm


@pytest.fixture
def case(services, admin):
    kamla = services.patients.register(admin, PatientForm(name="Kamla Devi", sex="female", age_years=60, village="Rampur"))
    return services.cases.open_case(admin, kamla.id)


def picture(ext: str, w: int = 640, h: int = 480) -> bytes:
    img = np.zeros((h, w, 3), np.uint8)
    cv2.circle(img, (w // 2, h // 2), min(w, h) // 3, (40, 80, 200), -1)
    ok, buf = cv2.imencode(ext, img)
    assert ok
    return buf.tobytes()


PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
       b"trailer<</Root 1 0 R>>\n%%EOF\n")


@pytest.mark.parametrize("name, data, mime, size", [
    ("lab-report.jpg", picture(".jpg"), "image/jpeg", (640, 480)),
    ("x-ray.png", picture(".png", 300, 500), "image/png", (300, 500)),
    ("discharge.pdf", PDF, "application/pdf", (None, None)),
])
def test_a_document_is_attached_by_its_content(services, admin, case, tmp_path, name, data, mime, size):
    path = tmp_path / name
    path.write_bytes(data)
    a = services.attachments.attach_document(admin, case.id, path)
    assert (a.kind, a.mime, a.size_bytes, (a.width_px, a.height_px)) == (AttachmentKind.DOCUMENT, mime, len(data), size)
    assert a.label == path.stem and a.sha256 == hashlib.sha256(data).hexdigest()
    stored = services.attachments.files.path(a.sha256)
    assert services.attachments.files.read(a.sha256) == data and stored.parent.name == a.sha256[:2]
    assert data[:64] not in stored.read_bytes(), "sealed at rest: the file on disk is not the content"
    assert not list(stored.parent.glob("*.part")) and not list(stored.parent.glob("*.sealing")), \
        "no temporary file left behind"
    with services.store.read() as s:
        change = s.scalars(select(ChangeRow).where(ChangeRow.entity == "attachment")).one()
        assert change.entity_id == a.id and change.payload["sha256"] == a.sha256
        assert s.get(MediaBlobRow, a.sha256).uploaded_at is None


@pytest.mark.parametrize("data, words", [
    (b"hello, this is a text file", "Only pictures (JPEG, PNG) and PDF"),
    (picture(".jpg")[:200], "damaged"),
    (PDF[:-8], "incomplete"),
    (b"", "empty"),
])
def test_a_file_that_is_not_a_usable_document_is_refused(services, admin, case, tmp_path, data, words):
    path = tmp_path / "report.jpg"
    path.write_bytes(data)
    with pytest.raises(ValidationFailed) as refused:
        services.attachments.attach_document(admin, case.id, path)
    assert words in str(refused.value.problems[0].message)
    with services.store.read() as s:
        assert s.scalars(select(AttachmentRow)).all() == [] and s.scalars(select(ChangeRow).where(ChangeRow.entity == "attachment")).all() == []


def test_a_missing_file_is_reported_in_plain_words(services, admin, case, tmp_path):
    with pytest.raises(ValidationFailed) as refused:
        services.attachments.attach_document(admin, case.id, tmp_path / "gone.pdf")
    assert "could not be read" in refused.value.problems[0].message


def test_relabel_and_the_label_limit(services, admin, case):
    a = services.attachments.attach(admin, case.id, AttachmentKind.AUDIO, b"OggS" + b"\0" * 100, "audio/ogg", "cough",
                                    duration_ms=30_000)
    b = services.attachments.relabel(admin, a.id, "  cough,   night  ")
    assert (b.label, b.version) == ("cough, night", 2)
    with pytest.raises(ValidationFailed):
        services.attachments.relabel(admin, a.id, "x" * 201)


def test_nothing_is_attached_to_a_closed_case(services, admin, case):
    services.cases.transition(admin, case.id, CaseStatus.CANCELLED)
    with pytest.raises(NotAllowed):
        services.attachments.attach(admin, case.id, AttachmentKind.PHOTO, picture(".jpg"), "image/jpeg", "rash")


def test_the_same_content_twice_is_one_file(services, admin, case):
    data = picture(".jpg")
    a = services.attachments.attach(admin, case.id, AttachmentKind.PHOTO, data, "image/jpeg", "rash")
    b = services.attachments.attach(admin, case.id, AttachmentKind.PHOTO, data, "image/jpeg", "rash, again")
    assert a.sha256 == b.sha256 and a.id != b.id
    assert services.attachments.remove(admin, a.id) is True
    assert services.attachments.files.has(a.sha256), "still used by the other attachment"
    assert [x.label for x in services.attachments.list(case.id)] == ["rash, again"]
