"""Tests for the synthetic parallel corpus in data_prep.synthetic.faces.toy_language."""

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from data_prep.synthetic import toy_language as st

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def words(sentence: str) -> list[str]:
    """Tokens of a generated sentence, with the attached final period as its own token."""
    return sentence[:-1].split() + ["."]


@pytest.fixture(scope="module")
def pairs():
    return st.generate_pairs(20000, seed=0)


def _gender_pair():
    masculine = next(n for n in st.NOUNS if st.noun_gender(n) == "m")
    feminine = next(n for n in st.NOUNS if st.noun_gender(n) == "f")
    return masculine, feminine


def test_same_seed_reproducible_and_different_seeds_differ():
    assert st.generate_pairs(300, seed=7) == st.generate_pairs(300, seed=7)
    assert st.generate_pairs(300, seed=7) != st.generate_pairs(300, seed=8)
    assert st.generate_pairs(50, seed=7) == st.generate_pairs(300, seed=7)[:50]
    assert st.generate_pairs(0, seed=1) == []


def test_reproducible_across_processes():
    code = (
        "from data_prep.synthetic import toy_language as st; "
        "print(repr(st.generate_pairs(20, 3)), repr(sorted(st.target_lexicon().items())))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=PROJECT_ROOT,
            check=True,
            capture_output=True,
            text=True,
            env={"PYTHONHASHSEED": hash_seed},
        ).stdout
        for hash_seed in ("1", "2")
    }
    assert len(outputs) == 1
    assert repr(st.generate_pairs(20, 3)) in outputs.pop()


def test_negative_count_rejected():
    with pytest.raises(ValueError):
        st.generate_pairs(-1, seed=0)


def test_format_lowercase_with_attached_period(pairs):
    for source, target in pairs[:2000]:
        for sentence in (source, target):
            assert sentence == sentence.lower()
            assert sentence.endswith(".") and not sentence.endswith(" .")
            assert sentence.count(".") == 1
            assert "  " not in sentence and sentence == sentence.strip()


def test_source_length_range(pairs):
    lengths = [len(words(source)) - 1 for source, _ in pairs]
    assert min(lengths) >= 4
    assert max(lengths) <= 21
    assert max(lengths) >= 15
    assert len(set(lengths)) >= 10


def test_vocabulary_sizes(pairs):
    source_types = {w for source, _ in pairs for w in words(source)}
    target_types = {w for _, target in pairs for w in words(target)}
    assert len(source_types) >= 300
    assert len(target_types) >= 300
    assert len(st.NOUNS) >= 150 and len(set(st.NOUNS)) == len(st.NOUNS)
    assert len(st.VERBS) >= 60 and len(set(st.VERBS)) == len(st.VERBS)
    assert len(st.ADJECTIVES) >= 60 and len(set(st.ADJECTIVES)) == len(st.ADJECTIVES)


def test_lexicon_is_a_bijection():
    lexicon = st.target_lexicon()
    assert len(set(lexicon.values())) == len(lexicon)
    for word in (*st.NOUNS, *st.VERBS, *st.ADJECTIVES, *st.DETERMINERS, *st.PREPOSITIONS):
        assert word in lexicon


def test_translate_agrees_with_generate_pairs(pairs):
    for source, target in pairs[:3000]:
        assert st.translate(source) == target


def test_translation_is_deterministic_function_of_source(pairs):
    by_source = {}
    for source, target in pairs:
        assert by_source.setdefault(source, target) == target


def test_svo_becomes_sov_with_postposed_adjectives():
    lex = st.target_lexicon()
    tokens = words(st.translate("the big dog sees the cat ."))
    assert tokens[-1] == "."
    assert tokens[-2].startswith(lex["see"])
    dog = next(i for i, t in enumerate(tokens) if t.startswith(lex["dog"]))
    big = next(i for i, t in enumerate(tokens) if t.startswith(lex["big"]))
    cat = next(i for i, t in enumerate(tokens) if t.startswith(lex["cat"]))
    assert dog < big < cat < len(tokens) - 2
    swapped = words(st.translate("the big cat sees the dog ."))
    assert swapped.index(next(t for t in swapped if t.startswith(lex["cat"]))) < swapped.index(
        next(t for t in swapped if t.startswith(lex["dog"]))
    )


def test_adjectives_mirror_order_and_postposition_precedes_object():
    lex = st.target_lexicon()
    tokens = words(st.translate("i see the big red dog in the house ."))
    red = next(i for i, t in enumerate(tokens) if t.startswith(lex["red"]))
    big = next(i for i, t in enumerate(tokens) if t.startswith(lex["big"]))
    house = next(i for i, t in enumerate(tokens) if t.startswith(lex["house"]))
    dog = next(i for i, t in enumerate(tokens) if t.startswith(lex["dog"]))
    assert dog < red < big
    assert house < tokens.index(lex["in"]) < dog


def test_generated_target_is_verb_final(pairs):
    verb_stems = {st.target_lexicon()[v] for v in st.VERBS}
    suffixes = set(st.VERB_SUFFIX.values())
    for _, target in pairs[:2000]:
        last = words(target)[-2]
        assert any(last == stem + suffix for stem in verb_stems for suffix in suffixes)


def test_number_agreement_on_determiner_adjective_and_noun():
    singular = words(st.translate("the big dog sees the cat ."))
    plural = words(st.translate("the big dogs see the cat ."))
    assert len(singular) == len(plural)
    differing = [i for i, (a, b) in enumerate(zip(singular, plural, strict=True)) if a != b]
    # determiner, noun, adjective of the subject and the verb ending all change
    assert differing == [0, 1, 2, len(plural) - 2]
    lex = st.target_lexicon()
    gender = st.noun_gender("dog")
    assert plural[1] == lex["dog"] + st.NOUN_PLURAL_SUFFIX[gender]
    assert plural[2] == lex["big"] + st.AGREEMENT_SUFFIX[(gender, True)]
    assert singular[2] == lex["big"] + st.AGREEMENT_SUFFIX[(gender, False)]


def test_gender_agreement():
    masculine, feminine = _gender_pair()
    m_tokens = words(st.translate(f"the old {masculine} sees the cat ."))
    f_tokens = words(st.translate(f"the old {feminine} sees the cat ."))
    assert m_tokens[0] != f_tokens[0]
    assert m_tokens[2] != f_tokens[2]
    assert m_tokens[2].startswith(st.target_lexicon()["old"])
    assert f_tokens[2].startswith(st.target_lexicon()["old"])


def test_verb_conjugation_by_person():
    verbs = {
        pronoun: words(st.translate(f"{pronoun} {verb} the cat ."))[-2]
        for pronoun, verb in (
            ("i", "see"),
            ("you", "see"),
            ("he", "sees"),
            ("we", "see"),
            ("they", "see"),
        )
    }
    assert len(set(verbs.values())) == 5
    assert (
        words(st.translate("he sees the cat ."))[-2]
        == words(st.translate("the dog sees the cat ."))[-2]
    )
    negated = words(st.translate("the dog does not see the cat ."))
    assert negated[-2] == verbs["he"]
    assert negated[-3] == st.target_lexicon()["<neg>"]


@pytest.mark.parametrize(
    "junk",
    [
        "",
        ".",
        "the dog sees the cat",
        "colorless green ideas sleep furiously .",
        "the dog see the cat .",
        "the dogs sees the cat .",
        "a dogs sees the cat .",
        "dog sees the cat .",
        "an dog sees the cat .",
        "a apple sees the cat .",
        "he do not see the cat .",
        "he does not sees the cat .",
        "the dog sees the cat the .",
        "the dog sees the cat . .",
        "three dog sees the cat .",
        "many three dogs see the cat .",
        "the dog . sees the cat",
    ],
)
def test_translate_rejects_junk(junk):
    with pytest.raises(ValueError, match="cannot parse"):
        st.translate(junk)


def test_translate_accepts_attached_period_and_capitals():
    assert st.translate("The dog sees an apple.") == st.translate("the dog sees an apple .")


def _read_lines(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return f.read().splitlines()


@pytest.mark.parametrize("compress", [False, True])
def test_write_corpus(tmp_path, compress):
    out = tmp_path / "nested" / "corpus"
    summary = st.write_corpus(
        out,
        num_train=2000,
        num_val=100,
        num_test=120,
        seed=5,
        source_lang="en",
        target_lang="xx",
        compress=compress,
    )
    assert set(summary) == {"train", "val", "test"}
    expected = {"train": 2000, "val": 100, "test": 120}
    suffix = ".gz" if compress else ""
    sources = {}
    for split, count in expected.items():
        assert summary[split]["num_pairs"] == count
        src_path, tgt_path = summary[split]["files"]
        assert src_path == str(out / f"{split}.en{suffix}")
        assert tgt_path == str(out / f"{split}.xx{suffix}")
        src_lines, tgt_lines = _read_lines(src_path), _read_lines(tgt_path)
        assert len(src_lines) == len(tgt_lines) == count
        for source, target in zip(src_lines[:200], tgt_lines[:200], strict=True):
            assert st.translate(source) == target
        sources[split] = src_lines
    assert sources["train"] == [s for s, _ in st.generate_pairs(2000, seed=5)]
    assert not set(sources["val"]) & set(sources["train"])
    assert not set(sources["test"]) & set(sources["train"])
    assert not set(sources["val"]) & set(sources["test"])
    assert len(set(sources["val"])) == 100 and len(set(sources["test"])) == 120
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{split}.{lang}{suffix}" for split in expected for lang in ("en", "xx")
    )


def test_write_corpus_is_deterministic_and_gzip_bytes_stable(tmp_path):
    a = st.write_corpus(tmp_path / "a", num_train=50, num_val=5, num_test=5, compress=True)
    b = st.write_corpus(tmp_path / "b", num_train=50, num_val=5, num_test=5, compress=True)
    for split in st.SPLITS:
        for path_a, path_b in zip(a[split]["files"], b[split]["files"], strict=True):
            assert Path(path_a).read_bytes() == Path(path_b).read_bytes()


def test_write_corpus_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        st.write_corpus(tmp_path, num_train=-1)
    with pytest.raises(ValueError):
        st.write_corpus(tmp_path, source_lang="x", target_lang="x")


def test_command_line(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "data_prep.synthetic.toy_language",
            f"--output_dir={tmp_path}",
            "--num_train=30",
            "--num_val=4",
            "--num_test=3",
            "--seed=2",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert '"num_pairs": 30' in result.stdout
    assert len(_read_lines(tmp_path / "train.src")) == 30
    assert len(_read_lines(tmp_path / "test.tgt")) == 3
