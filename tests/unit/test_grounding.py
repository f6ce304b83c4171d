"""No invented medical facts: every reply is checked against the clinic's page.

Replies live in domain/*.yml; the page is content/intrathecal-pain-pump.txt.
"""
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "content" / "intrathecal-pain-pump.txt").read_text()
PAGE_LOWER = PAGE.lower()
MAX_REPLY_CHARS = 600
# Safety instructions, not facts about the treatment: the only numbers not on the page.
SAFETY_NUMBERS = {"utter_escalate_emergency": {"911"}, "utter_escalate_urgent": {"911"}}


def load_domain():
    domain = {"responses": {}, "slots": {}, "intents": []}
    for path in sorted((ROOT / "domain").glob("*.yml")):
        part = yaml.safe_load(path.read_text())
        domain["responses"].update(part.get("responses") or {})
        domain["slots"].update(part.get("slots") or {})
        domain["intents"] += part.get("intents") or []
    return domain


DOMAIN = load_domain()
TERMS = yaml.safe_load((ROOT / "tests" / "data" / "medical_terms.yml").read_text())
PHONE_SLOTS = {name: slot["initial_value"] for name, slot in DOMAIN["slots"].items()
               if name.startswith("clinic_phone")}
TOPIC_INTENTS = [i for i in DOMAIN["intents"] if i.startswith("ask_")
                 and f"utter_{i[4:]}" in DOMAIN["responses"]]
NUMBER = re.compile(r"\d+(?:[/-]\d+)*")
PAGE_NUMBERS = {n for match in NUMBER.findall(PAGE) for n in [match, *re.split(r"[/-]", match)]}
HEADINGS = {line.strip() for line in PAGE.splitlines() if line.strip().endswith("?")} | {
    "Our Treatments"}


def variations():
    for name, variants in DOMAIN["responses"].items():
        for variant in variants:
            yield name, variant


def render(text):
    """The reply as a visitor sees it: slots filled with their initial values."""
    return text.format(**PHONE_SLOTS, urgency_reason="")


def test_every_topic_of_the_page_has_an_answer():
    expected = {"about_clinic", "what_is_pump", "how_it_works", "dose", "candidate", "goal",
                "trial", "trial_success", "programming", "refill", "anesthesia", "procedure",
                "pump_location", "visibility", "benefits", "removal", "recovery", "activity",
                "contact"}
    assert expected <= {i[4:] for i in TOPIC_INTENTS}
    rules = (ROOT / "data" / "rules" / "topics.yml").read_text()
    for topic in expected:
        assert f"intent: ask_{topic}\n      - action: utter_{topic}" in rules


@pytest.mark.parametrize("name,variant", list(variations()))
def test_reply_fits_a_chat_bubble(name, variant):
    assert len(render(variant["text"])) < MAX_REPLY_CHARS


@pytest.mark.parametrize("name,variant", list(variations()))
def test_every_number_is_on_the_page(name, variant):
    text = re.sub(r"\{\w+\}", "", variant["text"])
    for number in NUMBER.findall(text):
        assert number in PAGE_NUMBERS or number in SAFETY_NUMBERS.get(name, ()), (name, number)


@pytest.mark.parametrize("name,variant", list(variations()))
def test_every_medical_term_is_on_the_page(name, variant):
    text = variant["text"].lower()
    for gloss, term in TERMS["glosses"].items():
        if gloss in text:
            assert term.lower() in text, f"{name}: '{gloss}' only next to '{term}'"
            text = text.replace(gloss, "")
    for term in TERMS["terms"]:
        if re.search(rf"\b{re.escape(term.lower())}", text):
            assert term.lower() in PAGE_LOWER, f"{name} uses '{term}', which is not on the page"


def test_the_grounding_check_catches_an_invented_fact():
    invented = {"text": "Side effects are rare and it is MRI safe; the battery lasts 7 years."}
    with pytest.raises(AssertionError):
        test_every_medical_term_is_on_the_page("utter_invented", invented)
    with pytest.raises(AssertionError):
        test_every_number_is_on_the_page("utter_invented", invented)


def test_page_answers_name_their_source_section():
    for name, variant in variations():
        if name.startswith("utter_escalate") or name in ("utter_which_topic", "utter_thank"):
            continue
        source = (variant.get("metadata") or {}).get("source", "")
        assert source, f"{name} has no metadata.source"
        for section in source.split(" / "):
            assert section in HEADINGS, f"{name}: '{section}' is not a heading of the page"


def test_phone_number_is_written_once():
    digits = {re.sub(r"\D", "", value)[-10:] for value in PHONE_SLOTS.values()}
    assert digits == {"4702991998"}, PHONE_SLOTS
    assert "4702991998" in re.sub(r"\D", "", PAGE)
    places = []
    for path in ROOT.rglob("*"):
        if any(part in path.parts for part in (".venv", ".git", "node_modules", "models",
                                                "results", "logs", "reports", ".cache")):
            continue
        if path.is_file() and path.suffix in {".py", ".yml", ".yaml", ".js", ".html", ".css",
                                              ".json", ".txt", ".md"}:
            flat = re.sub(r"\D", "", path.read_text(errors="ignore"))
            if "4702991998" in flat and path.parts[len(ROOT.parts)] not in (
                    "content", "tests", "docs") and path.name != "README.md":
                places.append(str(path.relative_to(ROOT)))
    assert places == ["domain/clinic.yml"]


def test_replies_with_the_number_use_the_slot():
    for name, variant in variations():
        assert "299-1998" not in variant["text"], f"{name} writes the number instead of the slot"
