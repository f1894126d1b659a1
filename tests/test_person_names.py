"""The person-name gazetteer: ordinary names found, words that look like names left alone."""

import importlib.util
from pathlib import Path

import pytest

from assets.screening.names import find_person_names
from assets.screening.pii import PiiEngine
from core.types import PiiConfig


def _names(text: str) -> list[str]:
    return [text[d.start:d.end] for d in find_person_names(text)]


@pytest.mark.parametrize(("text", "expected"), [
    ("Please ask Miriam Okonkwo for the signed copy.", ["Miriam Okonkwo"]),
    ("Approved by Henrik T. Lindqvist on Monday.", ["Henrik T. Lindqvist"]),
    ("Beneficiary: Joanna Maria Kowalczyk", ["Joanna Maria Kowalczyk"]),
    ("Account holder: Pieter van der Berg.", ["Pieter van der Berg"]),
    ("Reviewed with Siobhan O'Sullivan and Marco Bellini.", ["Siobhan O'Sullivan", "Marco Bellini"]),
    ("The claim was filed by Dr. Adeyemi last week.", ["Adeyemi"]),
    ("Minutes taken by Mrs Hargreaves.", ["Hargreaves"]),
    ("Grant Thompson joined the audit team.", ["Grant Thompson"]),
    ("CONTRACTOR: DAVID MILLER", ["DAVID MILLER"]),
])
def test_ordinary_names_are_found(text, expected):
    assert _names(text) == expected


@pytest.mark.parametrize("text", [
    "The report is due in May 2024.",
    "Will the system recover after a restart?",
    "Grant Application Form, section 3",
    "She read it in the Washington Post.",
    "Quarterly Revenue Grew Across Europe And Asia",
    "Invoices go to Nelson Ltd and Harper Group.",
    "Deliver to Coleman Avenue, gate 2.",
    "Victoria Station is closed on Sunday.",
    "Mark Review Complete",
    "the Christian Democratic Union",
    "Dock Safety\n\nNever leave a trailer unattended at an open dock.",
    "Fleet Engineering Review\n\nThe fleet is serviced every month.",
])
def test_words_that_look_like_names_are_not_names(text):
    assert _names(text) == []


def test_gazetteer_names_merge_with_the_model_into_one_redaction():
    engine = PiiEngine(PiiConfig())
    result = engine.anonymize("Please transfer the deposit to Ingrid Halvorsen before Friday.")
    assert result.text == "Please transfer the deposit to <PERSON> before Friday."
    assert result.counts["PERSON"] == 1


def test_no_gazetteer_when_ner_is_off():
    assert PiiEngine(PiiConfig(ner=False)).detect("Please ask Miriam Okonkwo for the copy.") == []


def test_the_shipped_lists_are_what_the_build_script_makes():
    faker = pytest.importorskip("faker")
    data = Path(__file__).resolve().parent.parent / "assets" / "screening" / "data"
    first = (data / "first_names.txt").read_text(encoding="utf-8")
    if f"Faker {faker.VERSION} " not in first.splitlines()[0]:
        pytest.skip(f"the lists were built with another Faker than {faker.VERSION}")
    spec = importlib.util.spec_from_file_location("build_name_list", data.parents[2] / "scripts" / "build_name_list.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.build() == (first, (data / "surnames.txt").read_text(encoding="utf-8"))
