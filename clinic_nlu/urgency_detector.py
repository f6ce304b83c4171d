"""Detector of PRESENT urgent problems in a visitor's message: rules, and a learned safety net.

All words and patterns live in urgency_patterns.yml (see its header for the pattern syntax and
the scope rules); this module compiles them into spaCy Matcher token patterns and applies them:

1. The message's tokens (a Doc is used as it is tokenized, never re-tokenized) are copied,
   lower-cased and lightly normalized (letter runs, "beepin" -> "beeping", "gon" "na" -> "going"
   "to", one-edit typos of pattern words, tried likeliest edit first; "fever: 101" reads
   "fever is 101"), into a Doc of the detector's own pipeline, which the lookup lemmatizer fills.
   So a Doc from any copy of the pipeline (another Vocab) works the same as a string.
2. The patterns are matched on the token strings (LOWER / LEMMA) by `_PatternSet`, which gives
   the same matches as spacy.matcher.Matcher with the same patterns (`spacy_matcher()` builds
   one; a unit test compares them) but only tries a pattern where its first word occurs, so it
   stays well under a millisecond: spaCy's Matcher calls a Python predicate per token for every
   IN / NOT_IN set. Scope cues are found the same way; the message is split into clauses.
3. A reason match counts unless a scope rule suppresses it (negation, hypothetical, general
   question, past, chronic, resolved); all_of rules need every group to count somewhere.
4. The highest level found wins: emergency > urgent > handoff.
5. The learned safety net (urgency_safety_net.py, built by `from_yaml`) may then raise the
   result: escalate a message no rule fired on (a wording the patterns do not list), or make an
   urgent detection an emergency. It never lowers one.

Pure Python + spaCy + scikit-learn; no Rasa import (clinic_nlu/urgency_component.py wraps it for
Rasa).
"""
import bisect
import logging
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, FrozenSet, Iterable, List, Optional, Sequence, Set, Tuple, Union

import yaml
from spacy.language import Language
from spacy.matcher import Matcher
from spacy.tokens import Doc

from clinic_nlu.urgency_safety_net import (SafetyNet, SafetyNetSettings, decide, load_labelled,
                                          load_nlu_examples)

logger = logging.getLogger(__name__)

DEFAULT_PATTERNS = Path(__file__).with_name("urgency_patterns.yml")
LEVELS = ("emergency", "urgent", "handoff")
LEVEL_RANK = {level: rank for rank, level in enumerate(LEVELS)}
SAFETY_NET_REASON = "safety_net"   # the reason code of an escalation added by the safety net
SCOPES = ("negation", "hypothetical", "future", "general", "past", "past_recent", "chronic",
          "chronic_weak", "candidacy", "resolved", "recovered", "animal")
# Scope cue lists of the patterns file that are compiled into the Matcher.
# Each may have a "<name>_exceptions" list: a cue overlapping one of those does not count.
CUE_LISTS = ("negation", "negation_after", "hypothetical", "future", "general", "present_statement",
             "overrides_strong", "overrides_aspect", "overrides_chronic", "past", "past_recent",
             "chronic", "chronic_weak", "candidacy", "resolved", "resolved_weak", "recovered",
             "relapse", "returned", "supposition", "past_tense", "present_tense", "remedied",
             "reassured", "animal")
SENTENCE_PUNCT = {".", "!", "?", ";", ":", ",", "…", "..", "...", "?!", "!?", "(", ")",
                  "[", "]", "/", "|", "•", "*", '"', "“", "”"}
MAX_CHARS = 200_000          # longer input is cut (never an exception)
MAX_WORD_FOR_TYPOS = 30      # longer "words" are not typo-corrected (it is quadratic)
PREDICATE_LOOKAHEAD = 8      # words after a soft break in which its clause's verb is looked for
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")
_RUNS = re.compile(r"(\w)\1{2,}")
# spaCy's tokenizer is quadratic on a long run without spaces ("😀" * 100000): such runs are
# broken up before tokenizing (no word of interest is that long)
_LONG_RUN = re.compile(r"\S{200}")


@dataclass(frozen=True)
class Detection:
    level: str   # "emergency" | "urgent" | "handoff"
    reason: str  # a reason code from the patterns file


@dataclass
class _Group:
    key: str
    context: bool
    anywhere: bool = False   # a context match counts in any clause


@dataclass
class _Rule:
    groups: List[_Group]          # one group: any match fires; several: all_of
    whole_message: Set[Tuple[str, ...]]


@dataclass
class _Reason:
    name: str
    level: str
    rules: List[_Rule]
    ignore: Set[str]
    chronic_sensitive: bool
    request_ok: bool
    except_key: Optional[str]
    remediable: bool = False   # a `remedied` cue ends its signs told in the past
    reassurable: bool = False  # a `reassured` cue in the message restores the hypothetical scope
    unless_key: Optional[str] = None  # a match of this cue, stated, keeps the reason from firing


# Scope check of a context match in another clause: only questions and suppositions count.
_CONTEXT_REASON = _Reason("context", "urgent", [],
                          {"negation", "past", "past_recent", "chronic", "chronic_weak",
                           "candidacy", "resolved"}, False, False, None)
# Scope check of an `unless_cue` match: it counts unless negated or supposed ("if she can't
# wake easily" and "she doesn't wake easily" keep the reason).
_UNLESS_REASON = _Reason("unless", "urgent", [], set(SCOPES) - {"negation", "hypothetical"},
                         False, False, None)


class PatternError(ValueError):
    """The patterns file is malformed."""


class _PatternLoader(yaml.SafeLoader):
    """YAML 1.1 reads the words no / yes / on / off as booleans, which silently turned "no" in
    `gap_stop` and "on" in `not_after` into False / True: here only true / false are booleans."""


_PatternLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_PatternLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


class UrgencyDetector:
    def __init__(self, config: Dict[str, Any], nlp: Language) -> None:
        self._nlp = nlp
        self._lemmatizer = nlp.get_pipe("lemmatizer") if "lemmatizer" in nlp.pipe_names else None
        table = None
        if self._lemmatizer is not None and hasattr(self._lemmatizer, "lookups"):
            try:
                table = self._lemmatizer.lookups.get_table("lemma_lookup")
            except KeyError:
                table = None
        self._lemma_table = table
        self._config = config
        settings = config.get("settings") or {}
        self._neg_window = int(settings.get("negation_window", 5))
        self._typo_min = int(settings.get("typo_min_length", 5))
        self._typo_swap_min = int(settings.get("typo_transposition_min_length", 4))
        self._words = {k: [str(w).lower() for w in v] for k, v in (config.get("words") or {}).items()}
        self._macros = {k: [str(a) for a in v] for k, v in (config.get("macros") or {}).items()}
        self._lemma_keep = {str(w).lower() for w in config.get("lemma_keep") or []}
        self._whole_ignore = {str(w).lower() for w in config.get("whole_message_ignore") or []}
        self._contractions = {tuple(str(k).lower().split()): [str(w).lower() for w in v]
                              for k, v in (config.get("contractions") or {}).items()}
        self._gap_stop = sorted({str(w).lower() for w in config.get("gap_stop") or []})
        self._vocab_words: Set[str] = set()
        self._word_specs: Dict[str, Set[int]] = defaultdict(set)   # word -> token specs using it
        self._n_specs = 0
        self._patterns = _PatternSet()
        self._compile_clauses(config.get("clauses") or {})
        self._compile_scope(config.get("scope") or {})
        cues = config.get("cues") or {}
        self._cue_keys: Dict[str, str] = {}
        for name, patterns in cues.items():
            key = f"cue:{name}"
            self._add(key, patterns)
            self._cue_keys[name] = key
        self._reasons: List[_Reason] = []
        for name, spec in (config.get("reasons") or {}).items():
            self._reasons.append(self._compile_reason(name, spec))
        self._reasons.sort(key=lambda r: LEVEL_RANK[r.level])  # stable: file order within a level
        # keys of the sign patterns (not context) of the emergency and urgent reasons
        self._sign_keys = frozenset(g.key for r in self._reasons if r.level != "handoff"
                                    for rule in r.rules for g in rule.groups if not g.context)
        self._known_words = self._build_known_words()
        self._typo_index = self._build_typo_index()
        self._norm_cache: Dict[str, str] = {}
        self._split_cache: Dict[str, List[str]] = {}
        self._safety_net: Optional[SafetyNet] = None   # set by from_yaml

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_yaml(cls, path: Path = DEFAULT_PATTERNS, nlp: Optional[Language] = None,
                  safety_net: bool = True) -> "UrgencyDetector":
        """The rules of the patterns file, plus the learned safety net of its `safety_net`
        section (trained here on its examples and the NLU training examples, about half a
        minute) unless safety_net=False."""
        with open(path, encoding="utf-8") as handle:
            config = yaml.load(handle, Loader=_PatternLoader)
        if nlp is None:
            from clinic_nlu.spacy_pipeline import build

            nlp = build()
        detector = cls(config, nlp)
        net_config = config.get("safety_net")
        if safety_net and net_config:
            folder = Path(path).parent
            examples = (load_labelled(folder / net_config["examples"])
                        + load_nlu_examples(folder / net_config["nlu_examples"],
                                            net_config["nlu_levels"]))
            texts = [row["text"] for row in examples]
            detector._safety_net = SafetyNet.fit(
                texts, [detector.scope_cues(text) for text in texts],
                [row["level"] for row in examples], SafetyNetSettings.from_config(net_config))
        return detector

    def _lemma(self, word: str) -> str:
        if self._lemma_table is None or word in self._lemma_keep:
            return word
        return self._lemma_table.get(word, word)

    def _expand_words(self, spec: str) -> List[str]:
        words: List[str] = []
        for item in spec.split("|"):
            if not item:
                continue
            if item.startswith("@"):
                if item[1:] not in self._words:
                    raise PatternError(f"unknown word list {item}")
                words.extend(self._words[item[1:]])
            else:
                words.append(item.lower())
        return words

    def _expand_macros(self, pattern: str) -> List[str]:
        tokens = pattern.split()
        for i, tok in enumerate(tokens):
            if tok.startswith("$"):
                name = tok[1:]
                if name not in self._macros:
                    raise PatternError(f"unknown macro {tok} in {pattern!r}")
                out: List[str] = []
                for alt in self._macros[name]:
                    out.extend(self._expand_macros(" ".join(tokens[:i] + [alt] + tokens[i + 1:])))
                return out
        return [pattern]

    def _token_spec(self, tok: str) -> List[Dict[str, Any]]:
        if tok.startswith("_") and tok[1:].isdigit():
            gap = {"LOWER": {"NOT_IN": self._gap_stop}, "IS_PUNCT": False, "IS_SPACE": False, "OP": "?"}
            return [dict(gap) for _ in range(int(tok[1:]))]
        if tok == "*":
            return [{"IS_PUNCT": False, "IS_SPACE": False}]
        if tok == "#":
            return [{"LIKE_NUM": True}]
        if len(tok) > 2 and tok.startswith("/") and tok.endswith("/"):
            return [{"LOWER": {"REGEX": tok[1:-1]}}]
        optional = len(tok) > 1 and tok.endswith("?")
        if optional:
            tok = tok[:-1]
        literal = tok.startswith("=")
        if literal:
            tok = tok[1:]
        words = self._expand_words(tok)
        if not words:
            raise PatternError(f"empty token spec {tok!r}")
        self._n_specs += 1
        for word in words:
            if word.isalpha():
                self._vocab_words.add(word)
                self._word_specs[word].add(self._n_specs)
        if literal:
            spec: Dict[str, Any] = {"LOWER": {"IN": sorted(set(words))}}
        else:
            spec = {"LEMMA": {"IN": sorted(set(words) | {self._lemma(w) for w in words})}}
        if optional:
            spec["OP"] = "?"
        return [spec]

    def _compile_pattern(self, pattern: str) -> List[List[Dict[str, Any]]]:
        if not isinstance(pattern, str) or not pattern.strip():
            raise PatternError(f"bad pattern {pattern!r}")
        compiled = []
        for expanded in self._expand_macros(pattern):
            tokens: List[Dict[str, Any]] = []
            for tok in expanded.split():
                tokens.extend(self._token_spec(tok))
            # optional tokens at either end only widen the span: drop them
            while tokens and tokens[0].get("OP") == "?":
                tokens.pop(0)
            while tokens and tokens[-1].get("OP") == "?":
                tokens.pop()
            if not tokens:
                raise PatternError(f"pattern {pattern!r} has no required token")
            compiled.append(tokens)
        return compiled

    def _add(self, key: str, patterns: Iterable[str]) -> None:
        compiled = []
        for pattern in patterns or []:
            compiled.extend(self._compile_pattern(pattern))
        for tokens in compiled:
            self._patterns.add(key, tokens)

    def spacy_matcher(self, vocab=None) -> Matcher:
        """A spacy.matcher.Matcher with every compiled pattern (match ids are the keys)."""
        matcher = Matcher(vocab or self._nlp.vocab)
        for key, patterns in self._patterns.by_key.items():
            matcher.add(key, patterns)
        return matcher

    def _phrase_tuple(self, phrase: Any) -> Tuple[str, ...]:
        if isinstance(phrase, (list, tuple)):
            words = [str(w).lower() for w in phrase]
        else:
            words = [t.lower_ for t in self._nlp.make_doc(str(phrase)) if not t.is_punct]
        return tuple(words)

    def _compile_clauses(self, clauses: Dict[str, Any]) -> None:
        low = lambda key: {str(w).lower() for w in clauses.get(key) or []}
        self._hard_breaks = low("hard_breaks")
        self._and_words = low("and_words")
        self._subject_starts = low("subject_starts")
        self._soft_breaks = low("soft_breaks")
        self._not_after = low("not_after")
        self._label_marks = low("label_marks")
        self._need_predicate = low("soft_breaks_need_predicate")
        self._predicates = low("predicates")
        self._abbreviations = low("abbreviations")

    def _compile_scope(self, scope: Dict[str, Any]) -> None:
        for name in CUE_LISTS:
            self._add(f"scope:{name}", scope.get(name) or [])
            self._add(f"scope:{name}_exceptions", scope.get(f"{name}_exceptions") or [])
        self._general_openers = {str(w).lower() for w in scope.get("general_openers") or []}
        self._personal_openers = [self._phrase_tuple(p) for p in scope.get("personal_openers") or []]
        self._request_openers = [self._phrase_tuple(p) for p in scope.get("request_openers") or []]
        self._fillers = {str(w).lower() for w in scope.get("fillers") or []}
        self._list_continuers = {str(w).lower() for w in scope.get("list_continuers") or []}
        self._animal_pronouns = {str(w).lower() for w in scope.get("animal_pronouns") or []}
        self._list_alternatives = {str(w).lower() for w in scope.get("list_alternatives") or []}
        self._list_breakers = {str(w).lower() for w in scope.get("list_breakers") or []}
        self._negation_barriers = {str(w).lower() for w in scope.get("negation_barriers") or []}
        self._predicate_aux = {str(w).lower() for w in scope.get("negated_predicate_aux") or []}
        self._predicate_neg = {str(w).lower() for w in scope.get("negated_predicate_words") or []}
        self._opener_negations = {str(w).lower() for w in scope.get("opener_negations") or []}
        self._question_subjects = {str(w).lower() for w in scope.get("question_subjects") or []}
        self._and_question_subjects = {str(w).lower()
                                       for w in scope.get("and_question_subjects") or []}

    def _group(self, spec: Any, owner: str, index: str) -> _Group:
        if not isinstance(spec, dict):
            raise PatternError(f"{owner}: bad group {spec!r}")
        context = bool(spec.get("context", False))
        anywhere = bool(spec.get("anywhere", False))
        if "cue" in spec:
            if spec["cue"] not in self._cue_keys:
                raise PatternError(f"{owner}: unknown cue {spec['cue']}")
            return _Group(self._cue_keys[spec["cue"]], context, anywhere)
        key = f"reason:{owner}:{index}"
        self._add(key, spec.get("patterns") or [])
        if "except" in spec:
            self._add(f"{key}:except", spec["except"])
        return _Group(key, context, anywhere)

    def _compile_reason(self, name: str, spec: Dict[str, Any]) -> _Reason:
        level = spec.get("level")
        if level not in LEVEL_RANK:
            raise PatternError(f"reason {name}: bad level {level!r}")
        rules: List[_Rule] = []
        except_patterns: List[str] = []
        for r_index, rule in enumerate(spec.get("rules") or []):
            except_patterns.extend(rule.get("except") or [])
            if "whole_message" in rule:
                phrases = {tuple(w for w in self._phrase_tuple(p) if w not in self._whole_ignore)
                           for p in rule["whole_message"]}
                rules.append(_Rule([], phrases))
            elif "all_of" in rule:
                groups = [self._group(g, name, f"{r_index}.{g_index}")
                          for g_index, g in enumerate(rule["all_of"])]
                rules.append(_Rule(groups, set()))
            else:
                group = self._group({k: v for k, v in rule.items() if k != "except"}, name, str(r_index))
                rules.append(_Rule([group], set()))
        except_patterns.extend(spec.get("except") or [])
        except_key = None
        if except_patterns:
            except_key = f"except:{name}"
            self._add(except_key, except_patterns)
        ignore = set(spec.get("ignore_scopes") or [])
        unknown = ignore - set(SCOPES)
        if unknown:
            raise PatternError(f"reason {name}: unknown scopes {sorted(unknown)}")
        unless = spec.get("unless_cue")
        if unless is not None and unless not in self._cue_keys:
            raise PatternError(f"reason {name}: unknown unless_cue {unless!r}")
        return _Reason(name, level, rules, ignore, bool(spec.get("chronic_sensitive")),
                       bool(spec.get("request_ok")), except_key, bool(spec.get("remediable")),
                       bool(spec.get("reassurable")),
                       self._cue_keys[unless] if unless is not None else None)

    def _build_known_words(self) -> Set[str]:
        """Words the typo correction keeps: English stop words, the `known_words` of the
        patterns file (Spanish: "esta" is no typo of a pattern word) and the lemmas of the
        lookup table (its keys are hashed; `_is_known` checks those)."""
        known = {str(w).lower() for w in self._nlp.Defaults.stop_words}
        known |= {str(w).lower() for w in self._config.get("known_words") or []}
        if self._lemma_table is not None:
            known |= {str(v) for v in self._lemma_table.values()}
        return known

    def _is_known(self, word: str) -> bool:
        return word in self._known_words or (self._lemma_table is not None and word in self._lemma_table)

    def _build_typo_index(self) -> Dict[str, Set[str]]:
        """Deletion index (one letter dropped) over the pattern vocabulary."""
        index: Dict[str, Set[str]] = defaultdict(set)
        for word in self._vocab_words:
            if len(word) < self._typo_swap_min:
                continue
            index[word].add(word)
            for i in range(len(word)):
                index[word[:i] + word[i + 1:]].add(word)
        return index

    # ------------------------------------------------------------------ normalization
    def _correct(self, word: str) -> str:
        """One-edit typo of a pattern word -> that word; anything else is kept. Edits are tried
        from the likeliest slip down: swapped letters ("pupm"), a doubled letter missed or added
        ("slepy", "numbb"), a letter missed ("chst"), added, changed; the first kind of edit
        that reaches a pattern word decides (if it reaches two unrelated words, the word
        is kept: "waek" may be "weak" or "wake")."""
        if word in self._vocab_words or self._is_known(word) or not word.isalpha():
            return word
        n = len(word)
        swaps: Set[str] = set()
        doubles: Set[str] = set()
        missed: Set[str] = set()
        added: Set[str] = set()
        changed: Set[str] = set()
        if n >= self._typo_swap_min:
            for i in range(n - 1):
                swapped = word[:i] + word[i + 1] + word[i] + word[i + 2:]
                if swapped in self._vocab_words:
                    swaps.add(swapped)
        if n >= self._typo_min:
            for w in self._typo_index.get(word, ()):   # a letter dropped
                if len(w) == n + 1:
                    doubled = any(w[i] == w[i + 1] and w[:i] + w[i + 1:] == word for i in range(n))
                    (doubles if doubled else missed).add(w)
            for i in range(n):
                deleted = word[:i] + word[i + 1:]
                if deleted in self._vocab_words and n - 1 >= self._typo_min:   # a letter added
                    doubled = (i > 0 and word[i - 1] == word[i]) or (i + 1 < n and word[i + 1] == word[i])
                    (doubles if doubled else added).add(deleted)
                changed |= {w for w in self._typo_index.get(deleted, ())   # a letter changed
                           if len(w) == n and sum(a != b for a, b in zip(w, word)) == 1}
        for candidates in (swaps, doubles, missed, added, changed):
            if candidates:
                return self._pick(candidates) or word
        return word

    def _pick(self, candidates: Set[str]) -> Optional[str]:
        """The correction among equally likely ones, or None if they mean different things."""
        if len({self._lemma(c) for c in candidates}) == 1:
            return sorted(candidates)[0]
        # one of them stands wherever the others do: "unconsious" is one edit from
        # "unconscious" and from the listed misspelling "unconcious", which it may replace
        specs = {c: self._word_specs.get(c, set()) for c in candidates}
        for c in sorted(candidates):
            if all(specs[o] <= specs[c] for o in candidates):
                return c
        # a dictionary word: "incisoin" -> "incision", not the listed "incison"
        known = {c for c in candidates if self._is_known(c)}
        if known and len({self._lemma(c) for c in known}) == 1:
            return sorted(known)[0]
        return None

    def _undouble(self, word: str) -> str:
        """A doubled letter is the commonest typo and the only one short words get corrected
        for ("redd", "numbb", "outt"): drop one copy if that gives a pattern or dictionary word."""
        for i in range(1, len(word)):
            if word[i] == word[i - 1]:
                single = word[:i] + word[i + 1:]
                if single in self._vocab_words or self._is_known(single):
                    return single
        return word

    def _normalize(self, text: str) -> str:
        cached = self._norm_cache.get(text)
        if cached is not None:
            return cached
        word = text.lower().replace("’", "'").replace("‘", "'")
        if word and not word.isspace():
            if _RUNS.search(word):
                two = _RUNS.sub(r"\1\1", word)
                one = _RUNS.sub(r"\1", word)
                word = one if (one in self._vocab_words or self._is_known(one)) and two not in self._vocab_words else two
            if word.isalpha() and word not in self._vocab_words and not self._is_known(word):
                word = self._undouble(word)
            if word.endswith("in") and len(word) >= 5 and word.isalpha() and word not in self._vocab_words:
                ing = word + "g"
                # a pattern word first, then a typo of one ("incisin" is "incision", not
                # "incising"), then any dictionary word
                if ing in self._vocab_words:
                    word = ing
                elif self._is_known(ing) and not self._is_known(word):
                    corrected = self._correct(word) if len(word) <= MAX_WORD_FOR_TYPOS else word
                    word = corrected if corrected != word else ing
            if self._typo_swap_min <= len(word) <= MAX_WORD_FOR_TYPOS:
                word = self._correct(word)
        if len(self._norm_cache) > 50_000:
            self._norm_cache.clear()
        self._norm_cache[text] = word
        return word

    def _split_token(self, text: str) -> List[str]:
        """A token with capitals ("CAN'T", which the tokenizer does not split) is split the way
        its lower-case form is; any other token is kept as it is."""
        lower = text.lower()
        if lower == text or len(text) > 40:
            return [text]
        pieces = self._split_cache.get(text)
        if pieces is None:
            pieces = [t.text for t in self._nlp.make_doc(lower)] or [text]
            if len(self._split_cache) > 10_000:
                self._split_cache.clear()
            self._split_cache[text] = pieces
        return pieces

    def _working_doc(self, text_or_doc: Union[str, Doc]) -> Doc:
        """A lower-cased, normalized, lemmatized copy of the message in the detector's vocab.
        A Doc keeps its tokenization (no re-tokenizing of the text)."""
        pairs: List[Tuple[str, bool]] = []
        if isinstance(text_or_doc, Doc):
            for token in text_or_doc:
                pieces = self._split_token(token.text)
                pairs.extend((piece, False) for piece in pieces[:-1])
                pairs.append((pieces[-1], bool(token.whitespace_)))
        else:
            text = _CONTROL.sub(" ", unicodedata.normalize("NFKC", text_or_doc[:MAX_CHARS]))
            text = _LONG_RUN.sub(lambda m: m.group(0) + " ", text)
            pairs = [(t.text, bool(t.whitespace_)) for t in self._nlp.make_doc(text.lower())]
        pairs = self._read_contractions([(text, space) for text, space in pairs if text])
        pairs = self._drop_title_dots(pairs)
        words, spaces = [], []
        for k, (text, space) in enumerate(pairs):
            words.append("is" if self._is_label_mark(pairs, k) else self._normalize(text))
            spaces.append(space)
        doc = Doc(self._nlp.vocab, words=words, spaces=spaces)
        if self._lemmatizer is not None:
            doc = self._lemmatizer(doc)
            for token in doc:
                if token.lower_ in self._lemma_keep:
                    token.lemma_ = token.lower_
        return doc

    def _read_contractions(self, pairs: List[Tuple[str, bool]]) -> List[Tuple[str, bool]]:
        """The tokenizer splits "gonna" into "gon" + "na": two such pieces with no space between
        read as the words they stand for (`contractions`), so "gonna end it" is "going to end it"."""
        for k in range(len(pairs) - 1):
            (first, space), (second, second_space) = pairs[k], pairs[k + 1]
            full = None if space else self._contractions.get((first.lower(), second.lower()))
            if full:
                pairs[k], pairs[k + 1] = (full[0], space), (full[1], second_space)
        return pairs

    def _drop_title_dots(self, pairs: List[Tuple[str, bool]]) -> List[Tuple[str, bool]]:
        """ "please have Dr. Patel call me": the dot right after a title (`abbreviations`) ends
        no sentence, so it is dropped and the clause goes on."""
        kept: List[Tuple[str, bool]] = []
        for text, space in pairs:
            if text == "." and kept and not kept[-1][1] and kept[-1][0].lower() in self._abbreviations:
                kept[-1] = (kept[-1][0], space)
            else:
                kept.append((text, space))
        return kept

    def _is_label_mark(self, pairs: List[Tuple[str, bool]], k: int) -> bool:
        """ "fever: 101", "incision - red, hot": a colon or a free-standing dash between a word
        and the next reads as "is" (so "refill: missed" is "refill is missed")."""
        text, space = pairs[k]
        if text not in self._label_marks or k == 0 or k + 1 >= len(pairs) or not space:
            return False
        before, before_space = pairs[k - 1]
        if not before[-1:].isalnum():
            return False
        return text == ":" or before_space   # a dash needs a space on both sides

    # ------------------------------------------------------------------ clauses
    def _clauses(self, words: Sequence[str], punct: Sequence[bool],
                 lemmas: Optional[Sequence[str]] = None) -> Tuple[List[int], List[int]]:
        """Clause index of every token: with soft breaks, and with hard breaks only.
        `not_after` words are checked by lemma too, so that every inflection of a listed verb
        ("causes", "makes") keeps its object in its clause."""
        lemmas = lemmas or words
        clause_of = [0] * len(words)
        hard_of = [0] * len(words)
        clause = 0
        hard = 0
        started = False   # the current clause has a word already
        prev = prev_lemma = ""
        for i, word in enumerate(words):
            boundary_token = (punct[i] and word in SENTENCE_PUNCT) or "\n" in word or word in self._hard_breaks
            if boundary_token:
                if started:
                    clause += 1
                    hard += 1
                    started = False
                clause_of[i], hard_of[i] = clause, hard
                prev = prev_lemma = ""
                continue
            if punct[i] or word.isspace():
                clause_of[i], hard_of[i] = clause, hard
                continue
            nxt = words[i + 1] if i + 1 < len(words) else ""
            if started and word in self._and_words and nxt in self._subject_starts:
                clause += 1
                hard += 1
                started = False
                clause_of[i], hard_of[i] = clause, hard
                prev, prev_lemma = word, lemmas[i]
                continue
            if (started and word in self._soft_breaks and prev and prev not in self._not_after
                    and prev_lemma not in self._not_after
                    and (word not in self._need_predicate or self._predicate_follows(words, punct, i))):
                clause += 1
            clause_of[i], hard_of[i] = clause, hard
            started = True
            prev, prev_lemma = word, lemmas[i]
        return clause_of, hard_of

    def _predicate_follows(self, words: Sequence[str], punct: Sequence[bool], i: int) -> bool:
        """ "how long is recovery the incision is red" breaks before "the"; "does baclofen lower
        the seizure threshold" does not: the words after "the" must say something (a verb of
        `predicates`) before the next break, within a few words (so a long input stays linear)."""
        for j in range(i + 1, min(i + 1 + PREDICATE_LOOKAHEAD, len(words))):
            word = words[j]
            if punct[j] or word in self._hard_breaks or word in self._and_words:
                return False
            if word in self._predicates:
                return True
        return False

    # ------------------------------------------------------------------ detection
    def detect(self, text_or_doc: Union[str, Doc]) -> Optional[Detection]:
        """The highest-level present urgent problem in the message, or None."""
        try:
            if text_or_doc is None:
                return None
            if isinstance(text_or_doc, bytes):
                text_or_doc = text_or_doc.decode("utf-8", "replace")
            if not isinstance(text_or_doc, (str, Doc)):
                text_or_doc = str(text_or_doc)
            doc = self._working_doc(text_or_doc)
            if len(doc) == 0:
                return None
            text = text_or_doc.text if isinstance(text_or_doc, Doc) else text_or_doc
            return self._detect(doc, text)
        except Exception:  # never let odd input break the conversation
            logger.exception("urgency detection failed")
            return None

    def _match(self, doc: Doc) -> Dict[str, List[Tuple[int, int]]]:
        return self._patterns.match(doc)

    def explain(self, text: str) -> Dict[str, Any]:
        """Debug view: normalized words, clauses, raw matches."""
        doc = self._working_doc(text)
        words = [t.text for t in doc]
        clause_of, _ = self._clauses(words, [t.is_punct for t in doc], [t.lemma_ for t in doc])
        matches = [(k, s, e, doc[s:e].text) for k, spans in self._match(doc).items() for s, e in spans]
        net = (self._safety_net.escalation_probability(text, self.scope_cues(text))
               if self._safety_net else None)
        return {"words": words, "lemmas": [t.lemma_ for t in doc], "clauses": clause_of,
                "matches": matches, "safety_net": net, "detection": self._detect(doc, text)}

    def scope_cues(self, text: str) -> FrozenSet[str]:
        """Names of the scope cue lists with a match in the message (the safety net's input)."""
        doc = self._working_doc(text)
        return self._cue_names(self._match(doc)) if len(doc) else frozenset()

    def sign_status(self, text: str) -> str:
        """"no sign" (no sign pattern matched), "seen" (a sign matched in scope), "denied" (every
        sign matched was negated or an animal's) or "set aside" (the rules put every sign out of
        scope or excepted it, some for another reason): whether the safety net may speak where
        no rule fired, and with which threshold (scripts/replay_safety_net.py)."""
        doc = self._working_doc(text)
        if not len(doc):
            return "no sign"
        ctx, _ = self._read(doc)
        return self._status(ctx, self._any_sign(ctx.by_key))[0]

    def _status(self, ctx: "_Context", any_sign: bool) -> Tuple[str, FrozenSet[str]]:
        """sign_status of a read message, and the levels of the signs seen in scope."""
        if not any_sign:
            return "no sign", frozenset()
        seen, aside, denied = self._sign_levels(ctx)
        return ("seen" if seen else "denied" if denied and not aside else "set aside"), seen

    def _any_sign(self, by_key: Dict[str, List[Tuple[int, int]]]) -> bool:
        return any(spans and key in self._sign_keys for key, spans in by_key.items())

    @staticmethod
    def _cue_names(by_key: Dict[str, List[Tuple[int, int]]]) -> FrozenSet[str]:
        return frozenset(key[len("scope:"):] for key, spans in by_key.items()
                         if spans and key.startswith("scope:"))

    def _read(self, doc: Doc) -> Tuple["_Context", FrozenSet[str]]:
        """The matches and clauses of a non-empty Doc, and the names of its scope cues (taken
        before _Context drops the cues that overlap their exceptions)."""
        words = [t.text for t in doc]
        clause_of, hard_of = self._clauses(words, [t.is_punct for t in doc], [t.lemma_ for t in doc])
        by_key = self._match(doc)
        cues = self._cue_names(by_key)
        return _Context(self, doc, words, clause_of, hard_of, by_key), cues

    def _detect(self, doc: Doc, text: str) -> Optional[Detection]:
        ctx, cues = self._read(doc)
        sign_seen = self._any_sign(ctx.by_key)
        stripped = tuple(w for w, t in zip(ctx.words, doc)
                         if not (t.is_punct or t.is_space or w in self._whole_ignore))
        found = next((Detection(reason.level, reason.name) for reason in self._reasons
                      if self._fires(reason, ctx, stripped)), None)
        if self._safety_net is None or (found is not None and found.level == "emergency"):
            return found   # (nothing to raise an emergency to: the net is not run)
        return self._raise(text, cues, ctx, found, sign_seen, self._safety_net.settings)

    def _raise(self, text: str, cues: FrozenSet[str], ctx: "_Context", found: Optional[Detection],
               sign_seen: bool, settings: SafetyNetSettings) -> Optional[Detection]:
        """The rules' result `found`, raised by the safety net where it may (never lowered).
        Where a sign matched in scope and no rule fired ("can hardly breathe": no pattern said
        "hardly"), the net is asked with a higher threshold than where none matched; where the
        rules put every sign out of scope ("can barley breath": read as a question), with the
        highest: their call stands unless the net is all but sure; where every sign was negated
        or an animal's ("the incision is not red"), it is not asked. Most misses of the blind
        sets were of the first two kinds (scripts/replay_measured_sets.py)."""
        status, seen = self._status(ctx, sign_seen)
        if found is not None and found.level == "urgent":
            # only an emergency sign the rules saw in scope but could not complete may make it
            # one: the net alone leans to "emergency" on any "he" or "not" (observers, "not
            # breathing"), and "he is shaking like a leaf since his refill didnt happen" is not
            if "emergency" not in seen:
                return found
        elif status == "denied":   # negated or an animal's: not even the net overrides that
            return found
        p = self._safety_net.escalation_probability(text, cues)
        level = decide(p, found.level if found else None, status, settings)
        return Detection(level, SAFETY_NET_REASON) if level else found

    def _sign_levels(self, ctx: "_Context") -> Tuple[FrozenSet[str], FrozenSet[str], FrozenSet[str]]:
        """Levels of the signs that matched in scope (`seen`), of those whose every match the
        rules set aside, out of scope or excepted (`aside`: "the headache from the trial went"),
        and of those whose every match is an animal's or negated (`denied`: "my scar is neither
        red nor swollen", "our cat can't breathe")."""
        seen, aside, denied = set(), set(), set()
        for reason in self._reasons:
            if reason.level == "handoff":
                continue
            excepted = ctx.spans(reason.except_key) if reason.except_key else []
            for group in (g for rule in reason.rules for g in rule.groups if not g.context):
                spans = ctx.spans(group.key)
                if not spans:
                    continue
                if self._valid_spans(group, reason, ctx, excepted):
                    seen.add(reason.level)
                elif all(ctx.denied(reason, start, end) for start, end in spans):
                    denied.add(reason.level)
                else:
                    aside.add(reason.level)
        return frozenset(seen), frozenset(aside), frozenset(denied)

    def _fires(self, reason: _Reason, ctx: "_Context", stripped: Tuple[str, ...]) -> bool:
        if reason.unless_key and any(ctx.in_scope(_UNLESS_REASON, start, end)
                                     for start, end in ctx.spans(reason.unless_key)):
            return False
        excepted = ctx.spans(reason.except_key) if reason.except_key else []
        for rule in reason.rules:
            if rule.whole_message and stripped in rule.whole_message:
                return True
            if not rule.groups:
                continue
            scoped = [g for g in rule.groups if not g.context]
            valid = [self._valid_spans(g, reason, ctx, excepted) for g in scoped]
            if not all(valid):
                continue
            clauses = {ctx.hard_of[start] for spans in valid for start, _ in spans}
            if all(self._context_holds(g, ctx, excepted, clauses)
                   for g in rule.groups if g.context):
                return True
        return False

    def _valid_spans(self, group: _Group, reason: _Reason, ctx: "_Context",
                     excepted: List[Tuple[int, int]]) -> List[Tuple[int, int]]:
        """The group's matches that are not excepted and are in scope."""
        local_except = ctx.spans(f"{group.key}:except") + excepted
        return [(start, end) for start, end in ctx.spans(group.key)
                if not any(s < end and start < e for s, e in local_except)
                and ctx.in_scope(reason, start, end)]

    def _context_holds(self, group: _Group, ctx: "_Context", excepted: List[Tuple[int, int]],
                       clauses: Set[int]) -> bool:
        """A context match ("refill" in "drowsy since the refill") is not scope-checked, but one
        in another clause that asks or supposes ("I'm tired. How long does a refill take?")
        does not count."""
        local_except = ctx.spans(f"{group.key}:except") + excepted
        for start, end in ctx.spans(group.key):
            if any(s < end and start < e for s, e in local_except):
                continue
            if (group.anywhere or ctx.hard_of[start] in clauses
                    or ctx.in_scope(_CONTEXT_REASON, start, end)):
                return True
        return False


class _Context:
    """Cue positions and clause information of one message."""

    def __init__(self, detector: UrgencyDetector, doc: Doc, words: List[str],
                 clause_of: List[int], hard_of: List[int],
                 by_key: Dict[str, List[Tuple[int, int]]]) -> None:
        self.d = detector
        self.doc = doc
        self.words = words
        self.clause_of = clause_of
        self.hard_of = hard_of
        self.by_key = by_key
        self.n_clauses = (clause_of[-1] + 1) if clause_of else 0
        self._clause_start: Dict[int, int] = {}
        for i, c in enumerate(clause_of):
            self._clause_start.setdefault(c, i)
        self._cache: Dict[str, Any] = {}
        for name in CUE_LISTS:   # drop cues that overlap one of their exceptions
            key = f"scope:{name}"
            exceptions = by_key.get(f"{key}_exceptions")
            if exceptions and key in by_key:
                by_key[key] = [(s, e) for s, e in by_key[key]
                               if not any(s < xe and xs < e for xs, xe in exceptions)]
        self.negations = sorted(by_key.get("scope:negation", []))
        self.resolved = sorted(by_key.get("scope:resolved", []))
        self.resolved_weak = sorted(by_key.get("scope:resolved_weak", []))
        # the signs' matches (reasons' and cues', not their exceptions) and where they start
        self._sign_spans = [span for key, spans in by_key.items()
                            if key.startswith(("reason:", "cue:")) and not key.endswith(":except")
                            for span in spans]
        self._sign_starts = {s for s, _ in self._sign_spans}
        self.negation_carried = self._negation_carried()
        # clause -> cue keys found in it (soft and hard clauses), for O(1) scope checks
        self._soft_keys: Dict[int, Set[str]] = defaultdict(set)
        self._hard_keys: Dict[int, Set[str]] = defaultdict(set)
        for key, spans in by_key.items():
            if key.startswith("scope:"):
                for s, _ in spans:
                    self._soft_keys[clause_of[s]].add(key)
                    self._hard_keys[hard_of[s]].add(key)
        self._negation_after_starts = {s: e for s, e in by_key.get("scope:negation_after", [])}
        self._negation_starts = {s for s, _ in self.negations}
        self._resolved_by_clause: Dict[int, List[Tuple[int, int]]] = defaultdict(list)
        for s, e in self.resolved:
            self._resolved_by_clause[clause_of[s]].append((s, e))
        self._weak_by_clause: Dict[int, List[Tuple[int, int]]] = defaultdict(list)
        for s, e in self.resolved_weak:
            self._weak_by_clause[clause_of[s]].append((s, e))
        self._animal = self._animal_clauses()
        relapse = sorted(s for s, _ in by_key.get("scope:relapse", []))
        self._last_relapse_clause = clause_of[relapse[-1]] if relapse else -1
        # (start, clause) of the resolutions that end a sign told in the past anywhere before
        # them, and of the `recovered` cues, which end nothing else
        self._later_resolutions = sorted((s, clause_of[s]) for s, _ in self.resolved)
        self._recoveries = sorted((s, clause_of[s]) for s, _ in by_key.get("scope:recovered", []))
        # (start, clause) of the `remedied` cues: the remedy done ("it was refilled monday"), which
        # ends a sign told in the past before it for the reasons marked `remediable` (device and
        # refill problems), even those that ignore `recovered`
        self._remedies = sorted((s, clause_of[s]) for s, _ in by_key.get("scope:remedied", []))
        # "it's back" lifts a past symptom, but "i haven't had it again" / "it never came back"
        # says the opposite
        returned = [hard_of[s] for s, _ in by_key.get("scope:returned", [])
                    if not self._negated_before(s)]
        self._last_returned_hard = max(returned) if returned else -1
        self._carry_past(hard_of)
        # hard clauses told in the past with nothing present in them: "the site was warm after
        # surgery", "his tone went up" (not "the pump was beeping and still is")
        past_keys = ("scope:past", "scope:past_recent", "scope:past_tense")
        present_keys = ("scope:present_tense", "scope:overrides_strong")
        self._told_past = {h for h, keys in self._hard_keys.items()
                           if any(k in keys for k in past_keys)
                           and not any(k in keys for k in present_keys)}
        self._hyp_starts: Dict[int, int] = {}   # hard clause -> first hypothetical cue start
        hypothetical = sorted(by_key.get("scope:hypothetical", []))
        for s, _ in hypothetical:
            self._hyp_starts.setdefault(hard_of[s], s)
        # a supposition covers the clauses joined to it by "and"/"or" in the same sentence:
        # "say i'm on vacation and the alarm goes off" supposes the alarm too
        supposing = {hard_of[s] for s, e in by_key.get("scope:supposition", [])
                     if any(hs < e and s < he for hs, he in hypothetical)}
        hard_start: Dict[int, int] = {}
        for i, h in enumerate(hard_of):
            hard_start.setdefault(h, i)
        for h in sorted(hard_start):
            first = hard_start[h]
            if h - 1 in supposing and words[first] in detector._and_words:
                supposing.add(h)
                self._hyp_starts.setdefault(h, first)
        # a comma-list item right after a supposed clause that names a sign is supposed too:
        # "what if i get a headache, fever and a stiff neck after the implant?", "what if she
        # gets a fever, chills or a red incision" (an item is short, starts with a sign or a
        # `list_continuers` word, or offers an alternative; not one that states the present:
        # "what if i get a headache, fever 39 now"; nor after a supposition with no sign: "if
        # this is normal ignore me, fever, stiff neck ...")
        stating_keys = ("scope:present_tense", "scope:present_statement", "scope:overrides_strong")
        carried_hyp: Set[int] = set()
        for h in sorted(hard_start):
            first = hard_start[h]
            prev = h - 1
            if prev not in self._hyp_starts or words[first] != ",":
                continue
            if prev not in carried_hyp and not any(
                    self._hyp_starts[prev] < s and hard_of[s] == prev
                    for key in detector._sign_keys for s, _ in by_key.get(key, ())):
                continue
            items = [i for i in range(first, len(words)) if hard_of[i] == h
                     and not (self.doc[i].is_punct or self.doc[i].is_space)]
            if not items or any(k in self._hard_keys.get(h, ()) for k in stating_keys):
                continue
            listy = (len(items) <= 3 or items[0] in self._sign_starts
                     or words[items[0]] in detector._list_continuers
                     or any(words[i] in detector._list_alternatives for i in items))
            if listy:
                carried_hyp.add(h)
                self._hyp_starts[h] = min(self._hyp_starts.get(h, first), first)
        # clauses with a present statement that is not the content of a supposition
        # ("will i get withdrawal if my refill is late": "my refill is" is supposed)
        self._present: Set[int] = {
            clause_of[s] for s, _ in by_key.get("scope:present_statement", [])
            if self._hyp_starts.get(hard_of[s], len(words)) > s}

    def _carry_past(self, hard_of: List[int]) -> None:
        """A distant past ("in 2022", "last spring", a `past` cue) also dates a clause that "and"
        joins to it in the same sentence and that tells in the past tense (a `past_tense` cue)
        with nothing present in it (no `present_tense`, `present_statement`, `overrides_strong`,
        `returned` or `relapse` cue): "we missed a refill in 2022 and my son had withdrawal"
        (but not "... in 2022 and now he has withdrawal", nor a recent past: "had surgery last
        week and got a fever")."""
        hard_start: Dict[int, int] = {}
        for i, h in enumerate(hard_of):
            hard_start.setdefault(h, i)
        blockers = ("scope:present_tense", "scope:present_statement", "scope:overrides_strong",
                    "scope:returned", "scope:relapse")
        for h in sorted(hard_start):
            keys = self._hard_keys.get(h, set())
            if (h > 0 and "scope:past" in self._hard_keys.get(h - 1, ())
                    and self.words[hard_start[h]] in self.d._and_words
                    and "scope:past_tense" in keys and not any(k in keys for k in blockers)):
                self._hard_keys[h].add("scope:past")

    def _negated_before(self, start: int) -> bool:
        """A negation cue at most three words before `start`, in its clause ("never came back")."""
        clause = self.clause_of[start]
        return any(start - 3 <= e <= start and self.clause_of[s] == clause
                   for s, e in self.negations)

    def _negation_carried(self) -> Set[int]:
        """Clauses that continue a negated comma list: "no fever, chills, or redness". The list
        must start with a sign the negation covers, after it in its clause ("the pump cost
        without insurance, and i've been having thoughts ..." negates no sign): in "i can't
        sleep, chest pain" or "can't hold it in, peeing everywhere" the negation is no list's,
        nor is one inside a sign: in "can't bend any joint, temp 39.8" it is part of the sign.
        An item is short, starts with a `list_continuers` word, or starts with a sign and goes
        on with a `list_alternatives` word ("no redness, swelling or discharge at the site").
        An item that starts with a `list_breakers` word ("now") reports the present and ends the
        list: in "pump alarm earlier not actioned, now T 39.8, rigid" the fever and the rigidity
        are not negated."""
        words, doc, clause_of = self.words, self.doc, self.clause_of
        window = self.d._neg_window
        # a negation that covers a sign after it ("no fever"; not "without insurance" after
        # "how much does the pump cost") and is not itself inside one ("can't breathe")
        negated = {clause_of[s] for s, e in self.negations
                   if not any(ss <= s and e <= se for ss, se in self._sign_spans)
                   and any(e <= ss < e + window and clause_of[ss] == clause_of[s]
                           for ss in self._sign_starts)}
        # clause -> [starts with a comma, words, first word, starts with a sign, has an "or"]
        info: Dict[int, List[Any]] = {}
        for i, word in enumerate(words):
            c = clause_of[i]
            if c not in info:   # a clause's first token is the break that opened it
                info[c] = [word == ",", 0, "", False, False]
            if not (doc[i].is_punct or doc[i].is_space):
                if info[c][1] == 0:
                    info[c][2] = word
                    info[c][3] = i in self._sign_starts
                info[c][1] += 1
                info[c][4] = info[c][4] or word in self.d._list_alternatives
        carried: Set[int] = set()
        for c in sorted(info):
            comma, count, first, sign_first, alternative = info[c]
            listy = (count <= 3 or first in self.d._list_continuers
                     or (sign_first and alternative))
            if first in self.d._list_breakers:
                continue
            if c > 0 and comma and listy and (c - 1 in negated or c - 1 in carried):
                carried.add(c)
        return carried

    def _animal_clauses(self) -> Set[int]:
        """Clauses about an animal (an `animal` cue in them: "my dog hurt his leg and can't walk
        on it"), and a clause that goes on about it, joined by "and" with an `animal_pronouns`
        subject: "my horse kicked the fence and its got a swollen leg"."""
        clauses = {c for c, keys in self._soft_keys.items() if "scope:animal" in keys}
        for c in range(1, self.n_clauses):
            first = self._clause_start[c]
            if (c - 1 in clauses and self.words[first] in self.d._and_words
                    and first + 1 < len(self.words)
                    and self.words[first + 1] in self.d._animal_pronouns):
                clauses.add(c)
        return clauses

    def _resolution_clauses(self, clause: int) -> List[int]:
        """The clause, the next one, and the clauses that continue that one with "and"/"or"."""
        clauses = [clause, clause + 1]
        c = clause + 2
        while c < self.n_clauses and self.words[self._clause_start[c]] in self.d._and_words:
            clauses.append(c)
            c += 1
        return clauses

    def spans(self, key: Optional[str]) -> List[Tuple[int, int]]:
        return self.by_key.get(key, []) if key else []

    def _opener(self, clause: int) -> str:
        """'personal', 'request', 'general' or '' for the words that start the clause."""
        cached = self._cache.get(("opener", clause))
        if cached is not None:
            return cached
        i = self._clause_start.get(clause, 0)
        n = len(self.words)
        while i < n and self.clause_of[i] == clause and (
                self.words[i] in self.d._fillers or self.doc[i].is_punct or self.doc[i].is_space):
            i += 1
        head = []
        j = i
        while j < n and self.clause_of[j] == clause and len(head) < 6:
            if not (self.doc[j].is_punct or self.doc[j].is_space):
                head.append(self.words[j])
            j += 1
        head_t = tuple(head)
        result = ""
        if any(head_t[:len(p)] == p for p in self.d._personal_openers if p):
            result = "personal"
        elif head_t and self._subjectless(head_t):
            result = ""
        elif (head_t and self.words[self._clause_start.get(clause, 0)] in self.d._and_words
              and len(head_t) > 1 and head_t[1] not in self.d._and_question_subjects):
            # "... and is running a fever", "and has a high fever": the subject left out after
            # "and", a statement (but "and is it normal?" asks)
            result = ""
        elif any(head_t[:len(p)] == p for p in self.d._request_openers if p):
            result = "request"
        elif head_t and head_t[0] in self.d._general_openers:
            result = "general"
        self._cache[("opener", clause)] = result
        return result

    def _subjectless(self, head: Tuple[str, ...]) -> bool:
        """A negated auxiliary with no subject after it is a statement with the subject left
        out ("haven't had my refill", "didn't get my refill"), not a question ("haven't you",
        "doesn't the pump ...")."""
        negations = self.d._opener_negations
        if head[0] in negations:            # "havent had", "didnt get"
            rest = head[1:]
        elif len(head) > 1 and head[1] in negations:   # "have n't had"
            rest = head[2:]
        else:
            return False
        return bool(rest) and rest[0] not in self.d._question_subjects

    def _message_has(self, key: str) -> bool:
        return bool(self.by_key.get(key))

    def _negated_after(self, end: int) -> bool:
        """ "fever: none", "redness? no." - a lone negation word after the match, with only
        punctuation in between, that ends its clause."""
        n = len(self.words)
        for s in range(end, min(end + 3, n)):
            e = self._negation_after_starts.get(s)
            if e is not None and all(self.doc[k].is_punct for k in range(end, s)):
                if e >= n or self.doc[e].is_punct or self.doc[e].is_space:
                    return True
        return False

    def _negated_predicate(self, end: int) -> bool:
        """ "the alarm hasn't gone off", "fever never came back": the match is the subject of a
        negated verb - a negation right after it, past at most two auxiliaries ("has", "still").
        Negations of a resolution ("hasn't gone down", "won't stop") are exceptions of the
        negation cue list, so those symptoms still count."""
        i, clause, n = end, self.clause_of[end - 1], len(self.words)
        while i < n and i - end < 2 and self.words[i] in self.d._predicate_aux:
            i += 1
        return (i < n and i in self._negation_starts and self.clause_of[i] == clause
                and self.words[i] in self.d._predicate_neg)

    def denied(self, reason: _Reason, start: int, end: int) -> bool:
        """Out of scope by the two scopes nothing overrides, not even the safety net: an
        animal's sign, not a person's ("my dog can't walk"), and a negated one."""
        clause = self.clause_of[start]
        if "animal" not in reason.ignore and clause in self._animal:
            return True
        # negation: a cue right before the match, in the same clause
        if "negation" not in reason.ignore:
            if clause in self.negation_carried or self._negated_after(end) or self._negated_predicate(end):
                return True
            i = bisect.bisect_left(self.negations, (start - self.d._neg_window - 3, 0))
            for s, e in self.negations[i:]:
                if s >= start:
                    break
                if s < start and start - e < self.d._neg_window and self.clause_of[s] == clause:
                    between = self.words[e:start]
                    if not any(w in self.d._negation_barriers for w in between):
                        return True
        return False

    def in_scope(self, reason: _Reason, start: int, end: int) -> bool:
        clause = self.clause_of[start]
        hard = self.hard_of[start]
        ignore = reason.ignore
        # cues inside the match count too, except for negation and resolution (whose words a
        # pattern may contain: "pump isn't working", "pump stopped working")
        soft_keys, hard_keys = self._soft_keys.get(clause, ()), self._hard_keys.get(hard, ())
        has = lambda key: key in soft_keys
        has_hard = lambda key: key in hard_keys
        strong = has_hard("scope:overrides_strong")

        if self.denied(reason, start, end):
            return False

        # hypothetical: a cue anywhere before the match in the clause, or inside it
        # ("the pump will stop working"); a reason that ignores it but is `reassurable` still
        # heeds it where the message says the person is safe ("what would happen if i took all
        # my pills, but i'm okay"; not "if this goes on i'll end it")
        hypothetical = "hypothetical" not in ignore or (
            reason.reassurable and self._message_has("scope:reassured"))
        if hypothetical and not strong:
            first = self._hyp_starts.get(hard)
            if first is not None and first < end:
                return False

        # future: a cue anywhere in the clause ("my refill is next week")
        if "future" not in ignore and not strong and has_hard("scope:future"):
            return False

        # general question: an opener, or a general cue anywhere in the clause
        if "general" not in ignore:
            opener = self._opener(clause)
            general = opener == "general" or (opener == "request" and not reason.request_ok)
            general = general or has("scope:general")
            if general and not (strong or has("scope:overrides_aspect")
                                or clause in self._present):
                return False

        # past
        past_keys = ["scope:past"] + ([] if "past_recent" in ignore else ["scope:past_recent"])
        # ... unless a later clause says it is back ("had a fever last week and now it's back")
        if ("past" not in ignore and not strong and any(has_hard(k) for k in past_keys)
                and self._last_returned_hard <= hard):
            return False

        # chronic (clause) and candidacy (message)
        chronic_override = has_hard("scope:overrides_chronic")
        if "chronic" not in ignore and has_hard("scope:chronic") and not chronic_override:
            return False
        if (reason.chronic_sensitive and "chronic_weak" not in ignore
                and has_hard("scope:chronic_weak") and not chronic_override):
            return False
        if (reason.chronic_sensitive and "candidacy" not in ignore
                and self._message_has("scope:candidacy") and not chronic_override):
            return False

        # resolved: a resolution cue in this clause or the next (with what "and" adds to it:
        # "... but she adjusted and is fine now"), with no relapse after it
        if "resolved" not in ignore:
            for c in self._resolution_clauses(clause):
                for s, e in self._resolved_by_clause.get(c, ()):
                    if not (start <= s and e <= end) and self._last_relapse_clause <= c:
                        return False
            for s, e in self._weak_by_clause.get(clause, ()):
                if not (start <= s and e <= end):
                    return False
        # a sign told in the past ends with a resolution anywhere after it, or with the person
        # being well ("the site was warm after surgery, the nurse checked it, all settled now";
        # "i was sleepy for an afternoon, that was 3 weeks ago and i'm fine"); a present sign
        # does not end with the person being well ("the pump is beeping but i feel fine")
        if hard in self._told_past:
            later = ([] if "resolved" in ignore else self._later_resolutions) + (
                [] if "recovered" in ignore else self._recoveries) + (
                self._remedies if reason.remediable else [])
            if any(s >= end and self._last_relapse_clause <= c for s, c in later):
                return False
        return True


class _PatternSet:
    """Matches spaCy Matcher token patterns on token strings, like spacy.matcher.Matcher.

    Supported token specs (all the compiler produces): LOWER / LEMMA as a string or
    {IN: [...]} / {NOT_IN: [...]} / {REGEX: ...}, IS_PUNCT, IS_SPACE, LIKE_NUM, and OP "?".
    A pattern is only tried at tokens that its first (required) token accepts.
    """

    _FIELDS = {"LOWER": 0, "LEMMA": 1, "IS_PUNCT": 2, "IS_SPACE": 3, "LIKE_NUM": 4}

    def __init__(self) -> None:
        self.by_key: Dict[str, List[List[Dict[str, Any]]]] = defaultdict(list)
        self._first_index: Dict[Tuple[int, str], List[Tuple[str, tuple, tuple]]] = defaultdict(list)
        self._unindexed: List[Tuple[str, tuple, tuple]] = []

    def _constraint(self, attr: str, value: Any) -> tuple:
        if attr not in self._FIELDS:
            raise PatternError(f"unsupported attribute {attr}")
        field = self._FIELDS[attr]
        if isinstance(value, dict):
            (op, arg), = value.items()
            if op == "IN":
                return ("in", field, frozenset(arg))
            if op == "NOT_IN":
                return ("not_in", field, frozenset(arg))
            if op == "REGEX":
                return ("regex", field, re.compile(arg))
            raise PatternError(f"unsupported predicate {op}")
        return ("eq", field, value)

    def add(self, key: str, tokens: List[Dict[str, Any]]) -> None:
        self.by_key[key].append(tokens)
        compiled = []
        for spec in tokens:
            optional = spec.get("OP") == "?"
            if "OP" in spec and not optional:
                raise PatternError(f"unsupported OP {spec['OP']}")
            checks = tuple(self._constraint(a, v) for a, v in spec.items() if a != "OP")
            compiled.append((checks, optional))
        # the word sets of the required tokens: a pattern is only tried on a message that has
        # a word of each of them
        required = tuple(frozenset(arg) for checks, optional in compiled if not optional
                         for kind, field, arg in checks if kind == "in" and field in (0, 1))
        pattern = (key, tuple(compiled), required)
        first_checks = compiled[0][0]
        for kind, field, arg in first_checks:
            if kind == "in" and field in (0, 1):
                for word in arg:
                    self._first_index[(field, word)].append(pattern)
                return
            if kind == "eq" and field in (0, 1):
                self._first_index[(field, arg)].append(pattern)
                return
        self._unindexed.append(pattern)

    @staticmethod
    def _ok(checks: tuple, features: tuple) -> bool:
        for kind, field, arg in checks:
            value = features[field]
            if kind == "in":
                if value not in arg:
                    return False
            elif kind == "not_in":
                if value in arg:
                    return False
            elif kind == "eq":
                if value != arg:
                    return False
            elif not arg.search(value):  # regex
                return False
        return True

    def _ends(self, specs: tuple, features: List[tuple], start: int) -> Set[int]:
        """All end positions of `specs` matched from token `start` (an NFA over positions)."""
        n = len(features)
        ok = self._ok
        positions = {start}
        for checks, optional in specs:
            advanced = {j + 1 for j in positions if j < n and ok(checks, features[j])}
            positions = (positions | advanced) if optional else advanced
            if not positions:
                break
        return positions

    def match(self, doc: Doc) -> Dict[str, List[Tuple[int, int]]]:
        features = [(t.lower_, t.lemma_, t.is_punct, t.is_space, t.like_num) for t in doc]
        present = {f[0] for f in features} | {f[1] for f in features}
        viable: Dict[int, bool] = {}
        found: Dict[str, Set[Tuple[int, int]]] = defaultdict(set)
        index = self._first_index
        for i, (lower, lemma, *_rest) in enumerate(features):
            candidates = index.get((0, lower), []) + index.get((1, lemma), []) + self._unindexed
            for pattern in candidates:
                key, specs, required = pattern
                ok = viable.get(id(pattern))
                if ok is None:
                    ok = viable[id(pattern)] = all(not present.isdisjoint(words)
                                                   for words in required)
                if not ok:
                    continue
                for end in self._ends(specs, features, i):
                    if end > i:
                        found[key].add((i, end))
        return {key: sorted(spans) for key, spans in found.items()}
