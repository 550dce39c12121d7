"""Realistic synthetic patients and cases for demos and benchmarks (bulk path, same tables and change log)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date, timedelta

from sqlalchemy import insert, select, text

from spoke_client.db.models import CaseRow, ChangeRow, ConsentRow, PatientRow, VitalsRow
from spoke_client.domain.abha import make_abha_number
from spoke_client.domain.model import (
    CaseStatus,
    Relation,
    User,
    VitalsStatus,
    birth_date_from_age,
)
from spoke_client.domain.names import normalize_name, phonetic_key
from spoke_client.domain.redflags import PatientContext, assess, assessed
from spoke_client.domain.vitals import GlucoseKind, Vitals
from spoke_client.i18n import current_language
from spoke_client.services.patients import search_columns
from spoke_client.services.store import Store, new_id
from sync.merge import FIELD_META, PATIENT_GROUPS, stamp_edit
from sync.payloads import payload_of

# Names as Indian registers write them, by region, so that search meets real variety.
REGIONS = {
    "Uttar Pradesh": dict(
        female=["Kamla", "Sunita", "Geeta", "Savitri", "Rekha", "Pooja", "Anita", "Laxmi", "Shanti", "Radha", "Usha", "Meena", "Kusum", "Suman", "Pushpa"],
        male=["Ramesh", "Suresh", "Rajesh", "Mahesh", "Ram", "Shyam", "Mohan", "Vijay", "Anil", "Sunil", "Rakesh", "Dinesh", "Mukesh", "Raju", "Ganesh"],
        surnames=["Devi", "Yadav", "Singh", "Verma", "Gupta", "Maurya", "Kushwaha", "Pal", "Chaudhary", "Mishra", "Tiwari", "Khan"],
        villages=["Rampur", "Sitapur", "Bhagwanpur", "Raipur Khurd", "Madhopur", "Chandpur", "Lalganj", "Kishanpur"],
    ),
    "Bihar": dict(
        female=["Rinki", "Pinki", "Sarita", "Kiran", "Lalita", "Manju", "Sunaina", "Babita", "Poonam", "Chanda"],
        male=["Manoj", "Santosh", "Pappu", "Bablu", "Ranjeet", "Sanjay", "Ajay", "Birendra", "Upendra", "Shailesh"],
        surnames=["Kumari", "Kumar", "Prasad", "Mahto", "Paswan", "Sah", "Jha", "Thakur", "Rai"],
        villages=["Barauni", "Mahuli", "Sonpur", "Dighwara", "Kanti", "Paroo"],
    ),
    "Tamil Nadu": dict(
        female=["Lakshmi", "Meenakshi", "Selvi", "Kavitha", "Revathi", "Jayanthi", "Malar", "Valli"],
        male=["Murugan", "Senthil", "Karthik", "Arumugam", "Ganesan", "Rajendran", "Selvam", "Velu"],
        surnames=["Subramanian", "Pandian", "Raman", "Krishnan", "Natarajan", "Perumal"],
        villages=["Melur", "Kottampatti", "Vadipatti", "Thirumangalam", "Peraiyur"],
    ),
    "Maharashtra": dict(
        female=["Sunanda", "Vaishali", "Shobha", "Mangal", "Ashwini", "Savita", "Ujwala"],
        male=["Ganpat", "Dnyaneshwar", "Vitthal", "Sachin", "Tukaram", "Balu", "Prakash"],
        surnames=["Patil", "Jadhav", "Pawar", "Shinde", "More", "Kale", "Gaikwad"],
        villages=["Wadgaon", "Shirur", "Nandgaon", "Karjat", "Pimpalgaon"],
    ),
    "West Bengal": dict(
        female=["Mousumi", "Rina", "Shefali", "Tumpa", "Jharna", "Sabita"],
        male=["Subrata", "Biswajit", "Tapan", "Gopal", "Swapan", "Ashok"],
        surnames=["Mondal", "Das", "Ghosh", "Sarkar", "Biswas", "Roy", "Sheikh"],
        villages=["Kultali", "Basanti", "Gosaba", "Canning", "Joynagar"],
    ),
}
# Free text as a paramedic types it: short, often empty, varied.
NOTES = {
    "complaint": ["", "", "", "since 3 days", "on and off since last week", "worse at night", "after eating outside food",
                  "with body ache", "high grade with chills", "dry cough, no sputum", "burning while passing urine"],
    "history": ["", "", "Known hypertensive, on amlodipine", "Diabetic for 5 years", "No known illness",
                "TB treatment completed 2024", "Asthma since childhood", "Took paracetamol, no relief"],
    "examination": ["", "", "Pallor present", "No pallor, no icterus", "Chest clear", "Crepitations right base",
                    "Mild dehydration", "Pedal oedema both feet", "Throat congested"],
}
COMPLAINTS = ["Fever", "Cough", "Breathlessness", "Chest pain", "Headache", "Abdominal pain", "Loose motions",
              "Skin rash", "Joint pain", "Dizziness", "High blood pressure follow-up", "Diabetes follow-up"]
BATCH = 10_000


@dataclass(frozen=True)
class SeedReport:
    patients: int
    cases: int
    seconds: float


def _patient(rng: random.Random, today: date, facility_id: str, actor_id: str, now) -> dict:
    state = rng.choice(list(REGIONS))
    r = REGIONS[state]
    sex = rng.choice(["female", "male"])
    first = rng.choice(r["female"] if sex == "female" else r["male"])
    surname = rng.choice(r["surnames"])
    rel_first = rng.choice(r["male"])
    age = rng.choice([rng.randint(0, 5), rng.randint(6, 17), rng.randint(18, 45), rng.randint(46, 85)])
    approximate = rng.random() < 0.6
    birth = birth_date_from_age(age, today) - timedelta(days=0 if approximate else rng.randint(0, 364))
    if sex == "female" and age >= 20:
        relation = Relation.WIFE_OF.value
    else:
        relation = Relation.DAUGHTER_OF.value if sex == "female" else Relation.SON_OF.value
    name = f"{first} {surname}"
    relative = f"{rel_first} {surname if surname not in ('Devi', 'Kumari') else rng.choice(r['surnames'])}"
    village = rng.choice(r["villages"])
    phone = "" if rng.random() < 0.3 else str(rng.choice([6, 7, 8, 9])) + "".join(rng.choices("0123456789", k=9))
    abha = make_abha_number("91" + "".join(rng.choices("0123456789", k=11))) if rng.random() < 0.25 else ""
    names, village_key = search_columns(name, relative, village)
    return dict(
        id=new_id(), facility_id=facility_id, name=name, sex=sex, birth_date=birth,
        birth_date_approximate=approximate, relative_name=relative, relative_relation=relation, phone=phone,
        village=village, address="", abha_number=abha, abha_address="", search_names=names,
        search_village=village_key, created_at=now, updated_at=now, created_by=actor_id, version=1,
    )


def _vitals(rng: random.Random, age: int) -> Vitals:
    sick = rng.random() < 0.15
    if age < 5:
        return Vitals(pulse_per_min=rng.randint(90, 160), respiratory_rate_per_min=rng.randint(24, 62 if sick else 45),
                      temperature_c=round(rng.uniform(36.4, 39.8 if sick else 37.6), 1), spo2_pct=rng.randint(90 if sick else 95, 100),
                      weight_kg=round(rng.uniform(3, 18), 1))
    weight = round(rng.uniform(35, 85), 1)
    height = round(rng.uniform(140, 180), 0)
    return Vitals(
        systolic_mmhg=rng.randint(150, 200) if sick else rng.randint(100, 145),
        diastolic_mmhg=rng.randint(95, 125) if sick else rng.randint(62, 92),
        pulse_per_min=rng.randint(95, 130) if sick else rng.randint(60, 95),
        respiratory_rate_per_min=rng.randint(14, 26 if sick else 20), temperature_c=round(rng.uniform(36.2, 38.9 if sick else 37.4), 1),
        spo2_pct=rng.randint(89 if sick else 95, 100), weight_kg=weight, height_cm=height,
        glucose_mg_dl=rng.choice([None, rng.randint(60, 320)]), glucose_kind=GlucoseKind.RANDOM,
    )


def seed_demo(store: Store, actor: User, facility_id: str, patients: int, cases: int, *, seed: int = 7,
              progress: Callable[[int, int], None] | None = None) -> SeedReport:
    import time

    t0 = time.perf_counter()
    rng = random.Random(seed)
    now = store.clock()
    today = now.date()
    statuses = [CaseStatus.DRAFT, CaseStatus.READY, CaseStatus.QUEUED, CaseStatus.PRESCRIBED, CaseStatus.CLOSED]
    made_patients: list[tuple[str, date]] = []
    vocab: set[str] = set()
    done = 0
    while done < patients:
        n = min(BATCH, patients - done)
        rows = [_patient(rng, today, facility_id, actor.id, now) for _ in range(n)]
        with store.write(actor.id) as w:
            changes = []
            for r in rows:   # field stamps as a registration makes them (sync.merge)
                stamp = store.hlc.now(int(w.now.timestamp() * 1000)).encode()
                r["field_hlc"] = stamp_edit({}, list(PATIENT_GROUPS), stamp)
                changes.append(_change(store, w.now, actor.id, "patient", r,
                                       payload_of("patient", r, **{FIELD_META: r["field_hlc"]}), hlc=stamp))
            w.session.execute(insert(PatientRow), rows)
            w.session.execute(insert(ChangeRow), changes)
            words = {phonetic_key(x) for r in rows for x in normalize_name(f"{r['name']} {r['relative_name']} {r['village']}").split()}
            new = sorted(k for k in words - vocab if len(k) >= 3)
            if new:
                w.session.execute(text("INSERT OR IGNORE INTO search_vocab(key) VALUES (:k)"), [{"k": k} for k in new])
                vocab.update(new)
            w.audit("seed", "patient", "", f"{n} synthetic patients")
        made_patients.extend((r["id"], r["birth_date"]) for r in rows)
        done += n
        if progress:
            progress(done, patients + cases)
    if not made_patients:
        with store.read() as s:
            made_patients = [(pid, b) for pid, b in s.execute(select(PatientRow.id, PatientRow.birth_date).limit(100_000))]
    done_cases = 0
    while done_cases < cases and made_patients:
        n = min(BATCH, cases - done_cases)
        case_rows, vitals_rows, vitals_sets, consent_rows = [], [], [], []
        for i in range(n):
            pid, birth = rng.choice(made_patients)
            age = (today - birth).days // 365
            created = now - timedelta(days=rng.choice([0, 0, 0, 1, 2, 5, 10, 30]), minutes=rng.randint(0, 600))
            v = _vitals(rng, age)
            assessment = assess(v, PatientContext(age_days=(today - birth).days))
            level = int(assessment.level)
            status = rng.choice(statuses) if created.date() != today else rng.choice(statuses[:3])
            cid = new_id()
            case_rows.append(dict(
                id=cid, patient_id=pid, status=status.value, complaints=rng.sample(COMPLAINTS, rng.randint(1, 2)),
                complaint_text=rng.choice(NOTES["complaint"]), duration=f"{rng.randint(1, 10)} days",
                history=rng.choice(NOTES["history"]), examination=rng.choice(NOTES["examination"]),
                pregnant=False, priority=level, created_at=created, updated_at=created, created_by=actor.id, version=1))
            if status not in (CaseStatus.DRAFT, CaseStatus.READY):   # consent comes before a case is sent
                minor = age < 18
                consent_rows.append(dict(
                    id=new_id(), case_id=cid, giver="guardian" if minor else "patient",
                    giver_name=rng.choice(REGIONS["Uttar Pradesh"]["female"]) + " " + rng.choice(["Devi", "Yadav", "Singh"])
                    if minor else "Patient", giver_relation="mother" if minor else "",
                    method=rng.choice(["verbal", "verbal", "written", "recorded"]), given_at=created,
                    recorded_by=actor.id, version=1))
            vitals_sets.append(v)
            vitals_rows.append(dict(
                id=new_id(), case_id=cid, recorded_at=created, recorded_by=actor.id, status=VitalsStatus.FINAL.value,
                replaces_id=None, source="manual", version=1, assessment=assessed(assessment, current_language()),
                **{f.name: _plain(getattr(v, f.name)) for f in fields(Vitals)}))
        with store.write(actor.id) as w:
            w.session.execute(insert(CaseRow), case_rows)
            w.session.execute(insert(VitalsRow), vitals_rows)
            if consent_rows:
                w.session.execute(insert(ConsentRow), consent_rows)
            # The change log carries the same payloads as the services write (sync.payloads), from the rows.
            w.session.execute(insert(ChangeRow), [_change(store, w.now, actor.id, "case", r, payload_of("case", r))
                                                  for r in case_rows]
                              + [_change(store, w.now, actor.id, "vitals", r, payload_of("vitals", r, vitals=r))
                                 for r in vitals_rows]
                              + [_change(store, w.now, actor.id, "consent", r, payload_of("consent", r))
                                 for r in consent_rows])
            w.audit("seed", "case", "", f"{n} synthetic cases")
        done_cases += n
        if progress:
            progress(done + done_cases, patients + cases)
    return SeedReport(done, done_cases, time.perf_counter() - t0)


def _plain(value):
    return value.value if hasattr(value, "value") else value


def _change(store: Store, now, actor_id: str, entity: str, row: dict, payload, hlc: str | None = None) -> dict:
    return dict(change_id=new_id(), entity=entity, entity_id=row["id"], version=1, op="upsert",
                hlc=hlc or store.hlc.now(int(now.timestamp() * 1000)).encode(), changed_at=now, user_id=actor_id,
                device_id=store.device_id, payload=payload, pushed_at=None)
