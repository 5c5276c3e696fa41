"""Latency benchmarks of the full Predictor step (``eipl-trt bench``).

:mod:`core` runs configurations (model x backend x precision) side by side on the same inputs and
writes the tables; :mod:`concurrent` steps several models together and measures per-model latency
and total throughput (``--concurrent N``). The public names of both are re-exported here.
"""

from __future__ import annotations

from eipl_trt.bench.concurrent import ConcurrentResult, concurrency_table, run_concurrent, run_concurrent_processes
from eipl_trt.bench.core import (
    STAGES, BenchCase, BenchResult, csv_text, environment, markdown_table, run_benchmark, synthetic_inputs,
    write_reports,
)

__all__ = [
    "STAGES", "BenchCase", "BenchResult", "run_benchmark", "synthetic_inputs", "environment", "markdown_table",
    "csv_text", "write_reports",
    "ConcurrentResult", "run_concurrent", "run_concurrent_processes", "concurrency_table",
]
