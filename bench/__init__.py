"""Benchmarks (`python -m bench.<name>`), on the CPU kernels the `lipseq` command uses."""

from pipelines.runtime import use_onednn_kernels

use_onednn_kernels()
