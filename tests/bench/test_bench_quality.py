"""The quality comparison chooses on validation and reports what each run reached."""

from bench.quality_bench import chosen_mode, ratios_to_lipseq, to_reach


def _scores(validation: float, test: float) -> dict:
    return {"validation": {"wer": validation}, "test": {"wer": test}}


def test_the_mode_is_chosen_on_validation_not_test():
    modes = {"attention": _scores(20.0, 30.0), "joint": _scores(25.0, 10.0)}
    chosen = chosen_mode(modes)
    assert chosen["mode"] == "attention"
    assert chosen["test"]["wer"] == 30.0


def test_thresholds_are_the_first_check_under_each_and_null_when_never_reached():
    curve = [
        {"minutes": 5.0, "examples_seen": 100, "validation_wer": 80.0},
        {"minutes": 10.0, "examples_seen": 200, "validation_wer": 45.0},
        {"minutes": 15.0, "examples_seen": 300, "validation_wer": 18.0},
        {"minutes": 20.0, "examples_seen": 400, "validation_wer": 30.0},
    ]
    reached = to_reach(curve)
    assert reached["50%"] == {"minutes": 10.0, "examples_seen": 200}
    assert reached["20%"] == {"minutes": 15.0, "examples_seen": 300}
    assert reached["10%"] is None


def test_no_ratio_against_a_replica_still_in_the_blank_stage():
    chosen = {"lipseq": _scores(20, 20), "lipnet": _scores(99, 99), "lipnet_bn": _scores(60, 60)}
    results = {
        "lipnet": {"validation_curve": [{"empty_hypotheses": 0.9, "validation_wer": 99.0}]},
        "lipnet_bn": {"validation_curve": [{"empty_hypotheses": 0.1, "validation_wer": 60.0}]},
    }
    assert ratios_to_lipseq(chosen, results) == {"lipnet": None, "lipnet_bn": 3.0}
