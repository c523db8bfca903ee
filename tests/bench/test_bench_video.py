"""The preparation bench times the stages preparation really calls."""

from bench.video_bench import STAGES, StageTimer, recipe_settings
from data_prep.lipreading import corpus_clips, process_clip
from data_prep.synthetic.faces import write_synthetic_corpus


def test_the_stage_timer_sees_every_stage_of_a_prepared_clip(tmp_path):
    write_synthetic_corpus(tmp_path, 1, seed=0)
    spec = corpus_clips("grid", tmp_path)[0]
    timer = StageTimer()
    with timer.active():
        result = process_clip(spec, "train", recipe_settings())
    assert not result.skip_reason
    # A stage renamed or bypassed in data_prep.lipreading would read 0 calls (and 0 ms).
    assert {name: timer.calls[name] > 0 for name in STAGES} == dict.fromkeys(STAGES, True)


def test_the_timer_puts_the_original_functions_back(tmp_path):
    from data_prep import lipreading

    before = {attr: getattr(lipreading, attr) for attr in STAGES.values()}
    with StageTimer().active():
        assert lipreading.read_video is not before["read_video"]
    assert {attr: getattr(lipreading, attr) for attr in STAGES.values()} == before
