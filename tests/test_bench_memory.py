"""The benchmarks' peak-memory figure belongs to the process measured, not to its parent."""

import json
import subprocess
import sys
from pathlib import Path

from bench.common import peak_rss_mb

ROOT = Path(__file__).resolve().parents[1]

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
