"""Quantization lab: bit-width sweeps and integer-only inference for EIPL models (numpy at run time).

Below INT8-on-TensorRT: what an FPGA, MCU or NPU designer needs to know about SARNN, CNNRNN and
CNNRNNLN over whole closed-loop episodes, where quantization errors feed back through the LSTM state.

Modules: :mod:`executor` (a numpy ONNX executor with per-node fake quantization), :mod:`sweep`
(bit-width sweeps and per-layer sensitivity) and :mod:`integer` (integer-only conversion). The
integer engine they share (rounding modes, saturation, scales, ops, the bit-exact executor, file
format, memory plan) and the integer model behind the Runner interface live in
:mod:`eipl_trt.runners.integer`.

    eipl-trt quantlab sweep --model engines/sarnn --data data/pusher_sample --out results/quantlab/sarnn
    eipl-trt quantlab integer --model engines/sarnn --calibration data/pusher_sample --out results/quantlab/sarnn-int
"""

from __future__ import annotations
