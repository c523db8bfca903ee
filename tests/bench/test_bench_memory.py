"""The benchmarks' peak-memory figure belongs to the process measured, not to its parent."""

import json
import subprocess
import sys
from pathlib import Path

from bench.common import peak_rss_mb

ROOT = Path(__file__).resolve().parents[2]

_CHILD = """
import json, resource
from bench.common import peak_rss_mb
print(json.dumps({"peak": peak_rss_mb(),
                  "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def test_a_child_of_a_large_process_reports_its_own_peak():
    held = bytearray(768 << 20)
    held[::4096] = b"\x01" * len(held[::4096])  # touch every page, so it is resident
    assert peak_rss_mb() >= 768
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, check=True, cwd=ROOT
    )
    child = json.loads(out.stdout.strip().splitlines()[-1])
    del held
    # getrusage hands the parent's peak to the child across fork and exec; the figure the
    # benches report does not.
    assert child["ru_maxrss"] >= 768
    assert child["peak"] < 200


def test_without_prepared_data_nothing_is_measured_and_the_figures_stay(tmp_path, capsys):
    from bench import memory_bench

    results = tmp_path / "results"
    results.mkdir()
    (results / "memory.json").write_text('{"kept": true}')
    written = memory_bench.run(
        str(results), str(tmp_path / "no_multi30k"), str(tmp_path / "no_grid")
    )
    assert written is None
    assert json.loads((results / "memory.json").read_text()) == {"kept": True}
    said = capsys.readouterr().out
    assert "no prepared data at " + str(tmp_path / "no_grid") in said
    assert "lipseq prepare --config=configs/grid_lipnet.py" in said


def test_each_config_is_looked_for_in_its_own_prepared_dir(monkeypatch, tmp_path):
    from bench import memory_bench
    from configs import grid_lipnet

    looked = []
    monkeypatch.setattr(memory_bench, "_missing", lambda d, c: looked.append(d) or "absent")
    memory_bench.run(str(tmp_path))
    assert grid_lipnet.get_config().data.prepared_dir in looked
    assert "runs/multi30k/data" in looked
