"""Word-level translation: the in-graph word split, word vocabularies with <unk>, preparation,
sampled-softmax training, export, and replacing <unk> in the output by the attended source word."""

import json

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from configs import demo_toy
from data_prep import word_vocab
from data_prep.subwords import EOS_ID, UNK_ID
from data_prep.synthetic import toy_language
from data_prep.translation import prepare_translation
from pipelines.inference.translation import load_translate, load_translate_modes, translate_all
from pipelines.serving.export import export_model
from pipelines.training.loop import train
from pipelines.training.restore import restore_model

MARK = word_vocab.WORD_START


def _split(lines):
    return word_vocab.tokenize_lines(lines)


def test_split_cuts_punctuation_off_words_and_marks_word_starts():
    assert _split(["Ein Mann fährt Fahrrad.", "(3) Kinder-Zimmer, 12 Uhr", ""]) == [
        [f"{MARK}Ein", f"{MARK}Mann", f"{MARK}fährt", f"{MARK}Fahrrad", "."],
        [f"{MARK}(", "3", ")", f"{MARK}Kinder", "-", "Zimmer", ",", f"{MARK}12", f"{MARK}Uhr"],
        [],
    ]


_normalised_text = st.lists(
    st.text(st.characters(blacklist_categories=("Z", "Cc", "Cs")), min_size=1, max_size=8),
    max_size=8,
).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(st.lists(_normalised_text, min_size=1, max_size=4))
def test_joining_the_tokens_gives_the_text_back(lines):
    lines = [line.replace(MARK, "x") for line in lines]
    for line, tokens in zip(lines, _split(lines), strict=True):
        assert "".join(tokens).replace(MARK, " ").strip() == line


def test_vocabulary_ranks_by_count_then_token_and_maps_the_rest_to_unk(tmp_path):
    text = tmp_path / "train.txt"
    text.write_text("b a b.\nc b a\n", encoding="utf-8")
    info = word_vocab.build_word_vocabulary([text], tmp_path / "words.txt", vocab_size=6)
    words = word_vocab.load_words(info.path)
    assert words == [*word_vocab.SPECIAL_TOKENS, f"{MARK}b", f"{MARK}a"]
    assert info.vocab_size == 6 and info.requested_vocab_size == 6
    encode = word_vocab.WordEncoder(words)
    assert encode("a b c.") == [5, 4, UNK_ID, UNK_ID]
    in_graph = word_vocab.WordTokenizer(words).tokenize(tf.constant(["a b c."]))
    assert in_graph.to_list() == [[5, 4, UNK_ID, UNK_ID]]


def test_a_file_that_is_not_a_word_vocabulary_is_named(tmp_path):
    bad = tmp_path / "words.txt"
    bad.write_text("hello\nworld\n", encoding="utf-8")
    with pytest.raises(word_vocab.WordVocabularyError, match=str(bad)):
        word_vocab.load_words(bad)


@pytest.fixture(scope="module")
def word_level(tmp_path_factory):
    """The toy pair at word level: a small vocabulary (so <unk> occurs) and sampled softmax."""
    root = tmp_path_factory.mktemp("words")
    config = demo_toy.get_config("small")
    config.data.input_dir = str(root / "raw")
    config.data.prepared_dir = str(root / "data")
    config.data.vocabulary = "words"
    config.data.vocab_size = 60
    config.model.sampled_softmax = 16
    # Candidate lists then hold the whole vocabulary: beam_candidates must equal beam search.
    config.decode.candidate_frequent = 100
    toy_language.write_corpus(config.data.input_dir, num_train=2000, num_val=50, num_test=50)
    manifest = prepare_translation(config)
    summary = train(config, root / "train")
    return root, config, manifest, summary


def test_preparation_writes_word_vocabularies_and_ids_the_graph_reproduces(word_level):
    root, _, manifest, _ = word_level
    vocab = manifest["vocab"]
    assert vocab["kind"] == "words"
    assert vocab["source"]["model"] == "words_source.txt"
    assert vocab["target"]["vocab_size"] == 60
    assert not list((root / "data").glob("spm_*"))
    _, task, model, _ = restore_model(root / "train")
    translator = task.translator(model)
    words = word_vocab.load_words(root / "data" / "words_source.txt")
    lines = (root / "data" / "test.source.txt").read_text().splitlines()[:10]
    ids, lengths = translator.encode_source(tf.constant(lines))
    encode = word_vocab.WordEncoder(words)
    for row, line in enumerate(lines):
        assert ids[row, : lengths[row]].numpy().tolist() == encode(line) + [EOS_ID]
    unknown = sum(encode(line).count(UNK_ID) for line in lines)
    assert unknown > 0, "the test vocabulary is meant to be too small for the toy language"


def test_sampled_softmax_training_on_words_lowers_the_loss(word_level):
    root, _, _, summary = word_level
    records = [json.loads(x) for x in (root / "train" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert summary["final_step"] == 60
    assert losses[-1] < losses[0] - 0.5


def test_unknown_output_words_copy_the_most_attended_source_word(word_level):
    _, task, model, _ = restore_model(word_level[0] / "train")
    translator = task.translator(model)
    assert translator.replace_unknown
    words = word_vocab.load_words(word_level[0] / "data" / "words_target.txt")
    known_id = next(i for i, word in enumerate(words) if i > EOS_ID and word.startswith(MARK))
    known = words[known_id].lstrip(MARK)
    # Two outputs of three tokens: a known word and <unk>s, the attention on one source token.
    ids = tf.constant([[known_id, UNK_ID, UNK_ID], [UNK_ID, known_id, EOS_ID]])
    alignments = tf.one_hot([[0, 2, 1], [0, 0, 3]], depth=4)
    result = {"ids": ids, "lengths": tf.constant([3, 2]), "scores": tf.zeros([2])}
    result["alignments"] = alignments
    out = translator._outputs(result, tf.constant(["Zyx, wvu!", "Qrs"]))
    texts = [t.decode() for t in out["text"].numpy()]
    assert texts == [f"{known} wvu ,", f"Qrs {known}"]


def test_word_level_export_translates_and_copies_unknown_words(word_level):
    root, _, _, _ = word_level
    export_dir = export_model(root / "train", root / "export")
    translate = load_translate(export_dir)
    sentences = (root / "data" / "test.source.txt").read_text().splitlines()[:8]
    texts = translate_all(translate, sentences)["text"]
    assert len(texts) == 8 and all(isinstance(t, str) for t in texts)
    assert not any("\u2047" in t for t in texts), "every <unk> is replaced by a source word"
    # The toy lists hold every word but <pad> and <s>, whose small probability the listed
    # softmax leaves out, so the scores move a little and nearly every translation stays.
    listed = load_translate_modes(export_dir, ["beam_candidates"])["beam_candidates"]
    listed_texts = translate_all(listed, sentences)["text"]
    same = sum(a == b for a, b in zip(listed_texts, texts, strict=True))
    assert same >= 6


def test_the_dictionary_pairs_words_that_occur_in_the_same_sentences(word_level):
    pairs = [([4, 5, 3], [6, 7, 3]), ([4, 8], [6, 9]), ([5, 8], [7, 9, 9]), ([10], [])]
    table = word_vocab.learn_dictionary(pairs, source_size=11, target_size=12, per_word=2)
    assert table.shape == (11, 2) and table.dtype == np.int32
    assert table[4].tolist() == [
        6,
        7,
    ]  # 6 always with 4 (Dice 1), then 7 (0.5, tied with 9: lower id)
    assert table[:4].tolist() == [[-1, -1]] * 4
    assert table[10].tolist() == [-1, -1]
    root, config, manifest, _ = word_level
    entry = manifest["vocab"]["dictionary"]
    stored = np.load(root / "data" / entry["path"])
    assert stored.shape == (manifest["vocab"]["source"]["vocab_size"], config.data.dictionary_size)
    assert (stored[EOS_ID + 1 :] >= 0).any() and stored.max() < manifest["vocab"]["target"][
        "vocab_size"
    ]


def test_the_candidate_bench_scores_and_times_both_searches(word_level, tmp_path):
    from bench import candidate_bench

    root = word_level[0]
    export_dir = root / "export"
    if not export_dir.exists():
        export_model(root / "train", export_dir)
    path = candidate_bench.run(
        export_dir,
        root / "data" / "test.source.txt",
        root / "data" / "test.target.txt",
        rounds=1,
        name="candidates",
        output_dir=tmp_path,
    )
    results = json.loads(path.read_text())
    assert results["sentences"] == 50 and results["rounds"] == 1
    speed = results["sentences_per_second"]
    for mode in ("beam", "beam_candidates"):
        assert set(results["quality"][mode]) == {"bleu", "chrf", "bleu_lowercased"}
        # One round: its one figure is the median and the whole range.
        assert speed[mode]["min"] == speed[mode]["median"] == speed[mode]["max"]
    ratio = results["speed_ratio_candidates_over_full"]
    assert ratio["min"] == ratio["median"] == ratio["max"]
    # The speeds are rounded to 0.1 sentences/s, the ratio to 0.01.
    slack = 0.1 / min(speed["beam"]["median"], speed["beam_candidates"]["median"])
    expected = speed["beam_candidates"]["median"] / speed["beam"]["median"]
    assert ratio["median"] == pytest.approx(expected, rel=slack, abs=0.006)


def test_an_unknown_vocabulary_kind_is_a_one_line_config_error(tmp_path):
    from data_prep.errors import ConfigError

    config = demo_toy.get_config("tiny")
    config.data.vocabulary = "letters"
    config.data.input_dir, config.data.prepared_dir = str(tmp_path), str(tmp_path / "out")
    with pytest.raises(ConfigError, match="'letters'.*subwords.*words"):
        prepare_translation(config)
