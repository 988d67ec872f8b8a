#!/usr/bin/env python3
"""Writes a TinyDiT generator ONNX graph with random weights (fixed seed), built with the `onnx`
package alone (no PyTorch): the graph torch.onnx.export gives tests/fixtures/tinydit_model.py
(the authors' src/dit.py), node for node where it matters to a quantizer:

- patch embedding: Conv (kernel = stride = patch) -> Reshape -> Transpose, + learned positions;
- timestep: t * 1000 times frequencies -> Cos, Sin -> Concat -> Gemm -> SiLU -> Gemm (transB=1);
- class: Gather from a [classes, hidden] embedding; c = t_emb + class_emb;
- each block: SiLU(c) -> Gemm (adaLN modulation, [6*hidden, hidden], transB=1) -> Split into six;
  LayerNormalization, modulate; attention qkv MatMul + Add, Reshape/Transpose to heads, q k^T
  MatMul, scale, Softmax, MatMul with v, output projection MatMul + Add, gated residual; MLP
  MatMul + Add, GELU (tanh form, as opset 17 exports it), MatMul + Add, gated residual;
- final layer: SiLU(c) -> Gemm ([2*hidden, hidden]) -> Split, LayerNormalization, modulate,
  MatMul + Add, unpatchify (Reshape, Transpose, Reshape).

Inputs `noise` [B, 3, S, S] f32, `timestep` [B] f32, `breed` [B] i64; output `velocity`; batch
dynamic; opset 17. Weights are Xavier-uniform (Linear, Conv), N(0, 0.02) (embeddings, biases),
drawn from numpy's PCG64 with `--seed`, so the same arguments give the same bytes.

    python scripts/tinydit-onnx.py OUT.onnx            # full size: 128 px, hidden 384, 12 blocks
    python scripts/tinydit-onnx.py OUT.onnx --hidden 32 --depth 2 --heads 2 --image-size 32 --patch 8
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def build(image_size: int, patch: int, hidden: int, depth: int, heads: int, classes: int,
          channels: int, seed: int) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    inits: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []
    counter = [0]

    def name(prefix: str) -> str:
        counter[0] += 1
        return f"/{prefix}_{counter[0]}"

    def init(n: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(array, n))
        return n

    def const(values, dtype=np.int64) -> str:
        return init(name("const"), np.asarray(values, dtype=dtype))

    def node(op: str, inputs: list[str], prefix: str, **attrs) -> str:
        out = name(prefix)
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def xavier(fan_out: int, fan_in: int) -> np.ndarray:
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32)

    def small(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    def linear3d(x: str, prefix: str, fan_in: int, fan_out: int) -> str:
        # torch exports a Linear on [B, N, D] as MatMul with the transposed weight, then Add.
        w = init(f"{prefix}.weight_t", np.ascontiguousarray(xavier(fan_out, fan_in).T))
        b = init(f"{prefix}.bias", small(fan_out))
        return node("Add", [node("MatMul", [x, w], prefix), b], prefix)

    def gemm(x: str, prefix: str, fan_in: int, fan_out: int) -> str:
        # ... and a Linear on [B, D] as Gemm with transB=1.
        w = init(f"{prefix}.weight", xavier(fan_out, fan_in))
        b = init(f"{prefix}.bias", small(fan_out))
        return node("Gemm", [x, w, b], prefix, alpha=1.0, beta=1.0, transB=1)

    def silu(x: str) -> str:
        return node("Mul", [x, node("Sigmoid", [x], "silu")], "silu")

    def layer_norm(x: str, prefix: str) -> str:
        scale = init(f"{prefix}.weight", np.ones(hidden, np.float32))
        bias = init(f"{prefix}.bias", np.zeros(hidden, np.float32))
        return node("LayerNormalization", [x, scale, bias], prefix, axis=-1, epsilon=1e-5)

    def modulate(x: str, shift: str, scale: str) -> str:
        return node("Add", [node("Mul", [x, node("Add", [scale, one], "mod")], "mod"), shift], "mod")

    grid = image_size // patch
    tokens = grid * grid
    head_dim = hidden // heads
    one = init("one", np.array(1.0, np.float32))
    axis1 = const([1])
    # Patch embedding.
    conv_w = rng.uniform(-1, 1, (hidden, channels, patch, patch)).astype(np.float32)
    conv_w *= math.sqrt(6.0 / (channels * patch * patch + hidden))
    x = node("Conv", ["noise", init("patch_embed.proj.weight", conv_w),
                      init("patch_embed.proj.bias", small(hidden))], "patch",
             kernel_shape=[patch, patch], strides=[patch, patch])
    x = node("Reshape", [x, const([0, hidden, -1])], "patch")
    x = node("Transpose", [x], "patch", perm=[0, 2, 1])
    x = node("Add", [x, init("pos_embed", small(1, tokens, hidden))], "pos")
    # Timestep and class.
    half = 128
    freqs = np.exp(-math.log(10000.0) * np.arange(half, dtype=np.float32) / half)[None, :]
    t = node("Mul", ["timestep", init("t_scale", np.array(1000.0, np.float32))], "t")
    args = node("Mul", [node("Unsqueeze", [t, axis1], "t"), init("t_freqs", freqs)], "t")
    temb = node("Concat", [node("Cos", [args], "t"), node("Sin", [args], "t")], "t", axis=-1)
    temb = gemm(silu(gemm(temb, "t_embedder.mlp.0", 2 * half, hidden)), "t_embedder.mlp.2",
                hidden, hidden)
    cemb = node("Gather", [init("breed_embedder.embedding.weight", small(classes, hidden)),
                           "breed"], "breed", axis=0)
    c = silu(node("Add", [temb, cemb], "c"))
    gelu_k = init("gelu_k", np.array(math.sqrt(2.0 / math.pi), np.float32))
    gelu_c = init("gelu_c", np.array(0.044715, np.float32))
    half_c = init("half", np.array(0.5, np.float32))
    attn_scale = init("attn_scale", np.array(head_dim ** -0.5, np.float32))

    def chunks(v: str, n: int) -> list[str]:
        outs = [name("split") for _ in range(n)]
        nodes.append(helper.make_node("Split", [v, const([hidden] * n)], outs, name=outs[0], axis=1))
        return [node("Unsqueeze", [o, axis1], "unsq") for o in outs]

    for i in range(depth):
        p = f"blocks.{i}"
        sm, cm, gm, sp, cp, gp = chunks(gemm(c, f"{p}.adaLN_modulation.1", hidden, 6 * hidden), 6)
        h = modulate(layer_norm(x, f"{p}.norm1"), sm, cm)
        qkv = linear3d(h, f"{p}.attn.qkv", hidden, 3 * hidden)
        qkv = node("Reshape", [qkv, const([0, 0, 3, heads, head_dim])], "qkv")
        qkv = node("Transpose", [qkv], "qkv", perm=[2, 0, 3, 1, 4])
        parts = [name("qkv") for _ in range(3)]
        nodes.append(helper.make_node("Split", [qkv, const([1, 1, 1])], parts, name=parts[0], axis=0))
        q, k, v = (node("Squeeze", [s, const([0])], "qkv") for s in parts)
        kt = node("Transpose", [k], "attn", perm=[0, 1, 3, 2])
        a = node("Softmax", [node("Mul", [node("MatMul", [q, kt], "attn"), attn_scale], "attn")],
                 "attn", axis=-1)
        a = node("Transpose", [node("MatMul", [a, v], "attn")], "attn", perm=[0, 2, 1, 3])
        a = linear3d(node("Reshape", [a, const([0, 0, hidden])], "attn"), f"{p}.attn.proj",
                     hidden, hidden)
        x = node("Add", [x, node("Mul", [gm, a], "gate")], "res")
        h = modulate(layer_norm(x, f"{p}.norm2"), sp, cp)
        h = linear3d(h, f"{p}.mlp.fc1", hidden, 4 * hidden)
        inner = node("Add", [h, node("Mul", [gelu_c, node("Mul", [h, node("Mul", [h, h], "gelu")],
                                                               "gelu")], "gelu")], "gelu")
        th = node("Tanh", [node("Mul", [gelu_k, inner], "gelu")], "gelu")
        h = node("Mul", [node("Mul", [half_c, h], "gelu"), node("Add", [one, th], "gelu")], "gelu")
        h = linear3d(h, f"{p}.mlp.fc2", 4 * hidden, hidden)
        x = node("Add", [x, node("Mul", [gp, h], "gate")], "res")
    shift, scale = chunks(gemm(c, "final_layer.adaLN_modulation.1", hidden, 2 * hidden), 2)
    x = modulate(layer_norm(x, "final_layer.norm_final"), shift, scale)
    x = linear3d(x, "final_layer.linear", hidden, patch * patch * channels)
    x = node("Reshape", [x, const([0, grid, grid, patch, patch, channels])], "unpatch")
    x = node("Transpose", [x], "unpatch", perm=[0, 5, 1, 3, 2, 4])
    nodes.append(helper.make_node("Reshape", [x, const([0, channels, image_size, image_size])],
                                  ["velocity"], name="/unpatch_out"))
    graph = helper.make_graph(
        nodes, "tinydit",
        [helper.make_tensor_value_info("noise", TensorProto.FLOAT,
                                       ["batch", channels, image_size, image_size]),
         helper.make_tensor_value_info("timestep", TensorProto.FLOAT, ["batch"]),
         helper.make_tensor_value_info("breed", TensorProto.INT64, ["batch"])],
        [helper.make_tensor_value_info("velocity", TensorProto.FLOAT,
                                       ["batch", channels, image_size, image_size])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="tinydit-release scripts/tinydit-onnx.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--patch", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--depth", type=int, default=12)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--classes", type=int, default=13)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    model = build(a.image_size, a.patch, a.hidden, a.depth, a.heads, a.classes, 3, a.seed)
    onnx.save(model, a.out)
    params = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    print(f"wrote {a.out}: {params} parameters, {model.ByteSize() / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
