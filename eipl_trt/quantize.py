"""Moved to :mod:`eipl_trt.precision` (FP16 and symmetric INT8 variants); kept as a re-export for old imports."""

from __future__ import annotations

from eipl_trt.precision import VARIANT_FILES, quantize_int8, record_calibration_feeds

__all__ = ["record_calibration_feeds", "quantize_int8", "VARIANT_FILES"]
