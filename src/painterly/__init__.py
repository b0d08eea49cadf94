"""painterly: Gatys, Ecker & Bethge (CVPR 2016) neural style transfer.

Data flows one way: image files -> tensors (`images`) -> VGG-19 features (`weights`, `vgg`,
`normalization`, `network`) -> losses (`losses`) -> optimizer (`optimize`) -> images
(`synthesis`, step by step, behind the `api` facade).
"""

from .api import (
    Cancel,
    FrameDone,
    PreparedStyle,
    Result,
    VideoOptions,
    VideoResult,
    prepare_style,
    reconstruct,
    run_reconstruction,
    run_texture,
    run_transfer,
    stylize_video,
    texture,
    transfer,
)
from .errors import InputError
from .losses import (
    ContentTarget,
    LossTerms,
    Objective,
    StyleTarget,
    content_loss,
    gram_matrix,
    style_layer_loss,
)
from .network import build_network, resolve_device
from .optimize import Progress, optimize
from .options import Options
from .vgg import CONV_LAYERS, LAYER_NAMES, POOL_LAYERS, VGGFeatures
from .weights import VGGWeights, load_weights

__version__ = "0.1.0"

__all__ = [
    "CONV_LAYERS",
    "LAYER_NAMES",
    "POOL_LAYERS",
    "Cancel",
    "ContentTarget",
    "FrameDone",
    "InputError",
    "LossTerms",
    "Objective",
    "Options",
    "PreparedStyle",
    "Progress",
    "Result",
    "StyleTarget",
    "VGGFeatures",
    "VGGWeights",
    "VideoOptions",
    "VideoResult",
    "build_network",
    "content_loss",
    "gram_matrix",
    "load_weights",
    "optimize",
    "prepare_style",
    "reconstruct",
    "resolve_device",
    "run_reconstruction",
    "run_texture",
    "run_transfer",
    "style_layer_loss",
    "stylize_video",
    "texture",
    "transfer",
]
