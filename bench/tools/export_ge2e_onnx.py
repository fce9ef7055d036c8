"""Write the GE2E voice encoder's graph as ONNX (``src/ingestd/providers/data/ge2e.graph.onnx``), weights as inputs.

    pip install --target /tmp/onnxpkg onnx && rm -rf /tmp/onnxpkg/numpy*
    PYTHONPATH=/tmp/onnxpkg .venv/bin/python bench/tools/export_ge2e_onnx.py

The ``onnx`` package is needed only here (it builds the file); ingestd runs it with onnxruntime, a dependency.
The weights are graph inputs, not initializers, so the file is under 1 kB and the weights ship once, in
``ge2e.npz``; ``ingestd.providers.speakers`` feeds them from there (in ONNX's layout) on every run. The graph is
the same network as ``ingestd.providers.speakers.encode``, built node by node from the same
float32 weights (no torch): mel windows (batch, frames, 40) → three ONNX ``LSTM`` nodes (hidden 256; gates
reordered from PyTorch's i, f, g, o to ONNX's i, o, f, c; the two biases already summed go in ``Wb``, ``Rb`` is
zero) → the last step's hidden state → linear, ReLU, L2 normalisation → (batch, 256). Prints the file's size and
the largest difference between ``speakers.encode_onnx`` and the numpy encoder on random windows.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "src", "ingestd", "providers", "data")
HIDDEN = 256


def _onnx_gates(matrix: np.ndarray) -> np.ndarray:
    """PyTorch's (i, f, g, o) blocks of rows → ONNX's (i, o, f, c)."""
    i, f, g, o = np.split(matrix.astype(np.float32), 4, axis=0)
    return np.concatenate([i, o, f, g], axis=0)


def graph(arrays: dict[str, np.ndarray]) -> onnx.ModelProto:
    inits, nodes = [], [helper.make_node("Transpose", ["mels"], ["x0"], perm=[1, 0, 2])]  # (frames, batch, 40)
    for n in range(3):
        bias = np.concatenate([_onnx_gates(arrays[f"b{n}"][:, None])[:, 0], np.zeros(4 * HIDDEN, np.float32)])
        inits += [
            numpy_helper.from_array(_onnx_gates(arrays[f"w_ih{n}"])[None], f"W{n}"),
            numpy_helper.from_array(_onnx_gates(arrays[f"w_hh{n}"])[None], f"R{n}"),
            numpy_helper.from_array(bias[None], f"B{n}"),
        ]
        nodes.append(
            helper.make_node("LSTM", [f"x{n}", f"W{n}", f"R{n}", f"B{n}"], [f"y{n}", f"h{n}"], hidden_size=HIDDEN)
        )
        nodes.append(helper.make_node("Squeeze", [f"y{n}", "axis1"], [f"x{n + 1}"]))  # (frames, 1, batch, 256)
    inits += [
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        numpy_helper.from_array(np.array([0], np.int64), "axis0"),
        numpy_helper.from_array(np.ascontiguousarray(arrays["linear_w"].astype(np.float32).T), "linear_w"),
        numpy_helper.from_array(arrays["linear_b"].astype(np.float32), "linear_b"),
    ]
    nodes += [
        helper.make_node("Squeeze", ["h2", "axis0"], ["last"]),  # (batch, 256): the last step's hidden state
        helper.make_node("Gemm", ["last", "linear_w", "linear_b"], ["linear"]),
        helper.make_node("Relu", ["linear"], ["relu"]),
        helper.make_node("LpNormalization", ["relu"], ["vectors"], axis=1, p=2),
    ]
    mels = helper.make_tensor_value_info("mels", TensorProto.FLOAT, ["batch", "frames", 40])
    vectors = helper.make_tensor_value_info("vectors", TensorProto.FLOAT, ["batch", HIDDEN])
    weights = [i for i in inits if i.name not in ("axis0", "axis1")]
    inputs = [helper.make_tensor_value_info(i.name, TensorProto.FLOAT, list(i.dims)) for i in weights]
    consts = [i for i in inits if i.name in ("axis0", "axis1")]
    model = helper.make_model(
        helper.make_graph(nodes, "ge2e", [mels, *inputs], [vectors], consts),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(DATA, "ge2e.graph.onnx"))
    args = parser.parse_args()
    with np.load(os.path.join(DATA, "ge2e.npz")) as data:
        arrays = {name: data[name] for name in data.files}
    onnx.save(graph(arrays), args.out)
    print(f"{os.path.normpath(args.out)}: {os.path.getsize(args.out)} bytes")

    from ingestd.providers.speakers import encode, encode_onnx

    mels = np.random.default_rng(0).gamma(1.0, 1.0, (8, 160, 40)).astype(np.float32)
    print(f"largest difference from the numpy encoder: {np.abs(encode_onnx(mels) - encode(mels)).max():.2e}")


if __name__ == "__main__":
    main()
