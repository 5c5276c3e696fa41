"""Reduced-precision ONNX variants for ONNX Runtime: INT8 (static, Q/DQ).

Precision is a property of the ONNX file: ``eipl-trt quantize`` writes ``model.int8.onnx`` beside
``model.onnx`` and registers it in ``model.json``; runners then offer that precision. FP16 is not
offered on ONNX Runtime's CPU provider: it is slower there than FP32 (no native FP16 math on x86),
and onnxruntime's float16 converter emits invalid graphs for these models when the sensitive ops
are kept in FP32. FP16 belongs to the TensorRT backend. What stays in FP32, and why (see docs/tensorrt-and-quantization.md §3.6, §5):

* the LSTM and the joint/point heads (Gemm): quantization error in the recurrent state accumulates
  over an episode;
* SARNN's spatial softmax (``Div`` by T = 1e-4, ``Softmax``) and the keypoint expectation: a
  rounding step of the logits moves attention points by several pixels;
* LayerNormalization (CNNRNNLN): its variance runs over up to 262,144 elements.

INT8 therefore quantizes only ``Conv`` and ``ConvTranspose`` (per channel, entropy calibration),
calibrated on closed-loop FP32 rollouts: the recorded inputs include the recurrent state each step
really consumed, as on the robot.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

from eipl_trt.errors import BackendUnavailableError, InputError, ModelError
from eipl_trt.predictor import Predictor
from eipl_trt.runners import create_runner
from eipl_trt.spec import ModelSpec, sha256_file

__all__ = ["record_calibration_feeds", "quantize_int8", "VARIANT_FILES"]

log = logging.getLogger(__name__)

VARIANT_FILES = {"int8": "model.int8.onnx"}
INT8_OP_TYPES = ["Conv", "ConvTranspose"]


def record_calibration_feeds(
    spec: ModelSpec,
    episodes: Iterable[tuple[Sequence[np.ndarray], Sequence[np.ndarray], str]],
    max_feeds: int = 512,
) -> list[dict[str, np.ndarray]]:
    """Run the FP32 model over episodes and record every step's model inputs, state included.

    Args:
        spec: the model (its fp32 variant is used).
        episodes: ``(frames, joints, encoding)`` per episode; frames ``(H, W, C)`` uint8, joints raw ``(D,)``.
        max_feeds: stop after this many steps in total.

    Returns:
        Feed dicts keyed by ONNX input name, as ONNX Runtime's calibrator wants them.
    """
    predictor = Predictor(create_runner(spec, "onnxruntime", "fp32"))
    names = spec.inputs
    feeds: list[dict[str, np.ndarray]] = []
    for frames, joints, encoding in episodes:
        predictor.reset_state()
        for frame, q in zip(frames, joints):
            if len(feeds) >= max_feeds:
                return feeds
            state = predictor.runner.get_state()
            image = predictor.preprocess_image(frame, encoding)
            joint = predictor.preprocess_joints(q)
            feeds.append({names["image"]: image, names["joint"]: joint.copy(),
                          names["state_h"]: state.h, names["state_c"]: state.c})
            predictor.step(frame, q, encoding, want_image=False)
    predictor.close()
    if not feeds:
        raise InputError("no calibration data: the episodes are empty")
    return feeds


class _FeedReader:
    """ONNX Runtime ``CalibrationDataReader`` over recorded feed dicts."""

    def __init__(self, feeds: Sequence[Mapping[str, np.ndarray]]):
        self._feeds = list(feeds)
        self._iter: Iterator[Mapping[str, np.ndarray]] = iter(self._feeds)

    def get_next(self) -> Mapping[str, np.ndarray] | None:
        return next(self._iter, None)

    def rewind(self) -> None:
        self._iter = iter(self._feeds)


def _register(spec: ModelSpec, precision: str, tmp: Path) -> ModelSpec:
    """Move a finished variant into place and record it in model.json (both atomic renames)."""
    assert spec.directory is not None
    final = spec.directory / VARIANT_FILES[precision]
    os.replace(tmp, final)
    updated = ModelSpec.load(spec.directory).with_variant(precision, final.name, sha256_file(final))
    updated.save(spec.directory)
    return updated


def _fp32_convs(path: Path) -> list[str]:
    """Convolutions kept in FP32: SARNN's last attention conv, whose output becomes softmax logits / T."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type == "Conv" and "pos_encoder.4" in n.name]


def quantize_int8(spec: ModelSpec, feeds: Sequence[Mapping[str, np.ndarray]], method: str = "entropy") -> ModelSpec:
    """Write ``model.int8.onnx`` (Q/DQ, Conv/ConvTranspose only, per channel) and register it.

    Args:
        spec: a model directory's spec (loaded with :meth:`ModelSpec.load`).
        feeds: calibration inputs from :func:`record_calibration_feeds`.
        method: ``entropy``, ``minmax`` or ``percentile``.

    Returns:
        The updated spec, which now lists an ``int8`` variant.
    """
    try:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise BackendUnavailableError("INT8 quantization needs onnxruntime with its quantization tools and onnx: "
                                      "`pip install onnxruntime onnx`") from exc
    methods = {"entropy": CalibrationMethod.Entropy, "minmax": CalibrationMethod.MinMax,
               "percentile": CalibrationMethod.Percentile}
    if method not in methods:
        raise InputError(f"unknown calibration method {method!r}; choose one of {', '.join(methods)}")
    if not feeds:
        raise InputError("INT8 quantization needs calibration data; none was given")
    source = spec.verify_variant("fp32")
    assert spec.directory is not None
    with tempfile.TemporaryDirectory(dir=spec.directory) as work:
        pre = Path(work) / "pre.onnx"
        out = Path(work) / "int8.onnx"
        quant_pre_process(str(source), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre), str(out), _FeedReader(feeds),
            quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            per_channel=True, calibrate_method=methods[method], op_types_to_quantize=INT8_OP_TYPES,
            nodes_to_exclude=_fp32_convs(pre),
            # Conv outputs stay float: LeakyReLU/LayerNorm/softmax downstream see FP32 activations.
            extra_options={"OpTypesToExcludeOutputQuantization": INT8_OP_TYPES},
        )
        log.info("quantized %s with %d calibration steps (%s)", source, len(feeds), method)
        return _register(spec, "int8", out)
