"""Errors a user can act on: one line naming the path once and what was expected, exit status
2, no traceback, nothing written where nothing should be."""

import subprocess

import pytest

from tests.cli import run_lipseq

lipseq = run_lipseq


def assert_one_line_error(result: subprocess.CompletedProcess, verb: str, *expected: str):
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if f"lipseq {verb}: error:" in line]
    assert len(lines) == 1, result.stderr[-2000:]
    assert result.stderr.splitlines()[-1] == lines[0], "the error is the last word"
    for text in expected:
        assert lines[0].count(text) == 1, f"{text!r} once in {lines[0]}"


def test_train_without_prepared_data_writes_nothing(tmp_path):
    workdir = tmp_path / "train"
    result = lipseq(
        "train",
        "--config=demo_toy:tiny",
        f"--config.data.prepared_dir={tmp_path / 'absent'}",
        f"--workdir={workdir}",
    )
    assert_one_line_error(result, "train", str(tmp_path / "absent" / "manifest.json"))
    assert not workdir.exists()


def test_export_of_a_directory_that_is_no_workdir(tmp_path):
    result = lipseq("export", f"--workdir={tmp_path}")
    assert_one_line_error(result, "export", "not a lipseq training workdir", "config.json")


def test_translate_with_a_directory_that_is_no_export(tmp_path):
    result = lipseq("translate", f"--model={tmp_path}", f"--input={tmp_path / 'x.txt'}")
    assert_one_line_error(result, "translate", "not a lipseq export", "assets.extra/lipseq.json")


def test_transcribe_with_a_missing_model(tmp_path):
    result = lipseq("transcribe", f"--video={tmp_path / 'a.mp4'}", f"--model={tmp_path / 'no'}")
    assert_one_line_error(result, "transcribe", str(tmp_path / "no"))


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("--config.data.preset=huge", "unknown crop preset 'huge'"),
        ("--config.data.detector=eyes", "unknown face detector 'eyes'"),
        ("--config.data.dataset=vox", "unknown video dataset 'vox'"),
    ],
)
def test_bad_preparation_settings_fail_at_start_up(tmp_path, override, expected):
    (tmp_path / "raw").mkdir()
    result = lipseq(
        "prepare",
        "--config=demo_video",
        f"--config.data.input_dir={tmp_path / 'raw'}",
        f"--config.data.prepared_dir={tmp_path / 'out'}",
        override,
    )
    assert_one_line_error(result, "prepare", expected)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("layout", "expected"),
    [("", "is not a GRID corpus"), ("s1/video", "no grid clips found under")],
)
def test_an_input_directory_without_clips_is_an_error(tmp_path, layout, expected):
    (tmp_path / "raw" / layout).mkdir(parents=True)
    result = lipseq(
        "prepare",
        "--config=demo_video",
        f"--config.data.input_dir={tmp_path / 'raw'}",
        f"--config.data.prepared_dir={tmp_path / 'out'}",
    )
    assert_one_line_error(result, "prepare", expected, str(tmp_path / "raw"))
    assert not (tmp_path / "out" / "manifest.json").exists()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (("--paths=video,speech",), "unknown demo paths ['speech']"),
        (("--quick", "--paths=text,video"), "--quick is a reduced video path"),
    ],
)
def test_bad_demo_paths_are_one_line_errors(tmp_path, flags, expected):
    result = lipseq("demo", f"--workdir={tmp_path / 'demo'}", *flags)
    assert_one_line_error(result, "demo", expected)
    assert not (tmp_path / "demo").exists()
