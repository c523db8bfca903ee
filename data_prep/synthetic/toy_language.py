"""A synthetic parallel corpus: simplified English into an invented, rule-based language.

The source side is SVO English with adjectives before nouns. The target side is
subject-object-verb: adjectives follow the noun in mirror order, determiners and adjectives
agree with the noun's gender and number, nouns take a gender-dependent plural suffix, verbs
are conjugated for the subject's person and number, the object is closed by an accusative
particle, prepositions become postpositions placed before the object, and a sentence-final
adverb moves in front of the verb.

Target words are invented by a seeded syllable procedure, so the lexicon is the same in
every run and every process. The translation is a deterministic function of the source
sentence; `translate` parses a source sentence and renders the target from the parse.

Both sides are lowercase, tokens are separated by single spaces, and every sentence ends
with the period attached to the last word ("... the cat.").
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from absl import app, flags

from data_prep.atomic import write_bytes_atomic

LEXICON_SEED = 20240611
SPLITS = ("train", "val", "test")
PERIOD = "."

NOUNS = (
    # animals
    *"dog cat horse bird cow goat pig duck rabbit mouse wolf fox bear lion tiger monkey".split(),
    *"snake frog owl eagle donkey camel spider bee".split(),
    # people
    *"man woman child boy girl teacher doctor farmer king queen soldier student baby".split(),
    *"friend neighbor sister brother mother father uncle aunt cousin nurse pilot".split(),
    # places
    *"house school garden city village river mountain forest lake island castle bridge".split(),
    *"church market street road farm station library hospital kitchen office".split(),
    # things
    *"book table chair door window bottle cup plate knife spoon box bag key lamp clock bed".split(),
    *"basket hat coat shoe ring letter picture mirror candle pencil ladder wheel rope".split(),
    *"bucket blanket pillow drum guitar ball kite boat car truck train".split(),
    # food
    *"apple bread cake egg cheese banana orange lemon potato tomato carrot onion cookie".split(),
    *"sandwich pie melon cherry pear peach grape".split(),
    # nature
    *"tree flower stone leaf cloud star moon sun hill field shell feather seed branch rock".split(),
    *"wave storm flame meadow valley".split(),
)

VERBS = (
    *"see watch find carry hold push pull open close paint draw wash clean build break fix".split(),
    *"buy sell bring take want need like love hate visit follow chase catch throw kick".split(),
    *"lift drop hide cook eat bake cut fill hear touch feed help teach call meet miss keep".split(),
    *"wake use read write drive ride climb cross count guard hug grab".split(),
)

ADJECTIVES = (
    *"big small old young new red blue green yellow black white brown tall short long".split(),
    *"heavy happy sad angry quiet loud dirty hot cold warm wet dry soft hard sweet sour".split(),
    *"bright dark strong weak rich poor brave lazy clever kind gentle wild tiny huge round".split(),
    *"empty full fresh strange famous beautiful ugly fast slow busy calm proud hungry".split(),
    *"sleepy funny friendly lonely lucky noisy shiny golden wooden purple pink".split(),
)

# Number constraint of each determiner: "sg", "pl" or "any". Quantifiers ("q" suffix) do not
# combine with a numeral.
DETERMINERS = {
    "the": "any",
    "a": "sg",
    "this": "sg",
    "that": "sg",
    "these": "pl",
    "those": "pl",
    "my": "any",
    "your": "any",
    "his": "any",
    "her": "any",
    "our": "any",
    "their": "any",
    "every": "sg",
    "each": "sg",
    "some": "pl-q",
    "many": "pl-q",
    "several": "pl-q",
    "no": "any-q",
}
INDEFINITE_VOWEL_FORM = "an"

NUMERALS = (*"two three four five six seven eight nine ten twelve twenty".split(),)

PRONOUNS = {
    "i": "1sg",
    "you": "2sg",
    "he": "3sg",
    "she": "3sg",
    "it": "3sg",
    "we": "1pl",
    "they": "3pl",
}

PREPOSITIONS = (
    *"in on under near behind with without from to for beside above below into across".split(),
    *"inside".split(),
)

INITIAL_ADVERBS = (*"sometimes usually then now perhaps later suddenly meanwhile".split(),)

FINAL_ADVERBS = (
    *"quickly slowly quietly loudly carefully happily gladly badly often rarely again".split(),
    *"today together twice".split(),
)

NEGATION_WORD = "not"
AUXILIARY = {"does": True, "do": False}  # value: whether the subject must be third singular

IRREGULAR_PLURALS = {
    "man": "men",
    "woman": "women",
    "child": "children",
    "mouse": "mice",
    "wolf": "wolves",
    "leaf": "leaves",
    "knife": "knives",
    "potato": "potatoes",
    "tomato": "tomatoes",
}

NOUN_PLURAL_SUFFIX = {"m": "ir", "f": "an"}
AGREEMENT_SUFFIX = {("m", False): "o", ("f", False): "a", ("m", True): "os", ("f", True): "es"}
VERB_SUFFIX = {"1sg": "u", "2sg": "is", "3sg": "et", "1pl": "umo", "3pl": "ant"}

_ONSETS = (*"p t k b d g m n s l r v z f h tr kr pl st".split(),)
_VOWELS = ("a", "e", "i", "o", "u")
_CODAS = ("n", "r", "l", "s", "k", "t", "m", "d")
_DET_STEMS = ("l", "t", "d", "k", "m", "n", "s", "v", "z", "b", "p", "g", "r", "f", "h")

# Function words of the target that have no source lemma of their own.
_ACCUSATIVE_KEY = "<acc>"
_NEGATION_KEY = "<neg>"


def _english_suffix_s(word: str) -> str:
    """English -s inflection shared by regular noun plurals and third-singular verbs."""
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def english_plural(noun: str) -> str:
    """Plural of a source noun."""
    return IRREGULAR_PLURALS.get(noun) or _english_suffix_s(noun)


def english_third_singular(verb: str) -> str:
    """Third-person-singular present form of a source verb."""
    return _english_suffix_s(verb)


@dataclass(frozen=True, slots=True)
class NounPhrase:
    """A parsed noun phrase: lemmas plus number."""

    noun: str
    plural: bool
    determiner: str | None = None
    numeral: str | None = None
    adjectives: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Clause:
    """A parsed source sentence."""

    subject: NounPhrase | str
    verb: str
    obj: NounPhrase
    negated: bool = False
    preposition: str | None = None
    prep_object: NounPhrase | None = None
    initial_adverb: str | None = None
    final_adverb: str | None = None


@dataclass(frozen=True, slots=True)
class _Lexicon:
    stems: dict[str, str]
    genders: dict[str, str]


@lru_cache(maxsize=1)
def _source_surface_forms() -> dict[str, tuple[str, str]]:
    """Every source token mapped to (category, lemma); fails loudly on an ambiguous token."""
    forms: dict[str, tuple[str, str]] = {}

    def add(token: str, category: str, lemma: str) -> None:
        if token in forms and forms[token] != (category, lemma):
            raise RuntimeError(
                f"source token {token!r} is ambiguous: {forms[token]} vs {(category, lemma)}"
            )
        forms[token] = (category, lemma)

    for noun in NOUNS:
        add(noun, "noun_sg", noun)
        add(english_plural(noun), "noun_pl", noun)
    for verb in VERBS:
        add(verb, "verb_base", verb)
        add(english_third_singular(verb), "verb_3sg", verb)
    for category, words in (
        ("adj", ADJECTIVES),
        ("num", NUMERALS),
        ("prep", PREPOSITIONS),
        ("iadv", INITIAL_ADVERBS),
        ("fadv", FINAL_ADVERBS),
    ):
        for word in words:
            add(word, category, word)
    for det in DETERMINERS:
        add(det, "det", det)
    add(INDEFINITE_VOWEL_FORM, "det", "a")
    for pronoun in PRONOUNS:
        add(pronoun, "pron", pronoun)
    for aux in AUXILIARY:
        add(aux, "aux", aux)
    add(NEGATION_WORD, "neg", NEGATION_WORD)
    return forms


def _target_forms(category: str, stem: str, gender: str | None) -> list[str]:
    if category == "noun":
        return [stem, stem + NOUN_PLURAL_SUFFIX[gender]]
    if category in ("adj", "det"):
        return [stem + suffix for suffix in AGREEMENT_SUFFIX.values()]
    if category == "verb":
        return [stem + suffix for suffix in VERB_SUFFIX.values()]
    return [stem]


def _invent_stem(rng: random.Random, category: str) -> str:
    if category == "det":
        return rng.choice(_DET_STEMS) + rng.choice(("", "", "r", "l"))
    if category in ("noun", "verb", "adj"):
        syllables = rng.choice((1, 2, 2, 2, 3))
        body = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables))
        return body + rng.choice(_CODAS)
    syllables = rng.choice((1, 2, 2, 3))
    return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables))


@lru_cache(maxsize=1)
def _lexicon() -> _Lexicon:
    """The target lexicon, built from LEXICON_SEED; every inflected target form is unique."""
    rng = random.Random(LEXICON_SEED)
    taken = set(_source_surface_forms()) | {PERIOD}
    stems: dict[str, str] = {}
    genders: dict[str, str] = {}
    entries = (
        [("noun", w) for w in NOUNS]
        + [("verb", w) for w in VERBS]
        + [("adj", w) for w in ADJECTIVES]
        + [("det", w) for w in DETERMINERS]
        + [
            ("word", w)
            for w in (
                *NUMERALS,
                *PRONOUNS,
                *PREPOSITIONS,
                *INITIAL_ADVERBS,
                *FINAL_ADVERBS,
                _ACCUSATIVE_KEY,
                _NEGATION_KEY,
            )
        ]
    )
    for category, lemma in entries:
        gender = ("m" if rng.random() < 0.5 else "f") if category == "noun" else None
        for _ in range(10_000):
            stem = _invent_stem(rng, category)
            forms = _target_forms(category, stem, gender)
            clashes = stem in taken or taken.intersection(forms) or len(set(forms)) < len(forms)
            if not clashes:
                break
        else:
            raise RuntimeError(f"could not invent a target word for {lemma!r}")
        taken.update(forms)
        taken.add(stem)
        stems[lemma] = stem
        if gender is not None:
            genders[lemma] = gender
    return _Lexicon(stems=stems, genders=genders)


def target_lexicon() -> dict[str, str]:
    """Source lemma to invented target stem (a bijection); function words use <acc>/<neg>."""
    return dict(_lexicon().stems)


def noun_gender(noun: str) -> str:
    """Grammatical gender ("m" or "f") of a source noun in the target language."""
    return _lexicon().genders[noun]


def _render_source_np(np_: NounPhrase) -> list[str]:
    words: list[str] = []
    if np_.numeral:
        words.append(np_.numeral)
    words.extend(np_.adjectives)
    words.append(english_plural(np_.noun) if np_.plural else np_.noun)
    if np_.determiner:
        det = np_.determiner
        if det == "a" and words[0][0] in "aeiou":
            det = INDEFINITE_VOWEL_FORM
        words.insert(0, det)
    return words


def render_source(clause: Clause) -> str:
    """Surface form of a clause in the source language."""
    words: list[str] = []
    if clause.initial_adverb:
        words.append(clause.initial_adverb)
    if isinstance(clause.subject, str):
        words.append(clause.subject)
    else:
        words.extend(_render_source_np(clause.subject))
    third_singular = _person(clause.subject) == "3sg"
    if clause.negated:
        words += ["does" if third_singular else "do", NEGATION_WORD, clause.verb]
    else:
        words.append(english_third_singular(clause.verb) if third_singular else clause.verb)
    words.extend(_render_source_np(clause.obj))
    if clause.preposition and clause.prep_object:
        words.append(clause.preposition)
        words.extend(_render_source_np(clause.prep_object))
    if clause.final_adverb:
        words.append(clause.final_adverb)
    return " ".join(words) + PERIOD


def _person(subject: NounPhrase | str) -> str:
    if isinstance(subject, str):
        return PRONOUNS[subject]
    return "3pl" if subject.plural else "3sg"


def _render_target_np(np_: NounPhrase) -> list[str]:
    lex = _lexicon()
    gender = lex.genders[np_.noun]
    agreement = AGREEMENT_SUFFIX[(gender, np_.plural)]
    words: list[str] = []
    if np_.determiner:
        words.append(lex.stems[np_.determiner] + agreement)
    if np_.numeral:
        words.append(lex.stems[np_.numeral])
    noun = lex.stems[np_.noun]
    words.append(noun + NOUN_PLURAL_SUFFIX[gender] if np_.plural else noun)
    words.extend(lex.stems[adj] + agreement for adj in reversed(np_.adjectives))
    return words


def render_target(clause: Clause) -> str:
    """Surface form of a clause in the target language."""
    stems = _lexicon().stems
    words: list[str] = []
    if clause.initial_adverb:
        words.append(stems[clause.initial_adverb])
    if isinstance(clause.subject, str):
        words.append(stems[clause.subject])
    else:
        words.extend(_render_target_np(clause.subject))
    if clause.preposition and clause.prep_object:
        words.extend(_render_target_np(clause.prep_object))
        words.append(stems[clause.preposition])
    words.extend(_render_target_np(clause.obj))
    words.append(stems[_ACCUSATIVE_KEY])
    if clause.final_adverb:
        words.append(stems[clause.final_adverb])
    if clause.negated:
        words.append(stems[_NEGATION_KEY])
    words.append(stems[clause.verb] + VERB_SUFFIX[_person(clause.subject)])
    return " ".join(words) + PERIOD


class _Parser:
    """Recursive-descent parser for the source grammar, strict about agreement."""

    def __init__(self, sentence: str):
        self.sentence = sentence
        text = sentence.strip().lower()
        if text.endswith(PERIOD) and not text.endswith(" " + PERIOD):
            text = text[:-1] + " " + PERIOD
        self.tokens = text.split()
        self.forms = _source_surface_forms()
        self.pos = 0

    def fail(self, message: str) -> ValueError:
        where = " ".join(self.tokens[: self.pos]) + " ^ " + " ".join(self.tokens[self.pos :])
        return ValueError(
            f"cannot parse source sentence {self.sentence!r}: {message} (at: {where.strip()})"
        )

    def peek(self) -> tuple[str, str, str] | None:
        if self.pos >= len(self.tokens):
            return None
        token = self.tokens[self.pos]
        category, lemma = self.forms.get(token, ("unknown", token))
        return token, category, lemma

    def take(self, *categories: str) -> tuple[str, str, str] | None:
        item = self.peek()
        if item is not None and item[1] in categories:
            self.pos += 1
            return item
        return None

    def expect(self, what: str, *categories: str) -> tuple[str, str, str]:
        item = self.take(*categories)
        if item is None:
            found = self.peek()
            raise self.fail(f"expected {what}, found {found[0] if found else 'end of input'!r}")
        return item

    def noun_phrase(self, role: str) -> NounPhrase:
        det = self.take("det")
        numeral = self.take("num")
        adjectives = []
        while (adj := self.take("adj")) is not None:
            adjectives.append(adj[2])
        _, category, noun = self.expect(f"a noun in the {role}", "noun_sg", "noun_pl")
        plural = category == "noun_pl"
        if len(set(adjectives)) != len(adjectives):
            raise self.fail(f"repeated adjective in the {role}")
        if numeral and not plural:
            raise self.fail(f"numeral {numeral[0]!r} needs a plural noun")
        if det is None:
            if not plural:
                raise self.fail(f"singular noun {noun!r} needs a determiner")
        else:
            det_token, _, det_lemma = det
            constraint = DETERMINERS[det_lemma]
            if constraint.startswith("sg") and plural:
                raise self.fail(f"determiner {det_token!r} needs a singular noun")
            if constraint.startswith("pl") and not plural:
                raise self.fail(f"determiner {det_token!r} needs a plural noun")
            if constraint.endswith("-q") and numeral:
                raise self.fail(f"determiner {det_token!r} cannot take a numeral")
            if det_lemma == "a":
                first = adjectives[0] if adjectives else noun
                wanted = INDEFINITE_VOWEL_FORM if first[0] in "aeiou" else "a"
                if det_token != wanted:
                    raise self.fail(f"expected {wanted!r} before {first!r}")
        return NounPhrase(
            noun=noun,
            plural=plural,
            determiner=det[2] if det else None,
            numeral=numeral[0] if numeral else None,
            adjectives=tuple(adjectives),
        )

    def clause(self) -> Clause:
        if not self.tokens or self.tokens[-1] != PERIOD:
            raise self.fail("a sentence must end with ' .'")
        initial = self.take("iadv")
        pronoun = self.take("pron")
        subject: NounPhrase | str = pronoun[2] if pronoun else self.noun_phrase("subject")
        third_singular = _person(subject) == "3sg"
        negated = False
        aux = self.take("aux")
        if aux is not None:
            if AUXILIARY[aux[0]] != third_singular:
                raise self.fail(f"auxiliary {aux[0]!r} does not agree with the subject")
            self.expect(f"{NEGATION_WORD!r}", "neg")
            negated = True
            verb = self.expect("a verb in the base form", "verb_base")[2]
        else:
            wanted = "verb_3sg" if third_singular else "verb_base"
            verb_item = self.expect("a verb", "verb_base", "verb_3sg")
            if verb_item[1] != wanted:
                raise self.fail(f"verb {verb_item[0]!r} does not agree with the subject")
            verb = verb_item[2]
        obj = self.noun_phrase("object")
        preposition = self.take("prep")
        prep_object = self.noun_phrase("prepositional phrase") if preposition else None
        final = self.take("fadv")
        if self.pos != len(self.tokens) - 1:
            raise self.fail("unexpected words before the final ' .'")
        return Clause(
            subject=subject,
            verb=verb,
            obj=obj,
            negated=negated,
            preposition=preposition[2] if preposition else None,
            prep_object=prep_object,
            initial_adverb=initial[2] if initial else None,
            final_adverb=final[2] if final else None,
        )


def parse(source: str) -> Clause:
    """Parse a source sentence of the generator's grammar; ValueError if it is not one."""
    return _Parser(source).clause()


def translate(source: str) -> str:
    """Rule-based reference translation of a source sentence."""
    return render_target(parse(source))


def _random_noun_phrase(rng: random.Random) -> NounPhrase:
    plural = rng.random() < 0.4
    numeral = rng.choice(NUMERALS) if plural and rng.random() < 0.3 else None
    if plural:
        allowed = [
            d
            for d, c in DETERMINERS.items()
            if not c.startswith("sg") and not (numeral and c.endswith("-q"))
        ]
    else:
        allowed = [d for d, c in DETERMINERS.items() if not c.startswith("pl")]
    count = rng.choices((0, 1, 2), weights=(45, 40, 15))[0]
    adjectives = tuple(rng.sample(ADJECTIVES, count))
    # Bare plurals (no determiner) are drawn only when a numeral or adjective carries the phrase.
    bare = plural and bool(numeral or adjectives) and rng.random() < 0.4
    determiner = None if bare else rng.choice(allowed)
    return NounPhrase(
        noun=rng.choice(NOUNS),
        plural=plural,
        determiner=determiner,
        numeral=numeral,
        adjectives=adjectives,
    )


def random_clause(rng: random.Random) -> Clause:
    """Draw one clause of the source grammar."""
    initial = rng.choice(INITIAL_ADVERBS) if rng.random() < 0.15 else None
    subject: NounPhrase | str
    subject = rng.choice(tuple(PRONOUNS)) if rng.random() < 0.3 else _random_noun_phrase(rng)
    negated = rng.random() < 0.2
    verb = rng.choice(VERBS)
    obj = _random_noun_phrase(rng)
    preposition = prep_object = None
    if rng.random() < 0.35:
        preposition = rng.choice(PREPOSITIONS)
        prep_object = _random_noun_phrase(rng)
    final = rng.choice(FINAL_ADVERBS) if rng.random() < 0.25 else None
    return Clause(
        subject=subject,
        verb=verb,
        obj=obj,
        negated=negated,
        preposition=preposition,
        prep_object=prep_object,
        initial_adverb=initial,
        final_adverb=final,
    )


def _pair_stream(rng: random.Random) -> Iterator[tuple[str, str]]:
    while True:
        source = render_source(random_clause(rng))
        yield source, translate(source)


def generate_pairs(num_pairs: int, seed: int) -> list[tuple[str, str]]:
    """Reproducible list of (source, target) sentence pairs."""
    if num_pairs < 0:
        raise ValueError(f"num_pairs must be >= 0, got {num_pairs}")
    return list(itertools.islice(_pair_stream(random.Random(seed)), num_pairs))


def _write_lines(path: Path, lines: list[str], compress: bool) -> None:
    data = ("\n".join(lines) + "\n" if lines else "").encode("utf-8")
    if compress:
        # mtime=0 keeps the gzip bytes identical across runs.
        data = gzip.compress(data, mtime=0)
    write_bytes_atomic(path, data)


def _held_out_pairs(
    stream: Iterator[tuple[str, str]], count: int, excluded: set[str]
) -> list[tuple[str, str]]:
    """Draw `count` pairs whose sources are not in `excluded` (or repeats, if that runs dry)."""
    pairs: list[tuple[str, str]] = []
    budget = 100 * count + 1000
    for source, target in stream:
        if len(pairs) == count:
            break
        if source in excluded and budget > 0:
            budget -= 1
            continue
        excluded.add(source)
        pairs.append((source, target))
    return pairs


def write_corpus(
    output_dir: str | os.PathLike,
    num_train: int = 20000,
    num_val: int = 500,
    num_test: int = 500,
    seed: int = 0,
    source_lang: str = "src",
    target_lang: str = "tgt",
    compress: bool = False,
) -> dict:
    """Write line-aligned {split}.{lang}[.gz] files for train/val/test; return what was written."""
    counts = {"train": num_train, "val": num_val, "test": num_test}
    for split, count in counts.items():
        if count < 0:
            raise ValueError(f"num_{split} must be >= 0, got {count}")
    if source_lang == target_lang:
        raise ValueError("source_lang and target_lang must differ")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    stream = _pair_stream(random.Random(seed))
    train = list(itertools.islice(stream, num_train))
    seen = {source for source, _ in train}
    pairs_by_split = {"train": train}
    for split in ("val", "test"):
        pairs_by_split[split] = _held_out_pairs(stream, counts[split], seen)
    suffix = ".gz" if compress else ""
    summary: dict[str, dict] = {}
    for split in SPLITS:
        pairs = pairs_by_split[split]
        files = []
        for lang, side in ((source_lang, 0), (target_lang, 1)):
            path = out / f"{split}.{lang}{suffix}"
            _write_lines(path, [pair[side] for pair in pairs], compress)
            files.append(str(path))
        summary[split] = {"num_pairs": len(pairs), "files": files}
    return summary


def _define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    flags.DEFINE_string(
        "output_dir",
        None,
        "Directory for the corpus files.",
        flag_values=flag_values,
        required=True,
    )
    flags.DEFINE_integer("num_train", 20000, "Training pairs.", flag_values=flag_values)
    flags.DEFINE_integer("num_val", 500, "Validation pairs.", flag_values=flag_values)
    flags.DEFINE_integer("num_test", 500, "Test pairs.", flag_values=flag_values)
    flags.DEFINE_integer("seed", 0, "Sampling seed.", flag_values=flag_values)
    flags.DEFINE_string("source_lang", "src", "Source file suffix.", flag_values=flag_values)
    flags.DEFINE_string("target_lang", "tgt", "Target file suffix.", flag_values=flag_values)
    flags.DEFINE_bool("compress", False, "Write gzip files.", flag_values=flag_values)


def main(argv: list[str]) -> None:
    """Command-line entry point: write the corpus and print a JSON summary."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    f = flags.FLAGS
    summary = write_corpus(
        f.output_dir,
        num_train=f.num_train,
        num_val=f.num_val,
        num_test=f.num_test,
        seed=f.seed,
        source_lang=f.source_lang,
        target_lang=f.target_lang,
        compress=f.compress,
    )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    _define_flags()
    app.run(main)
