"""The user-facing error types of eipl_trt.

Every problem a user can fix (bad input, a bad model file, a missing backend) raises an
:class:`EipltrtError` subclass whose message says what went wrong and what to do. Anything
else is a bug in eipl_trt and surfaces as an ordinary exception.
"""

from __future__ import annotations

__all__ = [
    "EipltrtError",
    "InputError",
    "DatasetError",
    "ModelError",
    "BackendUnavailableError",
    "NonFiniteOutputError",
]


class EipltrtError(Exception):
    """A problem the user can fix; the message says how. The CLI prints it without a traceback."""


class InputError(EipltrtError, ValueError):
    """A camera frame or joint vector handed to the predictor is unusable (size, encoding, NaN, ...)."""


class DatasetError(InputError):
    """A dataset directory (or its dataset.json) is missing, malformed, or does not fit the model."""


class ModelError(EipltrtError):
    """A checkpoint, ONNX file or sidecar is missing, corrupt or inconsistent."""


class BackendUnavailableError(EipltrtError):
    """The requested backend or precision cannot run on this machine."""


class NonFiniteOutputError(EipltrtError):
    """The model produced NaN or Inf; the recurrent state has been reset."""
