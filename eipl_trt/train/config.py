"""Training configuration and result records (no torch; safe to import anywhere).

:class:`TrainConfig` holds every knob of ``eipl-trt train``; its defaults reproduce EIPL's
pretrained-era configuration (eipl-models.md §3.3): batch 5, Adam lr 1e-3 / eps 1e-7, input
noise stdev 0.02, loss weights SARNN img 0.1 / joint 1.0 / pt 0.1 and CNNRNN(LN) img 1.0 /
joint 1.0. :class:`TrainResult` is what :func:`eipl_trt.train.train` returns.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eipl_trt.errors import EipltrtError

__all__ = ["MODEL_KINDS", "DEFAULT_LOSS_WEIGHTS", "TrainConfig", "TrainResult", "default_threads"]

MODEL_KINDS = ("sarnn", "cnnrnn", "cnnrnnln")

#: EIPL's loss weights per model kind: (img, joint, pt). CNN models have no point loss.
DEFAULT_LOSS_WEIGHTS: dict[str, tuple[float, float, float]] = {
    "sarnn": (0.1, 1.0, 0.1),
    "cnnrnn": (1.0, 1.0, 0.0),
    "cnnrnnln": (1.0, 1.0, 0.0),
}

#: Input size (px) of the CNN models; their encoders flatten an 8x4x4 map.
CNN_IM_SIZE = 128


def default_threads() -> int:
    """Number of CPU cores this process may use (the default for ``--threads``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. ``None`` means "the default for this model kind".

    Attributes:
        model: ``"sarnn"``, ``"cnnrnn"`` or ``"cnnrnnln"``.
        epochs: maximum number of passes over the training split.
        batch_size: sequences per optimizer step (EIPL: 5).
        lr: Adam learning rate (EIPL: 1e-3; Adam eps is fixed at 1e-7 as in EIPL).
        rec_dim: LSTM hidden size.
        k_dim: SARNN attention points.
        feat_dim: CNNRNN/CNNRNNLN image feature size.
        im_size: SARNN input size in px (square); frames are resized to it with
            :func:`eipl_trt.imaging.resize_bilinear`. CNN models always use 128 px.
        leaky_slope: SARNN LeakyReLU slope (0.3 = eipl HEAD).
        heatmap_size: SARNN inverse-spatial-softmax width.
        temperature: SARNN spatial-softmax temperature.
        img_loss, joint_loss, pt_loss: loss weights; ``None`` takes :data:`DEFAULT_LOSS_WEIGHTS`.
        stdev: std of the Gaussian noise added to the normalized input images and joints.
        decay_end: training batches over which the point-loss weight ramps up (s-curve).
        eval_every: evaluate on the test split every this many epochs (and after the last one).
        seed: seeds weight init, shuffling and noise.
        threads: torch intra-op threads; ``None`` = all cores available to the process.
        max_minutes: wall-time budget in minutes; training stops gracefully (saving) when it
            runs out. ``None`` = no limit.
        init_from: an EIPL checkpoint (``model.pth``) whose weights start the run, to continue
            or fine-tune a model of the same architecture. The optimizer and the point-loss
            ramp start fresh (pass ``decay_end=1`` for the full point weight at once).
        select_by: which test score picks the saved checkpoint: ``"loss"`` (the weighted total,
            as EIPL does) or ``"joint"`` (the joint prediction error alone, what a controller
            and ``eipl-trt evaluate`` care about).
        freeze_image: keep the image path fixed and train the LSTM and joint decoder (SARNN: and
            its point decoder) from cached encoder features (no image noise), many times faster
            on a CPU; see :mod:`eipl_trt.train.frozen`. Meant for a model whose image path is
            already trained (with ``init_from``).
        input_mix: joint input while training = ``input_mix * measured + (1 - input_mix) *
            previous prediction`` (normalized, gradients through the prediction), as the node's
            ``input_mix`` blends them at run time; 1.0 = teacher forcing (EIPL's procedure).
            Lower values teach the model to follow its own predictions, as a closed loop makes it.
        autocast: ``"bf16"`` runs the forward pass under ``torch.autocast`` in bfloat16 (convolutions and
            matmuls; worth it on CPUs with AVX512-BF16 or AMX, and on GPUs), ``"none"`` in fp32.
        channels_last: keep images and convolution weights in NHWC memory order.
        tbptt: truncated BPTT window (steps): the LSTM state carries on, its gradient is cut every
            ``tbptt`` steps; 0 = full BPTT (EIPL's procedure).
        keep_epochs: also save every epoch's weights as ``epochs/epoch_NNN.pth``, for choosing a
            checkpoint by something the test loss does not measure (closed-loop success).
        device: where the model trains: ``"cpu"`` or a CUDA device (``"cuda"``, ``"cuda:1"``).
            The frames are converted and noised on that device; checkpoints are always saved
            as CPU tensors, so a model trained on a GPU loads anywhere.
    """

    model: str
    epochs: int = 100
    batch_size: int = 5
    lr: float = 1e-3
    rec_dim: int = 50
    k_dim: int = 5
    feat_dim: int = 10
    im_size: int = 64
    leaky_slope: float = 0.3
    heatmap_size: float = 0.1
    temperature: float = 1e-4
    img_loss: float | None = None
    joint_loss: float | None = None
    pt_loss: float | None = None
    stdev: float = 0.02
    decay_end: int = 1000
    eval_every: int = 1
    seed: int = 0
    threads: int | None = None
    max_minutes: float | None = None
    init_from: str | None = None
    select_by: str = "loss"
    freeze_image: bool = False
    input_mix: float = 1.0
    device: str = "cpu"
    autocast: str = "none"
    channels_last: bool = False
    tbptt: int = 0
    keep_epochs: bool = False

    # ------------------------------------------------------------------ resolved values
    @property
    def loss_weights(self) -> tuple[float, float, float]:
        """(img, joint, pt) weights with the per-kind defaults filled in (pt is 0 for CNN models)."""
        d_img, d_joint, d_pt = DEFAULT_LOSS_WEIGHTS[self.model]
        img = d_img if self.img_loss is None else float(self.img_loss)
        joint = d_joint if self.joint_loss is None else float(self.joint_loss)
        pt = d_pt if self.pt_loss is None or self.model != "sarnn" else float(self.pt_loss)
        return img, joint, pt

    @property
    def image_size(self) -> int:
        """Model input size in px: ``im_size`` for SARNN, 128 for the CNN models."""
        return int(self.im_size) if self.model == "sarnn" else CNN_IM_SIZE

    @property
    def num_threads(self) -> int:
        """The torch thread count to use."""
        return int(self.threads) if self.threads is not None else default_threads()

    def architecture(self, joint_dim: int) -> dict[str, Any]:
        """Constructor arguments for :func:`eipl_trt.models.build_model`."""
        if self.model == "sarnn":
            return {
                "rec_dim": self.rec_dim,
                "k_dim": self.k_dim,
                "joint_dim": joint_dim,
                "temperature": self.temperature,
                "heatmap_size": self.heatmap_size,
                "im_size": (self.image_size, self.image_size),
                "leaky_slope": self.leaky_slope,
            }
        return {"rec_dim": self.rec_dim, "joint_dim": joint_dim, "feat_dim": self.feat_dim}

    def validate(self) -> None:
        """Raise :class:`EipltrtError` naming the first invalid setting and the fix."""

        def bad(msg: str) -> None:
            raise EipltrtError(f"invalid training option: {msg}")

        if self.model not in MODEL_KINDS:
            bad(f"--model {self.model!r} is not one of {', '.join(MODEL_KINDS)}")
        for name in ("epochs", "batch_size", "rec_dim", "k_dim", "feat_dim", "eval_every", "decay_end"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                bad(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if self.model == "sarnn" and self.im_size < 8:
            bad(f"--im-size {self.im_size} is too small; SARNN needs at least 8 px (EIPL uses 64 or 128)")
        positive = {"lr": self.lr, "heatmap_size": self.heatmap_size, "temperature": self.temperature}
        for name, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                bad(f"--{name.replace('_', '-')} must be a positive number, got {value!r}")
        non_negative = {"stdev": self.stdev, "leaky_slope": self.leaky_slope}
        non_negative.update(zip(("img_loss", "joint_loss", "pt_loss"), self.loss_weights))
        for name, value in non_negative.items():
            if not (math.isfinite(value) and value >= 0):
                bad(f"--{name.replace('_', '-')} must be a number >= 0, got {value!r}")
        if sum(self.loss_weights) <= 0:
            bad("all loss weights are 0; nothing would be trained")
        if self.threads is not None and self.threads < 1:
            bad(f"--threads must be >= 1, got {self.threads}")
        if self.max_minutes is not None and not (math.isfinite(self.max_minutes) and self.max_minutes > 0):
            bad(f"--max-minutes must be a positive number of minutes, got {self.max_minutes!r}")
        if self.freeze_image and self.loss_weights[1] <= 0:
            bad("--freeze-image trains on the joint loss only, but --joint-loss is 0")
        if not (math.isfinite(self.input_mix) and 0.0 <= self.input_mix <= 1.0):
            bad(f"--input-mix must be in [0, 1], got {self.input_mix!r}")
        if not isinstance(self.tbptt, int) or self.tbptt < 0:
            bad(f"--tbptt must be an integer >= 0 (0 = full BPTT), got {self.tbptt!r}")
        if self.autocast not in ("none", "bf16"):
            bad(f"--autocast must be 'none' or 'bf16', got {self.autocast!r}")
        if self.select_by not in ("loss", "joint"):
            bad(f"--select-by must be 'loss' or 'joint', got {self.select_by!r}")
        kind, _, index = str(self.device).partition(":")
        if kind not in ("cpu", "cuda") or (index and not (kind == "cuda" and index.isdigit())):
            bad(f"--device must be 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")


@dataclass
class TrainResult:
    """Outcome of a training run.

    Losses are the weighted totals that training optimizes (test: no noise, full point-loss
    weight); ``nan`` if never measured.

    Attributes:
        model: model kind.
        epochs_run: epochs in which at least one batch was trained (the last may be partial).
        batches_run: optimizer steps taken.
        best_epoch: 0-based epoch of the saved checkpoint (-1 if none was saved).
        best_train_loss, best_test_loss: the saved checkpoint's train loss and its test score
            (the weighted total, or the joint loss alone with ``select_by="joint"``).
        final_train_loss, final_test_loss: losses of the last epoch / evaluation.
        wall_time_s: total wall time in seconds, data loading included.
        stop_reason: ``"completed"``, ``"time_limit"`` or ``"interrupted"``.
        out_dir, checkpoint, args_json, log_csv, joint_bounds, metrics_json: output paths.
        metrics: test-split joint prediction metrics of the saved checkpoint (see
            :func:`eipl_trt.train.metrics.joint_prediction_mse`).
        onnx_dir: set by the CLI when ``--export`` wrote an ONNX model.
    """

    model: str
    epochs_run: int
    batches_run: int
    best_epoch: int
    best_train_loss: float
    best_test_loss: float
    final_train_loss: float
    final_test_loss: float
    wall_time_s: float
    stop_reason: str
    out_dir: Path
    checkpoint: Path
    args_json: Path
    log_csv: Path
    joint_bounds: Path
    metrics_json: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    onnx_dir: Path | None = None
