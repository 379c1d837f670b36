"""train.tflite_float: quantized `.tflite` -> float32 twin, checked with real LiteRT (no TF).

The tiny models are written with the flatbuffer schema that ships with ai-edge-litert: a
"classifier" input [1, 4, 4, 3] -> CONV_2D or DEPTHWISE_CONV_2D (4x4, VALID) -> RESHAPE
-> [1, classes], uint8 per-tensor or int8 per-channel, whose real-valued answer numpy computes.
Tests needing the shared files skip when IMAGENET_TFLITE / INVOKE_ERROR_TFLITE are unset.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

from train import bucket, image
from train.image_import import ImportRefused, ParityFailed, import_version
from train.tflite_float import DequantizeRefused, builtin_code, dequantize_model

Op = schema.BuiltinOperator
TensorType = schema.TensorType
SIZE, CLASSES = 4, 4
INPUT_SCALE = 1 / 128  # the shared model's input quantization
NUMPY = {TensorType.UINT8: np.uint8, TensorType.INT8: np.int8, TensorType.INT32: np.int32,
         TensorType.FLOAT32: np.float32}


@dataclass
class Tiny:
    """A tiny quantized model (schema object, edited by the refusal tests) and its real values."""

    model: schema.ModelT
    kernel: np.ndarray  # real weights, the layout of the operator's filter
    bias: np.ndarray
    depthwise: bool

    def content(self) -> bytes:
        return pack(self.model)

    def expected(self, real_input: np.ndarray) -> np.ndarray:
        """The float answer for real inputs (1, SIZE, SIZE, 3): a 4x4 VALID convolution."""
        if self.depthwise:
            return np.einsum("nhwc,hwc->nc", real_input, self.kernel[0]) + self.bias
        return np.einsum("nhwc,khwc->nk", real_input, self.kernel) + self.bias


def pack(model: schema.ModelT) -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def unpack(content: bytes) -> schema.ModelT:
    return schema.ModelT.InitFromPackedBuf(bytearray(content), 0)


def quantization(scale: list[float], zero_point: list[int],
                 axis: int = 0) -> schema.QuantizationParametersT:
    params = schema.QuantizationParametersT()
    params.scale, params.zeroPoint, params.quantizedDimension = scale, zero_point, axis
    return params


def tensor(name: str, shape: list[int], kind: int, buffer: int = 0,
           params: schema.QuantizationParametersT | None = None) -> schema.TensorT:
    made = schema.TensorT()
    made.name, made.shape, made.type, made.buffer = name.encode(), shape, kind, buffer
    made.quantization = params
    return made


def buffer(values: np.ndarray | None = None) -> schema.BufferT:
    made = schema.BufferT()
    if values is not None:
        made.data = np.frombuffer(np.ascontiguousarray(values).tobytes(), np.uint8)
    return made


def tiny_model(dtype: str = "uint8", depthwise: bool = False, output_scale: float = 1 / 64,
               seed: int = 0) -> Tiny:
    """uint8: per-tensor weights (zero point 120); int8: per-channel symmetric weights (the
    conv kernel quantized along dimension 0, the depthwise one along 3); int32 biases with
    scale input scale x weight scale, as the quantized kernels require. "float32": the same
    network unquantized."""
    rng = np.random.default_rng(seed)
    channels = 3 if depthwise else CLASSES
    shape = [1, SIZE, SIZE, 3] if depthwise else [CLASSES, SIZE, SIZE, 3]
    axis = 3 if depthwise else 0
    if dtype == "uint8":
        kind, input_zero, output_zero = TensorType.UINT8, 128, 128
        weight_scale, weight_zero = np.full(1, 0.002), np.full(1, 120)
        raw = rng.integers(0, 256, shape)
    else:
        kind, input_zero, output_zero = TensorType.INT8, 0, 0
        weight_scale, weight_zero = np.linspace(0.001, 0.004, channels), np.zeros(channels, int)
        raw = rng.integers(-127, 128, shape)
    along = [1, 1, 1, 1]
    along[axis] = -1
    if weight_scale.size == 1:  # per-tensor
        along = [1]
    kernel = (raw - weight_zero.reshape(along)) * weight_scale.reshape(along)
    bias_scale = INPUT_SCALE * weight_scale  # per-channel exactly when the weights are
    raw_bias = rng.integers(-2000, 2000, channels)
    bias = raw_bias * bias_scale
    outputs = 3 if depthwise else CLASSES
    if dtype == "float32":
        tensors = [tensor("input", [1, SIZE, SIZE, 3], TensorType.FLOAT32),
                   tensor("kernel", shape, TensorType.FLOAT32, 1),
                   tensor("bias", [channels], TensorType.FLOAT32, 2),
                   tensor("conv", [1, 1, 1, outputs], TensorType.FLOAT32),
                   tensor("shape", [2], TensorType.INT32, 3),
                   tensor("output", [1, outputs], TensorType.FLOAT32)]
        buffers = [buffer(), buffer(kernel.astype("<f4")), buffer(bias.astype("<f4"))]
    else:
        numpy_type = NUMPY[kind]
        activation = quantization([output_scale], [output_zero])
        tensors = [
            tensor("input", [1, SIZE, SIZE, 3], kind, 0, quantization([INPUT_SCALE],
                                                                       [input_zero])),
            tensor("kernel", shape, kind, 1, quantization(weight_scale.tolist(),
                                                          weight_zero.tolist(), axis)),
            tensor("bias", [channels], TensorType.INT32, 2,
                   quantization(bias_scale.tolist(), [0] * bias_scale.size)),
            tensor("conv", [1, 1, 1, outputs], kind, 0, activation),
            tensor("shape", [2], TensorType.INT32, 3),
            tensor("output", [1, outputs], kind, 0, copy.deepcopy(activation)),
        ]
        buffers = [buffer(), buffer(raw.astype(numpy_type)), buffer(raw_bias.astype("<i4"))]
    buffers += [buffer(np.array([1, outputs], "<i4")), buffer()]
    if depthwise:
        options_type = schema.BuiltinOptions.DepthwiseConv2DOptions
        options = schema.DepthwiseConv2DOptionsT()
        options.depthMultiplier = 1
    else:
        options_type, options = schema.BuiltinOptions.Conv2DOptions, schema.Conv2DOptionsT()
    options.padding, options.strideW, options.strideH = schema.Padding.VALID, 1, 1
    conv = schema.OperatorT()
    conv.opcodeIndex, conv.inputs, conv.outputs = 0, [0, 1, 2], [3]
    conv.builtinOptionsType, conv.builtinOptions = options_type, options
    reshape = schema.OperatorT()
    reshape.opcodeIndex, reshape.inputs, reshape.outputs = 1, [3, 4], [5]
    subgraph = schema.SubGraphT()
    subgraph.tensors, subgraph.inputs, subgraph.outputs = tensors, [0], [5]
    subgraph.operators = [conv, reshape]
    model = schema.ModelT()
    model.version, model.description = 3, b"tiny test model"
    model.operatorCodes = [operator_code(Op.DEPTHWISE_CONV_2D if depthwise else Op.CONV_2D),
                           operator_code(Op.RESHAPE)]
    model.subgraphs, model.buffers = [subgraph], buffers
    return Tiny(model, kernel, bias, depthwise)


def operator_code(builtin: int, custom: bytes | None = None) -> schema.OperatorCodeT:
    code = schema.OperatorCodeT()
    code.builtinCode, code.deprecatedBuiltinCode = builtin, min(builtin, 127)
    code.customCode, code.version = custom, 1
    return code


def interpreter(content: bytes) -> Interpreter:
    loaded = Interpreter(model_content=content, num_threads=1)
    loaded.allocate_tensors()
    return loaded


def answer(content: bytes, inputs: np.ndarray) -> np.ndarray:
    """Real-valued outputs of a model for raw inputs in its input dtype."""
    loaded = interpreter(content)
    detail_in, detail_out = loaded.get_input_details()[0], loaded.get_output_details()[0]
    loaded.set_tensor(detail_in["index"], inputs.astype(detail_in["dtype"]))
    loaded.invoke()
    scale, zero_point = detail_out["quantization"]
    raw = loaded.get_tensor(detail_out["index"]).astype(np.float64)
    return (raw - zero_point) * scale if scale else raw


# --- conversion -----------------------------------------------------------------------------

@pytest.mark.parametrize(("dtype", "depthwise"), [("uint8", False), ("uint8", True),
                                                  ("int8", False), ("int8", True)])
def test_the_float_twin_computes_the_real_valued_network(dtype: str, depthwise: bool) -> None:
    tiny = tiny_model(dtype, depthwise)
    quantized = tiny.content()
    twin = dequantize_model(quantized)
    zero_point = 128 if dtype == "uint8" else 0
    info = np.iinfo(np.dtype(dtype))
    raw = np.random.default_rng(1).integers(info.min, info.max + 1, (1, SIZE, SIZE, 3))
    real = (raw - zero_point) * INPUT_SCALE
    expected = tiny.expected(real)

    assert answer(twin, real) == pytest.approx(expected, abs=1e-5)  # exact up to float32
    assert answer(quantized, raw) == pytest.approx(expected, abs=2 / 64)  # the source: close
    loaded = interpreter(twin)
    for detail in (loaded.get_input_details()[0], loaded.get_output_details()[0]):
        assert detail["dtype"] == np.float32
        assert detail["quantization"] == (0.0, 0)


def test_every_quantized_tensor_becomes_float32_and_other_constants_stay() -> None:
    tiny = tiny_model("int8")
    twin = unpack(dequantize_model(tiny.content()))
    tensors = {t.name.decode(): t for t in twin.subgraphs[0].tensors}
    assert {name: t.type for name, t in tensors.items()} == {
        "input": TensorType.FLOAT32, "kernel": TensorType.FLOAT32, "bias": TensorType.FLOAT32,
        "conv": TensorType.FLOAT32, "shape": TensorType.INT32, "output": TensorType.FLOAT32}
    assert all(t.quantization is None for t in tensors.values())
    kernel = np.frombuffer(twin.buffers[tensors["kernel"].buffer].data.tobytes(), "<f4")
    assert kernel.reshape(tiny.kernel.shape) == pytest.approx(tiny.kernel, rel=1e-6)
    shape = np.frombuffer(twin.buffers[tensors["shape"].buffer].data.tobytes(), "<i4")
    assert shape.tolist() == [1, CLASSES]
    assert twin.description == b"tiny test model"  # the rest of the model is kept


def test_a_buffer_shared_with_the_same_quantization_is_converted_once() -> None:
    tiny = tiny_model("uint8")
    tensors = tiny.model.subgraphs[0].tensors
    tensors.append(copy.deepcopy(tensors[1]))  # a second reader of the kernel's buffer
    twin = unpack(dequantize_model(tiny.content()))
    kernel, again = twin.subgraphs[0].tensors[1], twin.subgraphs[0].tensors[-1]
    assert kernel.buffer == again.buffer
    assert again.type == TensorType.FLOAT32 and again.quantization is None
    assert len(twin.buffers[kernel.buffer].data) == 4 * tiny.kernel.size


def test_an_old_file_naming_its_operators_in_the_deprecated_byte_converts() -> None:
    tiny = tiny_model("uint8")
    code = tiny.model.operatorCodes[0]
    code.builtinCode, code.deprecatedBuiltinCode = 0, Op.CONV_2D  # 0 would read as ADD
    assert builtin_code(code) == Op.CONV_2D
    real = np.zeros((1, SIZE, SIZE, 3))
    assert answer(dequantize_model(tiny.content()), real) == pytest.approx(
        tiny.expected(real), abs=1e-5)


# --- refusals -------------------------------------------------------------------------------

Edit = Callable[[schema.ModelT], None]


def _set_operator(builtin: int, custom: bytes | None = None) -> Edit:
    def edit(model: schema.ModelT) -> None:
        model.operatorCodes[0] = operator_code(builtin, custom)
    return edit


def _share_kernel_buffer_with_another_scale(model: schema.ModelT) -> None:
    other = copy.deepcopy(model.subgraphs[0].tensors[1])
    other.name, other.quantization.scale = b"other", [0.5]
    model.subgraphs[0].tensors.append(other)


def _add_quantized_int16(model: schema.ModelT) -> None:
    model.subgraphs[0].tensors.append(
        tensor("int16", [1], TensorType.INT16, 0, quantization([0.1], [0])))


def _wrong_channel_count(model: schema.ModelT) -> None:
    model.subgraphs[0].tensors[1].quantization.scale = [0.01, 0.02]
    model.subgraphs[0].tensors[1].quantization.zeroPoint = [0, 0]


def _data_outside_the_flatbuffer(model: schema.ModelT) -> None:
    model.buffers.append(schema.BufferT(None, 4096, 16))


def _two_subgraphs(model: schema.ModelT) -> None:
    model.subgraphs.append(copy.deepcopy(model.subgraphs[0]))


def _missing_operator_code(model: schema.ModelT) -> None:
    model.subgraphs[0].operators[1].opcodeIndex = 7


@pytest.mark.parametrize(
    ("dtype", "edit", "message"),
    [
        ("float32", None, "nothing to dequantize"),
        ("int8", _set_operator(Op.QUANTIZE), "^QUANTIZE: not among the operators"),
        ("int8", _set_operator(Op.DEQUANTIZE), "^DEQUANTIZE: not among the operators"),
        ("int8", _set_operator(Op.CUSTOM, b"MyOp"), r"CUSTOM \(MyOp\)"),
        ("int8", _set_operator(Op.STABLEHLO_ADD), "STABLEHLO_ADD"),  # a code above 127
        ("uint8", _two_subgraphs, "2 subgraphs"),
        ("uint8", _share_kernel_buffer_with_another_scale, "share buffer 1 with different"),
        ("uint8", _add_quantized_int16, "quantized INT16"),
        ("int8", _wrong_channel_count, "2 per-channel scales do not fit"),
        ("uint8", _data_outside_the_flatbuffer, "outside the flatbuffer"),
        ("uint8", _missing_operator_code, "code 7 of 2: the model is damaged"),
    ],
)
def test_models_that_cannot_be_dequantized_faithfully_are_refused(
    dtype: str, edit: Edit | None, message: str
) -> None:
    tiny = tiny_model(dtype)
    if edit is not None:
        edit(tiny.model)
    with pytest.raises(DequantizeRefused, match=message) as refused:
        dequantize_model(tiny.content())
    assert isinstance(refused.value, ImportRefused)  # the import route's refusal


@pytest.mark.parametrize("content", [b"", b"not a model at all", b"\0\0\0\0TFL3"])
def test_bytes_that_are_no_tflite_are_refused(content: bytes) -> None:
    with pytest.raises(DequantizeRefused):
        dequantize_model(content)


def test_the_invoking_error_model_is_refused_for_its_custom_operator() -> None:
    value = os.environ.get("INVOKE_ERROR_TFLITE")
    if not value or not Path(value).is_file():
        pytest.skip("INVOKE_ERROR_TFLITE is not set (the shared model with a custom operator)")
    with pytest.raises(DequantizeRefused, match=r"CUSTOM \(fake-op-double\)"):
        dequantize_model(Path(value).read_bytes())


def test_the_shared_model_keeps_its_operators_and_grows_4x() -> None:
    value = os.environ.get("IMAGENET_TFLITE")
    if not value or not Path(value).is_file():
        pytest.skip("IMAGENET_TFLITE is not set (path of the shared MobileNetV2 .tflite)")
    source = Path(value).read_bytes()
    twin = dequantize_model(source)
    assert 3.8 < len(twin) / len(source) < 4.0
    before, after = unpack(source).subgraphs[0], unpack(twin).subgraphs[0]
    assert [op.opcodeIndex for op in after.operators] == [op.opcodeIndex for op in before.operators]
    assert {t.type for t in after.tensors} == {TensorType.FLOAT32, TensorType.INT32}
    loaded = interpreter(twin)
    assert loaded.get_input_details()[0]["dtype"] == np.float32
    assert loaded.get_output_details()[0]["dtype"] == np.float32


# --- the import route (python -m train.image import --float) --------------------------------

@pytest.fixture
def tiny_files(tmp_path: Path) -> tuple[Path, Path]:
    """A tiny uint8 classifier and its label file."""
    model = tmp_path / "tiny_quant.tflite"
    model.write_bytes(tiny_model("uint8").content())
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"class {index}\n" for index in range(CLASSES)))
    return model, labels


def test_import_with_dequantize_writes_the_float_twin(
    tiny_files: tuple[Path, Path], tmp_path: Path
) -> None:
    model, labels = tiny_files
    folder, manifest = import_version(model, labels, tmp_path / "bucket", dequantize=True)
    assert bucket.verify_version(folder) == manifest
    stored = (folder / "model.tflite").read_bytes()
    assert stored == dequantize_model(model.read_bytes())
    assert manifest["input"]["dtype"] == "float32" and manifest["input"]["quantization"] is None
    assert manifest["input"]["normalization"] == {"mean": 128.0, "std": 128.0}
    assert (manifest["output"]["dtype"], manifest["output"]["quantization"]) == ("float32", None)
    training = manifest["training"]
    assert training["model"] == {"file": model.name, "sha256": bucket.sha256_file(model)}
    assert training["dequantized"]["dtype"] == "float32"
    assert training["command"].endswith("--filter bilinear --float")
    metrics = manifest["metrics"]
    assert (metrics["parity_samples"], metrics["parity_photos"]) == (5, 0)
    assert metrics["parity_max_prob_diff"] <= 1 / 64  # the source's output rounding
    assert metrics["parity_max_prob_diff_limit"] == 0.15


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Two small noise "photos" and a file that is not an image (skipped)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(2):
        pixels = np.random.default_rng(index).integers(0, 256, (12, 9, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"photo_{index}.png")
    (folder / "notes.txt").write_text("not an image: skipped")
    return folder


def nothing_published(bucket_root: Path) -> bool:
    return not any(bucket_root.rglob("manifest.json")) if bucket_root.exists() else True


def near_tie(tiny: Tiny) -> Tiny:
    """Zero weights and biases 0.25 and 0.2515 for classes 0 and 1: the float model answers
    class 1, the uint8 output (steps of 1/256) rounds both to 0.25 and answers class 0."""
    model = tiny.model
    model.buffers[1] = buffer(np.full(tiny.kernel.shape, 120, np.uint8))  # the zero point
    model.buffers[2] = buffer(np.array([16000, 16095, 0, 0], "<i4"))  # x 1/128 x 0.002
    return tiny


def test_the_cli_imports_the_float_twin_checked_on_photos(
    tiny_files: tuple[Path, Path], photos: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str]
) -> None:
    model, labels = tiny_files
    code = image.main(["import", "--tflite", str(model), "--labels", str(labels), "--float",
                       "--parity-images", str(photos), "--bucket", str(tmp_path / "bucket")])
    out = capsys.readouterr().out
    assert code == 0
    manifest = json.loads(next((tmp_path / "bucket").rglob("manifest.json")).read_text())
    assert manifest["input"]["dtype"] == "float32"
    assert manifest["metrics"]["parity_photos"] == 2
    assert manifest["metrics"]["parity_photo_top1_agreements"] == 2
    assert manifest["training"]["command"] == (
        f"python -m train.image import --tflite {model} --labels {labels} --float "
        f"--parity-images {photos} --bucket {tmp_path / 'bucket'}")
    assert "dequantized to float32" in out and "2/2 photos (all needed)" in out


@pytest.mark.parametrize(
    ("output_scale", "edit", "message"),
    [
        (1.0, None, "a probability differs by"),  # outputs rounded to whole numbers
        (1 / 256, near_tie, "top-1 differs on 2 of 2 photos"),
    ],
)
def test_a_float_twin_that_answers_differently_is_refused_with_exit_1(
    tmp_path: Path, tiny_files: tuple[Path, Path], photos: Path,
    capsys: pytest.CaptureFixture[str], output_scale: float, edit: Callable[[Tiny], Tiny] | None,
    message: str
) -> None:
    tiny = tiny_model("uint8", output_scale=output_scale)
    source = tmp_path / "source.tflite"
    source.write_bytes((edit(tiny) if edit else tiny).content())
    labels, bucket_root = tiny_files[1], tmp_path / "bucket"
    with pytest.raises(ParityFailed, match=message):
        import_version(source, labels, bucket_root, dequantize=True, parity_images=photos)
    code = image.main(["import", "--tflite", str(source), "--labels", str(labels), "--float",
                       "--parity-images", str(photos), "--bucket", str(bucket_root), "--quiet"])
    assert code == 1
    assert "parity check failed, nothing imported" in capsys.readouterr().err
    assert nothing_published(bucket_root)
    # The same model imported as it is still works.
    assert image.main(["import", "--tflite", str(source), "--labels", str(labels),
                       "--bucket", str(bucket_root), "--quiet"]) == 0


@pytest.mark.parametrize(
    ("dequantize", "folder", "message"),
    [(False, "photos", "--parity-images checks the float32 copy"),
     (True, "missing", "missing is not a folder")],
)
def test_parity_images_need_float_and_a_folder(
    tiny_files: tuple[Path, Path], photos: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], dequantize: bool, folder: str, message: str
) -> None:
    model, labels = tiny_files
    argv = ["import", "--tflite", str(model), "--labels", str(labels), "--bucket",
            str(tmp_path / "bucket"), "--parity-images", str(tmp_path / folder), "--quiet"]
    try:
        code = image.main(argv + ["--float"] * dequantize)
    except SystemExit as stopped:  # argparse refuses before anything runs
        code = stopped.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert nothing_published(tmp_path / "bucket")
    with pytest.raises(ImportRefused, match="give them with dequantize"):
        import_version(model, labels, tmp_path / "bucket", parity_images=photos)
