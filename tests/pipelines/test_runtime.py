"""Process settings every lipseq verb applies: large buffers go back to the system when freed,
TensorFlow's oneDNN CPU kernels."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.runtime import ONEDNN_ENV

ROOT = Path(__file__).resolve().parents[2]

# Frees 200 blocks of 512 KiB but the last one, after glibc has seen (and raised its mmap
# threshold past) a freed 1 MiB block; prints resident MiB before and after.
_CHILD = """
import ctypes, json, sys
if sys.argv[1] == "lipseq":
    from pipelines.runtime import keep_large_buffers_off_the_heap
    assert keep_large_buffers_off_the_heap()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
def resident():
    status = open("/proc/self/status").read()
    return int(next(l.split()[1] for l in status.splitlines() if l.startswith("VmRSS:"))) / 1024
libc.free(libc.malloc(1 << 20))
before = resident()
blocks = [libc.malloc(512 << 10) for _ in range(200)]
for block in blocks:
    libc.memset(block, 1, 512 << 10)
for block in blocks[:-1]:
    libc.free(block)
print(json.dumps({"before": before, "after": resident()}))
"""


def _held_after_free(allocator: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, allocator], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr[-800:]
    resident = json.loads(out.stdout.strip().splitlines()[-1])
    return resident["after"] - resident["before"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc on Linux")
def test_freed_large_buffers_leave_the_process():
    # glibc's defaults keep the freed 100 MiB in the heap behind the one block still held.
    assert _held_after_free("glibc") > 60
    assert _held_after_free("lipseq") < 5


_ONEDNN_CHILD = """
import json, os, sys
from pipelines.runtime import onednn_in_use, use_onednn_kernels
took = use_onednn_kernels()
print(json.dumps({"took": took, "env": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
                  "tensorflow_says": onednn_in_use()}))
"""


def _onednn_child(env_value: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != ONEDNN_ENV}
    if env_value is not None:
        env[ONEDNN_ENV] = env_value
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    out = subprocess.run(
        [sys.executable, "-c", _ONEDNN_CHILD], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert out.returncode == 0, out.stderr[-800:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_onednn_kernels_are_asked_for_before_tensorflow_loads():
    # TensorFlow alone leaves them off on CPUs without AVX-512 VNNI/BF16 or AMX; lipseq asks.
    assert _onednn_child(None) == {"took": True, "env": "1", "tensorflow_says": True}


def test_a_users_onednn_choice_stands():
    assert _onednn_child("0") == {"took": False, "env": "0", "tensorflow_says": False}
    assert _onednn_child("1")["took"] is False


# Records the variable when the verb first imports TensorFlow (where the setting counts) and
# stops there, sparing the load; a verb that never imports it reports at its end.
_VERB_CHILD = """
import importlib.abc, json, os, sys

def report(when):
    sys.stdout.write(json.dumps({"when": when, "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS")}))
    sys.stdout.flush()

class AtTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow":
            report("tensorflow")
            os._exit(0)

sys.meta_path.insert(0, AtTensorFlow())
from pipelines.cli import main
main(["lipseq", sys.argv[1], "--help"])
report("end")
"""


def test_every_lipseq_verb_asks_for_onednn_before_tensorflow_loads():
    from pipelines.cli import VERBS

    env = {k: v for k, v in os.environ.items() if k != ONEDNN_ENV}
    children = {
        verb: subprocess.Popen(
            [sys.executable, "-c", _VERB_CHILD, verb],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        for verb in VERBS
    }
    seen = {}
    for verb, child in children.items():
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, (verb, err[-800:])
        seen[verb] = json.loads(out.strip().splitlines()[-1])["onednn"]
    assert seen == dict.fromkeys(VERBS, "1")
