"""fatools.runtime.torch_engine: frozen, channels-last models compute what facetorch's loaded ones do."""

from __future__ import annotations

import types

import pytest
import torch
from torch import nn

from fatools.runtime import InputFormat
from fatools.runtime.torch_engine import TorchEngine, int8_supported, is_convolutional

needs_int8 = pytest.mark.skipif(
    not int8_supported(), reason="this torch has no TorchScript dynamic quantisation"
)


class ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1, groups=8),
            nn.BatchNorm2d(8),
            nn.ReLU(),
        )
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean(dim=(2, 3)))


class TokenNet(nn.Module):
    """Mostly matrix products after one patch convolution, like a Swin transformer."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 16, 4, stride=4)
        self.mlp = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16), nn.Linear(16, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.patch(x).flatten(2).transpose(1, 2)).mean(dim=1)


def ready(owner: types.SimpleNamespace, **options) -> InputFormat:
    """``owner`` readied on the torch engine (a model built here has no store file); its input format."""
    made = TorchEngine().ready(owner, None, **options)
    assert made.model is owner.model and made.engine == "torch"
    return made.input_format


def _owner(module: nn.Module, script: bool = True) -> types.SimpleNamespace:
    torch.manual_seed(0)
    module = module.eval()
    for m in module.modules():  # non-trivial batch-norm statistics, so folding them shows
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    model = torch.jit.trace(module, torch.rand(2, 3, 32, 32)) if script else module
    return types.SimpleNamespace(model=model, device=torch.device("cpu"))


def _prepare_and_run(owner: types.SimpleNamespace, x: torch.Tensor, **options) -> tuple:
    """The loaded model's output on ``x``, the prepared input format, the prepared model's output."""
    with torch.inference_mode():
        expected = owner.model(x)
        fmt = ready(owner, **options)
        got = owner.model(fmt.apply(x))
    return expected, fmt, got


def test_convolutional_networks_are_told_from_token_networks():
    assert is_convolutional(_owner(ConvNet()).model)
    assert not is_convolutional(_owner(TokenNet()).model)


@pytest.mark.parametrize("net, channels_last", [(ConvNet, True), (TokenNet, False)])
def test_frozen_model_computes_the_same(net, channels_last):
    owner = _owner(net())
    loaded = owner.model
    x = torch.rand(3, 3, 32, 32)
    expected, fmt, got = _prepare_and_run(owner, x)
    assert owner.model is not loaded and not list(owner.model.parameters())  # frozen: weights are constants
    assert fmt == InputFormat(channels_last=channels_last)
    assert fmt.apply(x).is_contiguous(memory_format=torch.channels_last) == channels_last
    assert torch.allclose(got, expected, atol=1e-5)


def test_no_optimize_leaves_the_model_as_loaded():
    owner = _owner(ConvNet())
    loaded = owner.model
    assert ready(owner, optimize=False) == InputFormat()
    assert owner.model is loaded


def test_a_plain_module_runs_as_loaded():
    owner = _owner(ConvNet(), script=False)
    loaded = owner.model
    assert ready(owner) == InputFormat()
    assert owner.model is loaded


def test_fp16_inputs_and_weights():
    owner = _owner(ConvNet())
    x = torch.rand(2, 3, 32, 32)
    expected, fmt, got = _prepare_and_run(owner, x, half=True)
    assert fmt.half and fmt.apply(x).dtype == torch.float16
    assert got.dtype == torch.float16
    assert torch.allclose(got.float(), expected, atol=2e-2)


def test_facetorch_models_of_the_stages_are_frozen(standin_store, mnet_store):
    from fatools.detect import DetectOptions, build_detector
    from fatools.predict import PredictOptions, build_predictors

    # On torch, the real RetinaFace-MobileNet0.25 is convolutional: frozen, fed channels-last.
    detector = build_detector("retinaface-mnet", DetectOptions(backend="torch"), "cpu", None, str(mnet_store))
    assert detector.input_format.channels_last and not list(detector.face_detector.model.parameters())
    plain = build_detector(
        "retinaface-mnet", DetectOptions(optimize=False, backend="torch"), "cpu", None, str(mnet_store)
    )
    assert plain.input_format == InputFormat() and list(plain.face_detector.model.parameters())
    predictors = build_predictors(PredictOptions(backend="torch"), "cpu", None, str(standin_store))
    for task, predictor in predictors.predictors.items():
        assert not list(predictor.model.parameters()), task


class FloatConstantNet(nn.Module):
    """Traced, its matrix becomes a float32 constant that .half() does not convert."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ torch.ones(3 * 8 * 8, 2)


def test_a_model_that_cannot_run_in_fp16_stays_float32():
    def load() -> torch.jit.ScriptModule:
        return torch.jit.trace(FloatConstantNet().eval(), torch.rand(1, 3, 8, 8))

    owner = types.SimpleNamespace(model=load(), device=torch.device("cpu"), load_model=load)
    fmt = ready(owner, half=True, example=(1, 3, 8, 8))
    assert not fmt.half
    x = torch.rand(2, 3, 8, 8)
    with torch.inference_mode():
        assert torch.allclose(owner.model(fmt.apply(x)), load()(x))


@needs_int8
def test_int8_quantises_the_linear_layers_of_a_token_network():
    owner = _owner(TokenNet())
    expected, fmt, got = _prepare_and_run(
        owner, torch.rand(3, 3, 32, 32), int8=True, half=True
    )  # int8 wins over fp16
    kinds = {node.kind() for node in owner.model.inlined_graph.nodes()}
    assert fmt == InputFormat(int8=True)
    assert "quantized::linear_dynamic" in kinds and "aten::linear" not in kinds
    assert not list(owner.model.parameters())  # frozen after quantising
    assert got.dtype == torch.float32
    # int8 products: close, not equal (that is why --int8 is opt-in).
    assert torch.allclose(got, expected, atol=0.05) and not torch.equal(got, expected)


def test_int8_leaves_convolutional_networks_float32():
    owner = _owner(ConvNet())
    expected, fmt, got = _prepare_and_run(owner, torch.rand(2, 3, 32, 32), int8=True)
    assert fmt == InputFormat(channels_last=True)
    assert "quantized::linear_dynamic" not in {node.kind() for node in owner.model.inlined_graph.nodes()}
    assert torch.allclose(got, expected, atol=1e-5)


def test_int8_off_the_cpu_or_without_quantisation_stays_float32(monkeypatch, caplog):
    owner = _owner(TokenNet())
    owner.device = torch.device("meta")  # any device but the CPU
    with caplog.at_level("WARNING", logger="fatools"):
        assert ready(owner, int8=True) == InputFormat()
    assert "CPU only" in caplog.text

    import torch.ao.quantization as quantization

    def unavailable(*args, **kwargs):
        raise RuntimeError("no int8 engine here")

    monkeypatch.setattr(quantization, "quantize_dynamic_jit", unavailable)
    owner = _owner(TokenNet())
    caplog.clear()
    with caplog.at_level("WARNING", logger="fatools"):
        assert ready(owner, int8=True) == InputFormat()
    assert "int8 quantisation failed: no int8 engine here" in caplog.text
    assert "quantized::linear_dynamic" not in {node.kind() for node in owner.model.inlined_graph.nodes()}
