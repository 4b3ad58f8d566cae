#!/usr/bin/python3
"""Writes the checked-in hostile inputs of the bad-input corpus (tests/bad_inputs/files/), each
made by breaking one thing of a valid input; cases.txt says what ampc must answer to each.
Run with Debian's python3 (it has onnx and numpy): /usr/bin/python3 make_bad_inputs.py
Inputs derived from plans and checkpoints are made at test time by run_bad_inputs.py instead,
from what the ampc under test writes, so that they follow the plan format."""
import gzip
import json
import os
import random
import shutil
import struct
import zlib

import numpy as np
import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "files")
FIXTURES = os.path.join(os.path.dirname(HERE), "fixtures")


def put(name, data):
    path = os.path.join(OUT, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def model(nodes, inits=(), inputs=None, outputs=None, opset=17):
    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])]
    outputs = outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])]
    g = helper.make_graph(nodes, "bad", inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m.SerializeToString()


def relu():
    return [helper.make_node("Relu", ["x"], ["y"], name="relu0")]


def external(location, offset=None, length=None):
    t = TensorProto()
    t.name, t.data_type = "w", TensorProto.FLOAT
    t.dims.extend([3, 4])
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", offset), ("length", length)):
        if v is not None:
            e = t.external_data.add()
            e.key, e.value = k, str(v)
    return model([helper.make_node("MatMul", ["x", "w"], ["y"], name="matmul")], [t])


def npy(descr, shape, payload):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + payload


def zip_member(name, content, usize=None, crc=None, deflate=True, local_offset=None):
    """A one-member zip archive; usize/crc/local_offset override the true values."""
    data = zlib.compress(content)[2:-4] if deflate else content
    method = 8 if deflate else 0
    crc = zlib.crc32(content) if crc is None else crc
    usize = len(content) if usize is None else usize
    nm = name.encode()
    extra = b""
    u32 = lambda v: min(v, 0xFFFFFFFF)
    if usize >= 0xFFFFFFFF or (local_offset or 0) >= 0xFFFFFFFF:
        body = b""
        if usize >= 0xFFFFFFFF:
            body += struct.pack("<Q", usize)
        if (local_offset or 0) >= 0xFFFFFFFF:
            body += struct.pack("<Q", local_offset)
        extra = struct.pack("<HH", 1, len(body)) + body
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, len(data),
                        u32(usize), len(nm), 0) + nm + data
    off = 0 if local_offset is None else local_offset
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0, crc,
                          len(data), u32(usize), len(nm), len(extra), 0, 0, 0, 0,
                          u32(off)) + nm + extra
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local), 0)
    return local + central + eocd


def idx(dims, payload, elem=8):
    return bytes([0, 0, elem, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def safetensors(header_obj, data=b"", header_len=None):
    h = json.dumps(header_obj).encode() if not isinstance(header_obj, bytes) else header_obj
    return struct.pack("<Q", len(h) if header_len is None else header_len) + h + data


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    rnd = random.Random(14)
    mlp = open(os.path.join(FIXTURES, "mlp_opset17.onnx"), "rb").read()

    # --- ONNX models ---------------------------------------------------------------------------
    put("empty.onnx", b"")
    put("truncated.onnx", mlp[:100])
    put("garbage.onnx", bytes(rnd.randrange(256) for _ in range(256)))
    def declared(dims):  # an initializer declaring `dims` and holding no data
        t = TensorProto()
        t.name, t.data_type = "w", TensorProto.FLOAT
        t.dims.extend(dims)
        return t
    put("huge_dims.onnx", model([helper.make_node("MatMul", ["x", "w"], ["y"])],
                                [declared([1 << 20, 1 << 20, 1 << 20])]))
    put("overflow_dims.onnx", model([helper.make_node("MatMul", ["x", "w"], ["y"])],
                                    [declared([1 << 40, 1 << 40, 1 << 40])]))
    # Fuzz finding 3: Conv's group near 2^63 times W's input channels overflowed (UBSan).
    conv_w = helper.make_tensor("w", TensorProto.FLOAT, [8, 8, 1, 1], [0.0] * 64)
    put("conv_group_max.onnx", model(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv0", group=(1 << 63) - 1)], [conv_w],
        inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 4, 4])],
        outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 4, 4])]))
    # Attention (opset 23) with a mask narrower than the keys (ONNX pads it with -inf): the CPU
    # kernel runs it; the CUDA target, which decomposes Attention into ONNX ops, refuses it.
    put("attention_narrow_mask.onnx", model(
        [helper.make_node("Attention", ["x", "x", "x", "m"], ["y"], name="attn")],
        [helper.make_tensor("m", TensorProto.BOOL, [3], [1, 1, 0])],
        inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 4, 8])],
        outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1, 4, 8])],
        opset=23))
    put("input_dim_huge.onnx", model(relu(), inputs=[
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 1 << 41])]))
    bad_type = declared([3, 4])
    bad_type.data_type = 999
    bad_type.raw_data = bytes(48)
    put("bad_dtype.onnx", model([helper.make_node("MatMul", ["x", "w"], ["y"])], [bad_type]))
    chain = [helper.make_node("Relu", ["x" if i == 0 else "h%d" % (i - 1)],
                              ["y" if i == 99 else "h%d" % i], name="r%d" % i) for i in range(100)]
    put("many_nodes.onnx", model(chain))
    put("long_name.onnx", model([helper.make_node("Relu", ["x"], ["y"], name="n" * 5000)]))
    put("big_list.onnx", model([helper.make_node("Relu", ["x"], ["y"], name="relu0",
                                                 padding=list(range(1000)))]))
    # If nodes nested 20 deep (ampc imports no control flow, and must not recurse to find out).
    leaf = helper.make_graph([], "leaf", [], [helper.make_tensor_value_info("c", TensorProto.FLOAT, [1])])
    inner = leaf
    for i in range(20):
        node = helper.make_node("If", ["cond"], ["c"], name="if%d" % i, then_branch=inner,
                                else_branch=leaf)
        inner = helper.make_graph([node], "level%d" % i, [],
                                  [helper.make_tensor_value_info("c", TensorProto.FLOAT, [1])])
    put("nested_if.onnx", model(relu() + [helper.make_node("If", ["cond"], ["c"], name="top",
                                                            then_branch=inner, else_branch=leaf)],
                                inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
                                        helper.make_tensor_value_info("cond", TensorProto.BOOL, [])]))
    # A few bytes whose shapes ask for 8 TiB of activations: ConstantOfShape [2^20, 2^20] + x.
    shape = helper.make_tensor("s", TensorProto.INT64, [2], [1 << 20, 1 << 20])
    put("constant_of_shape_bomb.onnx", model(
        [helper.make_node("ConstantOfShape", ["s"], ["c"], name="cos"),
         helper.make_node("Add", ["x", "c"], ["y"], name="add")], [shape],
        inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, [1 << 20, 1 << 20])]))
    put("one_float/x.npy", npy("<f4", "(1,)", struct.pack("<f", 1.0)))
    w = np.arange(12, dtype=np.float32).tobytes()
    for d, loc, off in (("ext_dotdot", "../w.bin", None), ("ext_absolute", "/etc/passwd", None),
                        ("ext_symlink", "escape.bin", None), ("ext_past_end", "w.bin", 1000),
                        ("ext_missing", "nothere.bin", None),
                        # fuzz finding 1: offset + length overflowed int64 in the error message
                        ("ext_offset_max", "w.bin", (1 << 63) - 1)):
        put(d + "/model.onnx", external(loc, off))
        if d != "ext_missing":
            put(d + "/w.bin", w)
    put("ext_length_max/model.onnx", external("w.bin", 0, (1 << 63) - 1))
    put("ext_length_max/w.bin", w)
    put("ext_length_short/model.onnx", external("w.bin", 4, 44))
    put("ext_length_short/w.bin", w)
    put("w.bin", w)  # what ext_dotdot's '../w.bin' would reach
    link = os.path.join(OUT, "ext_symlink", "escape.bin")
    os.symlink("../w.bin", link)  # a file outside the model's folder

    # --- textual IR ------------------------------------------------------------------------------
    head = 'graph "g" opsets {"": 17} {\n  input %x: f32[2,3]\n'
    put("truncated.txt", (head + '  %y: f32[2,3] = Relu(%x)').encode())
    put("huge_literal_dims.txt", (head + "  init %w: f32[1099511627776,1048576] = elided\n"
                                  "  output %x\n}\n").encode())
    put("huge_elided.txt", (head + "  init %w: f32[1048576,1048576] = elided\n"
                            "  output %x\n}\n").encode())
    put("many_nodes.txt", (head + "".join("  %%h%d: f32[2,3] = Relu(%%%s)\n" % (i, "x" if i == 0 else
                                          "h%d" % (i - 1)) for i in range(50)) +
                           "  output %h49\n}\n").encode())
    put("long_string.txt", (head + '  %y: f32[2,3] = Relu(%x) name="' + "n" * 5000 +
                            '"\n  output %y\n}\n').encode())
    put("garbage.txt", bytes(rnd.randrange(256) for _ in range(256)))

    put("garbage.ampc", bytes(rnd.randrange(256) for _ in range(300)))  # not a plan at all

    # --- .npy inputs (ampc eval --inputs DIR) ----------------------------------------------------
    put("npy_bad_magic/x.npy", b"NOTNUMPY" + bytes(40))
    put("npy_huge_shape/x.npy", npy("<f4", "(1099511627776, 1099511627776)", b""))
    put("npy_short_data/x.npy", npy("<f4", "(2, 3)", bytes(8)))
    put("npy_fortran/x.npy", npy("<f4", "(2, 3)", bytes(24)).replace(b"False", b"True "))
    put("npy_dtype/x.npy", npy("<c8", "(2, 3)", bytes(48)))

    # --- TensorProto inputs (ampc eval --inputs DIR with input_0.pb) ------------------------------
    x_pb = helper.make_tensor("x", TensorProto.FLOAT, [2, 3], [1.0] * 6).SerializeToString()
    put("pb_truncated/input_0.pb", x_pb[:9])
    esc = TensorProto()
    esc.name, esc.data_type = "x", TensorProto.FLOAT
    esc.dims.extend([2, 3])
    esc.data_location = TensorProto.EXTERNAL
    e = esc.external_data.add()
    e.key, e.value = "location", "../w.bin"
    put("pb_escape/input_0.pb", esc.SerializeToString())
    huge = TensorProto()
    huge.name, huge.data_type = "x", TensorProto.FLOAT
    huge.dims.extend([1 << 20, 1 << 20])
    put("pb_huge/input_0.pb", huge.SerializeToString())

    # --- .npz data (ampc train --data FILE.npz) -------------------------------------------------
    x = npy("<f4", "(8, 3)", bytes(96))
    put("npz_not_zip.npz", b"PK" + bytes(100))
    put("npz_truncated.npz", zip_member("x.npy", x)[:-30])
    put("npz_crc.npz", zip_member("x.npy", x, crc=1234))
    put("npz_bomb.npz", zip_member("x.npy", x, usize=1 << 36))  # declares 64 GiB
    put("npz_small_bomb.npz", zip_member("x.npy", x + bytes(2 << 20)))  # 2 MiB inflated
    put("npz_local_offset.npz", zip_member("x.npy", x, deflate=False, local_offset=(1 << 64) - 10))
    put("npz_method.npz", zip_member("x.npy", x).replace(b"\x08\x00\x00\x00", b"\x0e\x00\x00\x00"))

    # --- FashionMNIST IDX folders (AMPC_FASHION_MNIST_DIR) ---------------------------------------
    images = idx([2, 28, 28], bytes(2 * 784))
    labels = idx([2], b"\x01\x02")
    gz = lambda b: gzip.compress(b, mtime=0)
    variants = {
        "idx_bad_magic": (gz(b"\x01\x02" + images[2:]), gz(labels)),
        "idx_size_mismatch": (gz(images[:-5]), gz(labels)),
        "idx_elem_type": (gz(idx([2, 28, 28], bytes(2 * 784 * 4), elem=0x0D)), gz(labels)),
        "idx_not_gzip": (b"\x1f\x8b\x08\x00" + bytes(30), gz(labels)),
        "idx_bad_label": (gz(images), gz(idx([2], b"\x01\xc8"))),
        "idx_bomb": (gz(idx([3000, 28, 28], bytes(3000 * 784))), gz(labels)),
    }
    for d, (im, lb) in variants.items():
        for split in ("train", "t10k"):
            put("%s/%s-images-idx3-ubyte.gz" % (d, split), im)
            put("%s/%s-labels-idx1-ubyte.gz" % (d, split), lb)

    # --- --amp-config files ------------------------------------------------------------------------
    put("amp_not_json.json", b'{"allow": ["MatMul"')
    put("amp_deep.json", b'{"allow": ' + b"[" * 100 + b"]" * 100 + b"}")
    put("amp_regex_deep.json", json.dumps({"fp32_nodes": "(" * 100 + "a" + ")" * 100}).encode())
    put("amp_unknown_key.json", b'{"alow": ["MatMul"]}')
    put("amp_not_strings.json", b'{"deny": [1, 2]}')
    put("amp_bad_regex.json", b'{"fp32_nodes": "([a-"}')
    # fuzz finding (amp_config, CI): std::regex read this repeat count into a long and overflowed
    put("amp_regex_count.json", b'{"fp32_nodes": "a{2222222222222222222}"}')

    # --- safetensors (ampc export --weights, checkpoints) ------------------------------------------
    put("st_header_len.safetensors", safetensors({}, header_len=1 << 40))
    put("st_not_json.safetensors", safetensors(b"{not json"))
    put("st_offsets.safetensors", safetensors(
        {"w": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 1 << 40]}}, bytes(48)))
    put("st_shape_overflow.safetensors", safetensors(
        {"w": {"dtype": "F32", "shape": [1 << 62, 8], "data_offsets": [0, 48]}}, bytes(48)))


if __name__ == "__main__":
    main()
