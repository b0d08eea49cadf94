"""Build the network a job needs: weights -> (normalized) VGG-19, cut at the deepest layer."""

from __future__ import annotations

import functools
import os
from collections.abc import Collection

import torch

from .errors import InputError
from .normalization import normalized
from .vgg import VGGFeatures, deepest_layer
from .weights import WEIGHTS_ENV_VAR, InputConvention, VGGWeights, load_weights

#: Where the network runs channels_last: cuDNN's and oneDNN's fast layout (on the 2-core CPU, a
#: bare forward+backward took 0.93x / 0.86x / 0.79x the time at 256 / 512 / 1024 px). MPS keeps
#: the default layout: unmeasured.
CHANNELS_LAST_DEVICES = ("cpu", "cuda")


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then the CPU; asking for an absent one is an error."""
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (name == "cuda" and not cuda) or (name == "mps" and not mps):
        raise InputError(f"{{device}} {name} was asked for, but this machine has no {name} device")
    return torch.device(name)


#: cuBLAS's setting for reproducible matmuls under torch's deterministic mode (torch's docs,
#: "Reproducibility"): it must be in the environment before cuBLAS makes its first workspace.
CUBLAS_DETERMINISTIC = ":4096:8"


def configure_device(
    device: torch.device, precision: str = "full", deterministic: bool = False
) -> None:
    """Set torch's global numerics for this run, all of them every time, so a run never inherits
    an earlier run's settings in the same process.

    "full": float32 throughout. TF32 ("fast") changes the gradients L-BFGS builds its curvature
    from: on an H200 it made the 512 px default restart from noise and lose the houses (issue 21).
    cuDNN's benchmark mode stays off in both: it tries every algorithm with its own workspace (a
    first 1024 px run reserved 130 GiB), far past the memory estimate, and is not reproducible.
    `deterministic` asks torch for deterministic kernels: the same bytes on CUDA for a seed (an op
    with none would raise; the convolutions, poolings and matmuls here all have one).
    """
    fast = device.type == "cuda" and precision == "fast"
    torch.backends.cuda.matmul.allow_tf32 = fast
    torch.backends.cudnn.allow_tf32 = fast
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = deterministic
    if deterministic and device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_DETERMINISTIC)
    torch.use_deterministic_algorithms(deterministic)


@functools.lru_cache(maxsize=4)
def _weights(path: str | None, normalize: bool) -> VGGWeights:
    """Weights are read (and normalized) once per process, not once per image."""
    loaded = load_weights(path)
    return normalized(loaded) if normalize else loaded


def build_network(
    layers: Collection[str],
    *,
    weights: str | os.PathLike | None = None,
    normalize: bool = True,
    pooling: str = "avg",
    device: torch.device | str = "cpu",
) -> tuple[VGGFeatures, InputConvention, str]:
    """The VGG-19 for `layers`: returns the network, its input convention and a description."""
    path = os.fspath(weights) if weights is not None else os.environ.get(WEIGHTS_ENV_VAR) or None
    loaded = _weights(path, normalize)
    network = VGGFeatures(loaded.convs, pooling=pooling, last_layer=deepest_layer(layers))
    network = network.to(device=device)
    if torch.device(device).type in CHANNELS_LAST_DEVICES:
        network = network.use_memory_format(torch.channels_last)
    return network, loaded.convention, loaded.source
