"""The enrolment bench's clip sets: held-back clips fixed and apart, enrolment sets nested."""

import pytest

from bench.enrolment_bench import enrolment_sets, link_clips, split_speaker
from data_prep.lipreading import corpus_clips, evaluation_clips
from data_prep.synthetic.faces import write_synthetic_corpus

IDS = [f"c{i:02d}" for i in range(10)]


def test_the_last_ids_are_held_back_whatever_order_they_come_in():
    held, pool = split_speaker(list(reversed(IDS)), 3)
    assert (held, pool) == (IDS[-3:], IDS[:-3])
    assert split_speaker(IDS, 3) == (held, pool)


def test_enrolment_sets_grow_by_adding_clips_and_never_touch_the_held_back_ones():
    held, pool = split_speaker(IDS, 3)
    sets = enrolment_sets(pool, [7, 3, 5])
    assert list(sets) == [3, 5, 7]
    assert [len(ids) for ids in sets.values()] == [3, 5, 7]
    assert sets[3] == sets[5][:3] and sets[5] == sets[7][:5]
    assert not set(sets[7]) & set(held)


@pytest.mark.parametrize("held_back", [0, 10])
def test_holding_back_none_or_every_clip_is_refused(held_back):
    with pytest.raises(ValueError, match=f"hold back {held_back} of 10"):
        split_speaker(IDS, held_back)


def test_more_enrolment_clips_than_the_pool_holds_is_refused():
    with pytest.raises(ValueError, match="outside 1..7"):
        enrolment_sets(IDS[:7], [3, 8])


def test_a_linked_folder_reads_as_the_speakers_clips_with_their_transcripts(tmp_path):
    write_synthetic_corpus(tmp_path / "corpus", 2, seed=0)
    specs = corpus_clips("grid", tmp_path / "corpus")
    linked = evaluation_clips(link_clips(specs[:1], tmp_path / "s9"), "grid")
    assert [(s.id, s.transcript) for s in linked] == [
        (specs[0].id.split("/")[-1], specs[0].transcript)
    ]
