"""The command line, run as a real process: setup, seed-demo, selfcheck, export-fhir, damaged-database exit code."""

import json
import os
import subprocess
import sys

import pytest

from fhir.resources.R4B.bundle import Bundle


DEMO = {"SPOKE_USER": "admin", "SPOKE_PASSWORD": "spoke-demo"}   # seed-demo's administrator opens the data


def run(data_dir, *args, input_text=None, ok=True, env=DEMO):
    proc = subprocess.run([sys.executable, "-m", "spoke_client", "--data-dir", str(data_dir), *args],
                          capture_output=True, text=True, input=input_text, timeout=120,
                          env={**os.environ, **(env or {})})
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    data = tmp_path_factory.mktemp("cli") / "data"
    out = run(data, "seed-demo", "--patients", "300", "--cases", "60")
    assert "Seeded 300 patients and 60 cases" in out.stdout
    return data


def test_setup_then_refuse_a_second_setup(tmp_path):
    args = ["setup", "--facility-name", "HWC Rampur", "--hwc-id", "HWC-1", "--district", "Sitapur", "--state", "UP",
            "--admin-user", "admin", "--admin-name", "Asha", "--password-stdin"]
    assert "administrator: admin" in run(tmp_path, *args, input_text="long-password\n").stdout
    second = run(tmp_path, *args, input_text="long-password\n", ok=False)
    assert second.returncode == 1 and "already set up" in second.stderr


def test_setup_with_bad_fields_exits_2_and_names_them(tmp_path):
    p = run(tmp_path, "setup", "--facility-name", "X", "--hwc-id", "bad id", "--district", "S", "--state", "U",
            "--admin-user", "a", "--admin-name", "A", "--password-stdin", input_text="short\n", ok=False)
    assert p.returncode == 2
    for field in ("name:", "hwc_id:", "username:", "password:"):
        assert field in p.stderr


def test_selfcheck_reports_a_sound_database(seeded):
    out = run(seeded, "selfcheck").stdout
    assert "[FAIL]" not in out
    assert "search index covers 300 of 300 patients" in out
    assert "300 patients, 60 cases" in out
    assert "database encrypted (SQLCipher)" in out


def test_setup_shows_the_recovery_key_once_and_it_gives_a_lost_password_back(tmp_path):
    args = ["setup", "--facility-name", "HWC Rampur", "--hwc-id", "HWC-1", "--district", "Sitapur", "--state", "UP",
            "--admin-user", "admin", "--admin-name", "Asha", "--password-stdin"]
    out = run(tmp_path, *args, input_text="long-password\n", env={}).stdout
    recovery = out.strip().splitlines()[-1].strip()
    assert "recovery key" in out and len(recovery.replace("-", "")) == 32
    nobody = {"SPOKE_USER": "admin", "SPOKE_PASSWORD": "forgotten-one"}
    assert run(tmp_path, "export-fhir", "--all", "--out", str(tmp_path / "o"), env=nobody, ok=False).returncode == 1
    bad = run(tmp_path, "recover", "--admin", "admin", "--stdin", input_text="ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-4567\nnew-password-1\n",
              env={}, ok=False)
    assert bad.returncode == 1 and "does not open" in bad.stderr
    good = run(tmp_path, "recover", "--admin", "admin", "--stdin", input_text=f"{recovery}\nnew-password-1\n", env={})
    assert "new password" in good.stdout
    ok = {"SPOKE_USER": "admin", "SPOKE_PASSWORD": "new-password-1"}
    assert "Wrote 0 FHIR Bundles" in run(tmp_path, "export-fhir", "--all", "--out", str(tmp_path / "o"), env=ok).stdout


def test_encrypted_data_needs_a_user_and_tells_how(seeded, tmp_path):
    p = run(seeded, "export-fhir", "--all", "--out", str(tmp_path / "o"), ok=False, env={"SPOKE_USER": "", "SPOKE_PASSWORD": ""})
    assert p.returncode == 1 and "encrypted" in p.stderr and "--user" in p.stderr and "Traceback" not in p.stderr
    p = run(seeded, "export-fhir", "--all", "--out", str(tmp_path / "o"), ok=False,
            env={"SPOKE_USER": "admin", "SPOKE_PASSWORD": "not-the-password"})
    assert p.returncode == 1 and "password is not right" in p.stderr and not (tmp_path / "o").exists()
    out = run(seeded, "selfcheck", env={"SPOKE_USER": "", "SPOKE_PASSWORD": ""}).stdout
    assert "database encrypted; users with a key: 1; a recovery key: yes" in out and "[FAIL]" not in out


def test_export_fhir_all_and_one(seeded, tmp_path):
    out_dir = tmp_path / "fhir"
    assert "Wrote 60 FHIR Bundles" in run(seeded, "export-fhir", "--all", "--out", str(out_dir)).stdout
    files = sorted(out_dir.glob("case-*.json"))
    assert len(files) == 60
    for f in files[:10]:
        bundle = Bundle.model_validate(json.loads(f.read_text()))
        kinds = [e.resource.get_resource_type() for e in bundle.entry]
        assert kinds.count("Patient") == 1 and kinds.count("Encounter") == 1 and "Observation" in kinds
    case_id = files[0].stem.removeprefix("case-")
    one = tmp_path / "one.json"
    run(seeded, "export-fhir", "--case", case_id, "--out", str(one))
    assert json.loads(one.read_text()) == json.loads(files[0].read_text())


def test_export_of_an_unknown_case_fails_cleanly(seeded, tmp_path):
    p = run(seeded, "export-fhir", "--case", "nope", "--out", str(tmp_path / "x.json"), ok=False)
    assert p.returncode == 1 and "does not exist" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "x.json").exists()


def test_damaged_database_exits_3_with_advice(tmp_path):
    run(tmp_path, "seed-demo", "--patients", "50", "--cases", "0")
    db = tmp_path / "spoke.sqlite"
    data = bytearray(db.read_bytes())
    for offset in range(4096, len(data), 101):
        data[offset] ^= 0xFF
    db.write_bytes(bytes(data))
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"spoke.sqlite{suffix}").unlink(missing_ok=True)
    p = run(tmp_path, "selfcheck", ok=False)
    assert p.returncode == 1 and "[FAIL] database integrity" in p.stdout
    p = run(tmp_path, "export-fhir", "--all", "--out", str(tmp_path / "o"), ok=False)
    assert p.returncode == 3 and "integrity check" in p.stderr
