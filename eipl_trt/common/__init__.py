"""Plain helpers every layer may use; numpy and the standard library only, nothing from eipl_trt.

:mod:`atomic` (crash-safe file writes: temp file, fsync, rename), :mod:`progress` (a progress bar
on a terminal, periodic lines in a log) and :mod:`stats` (rolling percentiles, rates and per-stage
latency summaries). Import the modules themselves (``from eipl_trt.common.atomic import ...``).
"""
