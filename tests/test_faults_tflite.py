"""Issue 19 (5): every malformed TFLite field gives a one-line error naming the file and the
field, never a traceback from deep inside numpy or flatbuffers; non-finite weights, zero/NaN
scales and normalisation values are refused; absurd input shapes are refused at conversion.
Each case edits one field of a small real file (a tiny DeepLab written by TFLiteConverter)."""
import numpy as np
import pytest

from deeplab_keras import cli
from deeplab_keras.importers.tflite_describe import describe
from deeplab_keras.importers.tflite_graph import read_graph
from deeplab_keras.importers.tflite_reader import _schema

SIZE = 33


def _tiny_keras():
    """Conv, depthwise conv, conv: every field the reader checks, converted in seconds (the
    reader refuses these fields before it looks for a DeepLab architecture)."""
    import keras
    keras.utils.set_random_seed(0)
    x = inputs = keras.Input((SIZE, SIZE, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    return keras.Model(inputs, keras.layers.Conv2D(3, 1)(x))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """float32, float16 (weights behind DEQUANTIZE) and int8 (per-channel weights) files."""
    import tensorflow as tf
    folder = tmp_path_factory.mktemp("tflite")
    model = _tiny_keras()
    rng = np.random.default_rng(0)

    def representative():
        for _ in range(2):
            yield [rng.uniform(0, 255, (1, SIZE, SIZE, 3)).astype(np.float32)]

    out = {}
    for mode in ("float32", "float16", "int8"):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if mode == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif mode == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative
        path = folder / f"{mode}.tflite"
        path.write_bytes(converter.convert())
        read_graph(path)  # the untouched file is fine
        out[mode] = path
    return out


def _load(path):
    """The file as schema objects with writable arrays."""
    schema = _schema()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(path.read_bytes(), 0))
    for g in model.subgraphs:
        g.inputs, g.outputs = np.array(g.inputs), np.array(g.outputs)
        for op in g.operators:
            op.inputs, op.outputs = np.array(op.inputs), np.array(op.outputs)
        for t in g.tensors:
            q = t.quantization
            if q is not None and q.scale is not None:
                q.scale = np.array(q.scale)
                q.zeroPoint = None if q.zeroPoint is None else np.array(q.zeroPoint)
    return model


def _save(model, path):
    import flatbuffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return path


def _ops(model, kind):
    schema = _schema()
    codes = [i for i, c in enumerate(model.operatorCodes)
             if max(c.builtinCode, c.deprecatedBuiltinCode) == getattr(schema.BuiltinOperator, kind)]
    return [op for op in model.subgraphs[0].operators if op.opcodeIndex in codes]


def _conv(model):
    return _ops(model, "CONV_2D")[0]


def _weight(model):
    g = model.subgraphs[0]
    return g.tensors[_conv(model).inputs[1]]


def _per_channel(model):
    g = model.subgraphs[0]
    for op in _ops(model, "CONV_2D"):
        t = g.tensors[op.inputs[1]]
        if t.quantization is not None and t.quantization.scale is not None and len(t.quantization.scale) > 1:
            return t
    raise AssertionError("no per-channel weight in the int8 file")


def _set_buffer(model, tensor, values):
    model.buffers[tensor.buffer].data = np.frombuffer(np.asarray(values).tobytes(), np.uint8)


def _nan_weights(model, value):
    t = _weight(model)
    w = np.frombuffer(bytes(np.asarray(model.buffers[t.buffer].data, np.uint8)), np.float32).copy()
    w[3] = value
    _set_buffer(model, t, w)


def _one_scale_short(model):
    q = _per_channel(model).quantization
    q.scale, q.zeroPoint = q.scale[:-1], q.zeroPoint[:-1]


def _per_tensor(model):
    for t in model.subgraphs[0].tensors:
        q = t.quantization
        if q is not None and q.scale is not None and len(q.scale) == 1:
            return t
    raise AssertionError("no per-tensor quantized tensor in the int8 file")


def _input(model):
    g = model.subgraphs[0]
    return g.tensors[g.inputs[0]]


def _set_input_size(model, side):
    t = _input(model)
    t.shape = np.array([1, side, side, 3], np.int32)
    t.shapeSignature = None


def _cycle_two(model):
    """Operator 0 reads the output of the last operator (a loop through the graph)."""
    ops = model.subgraphs[0].operators
    ops[0].inputs[0] = ops[-1].outputs[0]


def _dequantize_self_loop(model):
    op = _ops(model, "DEQUANTIZE")[0]
    op.inputs[0] = op.outputs[0]


def _two_producers(model):
    ops = model.subgraphs[0].operators
    ops[2].outputs[0] = ops[1].outputs[0]


def _offset_past_end(model):
    buf = model.buffers[_weight(model).buffer]
    buf.data, buf.offset, buf.size = None, 10**9, 64


CASES = [  # (file, edit, message)
    ("float32", lambda m: setattr(_conv(m), "opcodeIndex", len(m.operatorCodes) + 3), "opcodeIndex"),
    ("float32", lambda m: _conv(m).inputs.__setitem__(0, 10**6), "inputs: tensor index 1000000"),
    ("float32", lambda m: _conv(m).inputs.__setitem__(1, -5), "inputs: tensor index -5"),
    ("float32", lambda m: _conv(m).outputs.__setitem__(0, 10**6), "outputs: tensor index"),
    ("float32", lambda m: _conv(m).outputs.__setitem__(0, -1), "outputs: tensor index -1"),
    ("float32", lambda m: m.subgraphs[0].inputs.__setitem__(0, 99999), "subgraph inputs"),
    ("float32", lambda m: m.subgraphs[0].outputs.__setitem__(0, 99999), "subgraph outputs"),
    ("float32", lambda m: setattr(m.subgraphs[0], "inputs", []), "declares no input"),
    ("float32", lambda m: setattr(_weight(m), "type", 99), "unknown tensor type 99"),
    ("float32", lambda m: setattr(_weight(m), "buffer", 10**6), "buffer index 1000000"),
    ("float32", lambda m: setattr(_weight(m), "shape", np.array([8, -3, 3, 3], np.int32)),
     "negative dimension"),
    ("float32", lambda m: setattr(_weight(m), "shape", np.array([2**20, 2**20, 3, 3], np.int32)),
     "more than"),
    ("float32", lambda m: setattr(m, "subgraphs", []), "no subgraph"),
    ("float32", _offset_past_end, "past the end"),
    ("float32", lambda m: _nan_weights(m, np.nan), "NaN or infinite"),
    ("float32", lambda m: _nan_weights(m, np.inf), "NaN or infinite"),
    ("float32", lambda m: _nan_weights(m, -np.inf), "NaN or infinite"),
    ("float32", _cycle_two, "computed later"),
    ("float32", _two_producers, "one producer"),
    ("float16", _dequantize_self_loop, "reads its own output"),
    ("float32", lambda m: _set_input_size(m, 100000), "outside 1..8192"),
    ("float32", lambda m: _set_input_size(m, 0), "outside 1..8192"),
    ("int8", lambda m: setattr(_per_channel(m).quantization, "quantizedDimension", 7),
     "quantizedDimension 7 is out of range"),
    ("int8", lambda m: setattr(_per_channel(m).quantization, "quantizedDimension", 1),
     "per-channel quantization scales for"),
    ("int8", _one_scale_short, "per-channel quantization scales"),
    ("int8", lambda m: setattr(_per_channel(m).quantization, "zeroPoint",
                               _per_channel(m).quantization.zeroPoint[:-1]), "zero points for"),
    ("int8", lambda m: _per_channel(m).quantization.scale.__setitem__(0, 0.0), "quantization scale 0.0"),
    ("int8", lambda m: _per_channel(m).quantization.scale.__setitem__(1, np.nan), "quantization scale nan"),
    ("int8", lambda m: _per_channel(m).quantization.scale.__setitem__(1, -0.5), "quantization scale -0.5"),
    ("int8", lambda m: _per_channel(m).quantization.scale.__setitem__(1, np.inf), "quantization scale inf"),
    ("int8", lambda m: _per_tensor(m).quantization.scale.__setitem__(0, 0.0), "quantization scale 0.0"),
    ("int8", lambda m: _per_tensor(m).quantization.scale.__setitem__(0, np.nan), "quantization scale nan"),
]


@pytest.mark.parametrize("mode,edit,message", CASES,
                         ids=[f"{c[0]}-{i}-{c[2][:24]}" for i, c in enumerate(CASES)])
def test_malformed_field_is_one_line_naming_file_and_field(files, tmp_path, mode, edit, message):
    model = _load(files[mode])
    edit(model)
    path = _save(model, tmp_path / "bad.tflite")
    with pytest.raises(ValueError) as err:
        read_graph(path)
    text = str(err.value)
    assert str(path) in text and message in text and "\n" not in text, text


def test_convert_cli_reports_a_bad_field_in_one_line(files, tmp_path, capsys):
    model = _load(files["float32"])
    _conv(model).opcodeIndex = 250
    path = _save(model, tmp_path / "bad.tflite")
    assert cli.main(["convert", str(path), "--output", str(tmp_path / "out.keras")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "opcodeIndex 250" in err[0] and str(path) in err[0]
    assert not (tmp_path / "out.keras").exists()


def test_absurd_input_shape_override_refused(files):
    import deeplab_keras as dk
    with pytest.raises(ValueError, match="input_shape 100000x100000 is outside"):
        dk.from_tflite(files["float32"], input_shape=(100000, 100000, 3))


def test_absurd_input_size_refused_by_the_convert_cli(files, tmp_path, capsys):
    out = tmp_path / "out.keras"
    assert cli.main(["convert", str(files["float32"]), "--output", str(out), "--input-size",
                     "100000", "100000"]) == 1
    err = capsys.readouterr().err
    assert "--input-size 100000x100000 is outside 1..8192" in err and not out.exists()


@pytest.mark.parametrize("mean,std,field", [
    (float("nan"), 127.5, "mean"), (127.5, float("inf"), "std"), (127.5, 1e-30, "std"),
    (1e30, 127.5, "mean"), (127.5, float("nan"), "std"), (float("-inf"), 127.5, "mean"),
])
def test_metadata_normalisation_non_finite_or_absurd_refused(files, tmp_path, mean, std, field):
    """Metadata written with placeholder values, then the placeholder float patched: the
    writer itself cannot write NaN (its JSON step refuses it); a corrupt file can hold it."""
    import struct
    from deeplab_keras.export import metadata
    from deeplab_keras.importers.tflite_metadata import input_normalization
    from deeplab_keras.importers.tflite_reader import Graph
    if not metadata.available():
        pytest.skip("mediapipe (deeplab-keras[mobile]) not installed: no metadata writer")
    _, seg, _, _ = metadata._writers()
    data = bytearray(files["float32"].read_bytes())
    out, _ = seg.MetadataWriter.create(data, input_norm_mean=[111.25],
                                       input_norm_std=[77.75]).populate()
    for placeholder, value in ((111.25, mean), (77.75, std)):
        old = struct.pack("<f", placeholder)
        assert out.count(old) == 1
        out = out.replace(old, struct.pack("<f", value))
    path = tmp_path / "meta.tflite"
    path.write_bytes(out)
    with pytest.raises(ValueError) as err:
        input_normalization(Graph(path))
    text = str(err.value)
    assert str(path) in text and "NormalizationOptions" in text and field in text
    assert "\n" not in text
