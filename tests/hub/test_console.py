"""The doctors' console over real HTTP (a hub on 127.0.0.1, SQLite and PostgreSQL), driven with requests as a browser
without JavaScript would: signing in, the cookie's flags, the CSRF token on every form, the pages a doctor and an
administrator see, another hub's doctor kept out, Hindi, and the prescription form refused, issued and corrected."""

from __future__ import annotations

import hashlib
import io
import re
import wave

import cv2
import numpy as np
import pytest
import requests

from sync.hub.staff_api import COOKIE
from tests.hub.conftest import csrf_of, set_cookies
from tests.hub.test_clinic import queued
from tests.sync import records

MORPHINE, CLOPIDOGREL = "Morphine — Tablet 10 mg", "Clopidogrel — Tablet 75 mg"
PARACETAMOL = "Paracetamol — Tablet 500 mg"


# --- making a case's files -------------------------------------------------------------------------------------
def jpeg(width: int = 640, height: int = 480) -> bytes:
    """A real JPEG (a skin-coloured field with a red patch), encoded by OpenCV."""
    image = np.full((height, width, 3), (150, 180, 225), np.uint8)
    cv2.circle(image, (width // 2, height // 2), min(width, height) // 5, (40, 40, 200), -1)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return data.tobytes()


def wav(seconds: float = 0.5, rate: int = 8000) -> bytes:
    """A short tone as 16-bit PCM WAV (a heart-sound recording stands in)."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (np.sin(2 * np.pi * 440 * t) * 12000).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return out.getvalue()


def pdf() -> bytes:
    """A one-page PDF with a line of text, written by hand (a lab report stands in)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
               None, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    text = b"BT /F1 18 Tf 30 100 Td (Haemoglobin 9.8 g/dL) Tj ET"
    objects[3] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text)
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def attach(spoke, case_id: str, attachment_id: str, data: bytes, *, kind: str, mime: str, label: str,
           chunk: int = 64 * 1024, **fields) -> str:
    """Uploads a file in chunks (resuming at what the hub confirmed) and pushes its attachment record."""
    digest = hashlib.sha256(data).hexdigest()
    offset = spoke.client.media_status(digest, len(data)).received
    while offset < len(data):
        status = spoke.client.media_put(digest, offset, len(data), data[offset:offset + chunk])
        offset = status.received
    assert status.complete
    record = records.attachment(attachment_id, case_id, data, kind=kind, mime=mime, label=label, **fields)
    assert spoke.client.push(spoke.batch([spoke.change("attachment", attachment_id, record)])).accepted
    return digest


def consented(spoke, case_id: str) -> None:
    assert spoke.client.push(spoke.batch([spoke.change("consent", f"cn-{case_id}", records.consent(f"cn-{case_id}",
                                                                                                   case_id))])).accepted


def links(html: str) -> list[str]:
    return re.findall(r'(?:src|href|action)="([^"]*)"', html)


# --- signing in -------------------------------------------------------------------------------------------------
def test_signing_in_sets_a_strict_http_only_cookie_and_a_locked_account_is_told(clinic, hub_server):
    url = hub_server.url
    browser = requests.Session()
    page = browser.get(f"{url}/console/login", timeout=10)
    assert page.status_code == 200 and "Sign in to the hub console" in page.text
    form_token = set_cookies(page)["spoke_hub_login"]
    assert "httponly" in form_token.lower() and "samesite=strict" in form_token.lower()
    right = {"username": "dr.mehta", "password": "mehta-pass-12"}

    forged = browser.post(f"{url}/console/login", data=right, allow_redirects=False, timeout=10)
    assert forged.status_code == 403 and COOKIE not in browser.cookies, "a sign-in form needs its token too"
    wrong = browser.post(f"{url}/console/login", data={**right, "password": "not-the-password",
                                                       "csrf": csrf_of(page.text)}, allow_redirects=False, timeout=10)
    assert wrong.status_code == 401 and "The user name or the password is not right." in wrong.text
    assert 'value="dr.mehta"' in wrong.text and "not-the-password" not in wrong.text

    signed = browser.post(f"{url}/console/login", data={**right, "csrf": csrf_of(page.text),
                                                        "next": "/console/admin"}, allow_redirects=False, timeout=10)
    assert signed.status_code == 303 and signed.headers["location"] == "/console/admin"
    cookie = set_cookies(signed)[COOKIE]
    flags = [f.strip().lower() for f in cookie.split(";")]
    assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
    assert "secure" not in flags, "plain http on loopback: a Secure cookie would never come back"
    assert browser.get(f"{url}/console/", timeout=10).status_code == 200

    assert browser.get(f"{url}/console/login", allow_redirects=False, timeout=10).headers["location"] == "/console/"
    elsewhere = requests.Session()
    offered = elsewhere.get(f"{url}/console/login?next=//evil.example/", timeout=10).text
    assert 'name="next" value="/console/"' in offered
    offsite = elsewhere.post(f"{url}/console/login", data={**right, "csrf": csrf_of(offered),
                                                           "next": "https://evil.example/"}, allow_redirects=False,
                             timeout=10)
    assert offsite.status_code == 303 and offsite.headers["location"] == "/console/", "never sent elsewhere"

    tls = {"X-Forwarded-Proto": "https"}   # a TLS proxy in front (uvicorn trusts it from loopback)
    login = requests.get(f"{url}/console/login", headers=tls, timeout=10)
    form_cookie = set_cookies(login)["spoke_hub_login"]
    assert "secure" in [f.strip().lower() for f in form_cookie.split(";")]
    over_https = requests.post(f"{url}/console/login", data={**right, "csrf": csrf_of(login.text)}, headers=tls,
                               cookies={"spoke_hub_login": form_cookie.split(";")[0].split("=", 1)[1]},
                               allow_redirects=False, timeout=10)
    assert "secure" in [f.strip().lower() for f in set_cookies(over_https)[COOKIE].split(";")], \
        "behind a TLS proxy the cookie is Secure"

    rao = requests.Session()
    token = csrf_of(rao.get(f"{url}/console/login", timeout=10).text)
    for _ in range(5):
        rao.post(f"{url}/console/login", data={"username": "dr.rao", "password": "wrong-password", "csrf": token},
                 timeout=10)
    locked = rao.post(f"{url}/console/login", data={"username": "dr.rao", "password": "rao-pass-1234", "csrf": token},
                      allow_redirects=False, timeout=10)
    assert locked.status_code == 423 and "This account is locked after too many wrong passwords" in locked.text
    assert COOKIE not in rao.cookies


def test_signing_out_ends_the_session(clinic, console):
    mehta = console("dr.mehta", "mehta-pass-12")
    out = mehta.post("/console/logout")
    assert out.status_code == 303 and out.headers["location"] == "/console/login"
    again = mehta.http.get(f"{mehta.url}/console/", cookies={COOKIE: mehta.signed.cookies[COOKIE]},
                           allow_redirects=False, timeout=10)
    assert again.status_code == 303 and again.headers["location"].startswith("/console/login?next=%2Fconsole%2F")


# --- CSRF -------------------------------------------------------------------------------------------------------
def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(clinic, console, facilities, spoke_factory,
                                                                      small_formulary):
    hub, org, _admin, _mehta, _rao = clinic
    queued(spoke_factory(facilities[0]), "c-1", "p-1")
    mehta = console("dr.mehta", "mehta-pass-12")
    forms = [("/console/cases/c-1/take", {}), ("/console/duty", {"on_duty": "1"}),
             ("/console/cases/c-1/ask", {"text": "Is the rash itchy?"}),
             ("/console/cases/c-1/prescribe", {"diagnosis": "Fever", "m0_name": PARACETAMOL, "m0_dose": "1 tablet",
                                               "m0_frequency": "TDS", "m0_duration_days": "3"}),
             ("/console/admin/facilities", {"facility_id": facilities[1]}), ("/console/logout", {})]
    for path, data in forms:
        missing = mehta.post(path, data, csrf=False)
        assert missing.status_code == 403, path
        assert "This form is out of date; reload the page and try again." in missing.text
        forged = mehta.csrf[:-1] + ("x" if mehta.csrf[-1] != "x" else "y")   # one character off, never the same
        assert mehta.post(path, [*data.items(), ("csrf", forged)], csrf=False).status_code == 403, path
        as_json = mehta.http.post(f"{mehta.url}{path}", json={**data, "csrf": mehta.csrf}, allow_redirects=False,
                                  timeout=10)
        assert as_json.status_code == 403, f"{path}: only a form carries the token"
    assert hub.record("case", "c-1").payload["status"] == "queued"
    assert not any(p.on_duty for p in hub.staff(org))
    assert hub.case_view(_mehta, "c-1").questions == [] and hub.case_view(_mehta, "c-1").prescriptions == []
    assert [f for f, *_ in hub.facilities_of(org)] == [facilities[0]]
    assert mehta.get("/console/").status_code == 200, "still signed in: the logout without a token did nothing"

    taken = mehta.post("/console/cases/c-1/take")
    assert taken.status_code == 303 and hub.record("case", "c-1").payload["status"] == "in_consultation"
    assert mehta.post("/console/duty", {"on_duty": "1", "back": "/console/?speciality=Cardiology"}).headers[
        "location"] == "/console/?speciality=Cardiology"
    assert [p.on_duty for p in hub.staff(org) if p.username == "dr.mehta"] == [True]


# --- the pages ------------------------------------------------------------------------------------------------------
def test_the_queue_and_a_case_render_for_a_doctor(clinic, console, facilities, spoke_factory, hub_server):
    hub, _org, _admin, _mehta, _rao = clinic
    pc = spoke_factory(facilities[0])
    queued(pc, "c-calm", "p-1", priority=0, name="Ramesh Kumar")
    queued(pc, "c-red", "p-2", priority=3, speciality="Cardiology", allergies=["Penicillin", "Sulfa drugs"])
    consented(pc, "c-red")
    photo = attach(pc, "c-red", "a-photo", jpeg(), kind="photo", mime="image/jpeg", label="Rash on the forearm",
                   chunk=20_000, width_px=640, height_px=480)
    sound = attach(pc, "c-red", "a-heart", wav(), kind="audio", mime="audio/wav", label="Heart sounds", duration_ms=500)
    report = attach(pc, "c-red", "a-lab", pdf(), kind="document", mime="application/pdf", label="Haemoglobin report")
    script = attach(pc, "c-red", "a-svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
                    kind="photo", mime="image/svg+xml", label="Drawing")
    mehta = console("dr.mehta", "mehta-pass-12")

    page = mehta.get("/console/")
    assert page.status_code == 200 and "<h1>Cases waiting</h1>" in page.text
    assert re.findall(r'data-case="([^"]+)"', page.text) == ["c-red", "c-calm"], "red flags first"
    red_row = page.text.split('data-case="c-red"')[1].split("</tr>")[0]
    assert 'class="level l3">EMERGENCY' in red_row and "HWC Rampur" in red_row and "Cardiology" in red_row
    assert "60 y" in red_row and "Female" in red_row and "Fever" in red_row and "/console/cases/c-red/take" in red_row
    assert 'class="p3"' in page.text.split('data-case="c-red"')[0].rsplit("<tr", 1)[1]
    assert 'data-refresh="25"' in page.text and "console.js" in page.text and 'http-equiv="refresh"' in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert all(link.startswith(("/", "?", "#")) for link in links(page.text)), "nothing from elsewhere"

    table = mehta.get("/console/?part=table&speciality=Paediatrics")
    assert table.text.lstrip().startswith("<table") and "<html" not in table.text
    assert re.findall(r'data-case="([^"]+)"', table.text) == ["c-calm"], "the filter is kept: a case for any doctor"
    assert "No case is waiting." in mehta.get(f"/console/?facility={facilities[1]}").text
    styles = mehta.get(re.search(r'href="(/console/static/console.css\?v=\w+)"', page.text).group(1))
    assert styles.status_code == 200 and styles.headers["content-type"].startswith("text/css")
    assert len(styles.content) < 12_000, "a light page for a slow link"
    assert mehta.get("/console/static/..%2Fconsole.py").status_code == 404

    case = mehta.get("/console/cases/c-red")
    assert case.status_code == 200
    html = case.text
    banner = html.index('id="allergies"')
    assert banner < html.index("<h1>") and "Penicillin, Sulfa drugs" in html[banner:banner + 300]
    assert 'class="allergy"' in html[banner - 40:banner]
    assert "Hypertensive crisis (&gt; 180/120)" in html and 'class="flag s3"' in html and "NEWS2 5" in html
    assert "118 /min" in html, "the pulse of the vitals set"
    assert "01-12-2026 14:00" in html, "08:30 UTC is 14:00 in the hub's local time"
    assert f'<a href="/v1/hub/files/{photo}"' in html and f'<img src="/v1/hub/files/{photo}"' in html
    assert f'<audio controls preload="none" src="/v1/hub/files/{sound}">' in html
    assert f'<iframe src="/v1/hub/files/{report}"' in html
    assert "Kamla Devi" in html and "verbal" in html, "the consent"
    assert script not in html and "Drawing (image/svg+xml): a type the console does not open" in html, \
        "a file that could run a script in the hub's origin is never opened or linked"
    assert 'action="/console/cases/c-red/take"' in html and 'action="/console/cases/c-red/release"' not in html
    assert all(link.startswith(("/", "?", "#")) for link in links(html))
    for digest, mime in ((photo, "image/jpeg"), (sound, "audio/wav"), (report, "application/pdf")):
        served = mehta.get(f"/v1/hub/files/{digest}")
        assert served.status_code == 200 and served.headers["content-type"].startswith(mime)
        assert hashlib.sha256(served.content).hexdigest() == digest

    mehta.post("/console/cases/c-red/take")
    taken = mehta.get("/console/cases/c-red").text
    assert 'action="/console/cases/c-red/release"' in taken and 'action="/console/cases/c-red/ask"' in taken
    assert 'action="/console/cases/c-red/prescribe"' in taken and "m5_name" in taken and "m6_name" not in taken
    assert "m0_allergy_override" in taken, "an allergy recorded: each line can say why it is overridden"
    assert "1-0-1" in taken and "twice a day" in taken, "the frequencies' legend"
    asked = mehta.post("/console/cases/c-red/ask", {"text": "Any chest pain?"})
    assert asked.status_code == 303 and hub.record("case", "c-red").payload["status"] == "info_requested"
    short = mehta.post("/console/cases/c-red/ask", {"text": "?"})
    assert short.status_code == 400 and "Write the question for the spoke" in short.text
    queue = mehta.get("/console/").text.split('data-case="c-red"')[1].split("</tr>")[0]
    assert "Dr Rajesh Mehta" in queue and "Waiting for the spoke&#39;s answer" in queue
    released = mehta.post("/console/cases/c-red/release")
    assert released.status_code == 303 and hub.record("case", "c-red").payload["status"] == "queued"


def test_the_administrators_page(clinic, console, facilities):
    hub, org, _admin, _mehta, _rao = clinic
    doctor = console("dr.mehta", "mehta-pass-12")
    refused = doctor.get("/console/admin")
    assert refused.status_code == 403 and "Only an administrator of this hub may do this." in refused.text
    assert doctor.post("/console/admin/doctors", {"username": "dr.new", "full_name": "Dr New", "password": "x" * 12}
                       ).status_code == 403
    admin = console("admin", "admin-pass-12")
    page = admin.get("/console/admin")
    assert page.status_code == 200 and "Dr Rajesh Mehta" in page.text and "UPMC 45678" in page.text
    assert "HWC Kultali (HWC-WB-0007)" in page.text.split('name="facility_id"')[1], "a facility to assign"

    bad = admin.post("/console/admin/doctors", [("full_name", "Dr Kavita Singh"), ("username", "dr.kavita"),
                                                ("password", "short"), ("qualification", "MBBS"),
                                                ("registration_number", ""), ("specialities", "Dermatology")])
    assert bad.status_code == 400
    assert "at least 10 characters" in bad.text.split('name="password"')[1].split("<label")[0]
    assert 'value="Dr Kavita Singh"' in bad.text and 'value="Dermatology" checked' in bad.text
    assert "short" not in bad.text.split('name="password"')[1].split(">")[0], "a password is never sent back"
    good = admin.post("/console/admin/doctors", [("full_name", "Dr Kavita Singh"), ("username", "dr.kavita"),
                                                 ("password", "kavita-pass-12"), ("qualification", "MBBS, MD"),
                                                 ("registration_number", "UPMC 77001"), ("council", "UPMC"),
                                                 ("specialities", "Dermatology"), ("specialities", "Paediatrics")])
    assert good.status_code == 303
    [kavita] = [p for p in hub.staff(org) if p.username == "dr.kavita"]
    assert kavita.role == "doctor" and kavita.specialities == ("Dermatology", "Paediatrics")
    assert admin.post("/console/admin/facilities", {"facility_id": facilities[1]}).status_code == 303
    assert {f for f, *_ in hub.facilities_of(org)} == set(facilities)
    console("dr.kavita", "kavita-pass-12")


def test_another_hubs_doctor_gets_404_for_a_case(clinic, console, facilities, spoke_factory):
    hub, _org, _admin, _mehta, _rao = clinic
    queued(spoke_factory(facilities[0]), "c-1", "p-1", name="Kamla Devi")
    elsewhere = hub.create_hub("Medical College Lucknow")
    hub.add_staff(None, elsewhere, "dr.x", "Dr X Yadav", "x-password-12", "doctor", qualification="MBBS",
                  registration_number="UPMC 1")
    stranger = console("dr.x", "x-password-12")
    hidden = stranger.get("/console/cases/c-1")
    assert hidden.status_code == 404 and "No such case at this hub." in hidden.text and "Kamla" not in hidden.text
    assert stranger.post("/console/cases/c-1/take").status_code == 404
    assert 'data-case="c-1"' not in stranger.get("/console/").text
    assert hub.record("case", "c-1").payload["status"] == "queued"
    assert console("dr.mehta", "mehta-pass-12").get("/console/cases/c-1").status_code == 200, "the same page at home"


def test_the_console_speaks_hindi(clinic, console, hub_server):
    mehta = console("dr.mehta", "mehta-pass-12")
    english = mehta.get("/console/")
    assert "<h1>Cases waiting</h1>" in english.text and '<html lang="en">' in english.text
    hindi = mehta.get("/console/?lang=hi")
    assert '<html lang="hi">' in hindi.text and "<h1>प्रतीक्षा में केस</h1>" in hindi.text
    assert "लॉग आउट" in hindi.text or "साइन आउट" in hindi.text
    assert "spoke_hub_lang=hi" in set_cookies(hindi).get("spoke_hub_lang", "")
    assert "<h1>प्रतीक्षा में केस</h1>" in mehta.get("/console/").text, "the choice is kept in a cookie"
    assert "<h1>Cases waiting</h1>" in mehta.get("/console/?lang=en").text
    by_browser = requests.get(f"{hub_server.url}/console/login", headers={"Accept-Language": "hi-IN,hi;q=0.9,en;q=0.5"},
                              timeout=10)
    assert "हब कंसोल में साइन इन करें" in by_browser.text
    assert "Sign in to the hub console" in requests.get(f"{hub_server.url}/console/login", headers={
        "Accept-Language": "ta-IN,fr;q=0.8"}, timeout=10).text, "an unknown language: English"


# --- the prescription form without JavaScript ---------------------------------------------------------------------
def test_a_refused_prescription_comes_back_as_typed_and_a_correction_replaces_it(clinic, console, facilities,
                                                                                 spoke_factory, small_formulary):
    hub, _org, _admin, mehta_staff, _rao = clinic
    queued(spoke_factory(facilities[0]), "c-1", "p-1")
    mehta = console("dr.mehta", "mehta-pass-12")
    assert mehta.post("/console/cases/c-1/take").status_code == 303
    lines = {"diagnosis": "Hypertensive urgency", "icd10_code": "I10",
             "m0_name": MORPHINE, "m0_dose": "1 tablet", "m0_frequency": "BD", "m0_duration_days": "3",
             "m2_name": CLOPIDOGREL, "m2_dose": "1 tablet", "m2_frequency": "OD", "m2_duration_days": "30",
             "m2_instructions": "after food", "advice": "Low salt diet"}
    refused = mehta.post("/console/cases/c-1/prescribe", lines)
    assert refused.status_code == 400
    html = refused.text
    morphine = re.search(r'id="m0-problems">(.*?)</td>', html, re.S).group(1)
    clopidogrel = re.search(r'id="m2-problems">(.*?)</td>', html, re.S).group(1)
    assert "Morphine may not be prescribed by telemedicine" in morphine and "Clopidogrel" not in morphine
    assert "Clopidogrel is on list B: it may be added only on a follow-up consultation." in clopidogrel
    assert 'id="m1-problems"' not in html, "the empty line between them has nothing to say"
    assert f'value="{MORPHINE}"' in html and f'value="{CLOPIDOGREL}"' in html and 'value="Low salt diet"' not in html
    assert ">Low salt diet</textarea>" in html and '<option value="after food" selected>' in html
    assert hub.case_view(mehta_staff, "c-1").prescriptions == []

    empty = mehta.post("/console/cases/c-1/prescribe", {"m0_name": PARACETAMOL, "m0_dose": "1 tablet",
                                                        "m0_frequency": "TDS", "m0_duration_days": "three"})
    assert empty.status_code == 400 and "The duration is a number of days." in empty.text

    issued = mehta.post("/console/cases/c-1/prescribe", {**lines, "m0_name": PARACETAMOL, "m0_frequency": "1-0-1",
                                                         "m2_name": "", "m2_dose": "", "m2_frequency": "",
                                                         "m2_duration_days": "", "investigations": "CBC\n\nECG"})
    assert issued.status_code == 303 and issued.headers["location"].endswith("?done=issued#prescriptions")
    [first] = hub.case_view(mehta_staff, "c-1").prescriptions
    assert first["medicines"][0]["formulary_id"] == "1:Tablet:500 mg", "the line's label picks the formulary item"
    assert first["medicines"][0]["quantity"] == "6 tablets" and first["investigations"] == ["CBC", "ECG"]
    page = mehta.get("/console/cases/c-1?done=issued").text
    assert "The prescription was issued and signed" in page and "PARACETAMOL" in page
    assert 'action="/console/cases/c-1/prescribe"' not in page, "one issued prescription: correct it, or cancel it"

    correcting = mehta.get(f"/console/cases/c-1?correct={first['id']}").text
    assert f'name="replaces" value="{first["id"]}"' in correcting and f'value="{PARACETAMOL}"' in correcting
    typed = {"diagnosis": "Hypertensive urgency", "icd10_code": "I10", "replaces": first["id"],
             "m0_name": "Paracetamol", "m0_dose": "1 tablet", "m0_frequency": "TDS", "m0_duration_days": "5"}
    no_reason = mehta.post("/console/cases/c-1/prescribe", typed)
    assert no_reason.status_code == 400 and "Say why the earlier prescription is corrected." in no_reason.text
    corrected = mehta.post("/console/cases/c-1/prescribe", {**typed, "correction_reason": "Five days, not three"})
    assert corrected.status_code == 303
    old, new = hub.case_view(mehta_staff, "c-1").prescriptions
    assert (old["id"], old["status"], old["cancelled_reason"]) == (first["id"], "cancelled", "Five days, not three")
    assert new["replaces_id"] == first["id"] and new["status"] == "issued"
    assert new["medicines"][0]["name"] == "PARACETAMOL" and new["medicines"][0]["tpg_list"] == "O", \
        "a typed name (no script) is looked up in the formulary"

    short = mehta.post(f"/console/cases/c-1/prescriptions/{new['id']}/cancel", {"reason": "x"})
    assert short.status_code == 400 and "Say why the prescription is cancelled." in short.text
    cancelled = mehta.post(f"/console/cases/c-1/prescriptions/{new['id']}/cancel", {"reason": "Patient referred"})
    assert cancelled.status_code == 303
    assert [p["status"] for p in hub.case_view(mehta_staff, "c-1").prescriptions] == ["cancelled", "cancelled"]
    assert 'action="/console/cases/c-1/prescribe"' in mehta.get("/console/cases/c-1").text, "none issued: a new one"

    pc = spoke_factory(facilities[0])
    assert pc.client.push(pc.batch([pc.change("case", "c-2", records.case("c-2", "p-1"))])).accepted  # she comes back
    again = mehta.get("/console/cases/c-2").text
    earlier = again.split('id="earlier"')[1].split("</section>")[0]
    assert "Earlier consultations at this hub" in again and earlier.count("PARACETAMOL") == 2
    assert mehta.post("/console/cases/c-1/prescribe", {**typed, "replaces": ""}).status_code == 303
    [standing] = [p for p in hub.case_view(mehta_staff, "c-1").prescriptions if p["status"] == "issued"]
    forged = mehta.post("/console/cases/c-2/prescribe", {**typed, "replaces": standing["id"],
                                                         "correction_reason": "Another case's"})
    assert forged.status_code == 409 and "This prescription cannot be corrected here." in forged.text
    assert hub.case_view(mehta_staff, "c-2").prescriptions == []
    assert hub.record("prescription", standing["id"]).payload["status"] == "issued", "and nothing was cancelled"


@pytest.mark.parametrize("header, expected", [("hi-IN,hi;q=0.9,en;q=0.8", ["hi", "hi", "en"]),
                                              ("en;q=0.2, hi", ["hi", "en"]), ("*;q=0, fr;q=bad", [])])
def test_accept_language_is_read_by_weight(header, expected):
    from sync.hub.console import accepted

    assert accepted(header) == expected
