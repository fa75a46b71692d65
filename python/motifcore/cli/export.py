"""`motifcore export`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..export import FORMATS, save
from ..train.checkpoint import load_model
from ._common import UsageError, check_output, int_min, run_checkpoint

EXTRAS = {"onnx": "onnx", "torch": "torch"}


def add_parser(sub: Any) -> argparse.ArgumentParser:
    e = sub.add_parser("export", help="export a trained run's model to ONNX, PyTorch or a plain .npz")
    e.add_argument("run_dir", help="run folder (holding checkpoint.npz) or a checkpoint file")
    e.add_argument("--format", choices=sorted(FORMATS), required=True,
                   help="onnx: an ONNX file; torch: torch.save of the compact module; npz: plain arrays")
    e.add_argument("--out", help="output file (default: RUN_DIR/model.onnx, .pt or .npz)")
    e.add_argument("--onnx-blocks", choices=("sparse", "dense"), default="sparse",
                   help="ONNX block product: one weight per active block (default) or a MatMul with the dense "
                        "G_out x G_in block matrix (faster for small block matrices)")
    e.add_argument("--overwrite", action="store_true", help="replace the file at --out if it exists")
    e.add_argument("--threads", type=int_min(1))
    e.set_defaults(func=run)
    return e


def run(args: argparse.Namespace) -> int:
    ckpt = run_checkpoint(args.run_dir)
    out = check_output(Path(args.out) if args.out else ckpt.parent / f"model{FORMATS[args.format]}", args.overwrite)
    model = load_model(ckpt, num_threads=args.threads)
    try:
        path = save(model, out, args.format, onnx_blocks=args.onnx_blocks)
    except ImportError as exc:
        raise UsageError(f"--format {args.format} needs the {exc.name or EXTRAS[args.format]} package "
                         f"(pip install 'motifcore[{EXTRAS[args.format]}]')") from None
    except OSError as exc:          # disk full, file size limit, permissions: the old file is untouched
        raise UsageError(f"could not write {out}: {exc.strerror or exc}") from None
    print(f"wrote {path}")
    return 0
