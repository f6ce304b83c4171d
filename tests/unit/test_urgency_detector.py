"""Unit tests of the urgency detector (clinic_nlu/urgency_detector.py): its rules, and the labelled
table through the rules and the safety net together.

The messages here are written for these tests; the labelled table's two halves are only used
through scripts/eval_urgency.py's `evaluate` (the held-out half's texts are never printed).
"""
import time
from collections import Counter

import pytest
import spacy

from clinic_nlu.spacy_pipeline import build
from clinic_nlu.urgency_detector import DEFAULT_PATTERNS, Detection, UrgencyDetector
from clinic_nlu.urgency_safety_net import load_labelled


def level(detector, text):
    found = detector.detect(text)
    return found.level if found else "none"


# ---------------------------------------------------------------- each level
@pytest.mark.parametrize("text, reason", [
    ("I can't breathe", "breathing"),
    ("my wife's lips are turning blue", "breathing"),
    ("he is breathing really slow since the dose went up", "breathing"),
    ("my husband is very drowsy since his refill", "overdose_drowsy"),
    ("dad is so hard to wake up after they turned up his pump", None),
    ("my son won't wake up", "unresponsive"),
    ("she passed out", "unresponsive"),
    ("im having a seizure", "seizure"),
    ("awful headache, a fever and a stiff neck", "meningitis_signs"),
    ("my legs went numb all of a sudden", "leg_weakness"),
    ("i wet myself and my legs feel weak", None),
    ("he has a high fever and he is really confused", None),
    ("I'm having chest pains", "chest_pain"),
    ("i dont want to live anymore", "self_harm"),
    ("I am thinking about suicide", "self_harm"),
])
def test_emergency(detector, text, reason):
    found = detector.detect(text)
    assert found is not None and found.level == "emergency", text
    if reason:
        assert found.reason == reason


@pytest.mark.parametrize("text, reason", [
    ("my pump keeps beeping", "pump_alarm"),
    ("the pump is chirping", "pump_alarm"),
    ("i missed my refill appointment yesterday", "missed_refill"),
    ("my refill is overdue", "missed_refill"),
    ("the pump is empty", "missed_refill"),
    ("my baclofen ran out and my spasms came back", None),
    ("my incision is red and hot", "site_infection"),
    ("there's pus coming out of my incision", "site_infection"),
    ("i have a fever after my pump surgery", "fever_after_procedure"),
    ("my head hurts when i sit up, had the trial on monday", "positional_headache"),
    ("my pain is suddenly much worse", "new_pain"),
    ("my pump flipped over", "pump_problem"),
    ("i got hives after the refill", "refill_reaction"),
])
def test_urgent(detector, text, reason):
    found = detector.detect(text)
    assert found is not None and found.level == "urgent", (text, found)
    if reason:
        assert found.reason == reason


@pytest.mark.parametrize("text", [
    "can I talk to someone",
    "call me back please",
    "i want to speak to the nurse",
    "real person please",
    "get me a human",
])
def test_handoff(detector, text):
    assert detector.detect(text) == Detection("handoff", "ask_person")


def test_emergency_beats_urgent_beats_handoff(detector):
    assert level(detector, "my pump is beeping and i can't breathe") == "emergency"
    assert level(detector, "let me talk to a nurse, my pump is beeping") == "urgent"


# ---------------------------------------------------------------- robustness of wording
@pytest.mark.parametrize("text, expected", [
    ("cant breath", "emergency"),
    ("i cnat breth", "emergency"),
    ("pump keeps beepin", "urgent"),
    ("my pump is beeeeping", "urgent"),
    ("MY PUMP IS ALARMING", "urgent"),
    ("incison is swolen", "urgent"),
    ("i misssed my refil", "urgent"),
    ("hes super drowzy after the refil", "emergency"),
])
def test_typos_slang_case(detector, text, expected):
    assert level(detector, text) == expected


@pytest.mark.parametrize("text, expected", [
    ("my husband is very drowsy since his refill", "emergency"),
    ("my mom cant move her legs", "emergency"),
    ("her pump is beeping", "urgent"),
    ("my dad's incision is leaking", "urgent"),
])
def test_third_person(detector, text, expected):
    assert level(detector, text) == expected


@pytest.mark.parametrize("text, expected", [
    ("how often is the pump refilled? btw the skin near my pump is red and warm", "urgent"),
    ("how often is the pump refilled my incision is red", "urgent"),
    ("what does the trial cost, also my pump keeps beeping", "urgent"),
    ("can i swim with the pump. i cant breathe well", "emergency"),
])
def test_mixed_with_a_question(detector, text, expected):
    assert level(detector, text) == expected


# ---------------------------------------------------------------- must not escalate
@pytest.mark.parametrize("text", [
    "no fever, no redness, just wondering about refills",
    "my pump isn't beeping",
    "the incision is not swollen or red",
    "i don't have any chest pain",
    "he is not drowsy at all",
    "no fever, chills, redness or swelling",
    "I don't have a fever or any redness or swelling at the incision site",
    "Fever: none. Redness: none.",
])
def test_negation(detector, text):
    assert detector.detect(text) is None


@pytest.mark.parametrize("text, expected", [
    ("i don't have a fever but my pump is beeping", "urgent"),
    ("no fever, my incision is red and swollen", "urgent"),
    ("he isn't acting normal and has a high fever and is confused", "emergency"),
    ("i dont know what to do he wont wake up", "emergency"),
    ("i can't tell if he's breathing", "emergency"),
    ("I can't breathe. No one is home", "emergency"),
])
def test_negation_does_not_reach_too_far(detector, text, expected):
    assert level(detector, text) == expected


# a negation inside a sign ("can't bend") is the sign's own: it starts no negated list
@pytest.mark.parametrize("text, expected", [
    ("extreme stiffness everywhere, cant bend any joint, temp 39.8", "emergency"),
    ("rigid all over, can't move his arms, fever", "emergency"),
    ("no fever, chills", "none"),
])
def test_negation_inside_a_sign_starts_no_list(detector, text, expected):
    assert level(detector, text) == expected


# a negated list starts only where the negation covers a sign after it: "without insurance" after
# "the pump" negates no sign, so the clause after its comma is no item of a negated list
@pytest.mark.parametrize("text, expected", [
    ("how much does the pump cost without insurance, and i've been having thoughts of killing "
     "myself lately", "emergency"),
    ("what does a refill cost without insurance, fever 39 and the incision is red", "urgent"),
    ("without fever, chills or redness", "none"),
])
def test_a_negation_starts_a_list_only_before_a_sign(detector, text, expected):
    assert level(detector, text) == expected


# Spanish: the signs and the scopes that matter most have Spanish patterns (checked by the rules
# alone, so that the net's guess cannot hide a missing pattern), and `known_words` keeps everyday
# Spanish from being "corrected" into English pattern words ("esta" had become "usta", a past cue)
@pytest.mark.parametrize("text, expected", [
    ("mi esposo no puede respirar bien, le recargaron la bomba hoy", "emergency"),
    ("mi hija está convulsionando, tiene la bomba de baclofeno", "emergency"),
    ("ya no quiero vivir, quiero morirme", "emergency"),
    ("La bomba está pitando desde esta mañana", "urgent"),
    ("la herida está hinchada y le sale pus", "urgent"),
    ("puedo hablar con una enfermera por favor", "handoff"),
    ("no tengo fiebre, la herida está bien, cuándo es la próxima recarga?", "none"),
    ("qué pasa si la bomba empieza a pitar?", "none"),
    ("la bomba pitó hace meses y ya la arreglaron, todo bien", "none"),
    ("la mía nunca ha sonado, cómo suena la alarma?", "none"),
])
def test_spanish_signs_and_scopes(rules_only, text, expected):
    assert level(rules_only, text) == expected


def test_known_words_are_not_corrected(rules_only):
    assert [t.text for t in rules_only._working_doc("la bomba está pitando desde esta mañana")][5] == "esta"


# an animal's sign is no person's (`animal` scope): in its clause, and in one joined by "and" with
# an `animal_pronouns` subject; not where the animal acts on a person, nor in a person's clause
@pytest.mark.parametrize("text, expected", [
    ("my dog hurt his leg and cant walk on it so i may be late for my appointment", "none"),
    ("my horse kicked the fence and its got a swollen leg, can i reschedule", "none"),
    ("our cat is wheezing and cant breathe properly", "none"),
    ("my cat threw up on the rug and i cant breathe, my chest is so tight", "emergency"),
    ("my dog jumped on my stomach right on top of the pump", "urgent"),
    ("the dog found him having a seizure", "emergency"),
])
def test_an_animals_sign_is_no_persons(detector, text, expected):
    assert level(detector, text) == expected


# the rules: confusion and severe rigidity after a missed refill are the withdrawal emergency
# without a reading (without the missed refill, no rule fires)
@pytest.mark.parametrize("text, expected", [
    ("every muscle locked and she doesnt know where she is, her pump ran dry on monday", "emergency"),
    ("he's stiff as a plank and talking nonsense", "none"),
    ("stiff legs and a bit confused after the missed refill, no fever", "urgent"),
])
def test_withdrawal_without_a_reading(rules_only, text, expected):
    assert level(rules_only, text) == expected


# a list item that starts with "now" (`list_breakers`) reports the present: it ends a negated list
@pytest.mark.parametrize("text, expected", [
    ("Night staff: resident with baclofen ITB, pump alarm earlier not actioned, now T 39.8, rigid, "
     "agitated and disoriented", "emergency"),
    ("no fever, now rigid", "none"),   # "rigid" alone is no rule's sign (the net may differ)
    ("no fever, chills or redness", "none"),
])
def test_a_list_breaker_ends_a_negated_list(rules_only, text, expected):
    """A rule of the scope (the safety net, retrained on every new row, is tested apart)."""
    assert level(rules_only, text) == expected


# a comma-list item after a supposition that names a sign is supposed too; not one that states the
# present, nor one after a supposition that names no sign
@pytest.mark.parametrize("text, expected", [
    ("what if I get a headache, fever and a stiff neck after the implant?", "none"),
    ("what if she gets a fever, chills or a red incision after the implant?", "none"),
    ("suppose the pump alarms, withdrawal and spasms would follow, right?", "none"),
    ("if this is normal ignore me, fever, stiff neck and the worst headache of my life right now",
     "emergency"),
    ("if it matters he's had the pump 3 years, fever 39 and shaking", "urgent"),
    ("not sure if it matters, fever 38.9 and the incision is red", "urgent"),
])
def test_a_supposition_reaches_its_comma_list(detector, text, expected):
    assert level(detector, text) == expected


# "gonna" is tokenized "gon" + "na": the pieces read as "going to"
@pytest.mark.parametrize("text, expected", [
    ("i'm gonna end it tonight", "emergency"),
    ("IM GONNA END IT", "emergency"),
    ("i'm gonna be late for my appointment, can i still come?", "none"),
])
def test_split_contractions_read_as_their_words(detector, text, expected):
    assert level(detector, text) == expected


def test_split_contraction_pieces_apart_stay_as_they_are(detector):
    assert detector.explain("gon na")["words"] == ["gon", "na"]


# the dot of a title ends no sentence: the request goes on past "Dr."
def test_a_title_dot_ends_no_clause(rules_only):
    assert rules_only.explain("Dr. Patel")["words"] == ["dr", "patel"]
    assert level(rules_only, "please have Dr. Patel speak with us") == "handoff"
    assert rules_only.explain("my pump. patel")["words"] == ["my", "pump", ".", "patel"]


@pytest.mark.parametrize("text", [
    "I have a collapsed disc in my lower back, could a pump help?",
    "my pain isn't responding to my medications anymore, is a pump an option",
    "the clinic isn't answering the phone, what are your hours",
    "I can't walk my dog anymore because of my back",
    "i choke on pills, is the pump an alternative",
    "I had an accident at work and hurt my back",
    "my hay fever is bad this time of year",
    "the pump stopped my spasms, love it",
    "I'm tired, how long does a refill take?",
    "I have a cold, can I still come for my refill?",
    "the nurse will call me with the results?",
    "my pump makes an odd noise when i lie on it?",
])
def test_ambiguous_words_do_not_escalate(detector, text):
    found = detector.detect(text)
    assert found is None or found.level != "emergency", (text, found)
    if "odd noise" not in text:
        assert found is None, (text, found)


@pytest.mark.parametrize("text", [
    "what would happen if the pump alarm went off",
    "if i miss a refill what happens",
    "should i worry if my incision is red",
    "what if my pump stops working",
    "in case he gets drowsy after a refill what do we do",
])
def test_hypothetical(detector, text):
    assert detector.detect(text) is None


@pytest.mark.parametrize("text", [
    "does the pump have an alarm?",
    "what if I get a fever after surgery?",
    "is itching a side effect",
    "can the pump cause breathing problems",
    "will i be drowsy after a refill",
    "how do i know if the catheter is kinked",
])
def test_general_questions(detector, text):
    assert detector.detect(text) is None


@pytest.mark.parametrize("text", [
    "i had a fever last week but it's gone",
    "the redness went away",
    "my pump beeped months ago but they fixed it",
    "i had a seizure years ago",
])
def test_past_and_resolved(detector, text):
    assert detector.detect(text) is None


# a sign told in the past ends with a resolution or the person being well anywhere after it
@pytest.mark.parametrize("text", [
    "the site was warm after surgery, the nurse checked it, and it all settled down",
    "i was sleepy for an afternoon after my refill, that was 3 weeks ago and i'm fine",
    "we were late for a refill in december and his stiffness came back, he got refilled the "
    "same day and has been fine",
])
def test_past_sign_resolved_later(detector, text):
    assert detector.detect(text) is None


# ... but the person being well ends no present sign, nor a past one that is back
@pytest.mark.parametrize("text, expected", [
    ("the pump is beeping but i feel fine", "urgent"),
    ("my incision is oozing, i'm fine otherwise", "urgent"),
    ("he was drowsy after the refill, he seemed fine at lunch, now we can't wake him", "emergency"),
    ("the redness went away after surgery but now it's back and it's warm", "urgent"),
])
def test_present_sign_not_resolved_by_wellbeing(detector, text, expected):
    assert level(detector, text) == expected


@pytest.fixture(scope="module")
def rules_only(nlp):
    return UrgencyDetector.from_yaml(DEFAULT_PATTERNS, nlp=nlp, safety_net=False)


# a remedy done (`remedied`: "it was refilled monday") ends a device or refill sign told in the
# past before it, for the reasons marked `remediable` only; it ends no present sign, and no
# emergency told in the past ("had a fit ... pump was refilled thursday")
@pytest.mark.parametrize("text, expected", [
    ("the resident's pump alarmed on sunday, on-call team came and it was refilled monday. "
     "is there an incident form we should fill in?", "none"),
    ("his refill was late on friday and the nurse came and refilled it saturday", "none"),
    ("the pump alarmed on sunday, it was refilled monday and now it's beeping again", "urgent"),
    ("drowsy since it was refilled this morning", "emergency"),
    ("had a fit about 10 min ago, never had one before, pump was refilled thursday", "emergency"),
])
def test_remedy_ends_a_past_device_sign_only(rules_only, text, expected):
    assert level(rules_only, text) == expected


# self_harm ignores the hypothetical scope (a threat counts), but is `reassurable`: where the
# message says the person is safe (`reassured`), a supposed self-harm wording is not escalated;
# a present one still is, and so is a reassurance that is denied
@pytest.mark.parametrize("text, expected", [
    ("sometimes i think about what would happen if i took all my pills but im okay, "
     "i'm not going to do anything", "none"),
    ("if i ever felt like ending it i know to ring the crisis line, but i'm fine, honestly", "none"),
    ("if this goes on i'll kill myself", "emergency"),
    ("i want to die. i'm okay though, don't worry", "emergency"),
    ("i keep thinking i might take all my pills, i'm not okay", "emergency"),
])
def test_reassurance_restores_the_hypothetical_scope_of_self_harm(rules_only, text, expected):
    assert level(rules_only, text) == expected


# overdose_drowsy has `unless_cue: ROUSABLE`: drowsy but easy to wake and answering is a reaction
# (urgent), not a possible overdose; a rousability that is denied or supposed does not count
@pytest.mark.parametrize("text, expected", [
    ("sleepy since the refill but she wakes up easily and answers fine", "urgent"),
    ("sleepy since the refill and she doesn't wake up easily", "emergency"),
    ("sleepy since the refill, if she wakes up fine can she skip lunch?", "emergency"),
    ("drowsy since the refill", "emergency"),
])
def test_a_rousable_person_is_no_possible_overdose(rules_only, text, expected):
    assert level(rules_only, text) == expected


# a longer item of a negated comma list that starts with a sign and offers another one
@pytest.mark.parametrize("text, expected", [
    ("no redness, swelling or discharge at the site, just a small bruise", "none"),
    ("no fever, my incision is red and leaking", "urgent"),
])
def test_negated_list_with_alternatives(detector, text, expected):
    assert level(detector, text) == expected


@pytest.mark.parametrize("text", [
    "nothing helps my back pain, could a pump help?",
    "my pain is getting worse every year, is a pump an option",
    "i have had numbness in my legs for years, am i a candidate",
])
def test_chronic(detector, text):
    assert detector.detect(text) is None


@pytest.mark.parametrize("text", [
    "what is a pain pump",
    "how long does the surgery take",
    "is the procedure painful",
    "will I be asleep for the implant",
    "how long is the recovery after the trial",
    "who can i call with questions",
])
def test_procedure_and_benign_questions(detector, text):
    assert detector.detect(text) is None


# ---------------------------------------------------------------- odd input, Doc input, speed
@pytest.mark.parametrize("text", [
    "", " ", "\n\n\t", "\x00\x01\x02\x1b[31m", "😀" * 500, "🚨🚨🚨 pump 🔔",
    "<script>alert(1)</script><b>hi</b>", "a" * 100_000, "pump " * 20_000,
    "mi bomba está sonando", "我的泵在响", "مضخة", "?!?!...,,,", "\u202e\u200b\ufeff",
    "😀" * 100_000, "!?" * 50_000, "<div>" * 20_000, "x" * 250_000,
    "n't", "_", "@@@ $$$ ###", "'", "-" * 1000,
])
def test_odd_input_never_raises(detector, text):
    t0 = time.perf_counter()
    found = detector.detect(text)
    assert found is None or isinstance(found, Detection)
    assert time.perf_counter() - t0 < 10


def test_non_string_input_never_raises(detector):
    assert detector.detect(None) is None
    assert detector.detect(12345) is None
    assert detector.detect(b"my pump is beeping") == Detection("urgent", "pump_alarm")


def test_long_input_still_finds_the_problem(detector):
    text = "hello there. " * 5000 + "my pump keeps beeping"
    t0 = time.perf_counter()
    assert level(detector, text) == "urgent"
    assert time.perf_counter() - t0 < 5


def test_doc_from_a_separately_loaded_pipeline(detector, nlp, tmp_path):
    build().to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.vocab is not nlp.vocab
    cases = {
        "my husband is very drowsy since his refill": Detection("emergency", "overdose_drowsy"),
        "how does the trial work, my pump keeps beeping": Detection("urgent", "pump_alarm"),
        "HE WONT WAKE UP": Detection("emergency", "unresponsive"),
        "can i speak to a human please": Detection("handoff", "ask_person"),
        "does the pump have an alarm?": None,
    }
    for text, expected in cases.items():
        doc = loaded(text)
        assert detector.detect(doc) == expected, text
        assert detector.detect(doc) == detector.detect(text)
        assert [t.text for t in doc] == [t.text for t in loaded(text)]  # Doc left untouched


def test_pattern_engine_agrees_with_spacy_matcher(detector, eval_urgency):
    """The detector's string matcher gives exactly spaCy Matcher's matches for its patterns,
    on every 8th tuning message and on the first three messages each pattern key matches in
    the engine (spaCy's Matcher takes about 10 ms a message: the whole table took minutes)."""
    from collections import defaultdict

    matcher = detector.spacy_matcher()
    table = [row["text"] for row in load_labelled(eval_urgency.TUNING)]
    texts = table[::8] + [
        "i cnat breth and my pump keeps beepin, also no fever",
        "if my incision gets red n swollen what happens? btw my legs are numb",
        "temp 101.5 after the implant, pain 10/10, can someone call me back",
    ]
    hits = defaultdict(int)
    for text in table:
        keys = [k for k in detector._match(detector._working_doc(text)) if hits[k] < 3]
        for key in keys:
            hits[key] += 1
        if keys:
            texts.append(text)
    for text in texts:
        doc = detector._working_doc(text)
        expected = defaultdict(set)
        for match_id, start, end in matcher(doc):
            expected[detector._nlp.vocab.strings[match_id]].add((start, end))
        assert detector._match(doc) == {k: sorted(v) for k, v in expected.items()}, text


def test_default_pipeline_is_built_when_none_given():
    rules = UrgencyDetector.from_yaml(safety_net=False)  # the net's training is no part of this
    assert rules.detect("my pump is beeping") == Detection("urgent", "pump_alarm")


def test_every_reason_in_the_patterns_file_has_a_known_level():
    import yaml

    config = yaml.safe_load(DEFAULT_PATTERNS.read_text(encoding="utf-8"))
    assert {spec["level"] for spec in config["reasons"].values()} <= {"emergency", "urgent", "handoff"}


# ---------------------------------------------------------------- general rules (generalization)
def test_yaml_words_no_and_on_stay_words(detector):
    """YAML 1.1 would read `no` / `on` in the word lists as booleans."""
    assert "no" in detector._gap_stop
    assert "on" in detector._not_after


@pytest.mark.parametrize("text, expected", [
    # typos: likeliest edit first, a dictionary word over a listed misspelling
    ("my pupm is beeping", "urgent"),
    ("so slepy after the refill i cant stay awake", "emergency"),
    ("chst pain", "emergency"),
    ("my legs are numbb", "emergency"),
    ("the incisoin is swollen", "urgent"),
    ("hes unconsious", "emergency"),
    # a negated verb after the sign, unless it negates the sign's going away
    ("the alarm hasn't gone off", "none"),
    ("my fever never came back after the trial", "none"),
    ("the swelling at my incision hasn't gone down", "urgent"),
    # a question about a reported fact vs a question about facts in general
    ("is it normal that my incision is oozing?", "urgent"),
    ("is it a problem that i missed my refill yesterday?", "urgent"),
    ("is it normal for the incision to ooze?", "none"),
    ("will i get withdrawal if my refill is late", "none"),
    # the subject left out: a statement, not a question
    ("haven't had my refill and it's overdue", "urgent"),
    # a past sign that is back
    ("i had a fever last week and now it's back", "urgent"),
    # "label: value"
    ("fever: 101.2", "urgent"),
    ("refill: missed", "urgent"),
    # a verb's object is no new clause; a new statement is
    ("does baclofen lower the seizure threshold", "none"),
    ("how long is recovery the incision is red", "urgent"),
    # a negation lists only what follows a negated sign
    ("i cant sleep, chest pain", "emergency"),
    ("unable to breathe", "emergency"),
    # how drowsy: very -> possible overdose, a little -> a reaction
    ("a little drowsy since the dose change", "urgent"),
    ("very sleepy since the refill", "emergency"),
    # the thing named earlier
    ("the redness went away but now it's leaking", "urgent"),
    ("when is my next refill? i think i missed it", "urgent"),
    # suppositions and conditions
    ("say my pump alarmed at night, who would i call?", "none"),
    ("headache every time i sit up, goes away lying flat, had the implant monday", "urgent"),
])
def test_general_rules(detector, text, expected):
    assert level(detector, text) == expected, text


@pytest.mark.parametrize("text, expected", [
    # a supposition covers what "and" joins to it
    ("what if i'm at the beach and the pump beeps", "none"),
    ("suppose i'm traveling and my refill is due, who do i call", "none"),
    # "and" before a new verb: the subject left out, a present statement after a past one
    ("my daughter had her implant last week and is running a fever", "urgent"),
    ("he isn't acting normal and has a high fever and is confused", "emergency"),
    # ... and a resolution reaches through it
    ("my dad was dizzy after a dose change last spring but he adjusted and is fine now", "none"),
    # a negated "came back" does not lift the past
    ("i got a rash after a refill years ago but it never came back", "none"),
    ("vomited after my first refill, every refill since has been fine", "none"),
    ("vomiting ever since my first refill", "urgent"),
    # relief or medicine that stops is a pump problem, not a resolution
    ("i think the catheter kinked, my relief just stopped", "urgent"),
    ("the medicine in my pump feels like nothing", "urgent"),
    ("i dont think the pump is giving me any medicine", "urgent"),
    ("i dont think the pump is broken, just asking", "none"),
    # the pump by a lay name or a pronoun, with the pump named elsewhere
    ("the thing in my stomach quit working", "urgent"),
    ("how big is the pump? mine shifted and sits lower now", "urgent"),
    ("is it possible for the catheter to kink", "none"),
    # lay drainage words
    ("green goo on the dressing over my pump", "urgent"),
    ("white stuff coming out of where they put the pump", "urgent"),
    ("is some pus ok at the site? there is more on my gauze today", "urgent"),
    ("what does yellow stuff around an incision mean", "none"),
    # out of medicine, overdue
    ("can i come in for a refill today? im out", "urgent"),
    ("ran dry last night", "urgent"),
    ("im out of town next week, can i move my refill", "none"),
    ("my refill is overdue by a week", "urgent"),
    ("my bill is overdue, who handles payments", "none"),
    # reactions anchored by a dose change or a dated refill
    ("ever since they raised the dose im queasy", "urgent"),
    ("throwing up all day, got my refill yesterday", "urgent"),
    ("is dizziness a side effect of a dose increase", "none"),
    # breath, means, bathroom sensation
    ("struggling to get enough air", "emergency"),
    ("i've been stockpiling my pills", "emergency"),
    ("i have the pills saved and im going to take them all", "emergency"),
    ("can i take them all at once, the pills i mean", "none"),
    ("i can't feel when i need to pee anymore", "emergency"),
    ("had an accident in bed, didnt even know i needed the bathroom", "emergency"),
    ("i had an accident in the car last year", "none"),
    # handoff wording
    ("could a nurse reach out to me today", "handoff"),
    ("can the doctor give me a call when she's free", "handoff"),
    ("my wife would like to talk with a nurse about her upcoming refill", "handoff"),
    ("thanks, the nurse called me back already", "none"),
    ("how do i get in touch with billing", "none"),
    ("any chance a doctor could phone me", "handoff"),
    ("can someone call my husband about my pump", "handoff"),
    ("the baclofen seems weaker since the refill", "urgent"),
    ("no relief needed today, just a question about parking", "none"),
    ("is there enough air in the pump room", "none"),
])
def test_lay_wording_and_sentence_shapes(detector, text, expected):
    assert level(detector, text) == expected, text


@pytest.mark.parametrize("text, expected", [
    # fever and dizziness in lay words; the refill in other words
    ("im freezing then sweating buckets, pump put in tuesday", "urgent"),
    ("got the shivers real bad and my incision is warm", "urgent"),
    ("he has vertigo after his refill yesterday", "urgent"),
    ("i feel off balance since the pump was topped up", "urgent"),
    ("the higher rate is making him really nauseous", "urgent"),
    ("is it normal to get chills after a flu shot?", "none"),
    ("i was hot and cold during the trial but it passed", "none"),
    ("had a fever in march, nothing since", "none"),
    # more pain, medicine not arriving, a way out
    ("my back aches so much more since the weekend", "urgent"),
    ("hurts more and more each hour", "urgent"),
    ("i dont believe im getting any baclofen through the pump", "urgent"),
    ("the only way out of this is to kill myself", "emergency"),
    ("honestly ending it feels like the only option left", "emergency"),
    ("the only way out of this pain is a pump, my doctor says", "none"),
    # a question, then a report about the same sign
    ("is it normal that it hurts to breathe? it's getting worse", "emergency"),
    # no resolution: a state before, so far, otherwise, not better
    ("dad is wetting himself all of a sudden, he was fine last month", "emergency"),
    ("we ran out of baclofen two days ago and he is ok so far", "urgent"),
    ("my incision is leaking, everything else is ok", "urgent"),
    ("my leg pain is getting worse, not better", "urgent"),
    ("the incision leaked a bit last week, otherwise fine", "none"),
    # past, reading, explanations
    ("last time the alarm went off it was the low reservoir, now all good", "none"),
    ("the booklet says the pump alarms when the battery is low", "none"),
    ("the nurse said the numbness was the medicine and it wore off", "none"),
    ("my headache after the implant cleared after the blood patch", "none"),
    ("my muscles feel tight and i have a slight fever, refill is overdue", "urgent"),
    ("my wound looks read and puffy", "urgent"),
    # handoff wording
    ("id like a nurse to go through my results with me", "handoff"),
    ("i'd rather discuss my results with a nurse", "handoff"),
    ("is there a human there? want to talk to one", "handoff"),
    ("i'd like to know how long a refill takes", "none"),
    # own probes after v3
    ("nobody would miss me if i was gone", "emergency"),
    ("i cant do this anymore, i have a plan", "emergency"),
    ("what's the point of anything anymore", "emergency"),
    ("i can't do this anymore with the insurance company", "none"),
    ("feels like someone is sitting on my chest", "emergency"),
    ("theres a bad smell from my incision", "urgent"),
    ("were a week past the refill date", "urgent"),
    ("were there any problems with my last refill?", "none"),
    ("i cant deal with the pump alarm anymore, how do i turn it off", "urgent"),
    ("feels like my head is going to explode, worse when I sit up, had pump put in monday", "urgent"),
    ("could my pump be broken? it's not giving me relief", "urgent"),
    ("is a nurse around to chat", "handoff"),
    ("any humans here?", "handoff"),
    ("are any doctors available on saturdays?", "none"),
    ("is a nurse there during the refill?", "none"),
    ("my pump stoped working", "urgent"),
    ("my mom's fever broke last night and she's eating again", "none"),
    ("the fever went away but it's back again", "urgent"),
    ("on my last visit my incision looked red but the nurse said fine", "none"),
    ("we saw a video about pump alarms", "none"),
    ("the redness was gone but now its spreading again", "urgent"),
    ("is shortness of breath a side effect? because i have it right now", "emergency"),
    ("at my last appointment they said my breathing was fine, i have it checked today", "none"),
    ("his pump hasn't been refilled in over 3 months", "urgent"),
    ("my face is swollen since this morning's refill", "urgent"),
    ("my pump is sitting lower than it used to, feels loose", "urgent"),
    ("the pump sits lower than the old one did, that's how they placed it", "none"),
    ("i think my dad took too much of his pills", "emergency"),
    ("numb from the belly button down", "emergency"),
    ("i'm drowsy from my allergy pills, nothing to do with the pump", "none"),
    ("he's very drowsy after the refill, not from his cold meds", "emergency"),
    ("how can i tell if my pump is empty?", "none"),
    ("how do i know if my incision is infected?", "none"),
    ("how can i tell if my pump is empty? i haven't had a refill in 4 months", "urgent"),
    ("i don't have my refill in 2 weeks, can i move it", "none"),
    ("feel like i have the flu after my pump got filled, achy and hot", "urgent"),
    ("hot and sweaty w chills after the revision", "urgent"),
    ("he is shaking like a leaf since his refill didnt happen", "urgent"),
    ("i had a flu shot after my refill, is that ok?", "none"),
    ("the refill didn't go as planned but all is fine now", "none"),
    ("the kids were shivering at the bus stop this morning", "none"),
    ("he's shivering uncontrollably since the implant", "urgent"),
    ("i would love a person to answer the phone faster lol", "none"),
    ("the pump has been beeping since the last time i called", "urgent"),
    ("it's beeping again like last time", "urgent"),
    ("last time i had a fever it was the flu", "none"),
    ("on my last visit they changed the dose and now i'm throwing up", "urgent"),
    ("they changed my dose, is nausea a side effect?", "none"),
])
def test_v3_families(detector, text, expected):
    assert level(detector, text) == expected, text


@pytest.mark.parametrize("text, expected", [
    # meningitis signs: a neck that won't bend, light hurting the eyes (with fever and headache)
    ("bad headache and a fever, and my neck won't bend at all", "emergency"),
    ("fever of 102, head pounding, the light really hurts my eyes", "emergency"),
    ("i have a fever and headache and bright lights bother me", "emergency"),
    ("the light in the waiting room hurts my eyes", "none"),
    ("my neck won't bend since the fusion years ago, could a pump help?", "none"),
    # a slow breathing rate as a number (a normal one is seen and set aside)
    ("her respiratory rate dropped to 7 after the refill", "emergency"),
    ("he's only breathing 8 times a minute", "emergency"),
    ("his respiratory rate is 16, all normal", "none"),
    ("what is a normal respiratory rate after a refill?", "none"),
    # a patient with a pump seizing (a pump that "seized" is a mechanical failure)
    ("my daughter has a pump and is seizing right now", "emergency"),
    ("he's seizing and won't stop", "emergency"),
    ("the old pump seized and they swapped it years ago", "none"),
    # the number before "temp" / "fever"
    ("she's disoriented with a 103 fever", "emergency"),
    ("running a 101 temp since the implant", "urgent"),
    ("a 98 temp is normal right?", "none"),
    # "back" the body part is no recovery; reactions told across clauses; a misplaced refill
    ("the catheter may have shifted, there's a pulling sensation in my back", "urgent"),
    ("since the refill on monday, i feel awful, clammy and shaky", "urgent"),
    ("ever since they refilled it i feel horrible", "urgent"),
    ("im dizzy and sweaty, my refill was this morning", "urgent"),
    ("my heart has been racing since the dose change", "urgent"),
    ("pain and swelling where the nurse injected the refill", "urgent"),
    ("i think the refill went into the wrong place, it burns", "urgent"),
    ("i feel awful about missing the party, refill went fine", "none"),
    ("my heart races when i climb stairs, what's a pump trial like?", "none"),
    ("will people notice the pump at the beach? also there's redness around it today", "urgent"),
    # handoff: the front office, asking a nurse directly, a callback while all is well
    ("can you put me through to the front desk", "handoff"),
    ("is there a care coordinator i could talk to", "handoff"),
    ("i'd rather ask the doctor directly about the dose", "handoff"),
    ("please have the pump nurse call me, nothing urgent, all fine here", "handoff"),
    ("the receptionist was lovely last time, thanks", "none"),
    ("does the coordinator handle insurance approvals?", "none"),
    # a wound closed and dry; relief by a treatment vs relief lying flat
    ("the wound oozed a bit after surgery but it's clean and dry now", "none"),
    ("my incision is leaking, i keep it clean and dry", "urgent"),
    ("the incision was closed and dry yesterday but today it is oozing", "urgent"),
    ("my headache went away once they gave me the blood patch, all good", "none"),
    ("the headache only went away when i lay flat, had the trial yesterday", "urgent"),
    # asking whether it will recur is no relapse; control regained is no relapse
    ("my catheter kinked in 2020 and they fixed it, can it happen again?", "none"),
    ("i had withdrawal a few years ago, will it come back with the new pump?", "none"),
    ("my baclofen pump failed back in 2019, they swapped it and my spasms are managed again", "none"),
    # a distant date covers what "and" adds in the past tense, not a present or a recent one
    ("back in 2021 my pump ran dry and i had bad withdrawal, it took a week to settle", "none"),
    ("my implant was placed in 2019 and now i have withdrawal symptoms", "urgent"),
    ("we missed the refill last week and he had bad spasms all night", "urgent"),
    # the battery is not the reservoir
    ("the pump beeped for a low battery in march, they replaced it", "none"),
    ("my pump is beeping, the reservoir is low", "urgent"),
    # why something is dangerous, in general
    ("why is a pump infection so dangerous", "none"),
    ("why is an infection around the pump considered serious", "none"),
    ("why is my incision oozing, is that dangerous", "urgent"),
    # signs the rules see and set aside themselves (so the safety net is asked only with its
    # highest threshold, or not at all where they are negated): a cold or
    # the flu by name, a vaccine, someone else shivering, negated site signs, a treatment as
    # the "way out", a refill that is weeks away
    ("my husband has the flu, can i still bring him for his refill tomorrow", "none"),
    ("got my covid booster after the refill, any problem?", "none"),
    ("i have a bad cold and a fever after the implant", "urgent"),
    ("the dog was shivering in the rain on our walk", "none"),
    ("shivering all night since the trial", "urgent"),
    ("my scar is neither red nor swollen", "none"),
    ("the incision is not warm and not puffy", "none"),
    ("no swelling or redness around the pump", "none"),
    ("the skin over the pump is warm and puffy", "urgent"),
    ("i feel trapped and there is only one way out", "emergency"),
    ("the only way out of this pain might be the implant, what do you think", "none"),
    ("the only way out of the garage is on level 2?", "none"),
    ("we don't have his refill for another 3 weeks, is that ok", "none"),
    ("i haven't had my refill in 3 months", "urgent"),
    ("she hasn't gotten her refill in 5 weeks", "urgent"),
])
def test_v4_families(detector, text, expected):
    assert level(detector, text) == expected, text


@pytest.mark.parametrize("text, expected", [
    # "tell" and "between" except an alarm only as a comparison
    ("i need to tell you my pump is beeping", "urgent"),
    ("would you tell me why my pump is beeping please", "urgent"),
    ("I would be grateful if you could tell me why my pump is beeping", "urgent"),
    ("whats the difference between the critical alarm and the low reservoir alarm", "none"),
    ("how do i tell the low battery alarm from the low reservoir alarm", "none"),
    # a supposition about oneself: self-harm escalates, other signs stay supposed
    ("what if i just took all my pills tonight", "emergency"),
    ("what would happen if i took all my pills, but im okay", "none"),
    ("what if i get a fever after surgery?", "none"),
    ("what happens if i miss a refill", "none"),
])
def test_v9_round_families(detector, text, expected):
    assert level(detector, text) == expected, text


@pytest.mark.parametrize("text", [
    "the incision is not swollen or red",
    "I have a cold, can I still come for my refill?",
    "the only way out of this pain is a pump, my doctor says",
    "i don't have my refill in 2 weeks, can i move it",
    "i had a flu shot after my refill, is that ok?",
    "the kids were shivering at the bus stop this morning",
    "my scar is neither red nor swollen",
    "got my covid booster after the refill, any problem?",
])
def test_rules_see_the_sign_they_set_aside(detector, text):
    """These negatives hold a sign word: the rules see it and judge it themselves, and the
    safety net, asked only with its higher threshold, leaves them alone too."""
    assert detector.sign_status(text) != "no sign", text
    assert detector.detect(text) is None, text


# ---------------------------------------------------------------- the labelled table
# The held-out half (v39, 365 messages), written by someone who saw neither the patterns nor the
# earlier sets, and never read while tuning, meets the thresholds: with the rules and the safety
# net, emergency recall 1.0 (103/103), urgent 1.0 (109/109), 2.2% of negatives escalated (3/137).
# (The rules alone: 0.971, 0.991, 0.7%: the net caught 3 emergencies and 1 urgent message.)
# v1 to v38 were each measured once, missed, and were retired into the tuning half
# (clinic_nlu/urgency_examples.yml, figures in its header). v39 was chosen as the held-out half
# before it was measured (commit d33d632). Of seven more blind sets, each measured once as a
# check before it was tuned on, only v41 and v45 met it too (README), so it is a bar met, not a
# proof that no wording is missed.
#
# Beyond the issue's 5%, the held-out negatives may not escalate more often than measured on this
# set (a ratchet: tighten it when the detector improves; never loosen it to make a change pass).
HELD_OUT_MAX_NONE_ESCALATED = 0.022  # 3/137


@pytest.mark.parametrize("half", ["tuning", "heldout"])
def test_labelled_table_thresholds(detector, eval_urgency, half):
    figures = eval_urgency.evaluate(eval_urgency.TUNING if half == "tuning" else eval_urgency.HELDOUT,
                                    detector)
    assert figures.total > 0
    assert figures.recall("emergency") == 1.0, f"{half}: emergency recall {figures.recall('emergency'):.3f}"
    assert figures.recall("urgent") == 1.0, f"{half}: urgent recall {figures.recall('urgent'):.3f}"
    assert figures.none_escalated_share <= 0.05, (
        f"{half}: {figures.none_escalated}/{figures.none_total} none messages escalate")
    if half == "heldout":
        assert figures.none_escalated_share <= HELD_OUT_MAX_NONE_ESCALATED, (
            f"{figures.none_escalated}/{figures.none_total} held-out negatives escalate")
        assert figures.errors == []  # held-out texts are never kept


# The issue asks for a table of at least 250 messages, at least 80 of them tricky negatives and
# at least 30 mixed, half of it written first as the held-out part.
TRICKY = {"negation", "hypothetical", "general", "past", "chronic"}


@pytest.mark.parametrize("half, least", [("tuning", 125), ("heldout", 125)])
def test_each_half_of_the_table_is_as_large_as_the_issue_asks(eval_urgency, half, least):
    rows = load_labelled(eval_urgency.TUNING if half == "tuning" else eval_urgency.HELDOUT)
    kinds = Counter(row.get("kind") for row in rows)
    assert len(rows) >= least
    assert sum(kinds[kind] for kind in TRICKY) >= 40, kinds
    assert kinds["mixed"] >= 15, kinds
    assert {row["level"] for row in rows} == {"emergency", "urgent", "handoff", "none"}
