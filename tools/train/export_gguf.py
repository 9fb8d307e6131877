"""Writes a trained checkpoint as a llama.cpp Mixtral GGUF (REFERENCE.md "Mixtral in GGUF"), and reads one back.

  /usr/bin/python3 tools/train/export_gguf.py CHECKPOINT VOCAB_JSON OUT.gguf [--embedding-type Q8_0] ...

Layout: general.architecture "llama", all llama.* hyperparameter keys, the project's Mistral v1 tokenizer arrays
(dumped by dump_vocab.mjs from lib/testing/mistral-vocab.ts), token_embd (tied: no output.weight), per layer
attn_norm/attn_q/attn_k/attn_v/attn_output/ffn_norm/ffn_gate_inp and the merged experts ffn_gate_exps/ffn_up_exps
[in, out, E] and ffn_down_exps [ffn, dim, E]. Norms and the router stay F32; the rest is Q8_0 or Q4_0, quantized
exactly as ggml's reference quantizers do.
"""
from __future__ import annotations

import argparse
import json
import os
import struct
import sys

import numpy as np

# GGUF metadata value types
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
_SCALAR_FORMATS = {UINT8: "<B", INT8: "<b", UINT16: "<H", INT16: "<h", UINT32: "<I", INT32: "<i", FLOAT32: "<f",
                   BOOL: "<?", UINT64: "<Q", INT64: "<q", FLOAT64: "<d"}
_NUMPY_TYPES = {UINT8: "<u1", INT8: "<i1", UINT16: "<u2", INT16: "<i2", UINT32: "<u4", INT32: "<i4", FLOAT32: "<f4",
                UINT64: "<u8", INT64: "<i8", FLOAT64: "<f8"}

# ggml tensor types: id -> (name, block elements, block bytes)
GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q8_0 = 0, 1, 2, 8
GGML_TYPES = {GGML_F32: ("F32", 1, 4), GGML_F16: ("F16", 1, 2), GGML_Q4_0: ("Q4_0", 32, 18), GGML_Q8_0: ("Q8_0", 32, 34)}
GGML_TYPE_BY_NAME = {name: type_id for type_id, (name, _, _) in GGML_TYPES.items()}
# llama_ftype values for general.file_type
FILE_TYPE = {GGML_F32: 0, GGML_F16: 1, GGML_Q4_0: 2, GGML_Q8_0: 7}

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
ALIGNMENT = 32

# Mixtral-8x7B-Instruct-v0.1's chat template
MIXTRAL_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)


# ---------------------------------------------------------------------------------------------------------------
# Quantization (ggml's reference quantize_row_*_ref / dequantize_row_*; REFERENCE.md "ggml types")

def _round_half_away(values: np.ndarray) -> np.ndarray:
    return np.sign(values) * np.floor(np.abs(values) + 0.5)  # C roundf


def quantize_q8_0(values: np.ndarray) -> bytes:
    """float rows (..., n), n % 32 == 0 -> Q8_0 blocks {half d; i8 qs[32]}, d = amax / 127, q = round(x / d)."""
    blocks = np.ascontiguousarray(values, dtype=np.float32).reshape(-1, 32)
    d = np.abs(blocks).max(axis=1) / 127.0
    inverse = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    qs = _round_half_away(blocks * inverse[:, None]).astype(np.int8)
    out = np.empty((len(blocks), 34), dtype=np.uint8)
    out[:, 0:2] = d.astype("<f2").view(np.uint8).reshape(-1, 2)
    out[:, 2:34] = qs.view(np.uint8)
    return out.tobytes()


def dequantize_q8_0(data: bytes | np.ndarray, count: int) -> np.ndarray:
    blocks = np.frombuffer(data, dtype=np.uint8, count=count // 32 * 34).reshape(-1, 34)
    d = blocks[:, 0:2].copy().view("<f2").astype(np.float32)
    return (blocks[:, 2:34].view(np.int8).astype(np.float32) * d).reshape(-1)


def quantize_q4_0(values: np.ndarray) -> bytes:
    """float rows -> Q4_0 blocks {half d; u8 qs[16]}: d = (signed value of largest magnitude) / -8,
    q = min(15, trunc(x / d + 8.5)); element j in the low nibble of qs[j], element j + 16 in the high nibble."""
    blocks = np.ascontiguousarray(values, dtype=np.float32).reshape(-1, 32)
    signed_max = blocks[np.arange(len(blocks)), np.abs(blocks).argmax(axis=1)]
    d = signed_max / -8.0
    inverse = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    q = np.minimum(15, np.trunc(blocks * inverse[:, None] + 8.5)).astype(np.uint8)
    out = np.empty((len(blocks), 18), dtype=np.uint8)
    out[:, 0:2] = d.astype("<f2").view(np.uint8).reshape(-1, 2)
    out[:, 2:18] = q[:, :16] | (q[:, 16:] << 4)
    return out.tobytes()


def dequantize_q4_0(data: bytes | np.ndarray, count: int) -> np.ndarray:
    blocks = np.frombuffer(data, dtype=np.uint8, count=count // 32 * 18).reshape(-1, 18)
    d = blocks[:, 0:2].copy().view("<f2").astype(np.float32)
    qs = blocks[:, 2:18]
    q = np.concatenate((qs & 15, qs >> 4), axis=1).astype(np.float32) - 8.0
    return (q * d).reshape(-1)


def encode_tensor(values: np.ndarray, ggml_type: int) -> bytes:
    if ggml_type == GGML_F32:
        return np.ascontiguousarray(values, dtype="<f4").tobytes()
    if ggml_type == GGML_F16:
        return np.ascontiguousarray(values, dtype="<f2").tobytes()
    if ggml_type == GGML_Q8_0:
        return quantize_q8_0(values)
    if ggml_type == GGML_Q4_0:
        return quantize_q4_0(values)
    raise ValueError(f"cannot write ggml type {ggml_type}")


def decode_tensor(data: bytes | np.ndarray, ggml_type: int, count: int) -> np.ndarray:
    if ggml_type == GGML_F32:
        return np.frombuffer(data, dtype="<f4", count=count).astype(np.float32)
    if ggml_type == GGML_F16:
        return np.frombuffer(data, dtype="<f2", count=count).astype(np.float32)
    if ggml_type == GGML_Q8_0:
        return dequantize_q8_0(data, count)
    if ggml_type == GGML_Q4_0:
        return dequantize_q4_0(data, count)
    raise ValueError(f"cannot read ggml type {ggml_type}")


def round_trip(values: np.ndarray, ggml_type: int) -> np.ndarray:
    """values as they come back from a file that stores them as ggml_type (rows along the last axis)."""
    return decode_tensor(encode_tensor(values, ggml_type), ggml_type, values.size).reshape(values.shape)


# ---------------------------------------------------------------------------------------------------------------
# GGUF writer

def _string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


class GgufWriter:
    def __init__(self) -> None:
        self.metadata: list[tuple[str, int, object, int | None]] = []
        self.tensors: list[tuple[str, int, tuple[int, ...], bytes]] = []

    def add(self, key: str, value_type: int, value, element_type: int | None = None) -> None:
        if any(existing == key for existing, *_ in self.metadata):
            raise ValueError(f"metadata key {key} set twice")
        self.metadata.append((key, value_type, value, element_type))

    def add_tensor(self, name: str, ggml_type: int, ne: tuple[int, ...], data: bytes) -> None:
        _, block, block_bytes = GGML_TYPES[ggml_type]
        count = int(np.prod(ne))
        if len(name.encode()) >= 64 or any(n == name for n, *_ in self.tensors):
            raise ValueError(f"bad or duplicate tensor name {name}")
        if ne[0] % block or len(data) != count // block * block_bytes:
            raise ValueError(f"tensor {name}: {len(data)} bytes do not hold {ne} of {GGML_TYPES[ggml_type][0]}")
        self.tensors.append((name, ggml_type, ne, data))

    @staticmethod
    def _value(value_type: int, value, element_type: int | None) -> bytes:
        if value_type == STRING:
            return _string(value)
        if value_type == ARRAY:
            head = struct.pack("<IQ", element_type, len(value))
            if element_type == STRING:
                return head + b"".join(_string(item) for item in value)
            return head + np.asarray(value, dtype=_NUMPY_TYPES[element_type]).tobytes()
        return struct.pack(_SCALAR_FORMATS[value_type], value)

    def write(self, path: str) -> None:
        header = [GGUF_MAGIC, struct.pack("<IQQ", GGUF_VERSION, len(self.tensors), len(self.metadata))]
        for key, value_type, value, element_type in self.metadata:
            header += [_string(key), struct.pack("<I", value_type), self._value(value_type, value, element_type)]
        offset = 0
        for name, ggml_type, ne, data in self.tensors:
            header += [_string(name), struct.pack("<I", len(ne)), struct.pack(f"<{len(ne)}Q", *ne),
                       struct.pack("<IQ", ggml_type, offset)]
            offset += -(-len(data) // ALIGNMENT) * ALIGNMENT
        head = b"".join(header)
        temp = path + ".tmp"
        with open(temp, "wb") as out:
            out.write(head + bytes(-len(head) % ALIGNMENT))
            for _, _, _, data in self.tensors:
                out.write(data + bytes(-len(data) % ALIGNMENT))
        os.replace(temp, path)


# ---------------------------------------------------------------------------------------------------------------
# GGUF reader (enough to check what this script writes)

class _Cursor:
    def __init__(self, data: memoryview):
        self.data, self.at = data, 0

    def take(self, fmt: str):
        values = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return values[0] if len(values) == 1 else values

    def string(self) -> str:
        length = self.take("<Q")
        text = bytes(self.data[self.at:self.at + length]).decode("utf-8")
        self.at += length
        return text

    def value(self, value_type: int):
        if value_type == STRING:
            return self.string()
        if value_type == ARRAY:
            element_type, count = self.take("<IQ")
            if element_type == STRING:
                return [self.string() for _ in range(count)]
            dtype = np.dtype("<u1" if element_type == BOOL else _NUMPY_TYPES[element_type])
            items = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.at)
            self.at += count * dtype.itemsize
            return items
        return self.take(_SCALAR_FORMATS[value_type])


def read_gguf(path: str) -> tuple[dict, dict[str, tuple[int, tuple[int, ...], np.ndarray]]]:
    """-> (metadata, {name: (ggml_type, ne, float32 values in numpy order, i.e. shape reversed(ne))})."""
    with open(path, "rb") as f:
        data = memoryview(f.read())
    cursor = _Cursor(data)
    if bytes(data[:4]) != GGUF_MAGIC:
        raise ValueError(f"{path} is not a GGUF file")
    cursor.at = 4
    version, n_tensors, n_kv = cursor.take("<IQQ")
    if version != GGUF_VERSION:
        raise ValueError(f"{path}: GGUF version {version}")
    metadata = {}
    for _ in range(n_kv):
        key = cursor.string()
        metadata[key] = cursor.value(cursor.take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = cursor.string()
        n_dims = cursor.take("<I")
        ne = tuple(int(n) for n in struct.unpack_from(f"<{n_dims}Q", data, cursor.at))
        cursor.at += 8 * n_dims
        ggml_type, offset = cursor.take("<IQ")
        infos.append((name, ne, ggml_type, offset))
    alignment = int(metadata.get("general.alignment", ALIGNMENT))
    base = -(-cursor.at // alignment) * alignment
    tensors = {}
    for name, ne, ggml_type, offset in infos:
        _, block, block_bytes = GGML_TYPES[ggml_type]
        count = int(np.prod(ne))
        raw = data[base + offset:base + offset + count // block * block_bytes]
        tensors[name] = (ggml_type, ne, decode_tensor(raw, ggml_type, count).reshape(tuple(reversed(ne))))
    return metadata, tensors


# ---------------------------------------------------------------------------------------------------------------
# Checkpoint -> GGUF

def gguf_tensors(state: dict, config: dict, types: dict[str, int]) -> list[tuple[str, int, np.ndarray]]:
    """(name, ggml type, values in numpy order) for every tensor of the model; types: embedding/attention/experts."""
    def array(key: str) -> np.ndarray:
        return state[key].detach().float().numpy()

    token_embd = array("embedding_rows")[state["row_of_token"].numpy()]
    tensors = [("token_embd.weight", types["embedding"], token_embd)]
    for layer in range(config["n_layers"]):
        prefix, blk = f"layers.{layer}.", f"blk.{layer}."
        tensors += [
            (blk + "attn_norm.weight", GGML_F32, array(prefix + "attn_norm.weight")),
            (blk + "attn_q.weight", types["attention"], array(prefix + "attn.wq")),
            (blk + "attn_k.weight", types["attention"], array(prefix + "attn.wk")),
            (blk + "attn_v.weight", types["attention"], array(prefix + "attn.wv")),
            (blk + "attn_output.weight", types["attention"], array(prefix + "attn.wo")),
            (blk + "ffn_norm.weight", GGML_F32, array(prefix + "ffn_norm.weight")),
            (blk + "ffn_gate_inp.weight", GGML_F32, array(prefix + "moe.router")),
            (blk + "ffn_gate_exps.weight", types["experts"], array(prefix + "moe.w_gate")),
            (blk + "ffn_down_exps.weight", types["experts"], array(prefix + "moe.w_down")),
            (blk + "ffn_up_exps.weight", types["experts"], array(prefix + "moe.w_up")),
        ]
    tensors.append(("output_norm.weight", GGML_F32, array("norm.weight")))
    return tensors


def build_gguf(state: dict, config: dict, vocab: dict, types: dict[str, int], name: str) -> GgufWriter:
    writer = GgufWriter()
    writer.add("general.architecture", STRING, "llama")
    writer.add("general.name", STRING, name)
    writer.add("general.file_type", UINT32, FILE_TYPE[types["experts"]])
    writer.add("general.quantization_version", UINT32, 2)
    writer.add("llama.context_length", UINT32, config["context_length"])
    writer.add("llama.embedding_length", UINT32, config["dim"])
    writer.add("llama.block_count", UINT32, config["n_layers"])
    writer.add("llama.feed_forward_length", UINT32, config["ffn_dim"])
    writer.add("llama.attention.head_count", UINT32, config["n_heads"])
    writer.add("llama.attention.head_count_kv", UINT32, config["n_kv_heads"])
    writer.add("llama.rope.freq_base", FLOAT32, config["rope_base"])
    writer.add("llama.rope.dimension_count", UINT32, config["dim"] // config["n_heads"])
    writer.add("llama.attention.layer_norm_rms_epsilon", FLOAT32, config["norm_eps"])
    writer.add("llama.expert_count", UINT32, config["n_experts"])
    writer.add("llama.expert_used_count", UINT32, config["n_experts_used"])
    writer.add("llama.vocab_size", UINT32, config["vocab_size"])
    if len(vocab["tokens"]) != config["vocab_size"]:
        raise ValueError(f"vocabulary has {len(vocab['tokens'])} tokens; the model {config['vocab_size']}")
    writer.add("tokenizer.ggml.model", STRING, "llama")
    writer.add("tokenizer.ggml.tokens", ARRAY, vocab["tokens"], STRING)
    writer.add("tokenizer.ggml.scores", ARRAY, np.asarray(vocab["scores"], dtype=np.float32), FLOAT32)
    writer.add("tokenizer.ggml.token_type", ARRAY, np.asarray(vocab["tokenTypes"], dtype=np.int32), INT32)
    writer.add("tokenizer.ggml.bos_token_id", UINT32, vocab["bosId"])
    writer.add("tokenizer.ggml.eos_token_id", UINT32, vocab["eosId"])
    writer.add("tokenizer.ggml.unknown_token_id", UINT32, vocab["unkId"])
    writer.add("tokenizer.ggml.add_bos_token", BOOL, True)
    writer.add("tokenizer.ggml.add_eos_token", BOOL, False)
    writer.add("tokenizer.chat_template", STRING, MIXTRAL_CHAT_TEMPLATE)
    for tensor_name, ggml_type, values in gguf_tensors(state, config, types):
        writer.add_tensor(tensor_name, ggml_type, tuple(reversed(values.shape)), encode_tensor(values, ggml_type))
    return writer


def parse_types(args: argparse.Namespace) -> dict[str, int]:
    return {"embedding": GGML_TYPE_BY_NAME[args.embedding_type], "attention": GGML_TYPE_BY_NAME[args.attention_type],
            "experts": GGML_TYPE_BY_NAME[args.expert_type]}


def add_type_arguments(parser: argparse.ArgumentParser) -> None:
    choices = [GGML_TYPES[t][0] for t in (GGML_Q8_0, GGML_Q4_0, GGML_F16, GGML_F32)]
    parser.add_argument("--embedding-type", default="Q8_0", choices=choices, help="token_embd (also the output head)")
    parser.add_argument("--attention-type", default="Q8_0", choices=choices)
    parser.add_argument("--expert-type", default="Q8_0", choices=choices)


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="final.pt or checkpoint.pt from train.py")
    parser.add_argument("vocab", help="vocab.json from dump_vocab.mjs")
    parser.add_argument("out", help="output .gguf path")
    parser.add_argument("--name", default="kjv-mixtral")
    add_type_arguments(parser)
    args = parser.parse_args()

    checkpoint = torch.load(args.checkpoint)
    with open(args.vocab) as f:
        vocab = json.load(f)
    writer = build_gguf(checkpoint["model"], checkpoint["config"], vocab, parse_types(args), args.name)
    writer.write(args.out)

    metadata, tensors = read_gguf(args.out)
    written = {name: values for name, _, values in gguf_tensors(checkpoint["model"], checkpoint["config"], parse_types(args))}
    worst = max(float(np.abs(tensors[name][2] - round_trip(values, tensors[name][0])).max()) for name, values in written.items())
    if worst != 0.0:
        sys.exit(f"read-back mismatch {worst}")
    print(f"wrote {args.out}: {os.path.getsize(args.out):,} bytes, {len(tensors)} tensors, {len(metadata)} metadata keys")


if __name__ == "__main__":
    main()
