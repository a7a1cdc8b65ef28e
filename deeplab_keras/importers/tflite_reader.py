"""Read a TFLite flatbuffer safely: :class:`Graph` parses the first subgraph with LiteRT's schema
module and checks every field the importer relies on before anything reads it (issue 19): opcode
and tensor indices in range, known tensor types, buffer indices, quantization (finite positive
scales, one zero point per scale, ``quantizedDimension`` inside the tensor, one scale per
channel), one producer per tensor, ops in data-flow order (no cycle, a ``DEQUANTIZE`` loop
included). Constant tensors read as float32 (dequantized) and must be finite. Every problem is a
one-line ValueError naming the file, the tensor or operator, and the field."""
import os

import numpy as np

#: the largest input side we convert (a corrupt shape field otherwise builds a model nobody can run)
MAX_INPUT_SIDE = 8192
#: the most elements a constant (weight) tensor may declare
MAX_ELEMENTS = 1 << 31


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # pragma: no cover - TF's copy of the same generated module
        from tensorflow.lite.python import schema_py_generated as schema
    return schema


def check_input_size(path, height, width, what="input tensor shape"):
    """Refuse an input side that is not positive or beyond :data:`MAX_INPUT_SIDE`."""
    for side in (height, width):
        if side is not None and not 0 < int(side) <= MAX_INPUT_SIDE:
            raise ValueError(f"{path}: {what} {height}x{width} is outside 1..{MAX_INPUT_SIDE} "
                             "pixels per side (a corrupt shape field?); give input_shape= / "
                             "--input-size to convert it at a size you can run")


class Graph:
    """The first subgraph of a TFLite file, with constant tensors readable as float32."""

    def __init__(self, path):
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"TFLite file not found: {path}")
        with open(path, "rb") as f:
            data = f.read()
        if len(data) < 8 or data[4:8] != b"TFL3":
            raise ValueError(f"{path}: not a readable TFLite model (no 'TFL3' flatbuffer "
                             f"identifier; is it a .tflite file?)")
        schema = _schema()
        try:
            model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
            if not model.subgraphs:
                raise ValueError("no subgraph")
            graph = model.subgraphs[0]
            self.tensors = list(graph.tensors or [])
            ops = graph.operators or []
        except Exception as err:  # flatbuffers raises IndexError/struct.error on truncation
            raise ValueError(f"{path}: not a readable TFLite model (truncated or corrupt "
                             f"flatbuffer: {type(err).__name__}: {err})") from None
        self.path, self.data, self.model = path, data, model
        names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        self.type_names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
        self.inputs = list(graph.inputs if graph.inputs is not None else [])
        self.outputs = list(graph.outputs if graph.outputs is not None else [])
        self._check_indices("subgraph inputs", self.inputs)
        self._check_indices("subgraph outputs", self.outputs)
        if not self.inputs:
            self._fail("the subgraph declares no input tensor")
        check_input_size(path, *(self.shape(self.inputs[0]) + (None, None, None))[1:3])
        for t in range(len(self.tensors)):
            self._check_tensor(t)
        codes = model.operatorCodes or []
        self.ops = []
        for k, op in enumerate(ops):
            if not 0 <= op.opcodeIndex < len(codes):
                self._fail(f"operator #{k}: opcodeIndex {op.opcodeIndex} is out of range (the "
                           f"file has {len(codes)} operator codes)")
            code = codes[op.opcodeIndex]
            kind = names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")
            ins = list(op.inputs if op.inputs is not None else [])
            outs = list(op.outputs if op.outputs is not None else [])
            self._check_indices(f"operator #{k} {kind}: inputs", ins, optional=True)
            self._check_indices(f"operator #{k} {kind}: outputs", outs)
            self.ops.append((kind, [i for i in ins if i >= 0], outs, op.builtinOptions))
        self.producer = {}
        for k, (kind, ins, outs, _) in enumerate(self.ops):
            for t in outs:
                if t in self.producer:
                    self._fail(f"tensor #{t} {self.name(t)!r} is the output of operators "
                               f"#{self.producer[t]} and #{k}; a tensor has one producer")
                self.producer[t] = k
        for k, (kind, ins, _, _) in enumerate(self.ops):
            for t in ins:
                p = self.producer.get(t)
                if p == k:
                    self._fail(f"operator #{k} {kind} reads its own output tensor #{t} (a cycle)")
                if p is not None and p > k:  # TFLite keeps operators in data-flow order
                    self._fail(f"operator #{k} {kind}: input tensor #{t} {self.name(t)!r} is "
                               f"computed later, by operator #{p} (a cycle or misordered graph)")
        self.consumers = {}
        for k, (_, ins, _, _) in enumerate(self.ops):
            for t in ins:
                self.consumers.setdefault(t, []).append(k)

    # -- checks --------------------------------------------------------------------------------
    def _fail(self, what):
        raise ValueError(f"{self.path}: {what} (corrupt or unsupported TFLite file)")

    def _check_indices(self, where, indices, optional=False):
        for i in indices:
            if not (0 <= i < len(self.tensors) or (optional and i == -1)):
                self._fail(f"{where}: tensor index {i} is out of range (the file has "
                           f"{len(self.tensors)} tensors)")

    def _check_tensor(self, t):
        tensor = self.tensors[t]
        where = f"tensor #{t} {self.name(t)!r}"
        if tensor.type not in self.type_names:
            self._fail(f"{where}: unknown tensor type {tensor.type}")
        buffers = len(self.model.buffers or [])
        if not 0 <= tensor.buffer < max(buffers, 1):
            self._fail(f"{where}: buffer index {tensor.buffer} is out of range (the file has "
                       f"{buffers} buffers)")
        shape = [int(d) for d in (tensor.shape if tensor.shape is not None else [])]
        if any(d < 0 for d in shape):
            self._fail(f"{where}: shape {shape} has a negative dimension")
        if int(np.prod(shape, dtype=np.float64)) > MAX_ELEMENTS:
            self._fail(f"{where}: shape {shape} has more than {MAX_ELEMENTS} elements")
        q = tensor.quantization
        scales = [] if q is None or q.scale is None else [float(v) for v in q.scale]
        if not scales:
            return
        bad = [v for v in scales if not (np.isfinite(v) and v > 0)]
        if bad:
            self._fail(f"{where}: quantization scale {bad[0]!r} (scales must be finite and > 0)")
        zeros = [] if q.zeroPoint is None else list(q.zeroPoint)
        if len(zeros) not in (0, len(scales)):
            self._fail(f"{where}: quantization has {len(zeros)} zero points for {len(scales)} "
                       "scales")
        if len(scales) > 1:
            axis = int(q.quantizedDimension)
            if not 0 <= axis < len(shape):
                self._fail(f"{where}: quantizedDimension {axis} is out of range for a "
                           f"rank-{len(shape)} tensor")
            if shape[axis] != len(scales):
                self._fail(f"{where}: {len(scales)} per-channel quantization scales for "
                           f"{shape[axis]} channels along quantizedDimension {axis}")

    # -- tensors -------------------------------------------------------------------------------
    def name(self, t):
        return self.tensors[t].name.decode(errors="replace") if self.tensors[t].name else ""

    def shape(self, t):
        s = self.tensors[t].shape
        sig = self.tensors[t].shapeSignature
        shape = [int(d) for d in (s if s is not None else [])]
        if sig is not None and len(sig) == len(shape):
            shape = [int(d) if int(d) >= 0 else None for d in sig]
        return tuple(shape)

    def dtype(self, t):
        return self.type_names[self.tensors[t].type]

    def raw(self, t):
        """The stored bytes of a constant tensor, or None for an activation."""
        tensor = self.tensors[t]
        buffer = self.model.buffers[tensor.buffer] if tensor.buffer < len(self.model.buffers) else None
        if buffer is None:
            return None
        if buffer.data is not None and len(buffer.data):
            return np.asarray(buffer.data, np.uint8).tobytes()
        if getattr(buffer, "offset", 0) > 1 and getattr(buffer, "size", 0):
            if buffer.offset + buffer.size > len(self.data):
                self._fail(f"tensor #{t} {self.name(t)!r}: buffer offset {buffer.offset} + size "
                           f"{buffer.size} lies past the end of the {len(self.data)}-byte file")
            return self.data[buffer.offset:buffer.offset + buffer.size]
        return None

    def is_constant(self, t):
        if t in self.producer:
            kind, ins, _, _ = self.ops[self.producer[t]]
            return kind == "DEQUANTIZE" and all(self.is_constant(i) for i in ins)
        return self.raw(t) is not None

    def constant(self, t):
        """A constant tensor as float32, dequantized (also through a DEQUANTIZE op); refuses
        non-finite values."""
        if t in self.producer:
            kind, ins, _, _ = self.ops[self.producer[t]]
            if kind != "DEQUANTIZE" or not ins:
                raise ValueError(f"{self.path}: tensor {self.name(t)!r} is computed by {kind}, "
                                 f"not stored; only constant or DEQUANTIZE'd weights are supported")
            return self.constant(ins[0])
        value = self._stored(t)
        if not np.all(np.isfinite(value)):
            self._fail(f"tensor #{t} {self.name(t)!r}: weights hold NaN or infinite values")
        return value

    def _stored(self, t):
        raw = self.raw(t)
        if raw is None:
            raise ValueError(f"{self.path}: tensor {self.name(t)!r} has no stored data")
        dtypes = {"FLOAT32": np.float32, "FLOAT16": np.float16, "INT8": np.int8, "UINT8": np.uint8,
                  "INT32": np.int32, "INT64": np.int64, "INT16": np.int16}
        kind = self.dtype(t)
        if kind not in dtypes:
            raise ValueError(f"{self.path}: weight tensor {self.name(t)!r} has unsupported type "
                             f"{kind} (supported: {', '.join(dtypes)}; INT4 and sparse weights are not)")
        if self.tensors[t].sparsity is not None:
            raise ValueError(f"{self.path}: weight tensor {self.name(t)!r} is sparse; sparse "
                             f"weights are not supported")
        shape = [int(d) for d in self.tensors[t].shape]
        try:
            value = np.frombuffer(raw, dtypes[kind]).reshape(shape)
        except ValueError as err:
            raise ValueError(f"{self.path}: tensor {self.name(t)!r} holds {len(raw)} bytes, not "
                             f"{kind}{shape} (truncated or corrupt file)") from err
        if np.issubdtype(value.dtype, np.floating):
            return value.astype(np.float32)
        q = self.tensors[t].quantization
        scales = None if q is None or q.scale is None else np.asarray(q.scale, np.float64)
        if scales is None or scales.size == 0:
            if kind in ("INT32", "INT64"):
                return value.astype(np.float32)
            raise ValueError(f"{self.path}: tensor {self.name(t)!r} is {kind} without "
                             f"quantization parameters")
        zero = np.asarray(q.zeroPoint if q.zeroPoint is not None and len(q.zeroPoint)
                          else [0] * scales.size, np.float64)
        if scales.size > 1:  # checked at load: quantizedDimension and one scale per channel
            axis_shape = [1] * value.ndim
            axis_shape[q.quantizedDimension] = -1
            scales, zero = scales.reshape(axis_shape), zero.reshape(axis_shape)
        return ((value.astype(np.float64) - zero) * scales).astype(np.float32)

    def quantization(self, t):
        """(scale, zero_point) of a per-tensor quantized tensor, else None."""
        q = self.tensors[t].quantization
        if q is None or q.scale is None or len(q.scale) != 1:
            return None
        return float(q.scale[0]), int(q.zeroPoint[0]) if q.zeroPoint is not None and len(q.zeroPoint) else 0
