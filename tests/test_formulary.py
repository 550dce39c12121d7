"""The NLEM 2022 formulary (resources/formulary/): built from its sources, reconciled, every correction applied."""

from __future__ import annotations

import csv
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "build_formulary.py"
CSV_PATH = ROOT / "resources" / "formulary" / "nlem2022.csv"


def _load_module():
    spec = importlib.util.spec_from_file_location("build_formulary", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["build_formulary"] = mod
    spec.loader.exec_module(mod)
    return mod


bf = _load_module()


@pytest.fixture(scope="module")
def result():
    return bf.build()


@pytest.fixture(scope="module")
def rows():
    with CSV_PATH.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _rows_of(rows, no: int) -> list[dict]:
    return [r for r in rows if int(r["medicine_no"]) == no]


def test_check_mode_passes_on_the_committed_csv():
    run = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "is up to date" in run.stdout


def test_build_has_no_problem(result):
    assert result.problems == []


def test_committed_csv_is_the_build(result):
    assert CSV_PATH.read_text(encoding="utf-8") == bf.render(result.rows)


def test_columns(rows):
    assert list(rows[0].keys()) == bf.COLUMNS


def test_384_numbered_medicines_no_gap_no_duplicate(rows, result):
    nos = [int(r["medicine_no"]) for r in rows]
    assert set(nos) == set(range(1, 385))
    names: dict[int, set[str]] = {}
    for r in rows:
        names.setdefault(int(r["medicine_no"]), set()).add(r["medicine"])
    assert all(len(v) == 1 for v in names.values())
    assert len({next(iter(v)) for v in names.values()}) == 384            # 384 different names too
    assert sorted(result.numbered) == list(range(1, 385))


def test_one_row_per_medicine_form_strength(rows):
    keys = [(r["medicine_no"], r["dosage_form"].lower(), r["strength"].lower()) for r in rows]
    assert len(keys) == len(set(keys))


def test_codes_levels_and_tpg_are_well_formed(rows):
    code = re.compile(r"^\d+(\.\d+)*$")
    for r in rows:
        assert code.match(r["section_code"]), r
        assert code.match(r["entry_code"]), r
        assert all(code.match(c) for c in r["listings"].split(";")), r
        assert r["entry_code"].startswith(r["section_code"] + ".") or r["entry_code"] == r["section_code"], r
        assert r["section"], r
        assert r["dosage_form"], r
        assert r["level"] in {"P", "S", "T", "P,S", "P,T", "S,T", "P,S,T"}, r
        assert r["tpg_list"] in {"O", "A", "B", "Prohibited"}, r
        assert r["tpg_source"].strip(), r


def test_known_numbers_and_names(rows):
    # read off the 'Alphabetical List of Medicines in NLEM 2022' (pages 86-101 of the source text)
    expected = {
        1: "5-aminosalicylic acid (Mesalazine/Mesalaine)", 10: "Acyclovir", 23: "Amphotericin B",
        148: "Ferrous salts", 242: "Metformin", 256: "Morphine", 283: "Paracetamol",
        294: "Piperacillin (A) + Tazobactam (B)", 328: "Snake Venom Antiserum", 384: "Zolpidem",
    }
    for no, name in expected.items():
        assert {r["medicine"] for r in _rows_of(rows, no)} == {name}


def test_paracetamol_is_primary_care_list_o(rows):
    para = _rows_of(rows, 283)
    tablet = [r for r in para if r["dosage_form"] == "Tablet" and r["strength"] == "500 mg"]
    assert len(tablet) == 1
    t = tablet[0]
    assert t["section_code"].startswith("2.") and t["entry_code"] == "2.1.5"
    assert t["level"] == "P,S,T" and t["tpg_list"] == "O"
    assert set(t["listings"].split(";")) == {"2.1.5", "5.2.3", "27.4"}
    inj = [r for r in para if r["dosage_form"] == "Injection"]
    assert inj and all(r["tpg_list"] != "O" for r in inj)


def test_prohibited_and_other_lists(rows):
    def lists(no):
        return {r["tpg_list"] for r in _rows_of(rows, no)}
    assert lists(256) == {"Prohibited"}                 # Morphine: NDPS
    assert lists(146) == {"Prohibited"}                 # Fentanyl
    assert lists(116) == {"Prohibited"}                 # Diazepam
    assert lists(2) == {"Prohibited"}                   # 5-Fluorouracil: anti-cancer
    assert lists(243) == {"Prohibited"}                 # Methotrexate (also a DMARD): anti-cancer listing
    assert lists(302) == {"B"}                          # Prednisolone is in 7.2 but is not an anti-cancer drug
    assert lists(242) == {"A"}                          # Metformin, named in List A
    assert lists(135) == {"A"}                          # Enalapril, named in List A
    assert lists(275) == {"O"}                          # ORS
    assert lists(183) == {"B"}                          # Hydrochlorothiazide, named in List B
    eye = [r for r in _rows_of(rows, 80) if r["dosage_form"] == "Drops"]
    assert eye and {r["tpg_list"] for r in eye} == {"A"}   # ciprofloxacin drops, named in List A


def test_no_medicine_deleted_from_nlem_2015(rows):
    names = {r["medicine"].lower() for r in rows}
    for gone in ("ranitidine", "atenolol", "sucralfate", "chlorpheniramine", "alteplase", "white petrolatum",
                 "leflunomide", "methyldopa", "procarbazine", "dimercaprol"):
        assert gone not in names


def test_bleeding_rows_were_separated(rows):
    def forms(no):
        return {(r["dosage_form"], r["strength"]) for r in _rows_of(rows, no)}
    assert forms(236) == {("Tablet", "250 mg"), ("Oral liquid", "100 mg/5 mL")}          # Mefenamic acid
    assert ("Tablet", "650 mg") in forms(283)                                           # to Paracetamol
    assert forms(245) == {("Injection", "40 mg/mL")}                                    # Methylprednisolone
    assert ("Sublingual tablet", "0.5 mg") in forms(170) and not any(
        f == "Sublingual tablet" for f, _ in forms(121))                                 # GTN, not diltiazem
    assert {("Tablet", "50 mg"), ("Tablet", "100 mg")} <= forms(211)                     # Labetalol
    assert ("Injection", "0.9%") in forms(330) and ("Injection", "0.9%") not in forms(329)  # NaCl, not NaHCO3
    assert ("Oral liquid", "500 mg/5 mL") in forms(297)                                 # Potassium chloride


def test_every_correction_was_applied(result, rows):
    assert result.corrections, "corrections.csv is empty"
    by_kind: dict[str, int] = {}
    for c in result.corrections:
        assert c.applied >= 1, f"{c.id} not applied"
        assert c.reason
        by_kind[c.kind] = by_kind.get(c.kind, 0) + 1
        if c.kind == "move_form":
            form, strength, _ = bf.split_form(c.match)
            here = [r for r in rows if r["dosage_form"] == form and r["strength"] == strength]
            assert any(c.value in r["listings"].split(";") for r in here), c.id
            assert not any(c.entry_code in r["listings"].split(";") for r in here), c.id
        elif c.kind == "alias":
            assert _rows_of(rows, int(c.value)), c.id
        elif c.kind == "fix_text":
            form, strength, _ = bf.split_form(c.value)
            assert any(r["dosage_form"] == form and r["strength"] == strength for r in rows), c.id
        elif c.kind == "set_form":
            form, strength, _ = bf.split_form(c.value)
            assert any(r["dosage_form"] == form and r["strength"] == strength for r in rows), c.id
        elif c.kind == "ignore_line":
            assert not any(c.match in r["strength"] for r in rows), c.id
    assert {"drop_pages", "move_form", "alias"} <= set(by_kind)


def test_every_tpg_rule_is_used_and_the_default_is_b(result):
    assert all(r.used for r in result.rules)
    default = result.rules[-1]
    assert default.rule_id == "DEFAULT" and default.tpg_list == "B"


def test_a_missing_medicine_fails_the_build(tmp_path, monkeypatch):
    text = bf.SOURCE_TEXT.read_text(encoding="utf-8")
    assert "\n384. Zolpidem\n" in text
    broken = tmp_path / "nlem.txt"
    broken.write_text(text.replace("\n384. Zolpidem\n", "\n"), encoding="utf-8")
    monkeypatch.setattr(bf, "SOURCE_TEXT", broken)
    problems = bf.build().problems
    assert any("384" in p for p in problems), problems


def test_a_date_for_a_section_code_fails_the_build(tmp_path, monkeypatch):
    text = bf.SOURCE_TEXT.read_text(encoding="utf-8")
    broken = tmp_path / "nlem.txt"
    broken.write_text(text.replace("\n1.1.1 Halothane S,T", "\n2024-01-01 Halothane S,T"), encoding="utf-8")
    monkeypatch.setattr(bf, "SOURCE_TEXT", broken)
    assert bf.build().problems


def test_a_rule_table_without_default_fails(tmp_path, monkeypatch):
    rules = bf.TPG_RULES.read_text(encoding="utf-8").splitlines()
    cut = tmp_path / "rules.csv"
    cut.write_text("\n".join(rules[:-1]) + "\n", encoding="utf-8")
    monkeypatch.setattr(bf, "TPG_RULES", cut)
    with pytest.raises(bf.BuildError):
        bf.build()


def test_check_mode_fails_on_a_stale_csv(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "nlem2022.csv"
    stale.write_text(CSV_PATH.read_text(encoding="utf-8").replace(",Paracetamol,", ",Paracetamol X,", 1),
                     encoding="utf-8")
    monkeypatch.setattr(bf, "OUTPUT", stale)
    monkeypatch.setattr(bf, "ROOT", tmp_path)
    assert bf.main(["--check"]) == 1
    assert "not what the sources build" in capsys.readouterr().err
