"""Eager PyTorch runner: the same model as the exported ONNX, run by PyTorch itself.

It is the baseline column of the benchmarks and the reference of the parity tests, behind the
same :class:`~eipl_trt.runners.base.Runner` interface as the deployment backends, so the
:class:`~eipl_trt.predictor.Predictor` pipeline around it is identical. Needs torch; the ROS
node never uses it.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np

from eipl_trt.errors import BackendUnavailableError
from eipl_trt.runners.base import RecurrentState, Runner
from eipl_trt.spec import ModelSpec

__all__ = ["TorchRunner"]


class TorchRunner(Runner):
    """Runs a ``torch.nn.Module`` (an eipl_trt/EIPL model) eagerly on the CPU, fp32.

    Args:
        spec: the sidecar of the exported model these weights belong to.
        model: the module, or ``None`` to load ``model.pth`` (+ ``args.json``) from the spec's
            directory with :func:`eipl_trt.models.checkpoint.model_from_checkpoint`.
        num_threads: ``torch.set_num_threads`` value (process-wide; default 1).
    """

    backend = "torch"

    def __init__(self, spec: ModelSpec, model: Any = None, num_threads: int | None = None):
        super().__init__(spec, "fp32")
        self._model = model
        self.num_threads = 1 if num_threads is None else int(num_threads)
        self._torch: Any = None
        self._state: tuple[Any, Any] | None = None
        self._can_skip = False  # the module's forward takes decode_image (eipl_trt's models do)

    def _open_impl(self) -> None:
        try:
            import torch
        except ImportError as exc:
            raise BackendUnavailableError("the eager baseline needs torch: `pip install torch`") from exc
        self._torch = torch
        torch.set_num_threads(self.num_threads)
        if self._model is None:
            self._model = self._load_checkpoint()
        self._model.eval()
        import inspect

        self._can_skip = "decode_image" in inspect.signature(self._model.forward).parameters

    def _load_checkpoint(self) -> Any:
        from eipl_trt.models.checkpoint import load_state_dict_file, model_from_checkpoint, read_args_json

        if self.spec.directory is None:
            raise BackendUnavailableError("no model directory to load model.pth from")
        ckpt = self.spec.directory / "model.pth"
        if not ckpt.is_file():
            raise BackendUnavailableError(
                f"{ckpt} not found: the eager PyTorch baseline needs the training checkpoint beside model.json"
            )
        args_path = self.spec.directory / "args.json"
        args = read_args_json(args_path) if args_path.is_file() else None
        arch = self.spec.architecture
        model, _arch = model_from_checkpoint(
            self.spec.model,
            load_state_dict_file(ckpt),
            args,
            leaky_slope=arch.get("leaky_slope"),
            im_size=(self.spec.image_height, self.spec.image_width) if self.spec.model == "sarnn" else None,
        )
        return model

    def _close_impl(self) -> None:
        self._state = None

    @property
    def skips_image(self) -> bool:
        return self._can_skip

    def _infer_impl(self, image: np.ndarray, joint: np.ndarray) -> Mapping[str, np.ndarray]:
        return self._step(image, joint, True)

    def _infer_control_impl(self, image: np.ndarray, joint: np.ndarray) -> Mapping[str, np.ndarray]:
        return self._step(image, joint, False)

    def _step(self, image: np.ndarray, joint: np.ndarray, decode_image: bool) -> Mapping[str, np.ndarray]:
        torch = self._torch
        if torch.get_num_threads() != self.num_threads:  # process-wide: another runner may have changed it
            torch.set_num_threads(self.num_threads)
        started = time.perf_counter()
        with torch.inference_mode():
            args = (torch.from_numpy(image), torch.from_numpy(joint), self._state)
            out = self._model(*args, decode_image=False) if not decode_image else self._model(*args)
        self.last_timings = {"compute": time.perf_counter() - started}
        if self.spec.has_points:
            y_image, y_joint, enc, dec, state = out
            result = {"joint": y_joint.numpy(), "enc_pts": enc.numpy(), "dec_pts": dec.numpy()}
        else:
            y_image, y_joint, state = out
            result = {"joint": y_joint.numpy()}
        if y_image is not None:
            result["image"] = y_image.numpy()
        self._state = (state[0], state[1])
        return result

    def _get_state_impl(self) -> RecurrentState:
        assert self._state is not None
        return RecurrentState(self._state[0].numpy().copy(), self._state[1].numpy().copy())

    def _set_state_impl(self, state: RecurrentState) -> None:
        torch = self._torch
        self._state = (torch.from_numpy(state.h.copy()), torch.from_numpy(state.c.copy()))
