#!/usr/bin/env python3
"""Optimize an ONNX model with synthesized operators: the same as ``syno-tvm optimize`` (see README).

    python python/optimize_onnx.py MODEL.onnx --operator NAME_OR_JSON | --per-layer MAP.json \
        --target llvm|cuda|aarch64 --trials N --out DIR
"""

import sys

from syno_tvm.cli import main

if __name__ == "__main__":
    sys.exit(main(["optimize", *sys.argv[1:]]))
