"""Built-in models, generated as ONNX by our own code (onnx.helper; no torch, no downloads).

* ``resnet18-cifar``: ResNet-18 for 32x32 inputs (3x3 stem, no max-pool, stages 64/128/256/512, BasicBlocks,
  1x1 stride-2 projection shortcuts), BatchNorm after every conv, as torchvision-style CIFAR code builds it;
* ``small-cnn``: two 3x3 convs, global pooling, a classifier: the quick model for tests;
* ``transformer-block``: one pre-norm transformer block (QKV projection, attention, MLP) for the matmul path;
* ``vit-tiny``: a small vision transformer built from the same blocks, the trainable classifier of the matmul path.

Weights are deterministic (He-initialized from a seed) so a model name means one model.  ``width`` scales every
channel count, so training on 2 cores can use a narrower ResNet-18 with the same topology.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import SynoError

OPSET = 17


@dataclass
class _Graph:
    """A tiny ONNX graph builder: nodes, initializers and fresh names."""

    rng: np.random.Generator
    nodes: list = field(default_factory=list)
    inits: list = field(default_factory=list)
    count: int = 0

    def name(self, base: str) -> str:
        self.count += 1
        return f"{base}_{self.count}"

    def const(self, base: str, array: np.ndarray) -> str:
        n = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(array, dtype=np.float32), n))
        return n

    def const_int(self, base: str, values: list[int]) -> str:
        n = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(values, dtype=np.int64), n))
        return n

    def op(self, kind: str, inputs: list[str], base: str | None = None, **attrs) -> str:
        out = self.name(base or kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x: str, c_in: int, c_out: int, k: int, stride: int = 1, bias: bool = False) -> str:
        w = self.rng.standard_normal((c_out, c_in, k, k)) * np.sqrt(2.0 / (c_in * k * k))
        inputs = [x, self.const("conv_w", w)]
        if bias:
            inputs.append(self.const("conv_b", np.zeros(c_out)))
        return self.op("Conv", inputs, "conv", kernel_shape=[k, k], strides=[stride, stride],
                       pads=[k // 2] * 4)

    def bn(self, x: str, c: int) -> str:
        r = self.rng
        params = [r.uniform(0.5, 1.5, c), r.normal(0, 0.1, c), r.normal(0, 0.1, c), r.uniform(0.5, 1.5, c)]
        names = [self.const(b, p) for b, p in zip(("bn_gamma", "bn_beta", "bn_mean", "bn_var"), params)]
        return self.op("BatchNormalization", [x] + names, "bn", epsilon=1e-5)

    def linear(self, x: str, d_in: int, d_out: int, bias: bool = True) -> str:
        w = self.rng.standard_normal((d_in, d_out)) * np.sqrt(1.0 / d_in)
        y = self.op("MatMul", [x, self.const("fc_w", w)], "matmul")
        return self.op("Add", [y, self.const("fc_b", np.zeros(d_out))], "bias") if bias else y

    def model(self, x_shape: list[int], y: str, y_shape: list[int], name: str) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                                  [helper.make_tensor_value_info(y, TensorProto.FLOAT, y_shape)], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="syno-tvm")
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def resnet18_cifar(batch: int = 1, width: int = 64, num_classes: int = 10, seed: int = 0) -> onnx.ModelProto:
    g = _Graph(np.random.default_rng(seed))
    x = g.op("Relu", [g.bn(g.conv("x", 3, width, 3), width)])
    c_in = width
    for stage, mult in enumerate((1, 2, 4, 8)):
        c_out = width * mult
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            y = g.op("Relu", [g.bn(g.conv(x, c_in, c_out, 3, stride), c_out)])
            y = g.bn(g.conv(y, c_out, c_out, 3), c_out)
            short = g.bn(g.conv(x, c_in, c_out, 1, stride), c_out) if (stride != 1 or c_in != c_out) else x
            x = g.op("Relu", [g.op("Add", [y, short])])
            c_in = c_out
    x = g.op("Flatten", [g.op("GlobalAveragePool", [x])])
    w = g.rng.standard_normal((num_classes, c_in)) * np.sqrt(1.0 / c_in)
    y = g.op("Gemm", [x, g.const("fc_w", w), g.const("fc_b", np.zeros(num_classes))], "logits", transB=1)
    return g.model([batch, 3, 32, 32], y, [batch, num_classes], "resnet18_cifar")


def small_cnn(batch: int = 1, width: int = 16, num_classes: int = 10, seed: int = 0) -> onnx.ModelProto:
    g = _Graph(np.random.default_rng(seed))
    x = g.op("Relu", [g.conv("x", 3, width, 3, bias=True)])
    x = g.op("Relu", [g.bn(g.conv(x, width, 2 * width, 3), 2 * width)])
    x = g.op("Flatten", [g.op("GlobalAveragePool", [x])])
    w = g.rng.standard_normal((num_classes, 2 * width)) * np.sqrt(1.0 / (2 * width))
    y = g.op("Gemm", [x, g.const("fc_w", w), g.const("fc_b", np.zeros(num_classes))], "logits", transB=1)
    return g.model([batch, 3, 32, 32], y, [batch, num_classes], "small_cnn")


def _block(g: _Graph, x: str, batch: int, seq: int, d: int, heads: int) -> str:
    """Pre-norm block: ``x + Attn(LN(x))`` then ``+ MLP(LN(.))``; QKV is one ``d -> 3d`` MatMul."""
    hd = d // heads

    def layer_norm(x: str) -> str:
        return g.op("LayerNormalization", [x, g.const("ln_g", np.ones(d)), g.const("ln_b", np.zeros(d))], "ln",
                    axis=-1, epsilon=1e-5)

    def heads_of(t: str) -> str:  # [B, S, d] -> [B, H, S, hd]
        r = g.op("Reshape", [t, g.const_int("shape", [batch, seq, heads, hd])], "reshape")
        return g.op("Transpose", [r], "transpose", perm=[0, 2, 1, 3])

    qkv = g.linear(layer_norm(x), d, 3 * d)
    q, k, v = (g.op("Slice", [qkv, g.const_int("s", [i * d]), g.const_int("e", [(i + 1) * d]),
                              g.const_int("ax", [2])], "slice") for i in range(3))
    att = g.op("MatMul", [heads_of(q), g.op("Transpose", [heads_of(k)], "kt", perm=[0, 1, 3, 2])], "scores")
    att = g.op("Softmax", [g.op("Mul", [att, g.const("scale", np.array(1.0 / np.sqrt(hd)))], "scaled")], axis=-1)
    ctx = g.op("Transpose", [g.op("MatMul", [att, heads_of(v)], "ctx")], "ctx_t", perm=[0, 2, 1, 3])
    ctx = g.op("Reshape", [ctx, g.const_int("shape", [batch, seq, d])], "merge")
    x = g.op("Add", [x, g.linear(ctx, d, d)], "res1")
    h = g.op("Relu", [g.linear(layer_norm(x), d, 4 * d)])
    return g.op("Add", [x, g.linear(h, 4 * d, d)], "res2")


def transformer_block(batch: int = 1, seq: int = 16, d: int = 96, heads: int = 4, seed: int = 0) -> onnx.ModelProto:
    """One pre-norm transformer block on ``[batch, seq, d]``: the matmul path's latency model."""
    g = _Graph(np.random.default_rng(seed))
    y = _block(g, "x", batch, seq, d, heads)
    return g.model([batch, seq, d], y, [batch, seq, d], "transformer_block")


def vit_tiny(batch: int = 1, width: int = 16, num_classes: int = 10, seed: int = 0, patch: int = 4,
             blocks: int = 2, heads: int = 4) -> onnx.ModelProto:
    """A small vision transformer for 32x32 images: 4x4 patches (reshape/transpose, no conv) -> linear embedding of
    ``d = 4 * width`` + learned positions -> ``blocks`` pre-norm blocks -> mean over patches -> classifier.  The
    trainable model of the matmul path (QKV, projections and MLPs are swappable MatMul layers)."""
    g = _Graph(np.random.default_rng(seed))
    d, side = 4 * width, 32 // patch
    seq = side * side
    p = g.op("Reshape", ["x", g.const_int("shape", [batch, 3, side, patch, side, patch])], "patches")
    p = g.op("Transpose", [p], "patches_t", perm=[0, 2, 4, 1, 3, 5])
    p = g.op("Reshape", [p, g.const_int("shape", [batch, seq, 3 * patch * patch])], "tokens")
    x = g.op("Add", [g.linear(p, 3 * patch * patch, d), g.const("pos", g.rng.normal(0, 0.02, (1, seq, d)))], "embed")
    for _ in range(blocks):
        x = _block(g, x, batch, seq, d, heads)
    x = g.op("ReduceMean", [x], "pool", axes=[1], keepdims=0)
    w = g.rng.standard_normal((num_classes, d)) * np.sqrt(1.0 / d)
    y = g.op("Gemm", [x, g.const("fc_w", w), g.const("fc_b", np.zeros(num_classes))], "logits", transB=1)
    return g.model([batch, 3, 32, 32], y, [batch, num_classes], "vit_tiny")


BUILTIN = {
    "resnet18-cifar": resnet18_cifar,
    "small-cnn": small_cnn,
    "transformer-block": transformer_block,
    "vit-tiny": vit_tiny,
}


def builtin(name: str, **kwargs) -> onnx.ModelProto:
    """``builtin:NAME`` models; kwargs such as batch or width are passed on."""
    key = name.removeprefix("builtin:")
    if key not in BUILTIN:
        raise SynoError(f"unknown built-in model '{name}': use one of {', '.join('builtin:' + k for k in BUILTIN)}")
    return BUILTIN[key](**kwargs)
