"""Text data preparation: readers, subword models, sharded records and the prepare entry point."""

import gzip
import importlib.resources
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf

from configs import demo_toy
from data_prep import records, subwords
from data_prep.corpora import text
from data_prep.translation import prepare_translation
from tests.cli import run_lipseq

ENGLISH = "the a cat dog bird sees eats runs big small red green fish tree house".split()
TOY_GERMAN = dict(
    zip(
        ENGLISH,
        "der ein katze hund vogel sieht isst läuft groß klein rot grün fisch baum haus".split(),
        strict=True,
    )
)
MAX_LENGTH = 30  # A normal sentence (at most 4 words of at most 5 letters) can never exceed it.
FEATURE_SPEC = {
    "id": tf.io.FixedLenFeature([], tf.string),
    "source": tf.io.FixedLenFeature([], tf.string),
    "target": tf.io.FixedLenFeature([], tf.string),
    "source_ids": tf.io.RaggedFeature(tf.int64),
    "target_ids": tf.io.RaggedFeature(tf.int64),
}

EMPTY_SOURCE = {5: "", 17: " \t\u00a0", 42: ""}  # line 42 also has an empty target
EMPTY_TARGET = {8: "", 99: "   "}
UNNORMALISED = {3: ("ｔｈｅ  cat\u00a0runs\t", "the cat runs"), 11: ("a ﬁsh ", "a fish")}


def toy_pairs(num_lines: int, seed: int) -> tuple[list[str], list[str]]:
    """Parallel toy sentences: 2-4 English words and their word-by-word toy German."""
    rng = random.Random(seed)
    sources, targets = [], []
    for _ in range(num_lines):
        words = [rng.choice(ENGLISH) for _ in range(rng.randint(2, 4))]
        sources.append(" ".join(words))
        targets.append(" ".join(TOY_GERMAN[w] for w in words))
    return sources, targets


def write_lines(path: Path, lines: list[str]) -> Path:
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data, mtime=0))
    else:
        path.write_bytes(data)
    return path


def make_corpus(root: Path) -> dict[str, tuple[list[str], list[str]]]:
    """train (300 lines with empty, over-long and unnormalised lines), val (plain), test (.gz)."""
    root.mkdir(parents=True, exist_ok=True)
    sources, targets = toy_pairs(300, seed=0)
    for i, line in EMPTY_SOURCE.items():
        sources[i] = line
    targets[42] = ""
    for i, line in EMPTY_TARGET.items():
        targets[i] = line
    for i in (50, 150, 250):
        sources[i] = " ".join([sources[i]] * 16)
    targets[260] = " ".join([targets[260]] * 16)
    for i, (raw, _) in UNNORMALISED.items():
        sources[i] = raw
    corpus = {"train": (sources, targets), "val": toy_pairs(40, 1), "test": toy_pairs(30, 2)}
    for split, (src, tgt) in corpus.items():
        suffix = ".gz" if split == "test" else ""
        write_lines(root / f"{split}.src{suffix}", src)
        write_lines(root / f"{split}.tgt{suffix}", tgt)
    return corpus


def toy_config(vocab_size: int = 60, joint: bool = False):
    config = demo_toy.get_config()
    config.data.vocab_size = vocab_size
    config.data.joint_vocab = joint
    config.data.max_length = MAX_LENGTH
    config.data.num_shards = 3
    return config


def read_examples(output_dir: Path, entry: dict) -> list[dict]:
    paths = [str(output_dir / f["path"]) for f in entry["files"]]
    return [
        {k: v.numpy() for k, v in tf.io.parse_single_example(r, FEATURE_SPEC).items()}
        for r in tf.data.TFRecordDataset(paths)
    ]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("prep")
    corpus = make_corpus(root / "raw")
    manifest = prepare_translation(toy_config(), root / "raw", root / "out")
    return {"corpus": corpus, "out": root / "out", "manifest": manifest}


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("  a\t b  ", "a b"),
        ("ｆｕｌｌ width", "full width"),
        ("ﬁne\u00a0day", "fine day"),
        ("café", "café"),
        ("e\u0301", "é"),
        (" \u2003 ", ""),
    ],
)
def test_normalize_text(raw, expected):
    assert text.normalize_text(raw) == expected


def test_read_lines_plain_gz_and_crlf(tmp_path):
    (tmp_path / "a.txt").write_bytes("\ufeffone\r\ntwo\u2028x\nthree".encode())
    write_lines(tmp_path / "b.txt.gz", ["one", "two", "three"])
    assert list(text.read_lines(tmp_path / "a.txt")) == ["one", "two\u2028x", "three"]
    assert list(text.read_lines(tmp_path / "b.txt.gz")) == ["one", "two", "three"]
    assert text.find_text_file(tmp_path, "b.txt") == tmp_path / "b.txt.gz"
    assert text.find_text_file(tmp_path, "c.txt") is None


def test_records_parse_with_exact_feature_spec(prepared):
    entry = prepared["manifest"]["splits"]["train"]
    assert len(entry["files"]) == 3
    raw = next(iter(tf.data.TFRecordDataset(str(prepared["out"] / entry["files"][0]["path"]))))
    example = tf.train.Example.FromString(raw.numpy())
    assert set(example.features.feature) == set(FEATURE_SPEC)
    kinds = {k: v.WhichOneof("kind") for k, v in example.features.feature.items()}
    assert kinds == {
        "id": "bytes_list",
        "source": "bytes_list",
        "target": "bytes_list",
        "source_ids": "int64_list",
        "target_ids": "int64_list",
    }
    assert len(read_examples(prepared["out"], entry)) == entry["num_examples"]


def test_ids_decode_to_normalised_text(prepared):
    out, manifest = prepared["out"], prepared["manifest"]
    models = {
        s: subwords.load_model(out / manifest["vocab"][s]["model"]) for s in ("source", "target")
    }
    for split, (sources, targets) in prepared["corpus"].items():
        examples = read_examples(out, manifest["splits"][split])
        assert examples
        for ex in examples:
            name, index = ex["id"].decode().rsplit("-", 1)
            assert name == split
            source, target = ex["source"].decode(), ex["target"].decode()
            assert source == text.normalize_text(sources[int(index)])
            assert target == text.normalize_text(targets[int(index)])
            assert subwords.decode(models["source"], ex["source_ids"]) == source
            assert subwords.decode(models["target"], ex["target_ids"]) == target
            ids = ex["source_ids"].tolist() + ex["target_ids"].tolist()
            assert subwords.BOS_ID not in ids and subwords.EOS_ID not in ids
            assert subwords.PAD_ID not in ids
    train = {ex["id"]: ex for ex in read_examples(out, manifest["splits"]["train"])}
    for i, (_, normalised) in UNNORMALISED.items():
        assert train[f"train-{i:06d}".encode()]["source"].decode() == normalised


def test_dropped_pairs_counted_by_reason(prepared):
    splits = prepared["manifest"]["splits"]
    train = splits["train"]
    assert train["num_input_lines"] == 300
    assert train["dropped"] == {"empty_source": 3, "empty_target": 2, "too_long": 4}
    assert train["num_examples"] == 300 - 9
    assert sum(f["num_examples"] for f in train["files"]) == train["num_examples"]
    assert train["max_source_length"] <= MAX_LENGTH and train["max_target_length"] <= MAX_LENGTH
    ids = {ex["id"] for ex in read_examples(prepared["out"], train)}
    dropped = {*EMPTY_SOURCE, *EMPTY_TARGET, 50, 150, 250, 260}
    assert ids == {f"train-{i:06d}".encode() for i in range(300) if i not in dropped}
    for split, n in (("val", 40), ("test", 30)):
        assert splits[split]["num_input_lines"] == splits[split]["num_examples"] == n
        assert len(splits[split]["files"]) == 1


def test_length_statistics(prepared):
    entry = prepared["manifest"]["splits"]["val"]
    examples = read_examples(prepared["out"], entry)
    source_lengths = [len(ex["source_ids"]) for ex in examples]
    assert entry["num_source_tokens"] == sum(source_lengths)
    assert entry["max_source_length"] == max(source_lengths)
    assert entry["mean_source_length"] == pytest.approx(sum(source_lengths) / len(examples), 1e-3)


def test_reference_files_follow_record_order(prepared):
    out, splits = prepared["out"], prepared["manifest"]["splits"]
    for split, entry in splits.items():
        examples = read_examples(out, entry)
        for side in ("source", "target"):
            lines = (out / f"{split}.{side}.txt").read_text(encoding="utf-8").splitlines()
            assert lines == [ex[side].decode() for ex in examples]


def test_manifest_checksums_and_layout(prepared):
    out, manifest = prepared["out"], prepared["manifest"]
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["task"] == "translation" and manifest["version"] == "0.1.0"
    assert manifest["settings"]["max_length"] == MAX_LENGTH
    vocab = manifest["vocab"]
    assert (vocab["pad_id"], vocab["unk_id"], vocab["bos_id"], vocab["eos_id"]) == (0, 1, 2, 3)
    assert vocab["joint"] is False
    assert vocab["source"]["model"] == "spm_source.model"
    assert vocab["target"]["model"] == "spm_target.model"
    checked = [(vocab[s]["model"], vocab[s]["sha256"]) for s in ("source", "target")]
    for entry in manifest["splits"].values():
        checked += [(f["path"], f["sha256"]) for f in entry["files"]]
        checked += [(r["path"], r["sha256"]) for r in entry["references"].values()]
    for path, checksum in checked:
        assert not Path(path).is_absolute()
        assert records.sha256_file(out / path) == checksum
    assert sorted(manifest["splits"]) == ["test", "train", "val"]


def test_special_pieces(prepared):
    model = subwords.load_model(prepared["out"] / "spm_source.model")
    pieces = [model.id_to_piece(i) for i in range(4)]
    assert pieces == ["<pad>", "<unk>", "<s>", "</s>"]
    assert (prepared["out"] / "spm_source.vocab").is_file()


def test_no_temporary_files_left(prepared):
    leftovers = [p.name for p in prepared["out"].iterdir() if p.name.endswith(".tmp")]
    leftovers += [p.name for p in prepared["out"].iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_rerun_is_deterministic(prepared, tmp_path):
    manifest = prepare_translation(toy_config(), prepared["out"].parent / "raw", tmp_path)
    for split, entry in manifest["splits"].items():
        old = prepared["manifest"]["splits"][split]
        assert [f["sha256"] for f in entry["files"]] == [f["sha256"] for f in old["files"]]
    for side in ("source", "target"):
        assert manifest["vocab"][side]["sha256"] == prepared["manifest"]["vocab"][side]["sha256"]


def test_joint_vocab_and_oversized_vocab(tmp_path):
    make_corpus(tmp_path / "raw")
    manifest = prepare_translation(
        toy_config(vocab_size=5000, joint=True), tmp_path / "raw", tmp_path / "out"
    )
    vocab = manifest["vocab"]
    assert vocab["joint"] is True
    assert vocab["source"] == vocab["target"]
    assert vocab["source"]["model"] == "spm_joint.model"
    assert vocab["source"]["requested_vocab_size"] == 5000
    assert 4 < vocab["source"]["vocab_size"] < 5000
    assert not (tmp_path / "out" / "spm_source.model").exists()
    model = subwords.load_model(tmp_path / "out" / "spm_joint.model")
    assert model.get_piece_size() == vocab["source"]["vocab_size"]
    for ex in read_examples(tmp_path / "out", manifest["splits"]["val"]):
        assert subwords.decode(model, ex["source_ids"]) == ex["source"].decode()
        assert subwords.decode(model, ex["target_ids"]) == ex["target"].decode()


def test_mismatched_line_counts_name_both_files(tmp_path):
    a = write_lines(tmp_path / "train.src", ["x"] * 5)
    b = write_lines(tmp_path / "train.tgt", ["y"] * 7)
    for src, tgt, counts in ((a, b, ("5 lines", "7 lines")), (b, a, ("7 lines", "5 lines"))):
        with pytest.raises(text.CorpusError) as info:
            list(text.read_parallel(src, tgt))
        message = str(info.value)
        assert f"{src} has {counts[0]}" in message and f"{tgt} has {counts[1]}" in message
    with pytest.raises(text.CorpusError, match="different line counts"):
        prepare_translation(toy_config(), tmp_path, tmp_path / "out")
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_invalid_utf8_names_file_and_line(tmp_path):
    write_lines(tmp_path / "train.src", ["a cat", "a dog", "a bird"])
    (tmp_path / "train.tgt").write_bytes(b"eine katze\nein hund\nein \xff vogel\n")
    with pytest.raises(text.CorpusError) as info:
        prepare_translation(toy_config(), tmp_path, tmp_path / "out")
    assert str(tmp_path / "train.tgt") in str(info.value)
    assert "line 3" in str(info.value)
    gz = tmp_path / "bad.gz"
    gz.write_bytes(gzip.compress(b"ok\n\xc3\x28\n"))
    with pytest.raises(text.CorpusError, match=r"bad\.gz: line 2 is not valid UTF-8"):
        list(text.read_lines(gz))


def test_missing_splits(tmp_path):
    sources, targets = toy_pairs(50, 3)
    write_lines(tmp_path / "train.src", sources)
    write_lines(tmp_path / "train.tgt", targets)
    manifest = prepare_translation(toy_config(), tmp_path, tmp_path / "out")
    assert list(manifest["splits"]) == ["train"]
    assert not list((tmp_path / "out").glob("val*"))
    write_lines(tmp_path / "val.src", sources[:5])
    with pytest.raises(text.CorpusError, match=r"val\.tgt.*missing"):
        prepare_translation(toy_config(), tmp_path, tmp_path / "out")
    with pytest.raises(text.CorpusError, match="train split 'train' not found"):
        prepare_translation(toy_config(), tmp_path / "out", tmp_path / "out2")


def test_write_shards_round_robin_contiguous_and_stale(tmp_path):
    values = [{"n": i, "name": f"item{i}"} for i in range(10)]
    shards = records.write_shards(values, tmp_path, "x", 3)
    assert [s.path for s in shards] == [f"x-0000{i}-of-00003.tfrecord" for i in range(3)]
    spec = {"n": tf.io.FixedLenFeature([], tf.int64)}

    def numbers(path):
        return [
            int(tf.io.parse_single_example(r, spec)["n"]) for r in tf.data.TFRecordDataset(path)
        ]

    assert [numbers(str(tmp_path / s.path)) for s in shards] == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    shards = records.write_shards(values, tmp_path, "x", 2, "contiguous", num_records=10)
    assert [numbers(str(tmp_path / s.path)) for s in shards] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert sorted(p.name for p in tmp_path.iterdir()) == [s.path for s in shards]
    assert all(records.sha256_file(tmp_path / s.path) == s.sha256 for s in shards)


def test_write_shards_failure_leaves_no_files(tmp_path):
    def broken():
        yield records.make_example({"n": 1})
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        records.write_shards(broken(), tmp_path, "x", 2)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(TypeError, match="cannot make a tf.train.Feature"):
        records.write_shards([{"bad": object()}], tmp_path, "x", 1)
    assert list(tmp_path.iterdir()) == []


def test_manifest_written_atomically(tmp_path):
    path = records.write_manifest(tmp_path, {"b": [1, 2], "a": "ü"})
    assert json.loads(path.read_text(encoding="utf-8")) == {"b": [1, 2], "a": "ü"}
    assert "\n  " in path.read_text(encoding="utf-8")
    with pytest.raises(TypeError):
        records.write_manifest(tmp_path, {"a": object()})
    assert json.loads(path.read_text(encoding="utf-8"))["a"] == "ü"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_tfds_reader(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    try:
        import importlib_resources  # noqa: F401
    except (
        ImportError
    ):  # Only TFDS's dataset writer needs it; the standard library has the same API.
        monkeypatch.setitem(sys.modules, "importlib_resources", importlib.resources)

    def split(pairs):
        en, de = zip(*pairs, strict=True)
        return tf.data.Dataset.from_tensor_slices({"en": list(en), "de": list(de)})

    tfds.dataset_builders.store_as_tfds_dataset(
        name="lipseq_toy_translate",
        version="1.0.0",
        features=tfds.features.Translation(languages=("en", "de")),
        split_datasets={
            "train": split([("a  cat", "eine katze"), ("a dog", "ein hund")]),
            "validation": split([("a cow", "eine kuh")]),
        },
        data_dir=str(tmp_path),
    )
    assert text.tfds_splits("lipseq_toy_translate", str(tmp_path)) == ["train", "validation"]
    pairs = list(text.read_tfds_pairs("lipseq_toy_translate", "train", "en", "de", str(tmp_path)))
    assert pairs == [(0, "a  cat", "eine katze"), (1, "a dog", "ein hund")]
    with pytest.raises(text.CorpusError, match="no language 'fr'"):
        list(text.read_tfds_pairs("lipseq_toy_translate", "train", "en", "fr", str(tmp_path)))
    with pytest.raises(text.CorpusError, match="not found"):
        text.tfds_splits("lipseq_no_such_dataset", str(tmp_path))
    config = toy_config()
    config.data.source_lang, config.data.target_lang = "en", "de"
    config.data.eval_split = "validation"
    config.data.tfds_name = "lipseq_toy_translate"
    config.data.tfds_data_dir = str(tmp_path)
    manifest = prepare_translation(config, output_dir=tmp_path / "out")
    assert {s: e["num_examples"] for s, e in manifest["splits"].items()} == {
        "train": 2,
        "validation": 1,
    }
    assert (tmp_path / "out" / "train.source.txt").read_text() == "a cat\na dog\n"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return run_lipseq("prepare", *args)


def test_cli_translation(tmp_path):
    make_corpus(tmp_path / "raw")
    result = run_cli(
        "--config=configs/demo_toy.py",
        f"--config.data.input_dir={tmp_path / 'raw'}",
        f"--config.data.prepared_dir={tmp_path / 'out'}",
        "--config.data.vocab_size=200",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["settings"]["vocab_size"] == 200
    assert manifest["settings"]["input_dir"] == str(tmp_path / "raw")
    assert manifest["splits"]["train"]["dropped"]["empty_source"] == 3
    assert len(manifest["splits"]["train"]["files"]) == 2
    assert "train: " in result.stdout


def test_cli_lipreading_missing_input_is_a_clean_error(tmp_path):
    result = run_cli(
        "--config=configs/demo_video.py",
        f"--config.data.input_dir={tmp_path / 'absent'}",
        f"--config.data.prepared_dir={tmp_path / 'out'}",
    )
    assert result.returncode == 2
    assert "absent" in result.stderr and "lipseq prepare: error" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.needs_shared_data
def test_prepare_multi30k(shared_data, tmp_path):
    from configs import multi30k_gru_attention

    config = multi30k_gru_attention.get_config()
    manifest = prepare_translation(config, shared_data / "multi30k", tmp_path)
    splits = manifest["splits"]
    expected = {"train": 29000, "val": 1014, "test_2016_flickr": 1000}
    assert {s: e["num_input_lines"] for s, e in splits.items()} == expected
    for split, n in expected.items():
        assert splits[split]["num_examples"] >= 0.99 * n
        assert (
            sum(f["num_examples"] for f in splits[split]["files"]) == splits[split]["num_examples"]
        )
    assert len(splits["train"]["files"]) == config.data.num_shards
    assert manifest["vocab"]["source"]["vocab_size"] == config.data.vocab_size
    assert manifest["vocab"]["target"]["vocab_size"] == config.data.vocab_size
    assert 8 < splits["train"]["mean_source_length"] < 30
    first = read_examples(tmp_path, {"files": splits["test_2016_flickr"]["files"][:1]})[0]
    assert first["id"] == b"test_2016_flickr-000000"
    model = subwords.load_model(tmp_path / "spm_target.model")
    assert subwords.decode(model, first["target_ids"]) == first["target"].decode()
