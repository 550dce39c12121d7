"""The doctor's whole consultation in a real browser: Playwright drives Debian's chromium (never a downloaded one)
against a real hub on 127.0.0.1. A spoke sends a red-flag case with a photo and an allergy, and a calmer one; the
doctor signs in, takes the red-flag case, asks the spoke, gets the answer, is refused a prohibited and a list-B
medicine, issues a valid prescription, and the spoke pulls it with a signature that verifies. The red-flag case is
the real Spoke's (its services on a SQLite file, enrolled at the hub, syncing with the real engine). The browser may fetch
nothing from anywhere but the hub."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from spoke_client.domain.model import AttachmentKind, CaseStatus
from sync import prescriptions
from sync.hub import console as console_module
from tests.hub.test_console import jpeg
from tests.sync import records
from tests.sync.conftest import spoke  # noqa: F401  (the real Spoke: its services on a SQLite file)
from tests.sync.test_consultation_sync import enrolled, queued_case, synced

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
REFRESH_S = 2   # the queue's table refreshes this often here (25 s in use), so the test sees it happen


def launched_chromium(flags: list[str]):
    """Debian's chromium through Playwright (never a downloaded browser), closed at the end."""
    if not shutil.which(CHROMIUM):
        pytest.fail("Debian's chromium is missing: apt-get install chromium (Playwright must not download one)")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=flags, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def chromium():
    yield from launched_chromium(FLAGS)


class Browser:
    """One browser context at the hub's size of screen, that lets through only requests to 127.0.0.1 and keeps
    what else was attempted, every script error the pages reported, and every answer of 400 or more."""

    def __init__(self, chromium) -> None:
        self.context = chromium.new_context(viewport={"width": 1366, "height": 768}, locale="en-GB",
                                            timezone_id="Asia/Kolkata", service_workers="block")
        self.outside: list[str] = []
        self.requested: list[str] = []
        self.problems: list[str] = []
        self.refused: list[tuple[str, str, int]] = []
        self.context.route("**/*", self._guard)
        self.page = self.new_page()

    def _guard(self, route) -> None:
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1":
            self.requested.append(url)
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def new_page(self):
        page = self.context.new_page()
        page.on("pageerror", lambda e: self.problems.append(f"script error: {e}"))
        page.on("console", self._console)
        page.on("response", lambda r: self.refused.append((r.request.method, urlsplit(r.url).path, r.status))
                if r.status >= 400 else None)
        return page

    def _console(self, message) -> None:
        # A 4xx answer is logged as "Failed to load resource"; those are counted, exactly, in `refused`.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(f"console: {message.text}")

    def shot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"hub-console-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000
        return path


@pytest.fixture
def browser(chromium):
    b = Browser(chromium)
    yield b
    b.context.close()


def calm_case(spoke, case_id: str, patient_id: str) -> None:
    """A case whose vitals the spoke found normal."""
    changes = [spoke.change("patient", patient_id, records.patient(patient_id, name="Ramesh Kumar", sex="male",
                                                                   birth_date="1994-03-10")),
               spoke.change("case", case_id, records.case(case_id, patient_id, complaints=["Cough"], priority=0)),
               spoke.change("vitals", f"v-{case_id}", records.vitals(f"v-{case_id}", case_id, pulse_per_min=76,
                                                                     temperature_c=37.1) | {
                   "assessment": {"level": 0, "news2": 0, "flags": []}})]
    assert len(spoke.client.push(spoke.batch(changes)).accepted) == 3


def pick(page, line: str, typed: str, containing: str) -> str:
    """Types into a picker field, waits for the hub's search to fill its list, and picks the option holding
    `containing` (a datalist's choice, as the doctor's click would make it)."""
    field = page.locator(f'input[name="{line}"]')
    list_id = field.get_attribute("list")
    field.fill(typed)
    page.wait_for_function("([id, c]) => Array.from(document.querySelectorAll('#' + id + ' option'))"
                           ".some(o => o.value.includes(c))", arg=[list_id, containing], timeout=10_000)
    value = page.eval_on_selector_all(f"#{list_id} option", "(os, c) => os.map(o => o.value).find(v => v.includes(c))",
                                      containing)
    field.fill(value)
    return value


def medicine_line(page, i: int, typed: str, containing: str, dose: str, frequency: str, days: str) -> str:
    label = pick(page, f"m{i}_name", typed, containing)
    page.fill(f'input[name="m{i}_dose"]', dose)
    page.fill(f'input[name="m{i}_frequency"]', frequency)
    page.fill(f'input[name="m{i}_duration_days"]', days)
    return label


def test_a_whole_consultation_in_the_browser(clinic, facilities, spoke_factory, spoke, small_formulary, hub_server,
                                            browser, monkeypatch):
    from playwright.sync_api import expect

    monkeypatch.setattr(console_module, "REFRESH_SECONDS", REFRESH_S)
    hub, _org, _admin, mehta, _rao = clinic
    url = hub_server.url
    calm_case(spoke_factory(facilities[0]), "c-calm", "p-calm")
    # The real Spoke: Kamla Devi (allergic to penicillin and sulfa drugs), BP 186/122, a photo, sent to cardiology.
    pc, pc_admin, pc_paths = enrolled(spoke, hub, hub_server, facilities[0], "pc1")
    _kamla, case = queued_case(pc, pc_admin, speciality="Cardiology")
    red_id = case.id
    photo = pc.attachments.attach(pc_admin, red_id, AttachmentKind.PHOTO, jpeg(800, 600), "image/jpeg",
                                  "Rash on the forearm", width_px=800, height_px=600).sha256
    synced(pc, pc_paths)
    page = browser.page

    # --- signing in ---------------------------------------------------------------------------------------------
    page.goto(f"{url}/console/login")
    expect(page.locator("h1")).to_have_text("Sign in to the hub console")
    browser.shot("login")
    page.fill('input[name="username"]', "dr.mehta")
    page.fill('input[name="password"]', "mehta-pass-12")
    page.click('button[type="submit"]')
    expect(page.locator("h1")).to_have_text("Cases waiting")

    # --- the queue: red flags first -----------------------------------------------------------------------------
    rows = page.locator("table.queue tbody tr")
    expect(rows).to_have_count(2)
    assert rows.nth(0).get_attribute("data-case") == red_id and rows.nth(1).get_attribute("data-case") == "c-calm"
    expect(rows.nth(0).locator(".level")).to_have_text("EMERGENCY")
    assert rows.nth(0).evaluate("r => getComputedStyle(r).backgroundColor") == "rgb(253, 227, 227)", "a red row"
    assert rows.nth(1).evaluate("r => getComputedStyle(r).backgroundColor") != "rgb(253, 227, 227)"
    expect(rows.nth(0)).to_contain_text("HWC Rampur")
    browser.shot("queue")

    # --- the case: the allergy first, the red flags, the photo at full size --------------------------------------
    rows.nth(0).locator("a").first.click()
    banner = page.locator("#allergies")
    expect(banner).to_be_visible()
    assert "PENICILLIN" in banner.inner_text().upper() and "SULFA DRUGS" in banner.inner_text().upper()
    assert banner.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(198, 40, 40)"
    assert banner.bounding_box()["y"] < page.locator("h1").bounding_box()["y"] < 200, "above everything else"
    # The spoke's own words for its red flags, shown as they were assessed there (the hub never assesses again).
    [recorded] = pc.cases.get(red_id).vitals
    crisis = next(f["message"] for f in recorded.assessment["flags"] if f["severity"] == 3)
    assert crisis.startswith("Hypertensive crisis: BP 186/122")
    expect(page.locator("#vitals .flag.s3")).to_have_text(crisis)
    thumb = page.locator(f'#media img[src="/v1/hub/files/{photo}"]')
    thumb.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    browser.shot("case")
    with browser.context.expect_page() as opened:
        thumb.click()
    full = opened.value
    full.wait_for_load_state()
    assert full.url == f"{url}/v1/hub/files/{photo}"
    assert full.evaluate("() => document.images[0].naturalWidth") == 800, "the photo at full size"
    full.close()

    # --- take it, ask the spoke --------------------------------------------------------------------------------
    page.click("#take")
    expect(page.locator("#release")).to_be_visible()
    expect(page.locator(".bar .status")).to_contain_text("taken by Dr Rajesh Mehta")
    page.fill('#ask textarea[name="text"]', "Any chest pain? Please send the ECG.")
    page.click('#ask button[type="submit"]')
    expect(page.locator("#notice")).to_have_text("Your question was sent to the spoke.")
    assert hub.record("case", red_id).payload["status"] == "info_requested"

    page.goto(f"{url}/console/?speciality=Cardiology")
    red = page.locator(f'tr[data-case="{red_id}"]')
    expect(red).to_contain_text("Waiting for the spoke's answer")
    expect(red.locator("button")).to_have_count(0)

    # --- the spoke answers: the case comes back into the queue, on the page's own refresh --------------------------
    synced(pc, pc_paths)
    assert pc.cases.get(red_id).status == CaseStatus.INFO_REQUESTED
    [question] = pc.consultation.questions(red_id)
    assert question.text == "Any chest pain? Please send the ECG." and question.waiting
    pc.cases.answer(pc_admin, question.id, "No chest pain; ECG attached.")
    synced(pc, pc_paths)
    expect(red.locator("button")).to_have_text("Take", timeout=(REFRESH_S + 8) * 1000)
    refreshes = [u for u in browser.requested if "part=table" in u]
    assert refreshes and all("speciality=Cardiology" in u for u in refreshes), "the refresh keeps the filter"
    red.locator("button").click()
    expect(page.locator("#questions .answer")).to_contain_text("No chest pain; ECG attached.")

    # --- prescribing from the formulary: refused, then issued -------------------------------------------------------
    pick(page, "icd10_code", "I10", "I10")
    page.fill('input[name="diagnosis"]', "Hypertensive urgency")
    morphine = medicine_line(page, 0, "Morph", "Morphine", "1 tablet", "BD", "3")
    clopidogrel = medicine_line(page, 1, "Clopi", "Clopidogrel", "1 tablet", "OD", "30")
    page.click("#issue")
    expect(page.locator("#rx-refused")).to_be_visible()
    expect(page.locator("#m0-problems")).to_contain_text(
        "Morphine may not be prescribed by telemedicine (Telemedicine Practice Guidelines 2020: prohibited list).")
    expect(page.locator("#m1-problems")).to_contain_text(
        "Clopidogrel is on list B: it may be added only on a follow-up consultation.")
    assert "Clopidogrel" not in page.locator("#m0-problems").inner_text()
    expect(page.locator('input[name="m0_name"]')).to_have_value(morphine)
    expect(page.locator('input[name="m1_name"]')).to_have_value(clopidogrel)
    expect(page.locator('input[name="diagnosis"]')).to_have_value("Hypertensive urgency")
    page.locator("#m0-problems").scroll_into_view_if_needed()
    browser.shot("refused")
    assert hub.case_view(mehta, red_id).prescriptions == []

    paracetamol = medicine_line(page, 0, "Parac", "Tablet 500 mg", "1 tablet", "TDS", "5")
    page.select_option('select[name="m0_instructions"]', "after food")
    for name in ("m1_name", "m1_dose", "m1_frequency", "m1_duration_days"):
        page.fill(f'input[name="{name}"]', "")
    page.fill('textarea[name="advice"]', "Low-salt diet; check the BP daily.")
    page.click("#issue")
    expect(page.locator("#notice")).to_have_text("The prescription was issued and signed; it goes to the spoke.")
    issued = page.locator("article.rx.issued")
    expect(issued).to_contain_text("PARACETAMOL")
    expect(issued).to_contain_text("15 tablets")
    assert paracetamol == "Paracetamol — Tablet 500 mg"
    issued.scroll_into_view_if_needed()
    browser.shot("prescription")

    # --- the spoke pulls it and shows it checked with the key it learnt at enrolment; the published key agrees -----
    synced(pc, pc_paths)
    assert pc.cases.get(red_id).status == CaseStatus.PRESCRIBED
    [rx] = pc.consultation.prescriptions(red_id)
    assert rx.signature_ok and rx.prescriber.registration_number == "UPMC 45678"
    [medicine] = rx.medicines
    assert (medicine.name, medicine.formulary_id, medicine.frequency, medicine.instructions) == \
        ("PARACETAMOL", "1:Tablet:500 mg", "TDS", "after food")
    assert rx.allergies_noted == ("Penicillin", "sulfa drugs") and rx.icd10_code == "I10"
    assert [s.prescription_id for s in pc.consultation.received()] == [rx.id], "on the home page's list"
    key = requests.get(f"{url}/v1/hub/key", timeout=10).json()["key"]
    assert key == pc.store.get_setting("hub_public_key")
    [pulled] = [c for c in spoke_factory(facilities[0]).client.pull(0).changes if c.entity == "prescription"]
    prescriptions.verify(pulled.payload, key)
    with pytest.raises(prescriptions.SignatureInvalid):
        prescriptions.verify({**pulled.payload, "advice": "Double the dose."}, key)

    # --- the administrator's page --------------------------------------------------------------------------------
    page.click('header form[action="/console/logout"] button')
    expect(page.locator("h1")).to_have_text("Sign in to the hub console")
    page.fill('input[name="username"]', "admin")
    page.fill('input[name="password"]', "admin-pass-12")
    page.click('button[type="submit"]')
    page.click('nav a[href="/console/admin"]')
    expect(page.locator("#people")).to_contain_text("Dr Rajesh Mehta")
    form = page.locator("#add-doctor form")
    form.locator('input[name="full_name"]').fill("Dr Kavita Singh")
    form.locator('input[name="username"]').fill("dr.kavita")
    form.locator('input[name="password"]').fill("kavita-pass-12")
    form.locator('input[name="qualification"]').fill("MBBS, MD")
    form.locator('input[name="registration_number"]').fill("UPMC 77001")
    form.locator('input[value="Dermatology"]').check()
    form.locator('button[type="submit"]').click()
    expect(page.locator("#notice")).to_have_text("The doctor was added; they can sign in now.")
    expect(page.locator("#people")).to_contain_text("Dr Kavita Singh")
    browser.shot("admin")
    page.goto(f"{url}/console/?lang=hi")
    expect(page.locator("h1")).to_have_text("प्रतीक्षा में केस")
    browser.shot("queue-hindi")

    assert browser.outside == [], f"the browser tried to reach beyond the hub: {browser.outside}"
    assert browser.problems == [], browser.problems
    assert browser.refused == [("POST", f"/console/cases/{red_id}/prescribe", 400)], "only the refused prescription"


def test_the_pickers_search_what_was_typed_before_the_script_ran_and_ask_again_after_a_failure(
        clinic, hub_server, browser):
    """On a slow page the doctor may type before the console's script has run: the script searches for what is
    already in the field. A search the hub failed to answer is asked again at the next keystroke, not given up."""
    from playwright.sync_api import expect

    page = browser.page
    page.goto(f"{hub_server.url}/console/login")
    page.fill('input[name="username"]', "dr.mehta")
    page.fill('input[name="password"]', "mehta-pass-12")
    page.click('button[type="submit"]')
    expect(page.locator("h1")).to_have_text("Cases waiting")
    failures = [1]

    def hub_search(route) -> None:
        if failures:
            failures.pop()
            route.fulfill(status=503, body="busy")
        else:
            route.continue_()

    page.route("**/v1/hub/icd10?*", hub_search)
    # The prescription form's field as the hub writes it, already typed into, and only then the script.
    page.set_content('<input name="icd10_code" value="I10" list="icd10-list" data-search="/v1/hub/icd10?q=" '
                     'data-kind="icd10"><datalist id="icd10-list"></datalist>')
    page.add_script_tag(url=console_module.static_url("console.js"))
    options = page.locator("#icd10-list option")
    for _ in range(100):                                # the route's handler runs while Playwright waits
        if not failures:
            break
        page.wait_for_timeout(100)
    assert not failures, "what was typed before the script ran was searched for"
    expect(options).to_have_count(0)                   # and that first search failed (503)
    page.locator('input[name="icd10_code"]').fill("I10")    # the same words again: asked again
    expect(options.first).to_have_attribute("value", "I10")
    assert ("GET", "/v1/hub/icd10", 503) in browser.refused
