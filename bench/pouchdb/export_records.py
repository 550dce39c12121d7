"""Export the records bench/push_bench.py pushes, as JSON lines for PouchDB.

Seeds a throwaway spoke data folder exactly as bench/_sync_common.py's `seed` does (seed-demo's generator, seed 11:
patients, cases, vitals, consent with varied names, villages, phones, complaints), then writes the `payload` of each
row of the `change_log` table that push_bench would push, as one JSON document a line:
`{"_id": <entity_id>, "type": <entity>, ...payload}`.

The patients:cases mix is push_bench's default (3000:2500, 9,255 changes), scaled up so that at least --records
changes exist; --records of them, evenly spaced through the change log (so the mix of patients, cases, vitals and
consent stays the seed's), are written in change-log order.

CouchDB/PouchDB refuse top-level fields that start with "_" other than their own, so the patient payload's
`_fields` (the field stamps, sync.merge.FIELD_META) is written as `$fields` (same length, same content).
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BENCH))

from _sync_common import seed  # noqa: E402  (also puts the repository root on sys.path)
from sqlalchemy import select  # noqa: E402

from spoke_client.db.models import ChangeRow  # noqa: E402
from spoke_client.paths import DataPaths  # noqa: E402
from spoke_client.services.auth import FacilityForm  # noqa: E402
from spoke_client.services.runtime import open_services  # noqa: E402

PATIENTS, CASES = 3000, 2500   # push_bench.py's defaults


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "data" / "records.jsonl")
    ap.add_argument("--records", type=int, default=10_000, help="how many changes to write (default 10,000)")
    ap.add_argument("--patients", type=int, default=None, help="seed this many patients (default: scaled from 3000)")
    ap.add_argument("--cases", type=int, default=None, help="seed this many cases (default: scaled from 2500)")
    args = ap.parse_args()

    # push_bench's default mix gives 9,255 changes for 3,000 patients and 2,500 cases; scale with a margin.
    scale = args.records / 9_000
    patients = args.patients if args.patients is not None else math.ceil(PATIENTS * scale)
    cases = args.cases if args.cases is not None else math.ceil(CASES * scale)

    tmp = Path(tempfile.mkdtemp(prefix="spoke-pouch-export-"))
    try:
        services = open_services(DataPaths(tmp / "pc1"))
        _facility, admin = services.auth.setup(FacilityForm("Bench", "HWC-BENCH", "Sitapur", "UP"), "admin", "Admin",
                                               "bench-pass")
        seed(services, admin, patients, cases)   # marks the set-up's own changes sent, as push_bench does
        with services.store.read() as s:
            rows = s.execute(select(ChangeRow.entity, ChangeRow.entity_id, ChangeRow.payload)
                             .where(ChangeRow.pushed_at.is_(None)).order_by(ChangeRow.seq)).all()
        services.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    if len(rows) < args.records:
        sys.exit(f"only {len(rows)} changes from {patients} patients and {cases} cases; raise --patients/--cases")
    seeded = len(rows)
    rows = [rows[i * seeded // args.records] for i in range(args.records)]   # evenly spaced, order kept
    ids = collections.Counter(entity_id for _e, entity_id, _p in rows)
    dup = [i for i, n in ids.items() if n > 1]
    if dup:
        sys.exit(f"{len(dup)} entities changed more than once (e.g. {dup[0]}); one document per change expected")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    kinds: collections.Counter[str] = collections.Counter()
    bare = []   # the payloads as push_bench's floor counts them (compact JSON, no _id/type)
    with args.out.open("w", encoding="utf-8") as f:
        for entity, entity_id, payload in rows:
            kinds[entity] += 1
            bare.append(json.dumps(payload, separators=(",", ":"), ensure_ascii=False))
            doc = {"_id": entity_id, "type": entity}
            for k, v in payload.items():
                if k in doc:
                    sys.exit(f"payload of {entity} already has a field {k!r}")
                doc["$" + k[1:] if k.startswith("_") else k] = v
            f.write(json.dumps(doc, separators=(",", ":"), ensure_ascii=False) + "\n")
    text = "\n".join(bare).encode()
    print(f"wrote {len(rows):,} of {seeded:,} changes to {args.out} (seeded {patients} patients, {cases} cases; "
          + ", ".join(f"{k} {n:,}" for k, n in kinds.items())
          + f"); bare payloads {len(text) / len(rows):.0f} B each as compact JSON, gzip -9 floor "
          f"{len(gzip.compress(text, 9)) / len(rows):.1f} B each")


if __name__ == "__main__":
    main()
