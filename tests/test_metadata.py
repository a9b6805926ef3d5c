"""Filing metadata validated at the door: codes, case numbers, deadlines (Solar Hijri or Gregorian)."""
from __future__ import annotations

from datetime import date

import pytest

from pipeline.metadata import InvalidMetadata, normalise_case_number, parse_deadline, validate_code, validate_meta

TODAY = date(2026, 12, 1)  # 1405/09/10


@pytest.mark.parametrize("code", ["11-2301", "tehran-civil-12", "دادگاه_۱۲", "shiraz.family.3", "a"])
def test_codes_accepted(code):
    assert validate_code(code, "court")


def test_code_digits_are_normalised_to_latin():
    assert validate_code("دادگاه-۱۲", "court") == "دادگاه-12"


@pytest.mark.parametrize("code", ["../../x", "/etc", "x" * 65, ".hidden", "-x", "a b", "a/b", "a\\b", "tab\tx", ""])
def test_codes_refused_with_both_languages(code):
    with pytest.raises(InvalidMetadata) as exc:
        validate_code(code, "court")
    assert exc.value.field == "court" and exc.value.message_fa and "court" in exc.value.message


def test_case_numbers_are_normalised():
    assert normalise_case_number("۱۴۰۲-۰۹۹۸/۷۶ ۵") == "14020998765"
    assert normalise_case_number("  ") is None
    for bad in ("12a", "۱۲؛۳", "1" * 41, "DROP TABLE"):
        with pytest.raises(InvalidMetadata):
            normalise_case_number(bad)


def test_deadlines_solar_hijri_and_gregorian():
    assert parse_deadline("۱۴۰۵/۰۹/۱۰", TODAY) == date(2026, 12, 1)
    assert parse_deadline("1405/9/20", TODAY) == date(2026, 12, 11)
    assert parse_deadline("2027-01-05", TODAY) == date(2027, 1, 5)
    assert parse_deadline("", TODAY) is None and parse_deadline(None, TODAY) is None


@pytest.mark.parametrize("bad", ["1900-01-01", "2099-01-01", "1405/13/01", "1405/12/31", "2026-02-30", "tomorrow",
                                 "1405-09-10x", "۱۳۰۰/۰۱/۰۱"])
def test_bad_or_absurd_deadlines_are_refused(bad):
    with pytest.raises(InvalidMetadata) as exc:
        parse_deadline(bad, TODAY)
    assert exc.value.field == "deadline" and exc.value.message_fa


def test_validate_meta_names_the_bad_field():
    ok = validate_meta(office="11-2301", court="tehran-civil-12", case_number="۱۴۰۲۰۹۹", document_type="دادخواست",
                       deadline="۱۴۰۵/۱۰/۰۱", today=TODAY)
    assert (ok.case_number, ok.deadline) == ("1402099", date(2026, 12, 22))
    with pytest.raises(InvalidMetadata) as exc:
        validate_meta(office="11-2301", court="x" * 300, today=TODAY)
    assert exc.value.field == "court"
    with pytest.raises(InvalidMetadata) as exc:
        validate_meta(office="11-2301", court="c", document_type="<script>", today=TODAY)
    assert exc.value.field == "document_type"


def test_khana_process_uses_the_same_rules(tmp_path):
    from conftest import run_khana

    r = run_khana("process", "nothing.png", "--court", "../../x", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "court" in r.stderr and "Traceback" not in r.stderr
