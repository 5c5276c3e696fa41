#!/usr/bin/env python3
"""Time eipl_trt.camera's decoding per frame: the ``decode`` stage the node reports as ``decode_ms``.

For each format (raw rgb8 view, YUV 4:2:2, Bayer, mono16, JPEG and PNG as compressed_image_transport
writes them) and size, decodes the same frame --repeat times, interleaved round-robin so machine
noise hits every format alike, and prints p50/p99/max in ms.

    python scripts/bench_decode.py --sizes 64x64 640x480 --repeat 300
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Callable

import numpy as np

from eipl_trt.camera import decode_compressed, decode_raw, encode_compressed


def _cases(h: int, w: int) -> dict[str, Callable[[], object]]:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 256], -1).astype(np.uint8)
    rgb = np.clip(rgb.astype(int) + rng.integers(-8, 9, rgb.shape), 0, 255).astype(np.uint8)
    raw = rgb.tobytes()
    yuv = rng.integers(0, 256, (h, w, 2), dtype=np.uint8).tobytes()
    bayer = rng.integers(0, 256, (h, w), dtype=np.uint8).tobytes()
    mono16 = rng.integers(0, 65536, (h, w), dtype=np.uint16).tobytes()
    jpeg = encode_compressed(rgb, "rgb8", "jpeg", 95)
    png = encode_compressed(rgb, "rgb8", "png")
    return {
        "rgb8 (view)": lambda: decode_raw(h, w, "rgb8", w * 3, raw),
        "yuv422": lambda: decode_raw(h, w, "yuv422", w * 2, yuv, converter="opencv"),
        "bayer_rggb8": lambda: decode_raw(h, w, "bayer_rggb8", w, bayer, converter="opencv"),
        "mono16": lambda: decode_raw(h, w, "mono16", w * 2, mono16, converter="opencv"),
        f"jpeg q95 ({len(jpeg[1]) // 1024} KiB)": lambda: decode_compressed(*jpeg),
        f"png ({len(png[1]) // 1024} KiB)": lambda: decode_compressed(*png),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["64x64", "128x128", "640x480"], help="WxH frame sizes")
    parser.add_argument("--repeat", type=int, default=200, help="decodes per format and size (default %(default)s)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()}")
    for size in args.sizes:
        w, h = (int(v) for v in size.lower().split("x"))
        cases = _cases(h, w)
        times: dict[str, list[float]] = {name: [] for name in cases}
        for fn in cases.values():
            fn()  # warm up (imports, caches)
        for _ in range(args.repeat):
            for name, fn in cases.items():
                t0 = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - t0) * 1e3)
        print(f"\n{w}x{h}: decode ms (p50 / p99 / max over {args.repeat})")
        for name, values in times.items():
            v = np.asarray(values)
            print(f"  {name:24s} {np.percentile(v, 50):7.3f} {np.percentile(v, 99):7.3f} {v.max():7.3f}")


if __name__ == "__main__":
    main()
