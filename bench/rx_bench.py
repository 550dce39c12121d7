"""The printed prescription: time to make one PDF (A5, Hindi + English, with its signed QR code) and to verify one
from a 200-dpi image of the paper, on prescriptions as varied as real ones (1 to 6 medicines from the NLEM, names,
diagnoses and advice of different lengths, Latin and Devanagari patient names).

    .venv/bin/python bench/rx_bench.py [--n 200]

Targets (issue "The prescription printed at the spoke"): one PDF under 50 ms. Printed beside them, measured in
the same run: the floor of reportlab itself (a page with one paragraph in the same fonts) and the same paper in
English only (no shaping), so a slow machine shows as slow for all three.
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from reportlab.lib.pagesizes import A5  # noqa: E402
from reportlab.lib.styles import ParagraphStyle  # noqa: E402
from reportlab.platypus import Paragraph, SimpleDocTemplate  # noqa: E402

from spoke_client.domain.consultation import (  # noqa: E402
    Medicine,
    Prescriber,
    Prescription,
    PrescriptionStatus,
)
from spoke_client.domain.model import Patient, VitalsRecord  # noqa: E402
from spoke_client.domain.vitals import Vitals  # noqa: E402
from spoke_client.services import fonts, rx_pdf  # noqa: E402
from spoke_client.services.rx_verify import codes_in_image  # noqa: E402
from sync import prescriptions, rx_code  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NAMES = ["Kamla Devi", "Ravi Kumar", "Sunita Yadav", "Mohd. Irfan", "Lakshmi Bai", "Ganesan S", "Meena Kumari",
         "Phoolmati", "Ramesh Verma", "Savitri Kushwaha", "कमला देवी", "रामप्रसाद यादव", "Arumugam K", "Parvati"]
DIAGNOSES = ["Acute febrile illness, likely viral", "Essential hypertension, uncontrolled", "Type 2 diabetes mellitus",
             "Acute gastroenteritis with some dehydration", "Lower respiratory tract infection", "Scabies",
             "Iron deficiency anaemia in pregnancy, second trimester, with breathlessness on exertion"]
ADVICE = ["", "Drink plenty of fluids.", "Low-salt diet; walk 30 minutes a day; check BP every week at the HWC.",
          "Continue breastfeeding; ORS after each loose stool; come back at once if the child stops drinking, is "
          "very sleepy or has blood in the stool."]
FREQUENCIES = ["OD", "BD", "TDS", "QID", "HS", "SOS", "1-0-1", "1-1-1", "0-0-1"]
INSTRUCTIONS = ["", "after food", "before food", "with food", "empty stomach", "at bedtime"]


def formulary() -> list[dict]:
    with open(ROOT / "resources/formulary/nlem2022.csv", encoding="utf-8") as f:
        return [r for r in csv.DictReader(f) if r["tpg_list"] in ("O", "A", "B")]


KEY = Ed25519PrivateKey.generate()
PUBLIC = base64.b64encode(prescriptions.raw_public(KEY.public_key())).decode()


def documents(n: int, seed: int = 11) -> list[rx_pdf.RxDocument]:
    rng = random.Random(seed)
    items = formulary()
    key = KEY
    out = []
    for i in range(n):
        meds = []
        for row in rng.sample(items, rng.randint(1, 6)):
            form = row["dosage_form"]
            unit = "tablet" if "ablet" in form else "capsule" if "apsule" in form else "mL" if "iquid" in form else ""
            dose = f"{rng.choice([1, 1, 2])} {unit}".strip() if unit else "as directed"
            meds.append(Medicine(name=row["medicine"].split(" (")[0].upper(), dose=dose,
                                 frequency=rng.choice(FREQUENCIES), duration_days=rng.choice([3, 5, 7, 14, 30]),
                                 form=form, strength=row["strength"], instructions=rng.choice(INSTRUCTIONS),
                                 quantity=f"{rng.randint(3, 60)} {unit or 'units'}"))
        issued = datetime(2026, 12, 1, 9, tzinfo=timezone.utc) + timedelta(minutes=7 * i)
        p = Prescription(
            id=f"0f8c2b7e-1d2a-4c55-9a8e-{i:012d}", case_id=f"c{i}", patient_id=f"p{i}",
            hub_name="District Hospital Sitapur", issued_at=issued,
            prescriber=Prescriber("Dr Anjali Verma", "MBBS, MD (Medicine)", f"UPMC-{40000 + i}",
                                  "Uttar Pradesh Medical Council"),
            consultation_type=rng.choice(["first", "follow_up"]),
            consultation_mode=rng.choice(["video", "audio", "store_and_forward"]), diagnosis=rng.choice(DIAGNOSES),
            status=PrescriptionStatus.ISSUED, signature_ok=True, medicines=tuple(meds),
            investigations=tuple(rng.sample(["Haemoglobin", "Malaria rapid test", "Urine albumin", "Blood sugar (F)"],
                                            rng.randint(0, 2))),
            advice=rng.choice(ADVICE), follow_up=date(2026, 12, 8) if rng.random() < 0.6 else None)
        name = rng.choice(NAMES)
        payload = {"id": p.id, "issued_at": issued.isoformat(),
                   "prescriber": {"registration_number": p.prescriber.registration_number},
                   "medicines": [{"name": m.name, "strength": m.strength, "form": m.form, "dose": m.dose,
                                  "frequency": m.frequency, "duration_days": m.duration_days} for m in meds]}
        qr = rx_code.make(payload, name, f"{rng.randint(1, 80)} y {rng.choice('FM')}", key)
        patient = Patient(id=p.patient_id, name=name, sex=rng.choice(["female", "male"]),
                          birth_date=date(1950 + rng.randint(0, 70), rng.randint(1, 12), rng.randint(1, 28)),
                          birth_date_approximate=rng.random() < 0.4, phone=f"9{rng.randint(100000000, 999999999)}",
                          abha_number=f"91{rng.randint(10**11, 10**12 - 1)}" if rng.random() < 0.5 else "",
                          allergies=rng.choice([(), ("NKDA",), ("penicillin",), ("sulfa drugs", "ibuprofen")]))
        vitals = VitalsRecord(id=f"v{i}", case_id=p.case_id, recorded_at=issued, recorded_by="u", vitals=Vitals(
            systolic_mmhg=rng.randint(95, 190), diastolic_mmhg=rng.randint(60, 120), pulse_per_min=rng.randint(60, 130),
            temperature_c=round(rng.uniform(36.2, 39.8), 1), spo2_pct=rng.randint(88, 99),
            weight_kg=round(rng.uniform(8, 90), 1)))
        out.append(rx_pdf.RxDocument(p, patient, "HWC Rampur", vitals, complaints=tuple(rng.sample(
            ["Fever", "Cough", "Headache", "Body ache", "Loose motions", "Dizziness"], rng.randint(1, 3))),
            duration=rng.choice(["", "2 days", "1 week"]), findings=rng.choice(["", "Throat congested", "Pallor ++"]),
            qr_text=qr))
    return out


def floor_page() -> bytes:
    out = io.BytesIO()
    style = ParagraphStyle("x", fontName=fonts.base_font(), fontSize=9)
    SimpleDocTemplate(out, pagesize=A5).build([Paragraph("District Hospital Sitapur: prescription", style)])
    return out.getvalue()


def timed(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return times


def summary(times: list[float]) -> str:
    times = sorted(times)
    return (f"median {statistics.median(times):6.1f} ms, p95 {times[int(len(times) * 0.95) - 1]:6.1f} ms "
            f"(n={len(times)})")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200, help="prescriptions to make")
    args = ap.parse_args()
    docs = documents(args.n)
    rx_pdf.render(docs[0], "hi", "A5")   # fonts registered and catalogs loaded once, as in the running app
    floor = timed(floor_page, args.n)
    english, hindi = [], []
    for d in docs:
        english += timed(lambda d=d: rx_pdf.render(d, "en", "A5"), 1)
        hindi += timed(lambda d=d: rx_pdf.render(d, "hi", "A5"), 1)
    print(f"reportlab floor (one paragraph, A5):       {summary(floor)}")
    print(f"prescription, English only, A5, QR:        {summary(english)}")
    print(f"prescription, Hindi + English, A5, QR:     {summary(hindi)}   target: under 50 ms")
    pages = sum(len(rx_pdf.render(d, "hi", "A5").split(b"/Type /Page\n")) - 1 for d in docs[:20])
    print(f"  ({pages} pages for the first 20 papers)")

    # Verifying from a 200-dpi image of the paper (pdftoppm, as a scan or a good photo would give).
    key_check = []
    with tempfile.TemporaryDirectory() as tmp:
        images = []
        for i, d in enumerate(docs[:min(40, len(docs))]):
            pdf = Path(tmp) / f"{i}.pdf"
            pdf.write_bytes(rx_pdf.render(d, "hi", "A5"))
            subprocess.run(["pdftoppm", "-r", "200", "-gray", "-png", "-f", "1", "-l", "1", "-singlefile", str(pdf),
                            str(Path(tmp) / str(i))], check=True)
            images.append((cv2.imread(str(Path(tmp) / f"{i}.png"), cv2.IMREAD_GRAYSCALE), d.qr_text))
        read_ok = 0
        for image, expected in images:
            t = time.perf_counter()
            codes = codes_in_image(image)
            checked = [rx_code.check(c, [PUBLIC]) for c in codes]
            key_check.append((time.perf_counter() - t) * 1000)
            read_ok += codes == [expected] and all(c.signature_ok for c in checked)
    print(f"verify from a 200-dpi image (read+check): {summary(key_check)}   ({read_ok} of {len(images)} read and valid)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
