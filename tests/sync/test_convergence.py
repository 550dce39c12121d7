"""Property: any interleaving of edits on two spoke PCs of one facility and at the hub, lost answers, cut
requests, the hub process killed (between requests, while a batch arrives, after it committed) and retries
converges: both PCs and the hub hold the same patients, cases, vitals, consents and files, with every change
exactly once. hypothesis drives two real spokes, a real hub process and a faulty real link.

The suite runs the "convergence" profile (ten examples and the explicit ones, about 20 s);
SPOKE_CONVERGENCE_PROFILE=convergence-nightly runs 300 with longer sequences, SPOKE_CONVERGENCE_EXAMPLES=N sets
the count (bench/convergence_nightly.py does both and prints which steps and faults the run covered).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from spoke_client.db.models import AttachmentRow, CaseRow, ConsentRow, PatientRow, VitalsRow
from spoke_client.domain.errors import SpokeError
from spoke_client.domain.model import AttachmentKind, CaseStatus, ConsentGiver, ConsentMethod
from spoke_client.domain.vitals import Vitals
from spoke_client.paths import DataPaths
from spoke_client.services.auth import FacilityForm
from spoke_client.services.cases import CaseForm, latest_vitals
from spoke_client.services.patients import PatientForm
from spoke_client.services.runtime import open_services
from spoke_client.services.sync_local import LocalSync, enroll, sync_once
from sync.hub.models import HubRecord
from sync.hub.service import HubError
from sync.payloads import VitalsValues
from tests.sync.faults import KILLS, FaultyProxy
from tests.sync.hub_process import HubProcess
from tests.sync.ledger import acknowledged_here, assert_pulled_exactly_once, assert_pushed_exactly_once

settings.register_profile("convergence", max_examples=10, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("convergence-nightly", settings.get_profile("convergence"), max_examples=300)
PROFILE = os.environ.get("SPOKE_CONVERGENCE_PROFILE", "convergence")
NIGHTLY = PROFILE != "convergence"
_examples = os.environ.get("SPOKE_CONVERGENCE_EXAMPLES")
CHOSEN = settings(settings.get_profile(PROFILE), **({"max_examples": int(_examples)} if _examples else {}))

NAMES = (["Kamla Devi", "Ravi Kumar", "Sunita Yadav", "Mohammed Rafiq", "Lakshmi Bai", "Ganesan S"],
         ["Geeta Kumari", "Pooja Verma", "Anil Singh", "Fatima Begum", "Ramesh Yadav", "Meena Kumari"])
SYNC_MODES = ["pass", "pass", "lose_answer", "cut_request", "kill_mid_body", "kill_after_answer"]

pc = st.integers(0, 1)
index = st.integers(0, 5)
phone = st.integers(6_000_000_000, 9_999_999_999)
pulse = st.integers(40, 180)
register = st.tuples(st.just("register"), pc)
restart_first = st.sampled_from([True, True, True, False])   # a dead hub is mostly started again before a sync
sync = st.tuples(st.just("sync"), pc, st.sampled_from(SYNC_MODES), restart_first)
ops = st.lists(st.one_of(
    register, register, register, sync, sync, sync,     # weights: enough patients, and syncs between the edits
    st.tuples(st.just("edit"), pc, index, st.text("abcdefgh ", min_size=1, max_size=12)),
    st.tuples(st.just("vitals"), pc, index, pulse, st.booleans()),      # True: with the editor's Save
    st.tuples(st.just("correct"), pc, index, pulse),
    st.tuples(st.just("consent"), pc, index, st.sampled_from(list(ConsentMethod))),
    st.tuples(st.just("queue"), pc, index),
    st.tuples(st.just("cancel"), pc, index),
    st.tuples(st.just("close"), pc, index),
    st.tuples(st.just("hub"), index, st.sampled_from(["in_consultation", "prescribed"])),
    st.tuples(st.just("phone"), pc, index, phone),                     # any patient that PC holds
    st.tuples(st.just("hub_patient"), index, st.sampled_from(["Rampur", "Sitapur", "Kultali"]), phone),
    st.tuples(st.just("attach"), pc, index, st.binary(min_size=1, max_size=200_000)),
    st.tuples(st.just("kill"),),
), min_size=12 if NIGHTLY else 8, max_size=40 if NIGHTLY else 25)


@pytest.fixture(scope="module")
def hub_process(tmp_path_factory):
    """One hub process for all examples (each example is a new facility): starting one costs about a second."""
    folder = tmp_path_factory.mktemp("convergence-hub")
    process = HubProcess(f"sqlite:///{folder / 'hub.sqlite'}", folder).start()
    admin = process.admin()
    yield process, admin
    process.stop()
    admin.engine.dispose()


class PC:
    def __init__(self, folder: Path, n: int, hwc: str) -> None:
        self.n = n
        self.services = open_services(DataPaths(folder / f"pc{n}"))
        _f, self.admin = self.services.auth.setup(FacilityForm("HWC Rampur", hwc, "Sitapur", "UP"), "admin", "Asha",
                                                  "pass-word-1")
        self.cases: list[str] = []      # the cases this PC opened (only it edits them)
        self.patients: list[str] = []   # their patients

    def sync(self, verify: bool | None = None):
        return sync_once(self.services.store, self.services.paths, verify=verify)


class Facility:
    """Two PCs of one facility, a hub process behind a faulty link, and the steps between them."""

    def __init__(self, process: HubProcess, hub) -> None:
        self.process, self.hub = process, hub
        self.tmp = Path(tempfile.mkdtemp(prefix="spoke-prop-"))
        hwc = f"HWC-{uuid.uuid4().hex[:8]}"
        self.facility = hub.create_facility("HWC Rampur", hwc)
        self.proxy = FaultyProxy(process.port)
        self.pcs: list[PC] = []
        for n in (0, 1):
            p = PC(self.tmp, n, hwc)
            self.pcs.append(p)
            enroll(p.services.store, p.services.paths, self.proxy.url, hub.enroll_code(self.facility), f"PC-{n + 1}")
        self.notes = 0

    def close(self) -> None:
        for p in self.pcs:
            p.services.close()
        self.proxy.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- the steps ----------------------------------------------------------------------------------
    def all_cases(self) -> list[str]:
        return self.pcs[0].cases + self.pcs[1].cases

    def all_patients(self) -> list[str]:
        return self.pcs[0].patients + self.pcs[1].patients

    def run(self, step: tuple) -> None:
        kind = step[0]
        try:
            done = getattr(self, f"_{kind}")(*step[1:])
        except (SpokeError, HubError):
            event(f"{kind}: refused by the rules")   # not editable, wrong state, not at the hub yet
            return
        event(f"{kind}: " + (done or "done"))

    def _own_case(self, n: int, i: int) -> tuple[PC, str]:
        p = self.pcs[n]
        if not p.cases:
            raise _Nothing()
        return p, p.cases[i % len(p.cases)]

    def _register(self, n: int):
        p = self.pcs[n]
        if len(p.cases) >= len(NAMES[n]):
            return "enough patients"
        s = p.services
        patient = s.patients.register(p.admin, PatientForm(name=NAMES[n][len(p.cases)], sex="female", age_years=40),
                                      confirmed_new=True)
        case = s.cases.open_case(p.admin, patient.id)
        s.cases.save(p.admin, case.id, CaseForm(complaints=("Fever",)))
        p.cases.append(case.id)
        p.patients.append(patient.id)
        return f"on PC-{n + 1}"

    def _edit(self, n: int, i: int, text: str):
        p, case_id = self._own_case(n, i)
        p.services.cases.save(p.admin, case_id, CaseForm(complaints=("Fever",), complaint_text=text))

    def _vitals(self, n: int, i: int, pulse_per_min: int, with_save: bool):
        p, case_id = self._own_case(n, i)
        if with_save:
            case = p.services.cases.get(case_id)
            p.services.cases.save(p.admin, case_id, CaseForm(complaints=case.complaints or ("Fever",),
                                                             complaint_text=case.complaint_text),
                                  vitals=Vitals(pulse_per_min=pulse_per_min))
            return "with the case's Save"
        p.services.cases.record_vitals(p.admin, case_id, Vitals(pulse_per_min=pulse_per_min))
        return "on their own"

    def _correct(self, n: int, i: int, pulse_per_min: int):
        p, case_id = self._own_case(n, i)
        latest = latest_vitals(p.services.cases.get(case_id))
        if latest is None:
            return "no vitals to correct"
        p.services.cases.correct_vitals(p.admin, latest.id, Vitals(pulse_per_min=pulse_per_min))

    def _consent(self, n: int, i: int, method: ConsentMethod):
        p, case_id = self._own_case(n, i)
        p.services.cases.record_consent(p.admin, case_id, ConsentGiver.PATIENT, "Patient", method)

    def _queue(self, n: int, i: int):
        p, case_id = self._own_case(n, i)
        s = p.services
        s.cases.record_consent(p.admin, case_id, ConsentGiver.PATIENT, "Patient", ConsentMethod.VERBAL)
        s.cases.transition(p.admin, case_id, CaseStatus.READY)
        s.cases.transition(p.admin, case_id, CaseStatus.QUEUED)

    def _cancel(self, n: int, i: int):
        p, case_id = self._own_case(n, i)
        p.services.cases.transition(p.admin, case_id, CaseStatus.CANCELLED)

    def _close(self, n: int, i: int):
        p, case_id = self._own_case(n, i)
        p.services.cases.transition(p.admin, case_id, CaseStatus.CLOSED)

    def _attach(self, n: int, i: int, data: bytes):
        p, case_id = self._own_case(n, i)
        p.services.attachments.attach(p.admin, case_id, AttachmentKind.PHOTO, data, "image/jpeg", "photo")

    def _hub(self, i: int, status: str):
        cases = self.all_cases()
        if not cases:
            raise _Nothing()
        self.notes += 1
        self.hub.update_case(cases[i % len(cases)], {"status": status, "doctor_note": f"note {self.notes}"})
        return "while the hub process is down" if not self.process.alive else "done"

    def _phone(self, n: int, i: int, number: int):
        p = self.pcs[n]
        with p.services.store.read() as s:
            here = set(s.scalars(select(PatientRow.id)))
        known = [x for x in p.patients + self.pcs[1 - n].patients if x in here]   # its own, then pulled ones
        if not known:
            raise _Nothing()
        patient_id = known[i % len(known)]
        old = p.services.patients.get(p.admin, patient_id, audit_view=False)
        form = PatientForm(name=old.name, sex="female", age_years=40, village=old.village, phone=str(number))
        p.services.patients.update(p.admin, patient_id, form, old.version)
        return "the other PC's patient" if patient_id not in p.patients else "its own patient"

    def _hub_patient(self, i: int, village: str, number: int):
        patients = self.all_patients()
        if not patients:
            raise _Nothing()
        self.hub.update_patient(patients[i % len(patients)], {"village": village, "phone": str(number)})

    def _kill(self):
        if not self.process.alive:
            return "the hub was down already"
        self.process.kill()
        self.process.wait_dead()
        return "the hub killed between requests"

    def _sync(self, n: int, mode: str, restart_first: bool):
        p = self.pcs[n]
        if not self.process.alive:
            if not restart_first:
                waiting, acked = LocalSync(p.services.store).pending(), acknowledged_here(p.services)
                report = p.sync()
                assert report.error_kind == "unreachable" and report.pending == waiting, report
                assert acknowledged_here(p.services) == acked, "nothing is marked sent without an answer"
                return "while the hub is down"
            self.process.start()
            event("the hub restarted on the same database")
        if mode in KILLS:
            self.proxy.arm(mode, self.process.kill)
            report = p.sync()
            self.proxy.disarm()
            if not self.proxy.fired:
                assert report.error is None, report
                return f"{mode}, but nothing was pushed (no kill)"
            self.proxy.fired.clear()
            self.process.wait_dead()
            assert report.error_kind == "unreachable", report
            return f"{mode}: the hub killed"
        self.proxy.mode = mode
        try:
            report = p.sync()
        finally:
            self.proxy.mode = "pass"
        if mode == "pass":
            assert report.ok, (report.error_kind, report.error, report.files_refused, report.quarantine_reasons, report)
            if report.pulled:
                event("sync: pulled changes another PC or the hub made")
            if report.resynced:
                event(f"sync: the divergence check resynced ({report.resynced})")
        return mode

    # --- the end ------------------------------------------------------------------------------------
    def settle(self) -> None:
        if not self.process.alive:
            self.process.start()
        self.proxy.mode = "pass"
        for n in (0, 1, 0):     # each sends all it has; then the first fetches what the second sent
            report = self.pcs[n].sync()
            assert report.ok, (report.error_kind, report.error, report.files_refused, report.quarantine_reasons, report,
                               self.process.alive, [(x.path, x.mode, x.forwarded, len(x.request), len(x.answer),
                                                     x.answer_started) for x in self.proxy.exchanges[-6:]])
        for p in self.pcs:
            report = p.sync(verify=True)
            assert report.ok and report.checked and report.resynced == "", report

    def check(self) -> None:
        """Nothing lost, nothing doubled; both PCs and the hub agree on every record."""
        hub = self.hub
        for p in self.pcs:
            assert LocalSync(p.services.store).pending() == 0
            assert LocalSync(p.services.store).refused() == [], "the hub refused nothing"
            assert_pushed_exactly_once(p.services, hub)
            assert_pulled_exactly_once(p.services, hub)
        for patient_id in self.all_patients():
            at_hub = hub.record("patient", patient_id).payload
            for p in self.pcs:
                local = p.services.patients.get(p.admin, patient_id, audit_view=False)
                assert (local.name, local.phone, local.village) == (
                    at_hub["name"], at_hub["phone"], at_hub["village"]), (p.n, patient_id)
        for case_id in self.all_cases():
            at_hub = hub.record("case", case_id).payload
            for p in self.pcs:
                with p.services.store.read() as s:
                    row = s.get(CaseRow, case_id)
                    assert row is not None, (p.n, case_id)
                    assert (row.status, row.complaint_text, list(row.complaints), row.hub_note) == (
                        at_hub["status"], at_hub["complaint_text"], list(at_hub["complaints"]),
                        at_hub.get("doctor_note", "")), (p.n, case_id)
        self._same_records("vitals", VitalsRow, lambda r: (
            r.case_id, r.status, r.replaces_id, {f: getattr(r, f) for f in VitalsValues.model_fields}),
            lambda x: (x["case_id"], x["status"], x.get("replaces_id"),
                       {f: x["vitals"].get(f, False if f == "on_supplemental_oxygen" else None)
                        for f in VitalsValues.model_fields}))
        self._same_records("consent", ConsentRow, lambda r: (r.case_id, r.giver, r.giver_name, r.method),
                           lambda x: (x["case_id"], x["giver"], x["giver_name"], x["method"]))
        self._same_records("attachment", AttachmentRow, lambda r: (r.case_id, r.sha256, r.size_bytes, r.status),
                           lambda x: (x["case_id"], x["sha256"], x["size_bytes"], x["status"]))
        for case_id in self.all_cases():
            for p in self.pcs:
                for a in p.services.attachments.list(case_id):
                    assert p.services.attachments.read_bytes(a) == hub.blob_path(a.sha256).read_bytes(), (p.n, a.id)

    def _same_records(self, entity: str, model, local, remote) -> None:
        with self.hub.session() as s:
            at_hub = {r.entity_id: remote(r.payload) for r in s.scalars(select(HubRecord).where(
                HubRecord.entity == entity, HubRecord.facility_id == self.facility))}
        for p in self.pcs:
            with p.services.store.read() as s:
                here = {r.id: local(r) for r in s.scalars(select(model))}
            assert here == at_hub, (entity, p.n)
        if at_hub:
            event(f"compared: {entity}")


class _Nothing(Exception):
    """The step has nothing to act on yet (no case on that PC)."""


@CHOSEN
@given(steps=ops)
# The hub corrects a patient, then the spoke (not yet having pulled it) changes the same patient: the
# spoke's later edit must win at both ends, whichever order the changes meet in.
@example(steps=[("register", 0), ("sync", 0, "pass", True), ("hub_patient", 0, "Sitapur", 9000000001),
                ("phone", 0, 0, 9111111111), ("sync", 0, "pass", True)])
# Both PCs with vitals (one corrected) and consent; the hub killed while PC-1's batch arrives, then after it
# committed PC-2's with the answer on the way; PC-2 edits PC-1's patient; a hub edit while the hub is down.
@example(steps=[("register", 0), ("vitals", 0, 0, 96, True), ("consent", 0, 0, ConsentMethod.WRITTEN),
                ("queue", 0, 0), ("sync", 0, "pass", True), ("register", 1), ("vitals", 1, 0, 72, False),
                ("correct", 1, 0, 88), ("register", 0), ("edit", 0, 1, "bukhar"), ("sync", 0, "kill_mid_body", True),
                ("sync", 1, "kill_after_answer", True), ("sync", 1, "pass", False), ("hub", 0, "in_consultation"),
                ("sync", 1, "pass", True), ("phone", 1, 2, 9222222222), ("queue", 1, 0), ("kill",),
                ("sync", 0, "pass", True)])
# PC-2 pulls PC-1's vitals, then PC-1 corrects them: PC-2 must take the correction (the old set entered in
# error, the new one final) that arrives in a later pull; a consent and a file from PC-2 go the other way.
@example(steps=[("vitals", 0, 0, 96, False), ("sync", 0, "pass", True), ("sync", 1, "lose_answer", True),
                ("sync", 1, "pass", True), ("correct", 0, 0, 100), ("consent", 1, 0, ConsentMethod.RECORDED),
                ("sync", 0, "cut_request", True), ("attach", 1, 0, b"a photo of the rash"), ("sync", 0, "pass", True)])
def test_any_interleaving_converges(hub_process, steps):
    process, hub = hub_process
    if not process.alive:       # an example before this one may have ended with the hub down
        process.start()
    world = Facility(process, hub)
    try:
        for step in [("register", 0), ("register", 1)] + steps:   # a case on each PC for the steps to act on
            try:
                world.run(step)
            except _Nothing:
                event(f"{step[0]}: nothing to act on")
        world.settle()
        world.check()
    finally:
        world.close()


def test_the_hubs_move_survives_the_other_pcs_older_status(hub, hub_server, facilities, spoke):
    """PC-1 sends a case; the hub's doctor takes it; PC-2 pulls that. PC-1, not knowing, takes the case back
    to "ready" and syncs: the hub keeps "in consultation" (merge_case_status), so does PC-1 once it pulls, and
    PC-2 must too when PC-1's older move reaches it."""
    from tests.sync.test_engine import queued_case

    pc1, admin1, paths1 = spoke("pc1")
    pc2, _admin2, paths2 = spoke("pc2")
    for s, paths, name in ((pc1, paths1, "PC-1"), (pc2, paths2, "PC-2")):
        enroll(s.store, paths, hub_server.url, hub.enroll_code(facilities[0]), name)
    _kamla, case = queued_case(pc1, admin1)
    assert sync_once(pc1.store, paths1).ok
    hub.update_case(case.id, {"status": "in_consultation", "doctor_note": "Seen"})
    assert sync_once(pc2.store, paths2).ok and pc2.cases.get(case.id).status == CaseStatus.IN_CONSULTATION
    pc1.cases.transition(admin1, case.id, CaseStatus.READY)
    assert sync_once(pc1.store, paths1).ok and sync_once(pc2.store, paths2).ok
    assert hub.record("case", case.id).payload["status"] == "in_consultation"
    assert pc1.cases.get(case.id).status == CaseStatus.IN_CONSULTATION
    assert pc2.cases.get(case.id).status == CaseStatus.IN_CONSULTATION
