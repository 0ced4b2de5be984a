"""Media variants of a 12-megapixel photo: this service's pipeline against naive Pillow and libvips.

Generates a photo-like 4000x3000 JPEG (gradients and shapes under sensor-like
noise, quality 90, about 5-6 MB) and, for each pipeline, measures in fresh
processes (``--rounds`` per pipeline, interleaved with the other pipelines) the
median wall and CPU time of ``--runs`` runs each (after one warm-up) and the
peak resident memory. Every pipeline produces the same outputs: a
1080-px-wide large, a 480-px-wide small and a 150x150 centre-cropped thumbnail,
each as WebP (quality 80, effort 2 by default) and progressive JPEG (quality 82, optimised).

* ``naive``: Pillow, full decode, EXIF transpose, three LANCZOS resizes from the original.
* ``service``: ``nightshift.media.images.render_variants`` (DCT-domain downscaling
  on decode via ``Image.draft``, each variant resized from the previous one).
* ``libvips``: pyvips ``thumbnail_buffer`` (shrink-on-load), with libvips' own thread
  pool (``libvips``) and restricted to one thread (``libvips-1t``), the reference.

Run it with ``python -m bench.media_variants`` (``--rounds 1 --runs 3`` for a quick run;
``MEDIA_WEBP_METHOD=4 python -m bench.media_variants`` for another WebP effort).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

from bench._common import ROOT, header

#: The photo: 12 megapixels, as a phone takes them.
PHOTO_SIZE = (4000, 3000)

#: Pipelines measured, in the order they are reported.
PIPELINES = ("naive", "service", "libvips", "libvips-1t")

#: Encoder settings shared by every pipeline: the service's defaults; the WebP effort
#: follows ``MEDIA_WEBP_METHOD`` like the service does.
JPEG_QUALITY, WEBP_QUALITY = 82, 80
WEBP_EFFORT = int(os.environ.get("MEDIA_WEBP_METHOD", "2"))


class Measurement(TypedDict):
    """What one pipeline's process reports."""

    times: list[float]
    cpu_times: list[float]
    resize_times: list[float]
    baseline_kb: int
    peak_kb: int
    outputs: list[tuple[int, int, int]]


#: A pipeline: everything (decode, resize, encode), and decode + resize alone.
Outputs = list[tuple[int, int, int]]
Pipeline = tuple[Callable[[bytes], Outputs], Callable[[bytes], object]]


def naive_pipeline() -> Pipeline:
    from PIL import Image, ImageOps

    def resize(data: bytes) -> list[Image.Image]:
        image: Image.Image = Image.open(io.BytesIO(data))
        image.load()
        image = ImageOps.exif_transpose(image)
        width, height = image.size
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        return [
            image.resize((1080, round(height * 1080 / width)), Image.Resampling.LANCZOS),
            image.resize((480, round(height * 480 / width)), Image.Resampling.LANCZOS),
            image.crop((left, top, left + side, top + side)).resize((150, 150), Image.Resampling.LANCZOS),
        ]

    def run(data: bytes) -> Outputs:
        outputs = []
        for variant in resize(data):
            for kind, options in (
                ("WEBP", {"quality": WEBP_QUALITY, "method": WEBP_EFFORT}),
                ("JPEG", {"quality": JPEG_QUALITY, "progressive": True, "optimize": True}),
            ):
                buffer = io.BytesIO()
                variant.save(buffer, kind, **options)
                outputs.append((variant.width, variant.height, len(buffer.getvalue())))
        return outputs

    return run, resize


def service_pipeline() -> Pipeline:
    from nightshift.media.images import Quality, render_variants, resize_variants

    quality = Quality(jpeg=JPEG_QUALITY, webp=WEBP_QUALITY, webp_method=WEBP_EFFORT)

    def run(data: bytes) -> Outputs:
        rendering = render_variants(data, max_pixels=50_000_000, quality=quality)
        return [(v.width, v.height, len(v.data)) for v in rendering.variants]

    return run, lambda data: resize_variants(data, max_pixels=50_000_000)


def libvips_pipeline() -> Pipeline:
    import pyvips

    pyvips.cache_set_max(0)  # no result reuse between runs

    def resize(data: bytes) -> list[Any]:
        large = pyvips.Image.thumbnail_buffer(data, 1080, height=10_000_000).copy_memory()
        small = large.thumbnail_image(480, height=10_000_000).copy_memory()
        return [large, small, small.thumbnail_image(150, height=150, crop="centre").copy_memory()]

    def run(data: bytes) -> Outputs:
        outputs = []
        for image in resize(data):
            webp = image.webpsave_buffer(Q=WEBP_QUALITY, effort=WEBP_EFFORT, keep="none")
            jpeg = image.jpegsave_buffer(Q=JPEG_QUALITY, interlace=True, optimize_coding=True, keep="none")
            outputs += [(image.width, image.height, len(webp)), (image.width, image.height, len(jpeg))]
        return outputs

    return run, resize


def peak_rss_kb() -> int:
    """This process's peak resident memory in kB.

    Linux's ``VmHWM`` belongs to this process image alone; ``ru_maxrss`` would
    include the parent's peak, inherited across fork and exec.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def measure(pipeline: str, photo: Path, runs: int) -> Measurement:
    """Run one pipeline in this (fresh) process and report its times and peak memory."""
    factory = {"naive": naive_pipeline, "service": service_pipeline}.get(pipeline, libvips_pipeline)
    run, resize = factory()
    data = photo.read_bytes()
    baseline_kb = peak_rss_kb()
    outputs = run(data)  # warm-up
    times, cpu_times, resize_times = [], [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        run(data)
        times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - started_cpu)
    for _ in range(runs):
        started = time.perf_counter()
        resize(data)
        resize_times.append(time.perf_counter() - started)
    return {
        "times": times,
        "cpu_times": cpu_times,
        "resize_times": resize_times,
        "baseline_kb": baseline_kb,
        "peak_kb": peak_rss_kb(),
        "outputs": outputs,
    }


def make_photo(path: Path) -> None:
    from nightshift.media.demo import photo_jpeg

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(photo_jpeg(*PHOTO_SIZE, seed=12, quality=90))


def run_child(pipeline: str, photo: Path, runs: int) -> Measurement:
    env = dict(os.environ)
    if pipeline == "libvips-1t":
        env["VIPS_CONCURRENCY"] = "1"
    command = [sys.executable, "-m", "bench.media_variants", "--child", pipeline, "--photo", str(photo)]
    completed = subprocess.run(
        [*command, "--runs", str(runs)], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    result: Measurement = json.loads(completed.stdout.splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per process (after one warm-up)")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per pipeline, interleaved")
    parser.add_argument("--photo", type=Path, default=ROOT / "var" / "bench-media" / "photo-12mp.jpg")
    parser.add_argument("--child", choices=PIPELINES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.photo, args.runs)))
        return

    make_photo(args.photo)
    print(header("Media variants of a 12-megapixel JPEG"))
    size_mb = args.photo.stat().st_size / 1e6
    print(
        f"  photo: {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} JPEG, {size_mb:.1f} MB;"
        f" {args.rounds} rounds x {args.runs} timed runs per pipeline"
    )
    print(f"  encoders: WebP quality {WEBP_QUALITY} effort {WEBP_EFFORT}, progressive JPEG quality {JPEG_QUALITY}")
    print(f"  load average before: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")
    results: dict[str, Measurement] = {}
    for _ in range(args.rounds):  # interleaved, so a busy minute on the machine hits every pipeline
        for pipeline in PIPELINES:
            measured = run_child(pipeline, args.photo, args.runs)
            if pipeline in results:
                kept = results[pipeline]
                kept["times"] += measured["times"]
                kept["cpu_times"] += measured["cpu_times"]
                kept["resize_times"] += measured["resize_times"]
                kept["peak_kb"] = max(kept["peak_kb"], measured["peak_kb"])
                kept["baseline_kb"] = min(kept["baseline_kb"], measured["baseline_kb"])
            else:
                results[pipeline] = measured
    wall = {name: statistics.median(r["times"]) for name, r in results.items()}
    cpu = {name: statistics.median(r["cpu_times"]) for name, r in results.items()}
    resize = {name: statistics.median(r["resize_times"]) for name, r in results.items()}
    print()
    print(
        "| pipeline | median wall | median CPU | naive / this (wall; CPU) | this / libvips (wall; CPU)"
        " | decode + resize only (wall) | peak RSS |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, result in results.items():
        peak_mb = result["peak_kb"] / 1024
        over_mb = (result["peak_kb"] - result["baseline_kb"]) / 1024
        print(
            f"| {name} | {wall[name] * 1000:.0f} ms | {cpu[name] * 1000:.0f} ms"
            f" | {wall['naive'] / wall[name]:.2f}x; {cpu['naive'] / cpu[name]:.2f}x"
            f" | {wall[name] / wall['libvips']:.2f}x; {cpu[name] / cpu['libvips']:.2f}x"
            f" | {resize[name] * 1000:.0f} ms ({resize['naive'] / resize[name]:.1f}x less than naive)"
            f" | {peak_mb:.0f} MB ({over_mb:+.0f} MB over imports) |"
        )
    print()
    for name, result in results.items():
        outputs = ", ".join(f"{w}x{h} {size / 1000:.0f} kB" for w, h, size in result["outputs"])
        print(f"  {name} outputs (webp, jpeg per size): {outputs}")


if __name__ == "__main__":
    main()
