"""Glimpses per second of the retina, against a per-sample loop.

    python benchmarks/retina_throughput.py [--batch 1024] [--json out.json]

Setting of the issue: 60x60 uint8 canvases, 3 scales of 12x12 (scale factor 2),
batch 1024. Rows:

* ``retina (images)``: :class:`glimpse_env.Retina` called on images: integral image
  plus glimpse, what a one-off glimpse costs;
* ``retina (integral)``: the glimpse from an integral image built beforehand, what an
  environment step costs (the environments build it once per episode);
* ``per-sample loop``: crop-and-average-pool one image at a time with torch, the
  approach of the widely used PyTorch RAM implementation (written here for comparison).
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from _common import machine, median_seconds, print_table, write_json

from glimpse_env.retina import Retina


def loop_retina(images: torch.Tensor, locations: torch.Tensor, g: int, k: int, s: int) -> torch.Tensor:
    """Reference: pad, crop and average-pool each image and scale in Python loops."""
    b, h, w = images.shape
    out = []
    for i in range(b):
        image = images[i].float().div(255.0)
        patches = []
        for j in range(k):
            side = g * s**j
            px = w / 2 + float(locations[i, 0]) * w / 2
            py = h / 2 + float(locations[i, 1]) * h / 2
            c0 = int(torch.floor(torch.tensor(px + 0.5 - side / 2)))
            r0 = int(torch.floor(torch.tensor(py + 0.5 - side / 2)))
            padded = F.pad(image, (side, side, side, side))
            patch = padded[r0 + side : r0 + 2 * side, c0 + side : c0 + 2 * side]
            patches.append(F.avg_pool2d(patch[None, None], s**j)[0, 0])
        out.append(torch.stack(patches))
    return torch.stack(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--canvas", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    g, k, s = 12, 3, 2
    retina = Retina(g, k, s)
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.batch, args.canvas, args.canvas), dtype=torch.uint8, generator=gen)
    locations = torch.rand(args.batch, 2, generator=gen) * 2 - 1
    expected = loop_retina(images[:64], locations[:64], g, k, s)
    assert torch.allclose(retina(images[:64], locations[:64]), expected, atol=1e-6)

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        imgs, locs = images.to(device), locations.to(device)
        integral = retina.integral(imgs)
        sync = device == "cuda"
        for name, fn in (
            ("retina (images)", lambda imgs=imgs, locs=locs: retina(imgs, locs)),
            ("retina (integral)", lambda integral=integral, locs=locs: retina.from_integral(integral, locs)),
        ):
            t = median_seconds(fn, repeats=args.repeats, sync=sync)
            rows.append({"device": device, "method": name, "batch": args.batch, "glimpses/s": args.batch / t})
    loop_batch = min(args.batch, 256)
    t = median_seconds(
        lambda: loop_retina(images[:loop_batch], locations[:loop_batch], g, k, s), repeats=3, warmup=1
    )
    rows.append(
        {"device": "cpu", "method": "per-sample loop", "batch": loop_batch, "glimpses/s": loop_batch / t}
    )
    print(f"{args.canvas}x{args.canvas} uint8 canvases, {k} scales of {g}x{g}, scale factor {s}; {machine()}")
    print_table(rows, ["device", "method", "batch", "glimpses/s"])
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
