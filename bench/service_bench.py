"""The HTTP service under load: warm latency per decoding mode, requests/s with 1, 4 and 8
concurrent clients, error rate and peak memory, beside the bare model and a reference workload.

    python -m bench.service_bench --output_dir=bench/results [--model=grid_s1] [--load_seconds=60]

The service runs as `lipseq serve` in its own process on 127.0.0.1 and is driven with httpx.
Latency: after 3 warm-up requests per mode, 3 rounds, each of `requests` sequential requests
per mode (the modes taking turns): p50, p90 and p95 per round, median and spread over rounds,
and the p50 of each stage the server reports (prepare, model, words). The service's overhead
is taken request by request from the server's own report of the request's preparation and
model seconds: what the client waited beyond them (HTTP, upload, queue, word times, JSON).
Beside it, in this process before any load and after a warm-up of each: the clip's
preparation alone, the bare model call of each mode on the same crops, the word timing a CTC
mode's answer adds (its forced attention pass), and a fixed NumPy workload (the host's
speed). Load: `load_seconds` per client count, split into 3 rounds in which the
client counts (1, 4, 8) take turns; requests/s median and spread over rounds.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from absl import app, flags

from bench.common import finish, spread, write_results

FLAGS = flags.FLAGS
MODES = ("ctc_greedy", "joint")


def reference_workload_seconds(repeats: int = 5) -> float:
    """Median seconds of a fixed NumPy job (matrix products), a yardstick of the host."""
    rng = np.random.default_rng(0)
    a = rng.random((512, 512), dtype=np.float32)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(20):
            a = np.tanh(a @ a / 512.0)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def _spread(values: list[float], scale: float = 1000.0) -> dict:
    return {
        "median": round(float(np.median(values)) * scale, 1),
        "min": round(min(values) * scale, 1),
        "max": round(max(values) * scale, 1),
    }


def _timed(call, repeats: int) -> dict:
    """Milliseconds of `call` (once for warm-up, then `repeats` times): median and spread."""
    call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return _spread(times)


def bare_model(model: str, video: str, repeats: int = 10) -> dict:
    """Milliseconds of preparation, of each mode's model call and of a CTC mode's word times,
    the model loaded once."""
    import tensorflow as tf

    from pipelines.inference.lipreading import LipReadingExport
    from pipelines.inference.words import timed_words

    export = LipReadingExport(model)
    prepared = export.prepare(video)  # the detector, decoder and caches loaded
    result = {"prepare_ms": _timed(lambda: export.prepare(video), 5), "frames": len(prepared.crops)}
    frames = tf.constant(prepared.crops[None])
    lengths = tf.constant([len(prepared.crops)], tf.int32)
    for mode in MODES:
        function = export.loaded.signatures[mode]

        def call(function=function):
            for output in function(frames=frames, lengths=lengths).values():
                finish(output)

        result[f"{mode}_model_ms"] = _timed(call, repeats)
    # What a CTC answer adds for its word times: the export's attention decoder forced over
    # the text (an attention mode's own alignment costs nothing more).
    out = export.run(export.function(export.entry("ctc_greedy")), prepared)
    text, alignment = out["text"].decode(), out["alignments"]
    result["ctc_greedy_words_ms"] = _timed(
        lambda: timed_words(export, text, alignment, prepared.crops, prepared.fps), repeats
    )
    return result


class Server:
    """`lipseq serve` in a child process, with its peak RSS sampled every 0.2 s."""

    def __init__(self, model: str):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pipelines",
                "serve",
                f"--model={model}",
                f"--port={self.port}",
                "--queue_size=32",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        self.peak_rss = 0
        self._stop = threading.Event()

    def __enter__(self):
        import httpx
        import psutil

        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("lipseq serve did not come up")
            time.sleep(0.5)
        watched = psutil.Process(self.process.pid)

        def sample():
            while not self._stop.is_set():
                self.peak_rss = max(self.peak_rss, watched.memory_info().rss)
                time.sleep(0.2)

        self.startup_rss = watched.memory_info().rss
        threading.Thread(target=sample, daemon=True).start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self.process.terminate()
        self.process.wait(timeout=30)


def _post(client, url: str, data: bytes, mode: str, answer: bool = False):
    """(status, seconds the client waited[, the JSON answer])."""
    started = time.perf_counter()
    response = client.post(
        url + "/v1/transcribe", files={"video": ("clip.mp4", data)}, data={"mode": mode}
    )
    waited = time.perf_counter() - started
    if answer:
        return response.status_code, waited, response.json()
    return response.status_code, waited


def warm_latency(url: str, data: bytes, requests: int, rounds: int = 3) -> dict:
    """p50/p95 (ms) of sequential requests per mode, the modes taking turns within each round,
    and the service's overhead per request beyond the preparation and model time the server
    reported for that request: median and spread over rounds."""
    import httpx

    waits = {mode: [[] for _ in range(rounds)] for mode in MODES}
    overheads = {mode: [[] for _ in range(rounds)] for mode in MODES}
    stages = {mode: [{} for _ in range(rounds)] for mode in MODES}
    reported = {}
    with httpx.Client(timeout=60) as client:
        for mode in MODES:
            for _ in range(3):
                _post(client, url, data, mode)  # warm-up
        for index in range(rounds):
            for mode in MODES:
                for _ in range(requests):
                    status, seconds, body = _post(client, url, data, mode, answer=True)
                    assert status == 200, status
                    waits[mode][index].append(seconds)
                    spent = body["seconds"]
                    overheads[mode][index].append(seconds - spent["prepare"] - spent["model"])
                    for stage, value in spent.items():
                        stages[mode][index].setdefault(stage, []).append(value)
                    reported[mode] = spent
    result = {}
    for mode in MODES:
        result[mode] = {
            "p50_ms": _spread([float(np.percentile(w, 50)) for w in waits[mode]]),
            "p90_ms": _spread([float(np.percentile(w, 90)) for w in waits[mode]]),
            "p95_ms": _spread([float(np.percentile(w, 95)) for w in waits[mode]]),
            "overhead_p50_ms": _spread([float(np.percentile(o, 50)) for o in overheads[mode]]),
            "server_stage_p50_ms": {
                stage: _spread([float(np.percentile(r[stage], 50)) for r in stages[mode]])
                for stage in stages[mode][0]
            },
            "rounds": rounds,
            "requests_per_round": requests,
            "server_reported_seconds_last": reported[mode],
        }
    return result


def load(url: str, data: bytes, clients: int, seconds: float, mode: str) -> dict:
    """Requests/s, error rate and latency with `clients` clients posting back to back."""
    import httpx

    deadline = time.monotonic() + seconds

    def client_loop(_):
        outcomes = []
        with httpx.Client(timeout=120) as client:
            while time.monotonic() < deadline:
                outcomes.append(_post(client, url, data, mode))
        return outcomes

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        outcomes = [o for part in pool.map(client_loop, range(clients)) for o in part]
    elapsed = time.perf_counter() - started
    ok = [s for status, s in outcomes if status == 200]
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": len(outcomes),
        "requests_per_second": round(len(ok) / elapsed, 2),
        "error_rate": round(1 - len(ok) / max(len(outcomes), 1), 4),
        "p50_ms": round(float(np.percentile(ok, 50)) * 1000, 1) if ok else None,
        "p95_ms": round(float(np.percentile(ok, 95)) * 1000, 1) if ok else None,
    }


def load_rounds(url: str, data: bytes, seconds: float, rounds: int = 3) -> list[dict]:
    """load() for 1, 4 and 8 clients, `seconds` each in all, split into `rounds` rounds in
    which the client counts take turns: requests/s and p50 median and spread over rounds."""
    runs = {clients: [] for clients in (1, 4, 8)}
    for _ in range(rounds):
        for clients in runs:
            runs[clients].append(load(url, data, clients, seconds / rounds, "ctc_greedy"))
    summary = []
    for clients, done in runs.items():
        summary.append(
            {
                "clients": clients,
                "rounds": rounds,
                "seconds_per_round": round(seconds / rounds, 1),
                "requests": sum(r["requests"] for r in done),
                "requests_per_second": spread([r["requests_per_second"] for r in done], 2),
                "error_rate": round(max(r["error_rate"] for r in done), 4),
                "p50_ms": spread([r["p50_ms"] for r in done if r["p50_ms"] is not None], 1),
            }
        )
    return summary


def run(output_dir: str, model: str, video: str, load_seconds: float, requests: int) -> Path:
    data = Path(video).read_bytes()
    reference = reference_workload_seconds()
    bare = bare_model(model, video)
    with Server(model) as server:
        latency = warm_latency(server.url, data, requests)
        loads = load_rounds(server.url, data, load_seconds) if load_seconds > 0 else []
        peak, startup = server.peak_rss, server.startup_rss
    overhead = {}
    for mode in MODES:
        model_ms = bare[f"{mode}_model_ms"]["median"]
        spent = latency[mode]["overhead_p50_ms"]["median"]
        overhead[mode] = {
            "service_ms": spent,
            "share_of_bare_model_time": round(spent / model_ms, 3),
        }
    results = {
        "model": model,
        "clip": str(video),
        "reference_workload_seconds": round(reference, 3),
        "bare": bare,
        "warm_latency": latency,
        "service_overhead": overhead,
        "load_ctc_greedy": loads,
        "server_rss_mb": {"after_start": round(startup / 2**20), "peak": round(peak / 2**20)},
        "targets": "p50 <= 100 ms (ctc_greedy), <= 200 ms (joint); overhead <= 20 % of model",
    }
    return write_results("service", results, output_dir)


def define_flags() -> None:
    flags.DEFINE_string("output_dir", "bench/results", "Where service.json goes.")
    flags.DEFINE_string("model", "grid_s1", "Lip-reading export or shipped model name.")
    flags.DEFINE_string(
        "video",
        "../shared/data/grid/s1/video/swwv6n.mp4",
        "A 3-s face clip (default: a GRID s1 test-split clip).",
    )
    flags.DEFINE_float(
        "load_seconds",
        60.0,
        "Seconds of load per client count, over 3 interleaved rounds (0: latency alone).",
    )
    flags.DEFINE_integer("requests", 20, "Sequential requests per latency round.")


def main(argv: list[str]) -> None:
    del argv
    print(run(FLAGS.output_dir, FLAGS.model, FLAGS.video, FLAGS.load_seconds, FLAGS.requests))


if __name__ == "__main__":
    define_flags()
    app.run(main)
