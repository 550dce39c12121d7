"""The printed prescription, all real: a case synced to a real hub on loopback, a prescription issued there through
the staff's API, pulled by the spoke, printed to PDF; the text checked with pdftotext, the pages rendered with
pdftoppm (kept in artifacts/prescriptions to look at the Hindi and the Tamil), the QR code read back by OpenCV
from the render and from a simulated phone photo, its signature checked, a changed byte failing."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests
import zxingcpp
from sqlalchemy import select

from spoke_client.db.models import AuditRow, PrescriptionRow
from spoke_client.services import rx_pdf
from spoke_client.services.printing import NotPrintable
from spoke_client.services.rx_verify import codes_in_image, opencv_codes
from spoke_client.services.sync_local import sync_once
from sync import rx_code
from tests.printing.conftest import need
from tests.sync.conftest import cli_env

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "prescriptions"


def text_of(pdf: Path) -> str:
    out = subprocess.run([need("pdftotext"), str(pdf), "-"], capture_output=True, text=True, check=True)
    return " ".join(out.stdout.split())


def render(pdf: Path, name: str, dpi: int = 200) -> list[Path]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob(f"{name}-*.png"):
        old.unlink()
    subprocess.run([need("pdftoppm"), "-r", str(dpi), "-png", str(pdf), str(ARTIFACTS / name)], check=True)
    return sorted(ARTIFACTS.glob(f"{name}-*.png"))


def photographed(image: np.ndarray) -> np.ndarray:
    """A phone photo of the paper, simulated: tilted in perspective, rotated, blurred, unevenly lit, noisy, JPEG."""
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    h, w = gray.shape
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = np.float32([[w * 0.06, h * 0.04], [w * 0.96, 0], [w * 0.92, h * 0.97], [0, h * 0.92]])
    photo = cv2.warpPerspective(gray, cv2.getPerspectiveTransform(src, dst), (w, h), borderValue=170)
    photo = cv2.warpAffine(photo, cv2.getRotationMatrix2D((w / 2, h / 2), 9, 1.0), (w, h), borderValue=170)
    photo = cv2.GaussianBlur(photo, (5, 5), 1.0)
    light = np.linspace(0.72, 1.0, w, dtype=np.float32)[None, :]
    noise = np.random.default_rng(7).normal(0, 12, photo.shape)
    photo = np.clip(photo.astype(np.float32) * light + noise, 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, 70])
    assert ok
    return cv2.imdecode(jpeg, cv2.IMREAD_GRAYSCALE)


def test_the_prescription_prints_with_every_field_and_its_code_verifies(prescribed, tmp_path):
    services, admin, _paths, case_id, issued, _me = prescribed
    key = services.store.get_setting("hub_public_key")
    pdf = tmp_path / "rx-en.pdf"
    services.printing.save_pdf(admin, services.printing.prescription_of_case(case_id), pdf, "en", "A5")
    text = text_of(pdf)
    today = date.today()
    for field in ("District Hospital Sitapur", "Dr Rajesh Mehta", "MBBS, MD (Medicine)", "UPMC 45678",
                  "Uttar Pradesh Medical Council", "HWC Rampur", "Sunita Devi", "Age / sex: ~34 y / Female", "91-1234-5678-9012",
                  "9876543210", today.strftime("%d %b %Y"), "first consultation", "store and forward",
                  "BP 128/84 mmHg", "Pulse 96/min", "38.6 °C", "SpO2 97%", "Fever, Cough, body ache (since 3 days)",
                  "Throat congested", "Acute febrile illness, likely viral (ICD-10 R50.9)", "PARACETAMOL 500 mg", "Tablet",
                  "1 tablet twice a day after food, for 5 days", "1 sachet only when needed, for 3 days",
                  "10 tablets", "Malaria rapid test", "Drink plenty of fluids.",
                  (today + timedelta(days=5)).strftime("%d %b %Y"), "Known allergies: Sulfa drugs",
                  "Registration no.: UPMC 45678", "This prescription is generated on a teleconsultation", "Page 1 of 1"):
        assert field in text, f"{field!r} is not on the paper: {text}"
    assert "DUPLICATE" not in text and "CANCELLED" not in text
    [page] = render(pdf, "rx-en-A5", dpi=300)   # a phone photographs an A5 paper at 300 dpi or better
    image = cv2.imread(str(page), cv2.IMREAD_GRAYSCALE)
    [code] = opencv_codes(image)                # OpenCV's own detector, as a pharmacy's tools would use
    assert code == issued["qr"]
    checked = rx_code.check(code, [key])
    assert checked.signature_ok and checked.summary.prescription_id == issued["id"]
    assert checked.summary.patient == "Sunita Devi" and checked.summary.registration_number == "UPMC 45678"
    assert checked.summary.medicines[0].startswith("PARACETAMOL 500 mg Tablet|1 tablet|BD|5")
    photo = photographed(image)
    cv2.imwrite(str(ARTIFACTS / "rx-en-A5-photo.jpg"), photo)
    [from_photo] = opencv_codes(photo)
    assert rx_code.check(from_photo, [key]).signature_ok
    # A changed byte in the payload (the registration number) fails; so does another hub's key.
    forged = code.replace("UPMC 45678", "UPMC 45679")
    assert forged != code and not rx_code.check(forged, [key]).signature_ok
    other = base64.b64encode(bytes(32)).decode()
    assert not rx_code.check(code, [other]).signature_ok
    assert rx_code.check(code, ["not a key", key]).signature_ok   # a damaged key is passed over, not a crash


def test_hindi_a5_and_a4_and_a_second_script_print_with_their_fonts(prescribed, tmp_path):
    services, admin, _paths, case_id, _issued, _me = prescribed
    rx = services.printing.prescription_of_case(case_id)
    for language, size in (("hi", "A5"), ("hi", "A4"), ("ta", "A5")):
        pdf = tmp_path / f"rx-{language}-{size}.pdf"
        services.printing.save_pdf(admin, rx, pdf, language, size)
        fonts = subprocess.run([need("pdffonts"), str(pdf)], capture_output=True, text=True, check=True).stdout
        script = {"hi": "NotoSansDevanagari", "ta": "NotoSansTamil"}[language]
        assert script in fonts and "NotoSans" in fonts, fonts
        text = text_of(pdf)
        # English stays beside the patient's language, and the Latin fields extract as typed.
        for field in ("Medicines", "Sunita Devi", "PARACETAMOL 500 mg", "UPMC 45678",
                      "This prescription is generated on a teleconsultation"):
            assert field in text, (language, field)
        pages = render(pdf, f"rx-{language}-{size}")
        assert pages and all(p.stat().st_size > 20_000 for p in pages)
        image = cv2.imread(str(pages[0]), cv2.IMREAD_GRAYSCALE)
        assert codes_in_image(image), f"the QR code of the {language} {size} paper was not read back"


def test_verify_rx_reads_the_pdf_and_a_photo_and_refuses_a_tampered_code(prescribed, tmp_path):
    services, admin, paths, case_id, issued, _me = prescribed
    pdf = tmp_path / "rx.pdf"
    services.printing.save_pdf(admin, services.printing.prescription_of_case(case_id), pdf, "hi", "A5")
    hub_key = requests.get(f"{services.store.get_setting('hub_url')}/v1/hub/key", timeout=10).json()["key"]
    services.close()   # the command opens the database itself

    def verify_rx(file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "spoke_client", "--data-dir", str(paths.root), "verify-rx",
                               str(file), *extra], capture_output=True, text=True, timeout=120, env=cli_env())

    ok = verify_rx(pdf)
    assert ok.returncode == 0, ok.stderr
    assert "Signature: VALID" in ok.stdout and issued["id"] in ok.stdout and "UPMC 45678" in ok.stdout
    photo = tmp_path / "photo.jpg"
    [page] = render(pdf, "rx-verify", dpi=300)
    cv2.imwrite(str(photo), photographed(cv2.imread(str(page), cv2.IMREAD_GRAYSCALE)))
    assert verify_rx(photo).returncode == 0
    # A paper whose code was remade with one changed character (the number of days) fails.
    content = json.loads(issued["qr"])
    content["m"][0] = content["m"][0].replace("|5", "|15")
    forged = tmp_path / "forged.png"
    remade = zxingcpp.create_barcode(json.dumps(content, ensure_ascii=False, separators=(",", ":")),
                                     zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    cv2.imwrite(str(forged), np.array(remade.to_image(scale=6, add_quiet_zones=True)))
    bad = verify_rx(forged)
    assert bad.returncode == 1 and "NOT VALID" in bad.stdout
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((300, 300), 255, np.uint8))
    unreadable = verify_rx(blank)
    assert unreadable.returncode == 4 and "No QR code" in unreadable.stderr
    bad_key = verify_rx(pdf, "--key", "notakey")
    assert bad_key.returncode == 2 and "not a hub key" in bad_key.stderr
    # A pharmacist's PC with no Spoke data: the hub's key given on the command line.
    elsewhere = subprocess.run([sys.executable, "-m", "spoke_client", "--data-dir", str(tmp_path / "pharmacy"),
                                "verify-rx", str(pdf), "--key", hub_key],
                               capture_output=True, text=True, timeout=120)
    assert elsewhere.returncode == 0, elsewhere.stderr


def test_a_second_paper_says_duplicate_and_a_cancelled_one_cancelled(prescribed, tmp_path):
    services, admin, paths, case_id, issued, me = prescribed
    rx = services.printing.prescription_of_case(case_id)
    services.printing.save_pdf(admin, rx, tmp_path / "first.pdf", "en", "A5")
    services.printing.save_pdf(admin, rx, tmp_path / "second.pdf", "en", "A5")
    assert "DUPLICATE" not in text_of(tmp_path / "first.pdf")
    second = text_of(tmp_path / "second.pdf")
    assert "DUPLICATE - copy 2" in second
    render(tmp_path / "second.pdf", "rx-duplicate")
    with services.store.read() as s:
        actions = [a for a, in s.execute(select(AuditRow.action).where(AuditRow.entity_id == rx)
                                         .order_by(AuditRow.seq))]
    assert actions[-2:] == ["print_pdf", "reprint_pdf"]
    url = services.store.get_setting("hub_url")
    r = requests.post(f"{url}/v1/hub/prescriptions/{issued['id']}/cancel", headers=me, timeout=10,
                      json={"reason": "Wrong dose written"})
    assert r.status_code == 200, r.text
    assert sync_once(services.store, paths).error is None
    services.printing.save_pdf(admin, rx, tmp_path / "cancelled.pdf", "en", "A5")
    text = text_of(tmp_path / "cancelled.pdf")
    assert "CANCELLED: Wrong dose written" in text
    render(tmp_path / "cancelled.pdf", "rx-cancelled")


def test_a_prescription_whose_signature_failed_is_not_printed(prescribed, tmp_path):
    services, admin, _paths, case_id, _issued, _me = prescribed
    rx = services.printing.prescription_of_case(case_id)
    with services.store.write(None) as w:
        w.session.get(PrescriptionRow, rx).signature_ok = False
    with pytest.raises(NotPrintable):
        services.printing.save_pdf(admin, rx, tmp_path / "x.pdf", "en", "A5")
    assert not (tmp_path / "x.pdf").exists()


def test_print_rx_command_writes_the_pdf(prescribed, tmp_path):
    services, _admin, paths, case_id, _issued, _me = prescribed
    services.close()
    out = tmp_path / "cli.pdf"
    done = subprocess.run([sys.executable, "-m", "spoke_client", "--data-dir", str(paths.root), "print-rx", "--case",
                           case_id, "--pdf", str(out), "--lang", "hi", "--size", "A4"],
                          capture_output=True, text=True, timeout=120, env=cli_env())
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:5] == b"%PDF-" and "Sunita Devi" in text_of(out)
    missing = subprocess.run([sys.executable, "-m", "spoke_client", "--data-dir", str(paths.root), "print-rx", "--case",
                              "no-such-case", "--pdf", str(out)], capture_output=True, text=True, timeout=120,
                             env=cli_env())
    assert missing.returncode == 1 and "no prescription" in missing.stderr


def test_codes_of_varied_prescriptions_read_back_from_renders_and_photos():
    """Fixed seeds, so this is the same every run: prescriptions as varied as real ones (1 to 6 medicines,
    Devanagari and Latin names; the bench's generator), each read back by OpenCV from a 300-dpi render and from
    a photo of it, and by the app's reader (zxing-cpp first) from a photo of a 200-dpi render."""
    import pypdfium2 as pdfium

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    import rx_bench

    docs = rx_bench.documents(4, seed=7)
    assert any(not d.patient.name.isascii() for d in docs) and max(len(d.prescription.medicines) for d in docs) >= 5
    for doc in docs:
        page = pdfium.PdfDocument(rx_pdf.render(doc, "hi", "A5"))[0]
        at300 = np.array(page.render(scale=300 / 72, grayscale=True).to_pil().convert("L"))
        at200 = np.array(page.render(scale=200 / 72, grayscale=True).to_pil().convert("L"))
        assert opencv_codes(at300) == [doc.qr_text], doc.patient.name
        assert opencv_codes(photographed(at300)) == [doc.qr_text], doc.patient.name
        assert codes_in_image(photographed(at200)) == [doc.qr_text], doc.patient.name
        assert rx_code.check(doc.qr_text, [rx_bench.PUBLIC]).signature_ok
