"""Turn a quantized `.tflite` into a float32 one computing the same network (no TensorFlow).

On x86, LiteRT's XNNPACK runs float32 convolutions faster than uint8 ones (the shared
MobileNetV2: about 14 ms -> 9 ms per image on one thread), for 4x the file size. Every tensor
that carries quantization becomes float32 without it: a constant (uint8 or int8 weights, int32
biases; per-tensor or per-channel) is stored as its real values (q - zero_point) * scale, and
the activations, the input and the output then hold real values, so each float kernel computes
what its integer kernel approximated. The model is read and written with the flatbuffer schema
that ships with ai-edge-litert; operator versions and metadata are kept as they are.

Refused with DequantizeRefused (an ImportRefused): not a `.tflite`, several subgraphs, an
operator outside FLOAT_SAFE_OPS (QUANTIZE, DEQUANTIZE and custom operators among them),
quantization this module cannot undo (another tensor type, sparse or block-wise tensors, one
buffer read with two different quantizations, data stored outside the flatbuffer), and a model
with nothing quantized.
"""

from __future__ import annotations

import struct

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from train.image_import import ImportRefused

Op = schema.BuiltinOperator
TensorType = schema.TensorType
# Operators whose float kernel takes the same inputs and options as their quantized kernel.
FLOAT_SAFE_OPS = frozenset({
    Op.ADD, Op.AVERAGE_POOL_2D, Op.CONCATENATION, Op.CONV_2D, Op.DEPTHWISE_CONV_2D,
    Op.FULLY_CONNECTED, Op.HARD_SWISH, Op.LOGISTIC, Op.MAX_POOL_2D, Op.MEAN, Op.MUL, Op.PAD,
    Op.RELU, Op.RELU6, Op.RESHAPE, Op.SOFTMAX, Op.SQUEEZE,
})
# Quantized tensor types this module can undo, as little-endian numpy dtypes.
QUANTIZED_DTYPES = {TensorType.UINT8: "<u1", TensorType.INT8: "<i1", TensorType.INT32: "<i4"}
FILE_IDENTIFIER = b"TFL3"
_OP_NAMES = {code: name for name, code in vars(Op).items() if not name.startswith("_")}
_TYPE_NAMES = {code: name for name, code in vars(TensorType).items() if not name.startswith("_")}


class DequantizeRefused(ImportRefused):
    """The model cannot be turned into float32 as it is; the message says why."""


def dequantize_model(content: bytes) -> bytes:
    """The bytes of the float32 twin of a quantized `.tflite` model (see the module docstring).

    Raises DequantizeRefused when the model cannot be converted faithfully.
    """
    model = _unpack(content)
    if len(model.subgraphs or []) != 1:
        raise DequantizeRefused(f"the model has {len(model.subgraphs or [])} subgraphs; only "
                                "single-subgraph models can be dequantized")
    check_operators(model)
    if model.externalBuffers or any(buffer.offset > 1 for buffer in model.buffers or []):
        raise DequantizeRefused("the model keeps tensor data outside the flatbuffer "
                                "(models over 2 GB); that layout is not supported")
    tensors = model.subgraphs[0].tensors or []
    quantized = [tensor for tensor in tensors if _is_quantized(tensor)]
    if not quantized:
        raise DequantizeRefused("nothing to dequantize: no tensor carries quantization "
                                "(is it a float model already?)")
    for tensor in quantized:
        _check_quantization(tensor)
    for index, tensor in _constants(model, tensors).items():
        if _is_quantized(tensor):
            model.buffers[index].data = _real_values(tensor, model.buffers[index].data)
    for tensor in quantized:
        tensor.type = TensorType.FLOAT32
        tensor.quantization = None
    builder = flatbuffers.Builder(4 * len(content) + 1024)  # the float file is about 4x larger
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def builtin_code(operator_code: schema.OperatorCodeT) -> int:
    """The builtin operator of an operator code: the larger of `builtinCode` and
    `deprecatedBuiltinCode`, as LiteRT reads it (old files fill only the deprecated byte;
    codes above 127 keep 127 there)."""
    return max(operator_code.builtinCode, operator_code.deprecatedBuiltinCode)


def check_operators(model: schema.ModelT) -> None:
    """Refuse operators outside FLOAT_SAFE_OPS (naming all of them) and shuffled weights."""
    codes = model.operatorCodes or []
    refused = set()
    for operator in model.subgraphs[0].operators or []:
        if operator.opcodeIndex >= len(codes):
            raise DequantizeRefused(f"an operator uses code {operator.opcodeIndex} of "
                                    f"{len(codes)}: the model is damaged")
        code = codes[operator.opcodeIndex]
        builtin = builtin_code(code)
        if builtin not in FLOAT_SAFE_OPS:
            name = _OP_NAMES.get(builtin, f"operator {builtin}")
            if builtin == Op.CUSTOM:
                name += f" ({(code.customCode or b'').decode('utf-8', 'replace')})"
            refused.add(name)
        elif (builtin == Op.FULLY_CONNECTED and operator.builtinOptions is not None
              and operator.builtinOptions.weightsFormat
              != schema.FullyConnectedOptionsWeightsFormat.DEFAULT):
            refused.add("FULLY_CONNECTED with shuffled int8 weights")
    if refused:
        allowed = ", ".join(sorted(_OP_NAMES[code] for code in FLOAT_SAFE_OPS))
        raise DequantizeRefused(f"{', '.join(sorted(refused))}: not among the operators whose "
                                f"float kernel takes the same options ({allowed})")


def _unpack(content: bytes) -> schema.ModelT:
    if not schema.Model.ModelBufferHasIdentifier(content, 0):
        raise DequantizeRefused("not a TFLite model (no TFL3 file identifier)")
    try:
        return schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    except (IndexError, TypeError, ValueError, struct.error) as error:
        raise DequantizeRefused(f"not a readable TFLite model ({error})") from None


def _is_quantized(tensor: schema.TensorT) -> bool:
    scale = tensor.quantization.scale if tensor.quantization is not None else None
    return scale is not None and len(scale) > 0


def _check_quantization(tensor: schema.TensorT) -> None:
    """Refuse quantization that `_real_values` cannot undo exactly."""
    name = _name(tensor)
    quantization = tensor.quantization
    if tensor.type not in QUANTIZED_DTYPES:
        raise DequantizeRefused(f"tensor {name} is a quantized {_TYPE_NAMES.get(tensor.type)}; "
                                "only UINT8, INT8 and INT32 quantization can be undone")
    if quantization.detailsType != schema.QuantizationDetails.NONE or tensor.sparsity:
        raise DequantizeRefused(f"tensor {name} uses custom, block-wise or sparse quantization")
    channels = len(quantization.scale)
    zero_points = quantization.zeroPoint
    if zero_points is not None and len(zero_points) not in (0, channels):
        raise DequantizeRefused(f"tensor {name}: {channels} scales but {len(zero_points)} "
                                "zero points")
    axis, shape = quantization.quantizedDimension, list(tensor.shape)
    if channels > 1 and not (0 <= axis < len(shape) and shape[axis] == channels):
        raise DequantizeRefused(f"tensor {name}: {channels} per-channel scales do not fit "
                                f"dimension {axis} of shape {shape}")


def _reading(tensor: schema.TensorT) -> tuple:
    """What decides how a tensor reads its buffer: type, and the quantization (with the shape
    when it is per-channel)."""
    if not _is_quantized(tensor):
        return (tensor.type,)
    quantization = tensor.quantization
    zero_points = quantization.zeroPoint if quantization.zeroPoint is not None else ()
    per_channel = len(quantization.scale) > 1
    return (tensor.type, tuple(quantization.scale), tuple(zero_points),
            (quantization.quantizedDimension, tuple(tensor.shape)) if per_channel else None)


def _constants(model: schema.ModelT, tensors: list[schema.TensorT]) -> dict[int, schema.TensorT]:
    """Buffer index -> the one way its tensors read it, for every buffer holding data.

    A buffer read by tensors with different types or quantization is refused: its real values
    would not be one float32 array.
    """
    buffers = model.buffers or []
    readers: dict[int, schema.TensorT] = {}
    for tensor in tensors:
        if tensor.buffer >= len(buffers):
            continue
        data = buffers[tensor.buffer].data
        if data is None or len(data) == 0:
            continue
        first = readers.setdefault(tensor.buffer, tensor)
        if _reading(first) != _reading(tensor):
            raise DequantizeRefused(f"tensors {_name(first)} and {_name(tensor)} share buffer "
                                    f"{tensor.buffer} with different quantization")
    return readers


def _real_values(tensor: schema.TensorT, data: np.ndarray) -> np.ndarray:
    """The buffer bytes of a quantized constant's real values, (q - zero_point) * scale, as
    little-endian float32."""
    quantization = tensor.quantization
    raw = np.frombuffer(np.asarray(data, np.uint8).tobytes(), QUANTIZED_DTYPES[tensor.type])
    shape = [int(size) for size in tensor.shape]
    if raw.size != int(np.prod(shape)):
        raise DequantizeRefused(f"tensor {_name(tensor)}: {raw.size} values for shape {shape}")
    scale = np.asarray(quantization.scale, np.float64)
    zero_point = (np.asarray(quantization.zeroPoint, np.float64)
                  if quantization.zeroPoint is not None and len(quantization.zeroPoint)
                  else np.zeros_like(scale))
    values = raw.astype(np.float64)
    if scale.size > 1:  # per-channel: broadcast along the quantized dimension
        axes = [1] * len(shape)
        axes[quantization.quantizedDimension] = -1
        values = values.reshape(shape)
        scale, zero_point = scale.reshape(axes), zero_point.reshape(axes)
    real = (values - zero_point) * scale
    return np.frombuffer(real.astype("<f4").tobytes(), np.uint8)


def _name(tensor: schema.TensorT) -> str:
    name = tensor.name
    return repr(name.decode("utf-8", "replace") if isinstance(name, bytes) else name)
