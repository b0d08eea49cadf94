"""The paper's losses against small cases computed by hand."""

from __future__ import annotations

import pytest
import torch

from painterly.losses import (
    ContentTarget,
    Objective,
    StyleTarget,
    content_loss,
    gram_matrix,
    style_layer_loss,
)


def test_gram_matrix_is_feature_inner_products() -> None:
    # Two channels over a 1x2 map: F = [[1, 2], [3, 4]] -> G = F F^T.
    features = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
    assert gram_matrix(features).tolist() == [[5.0, 11.0], [11.0, 25.0]]


def test_content_loss_is_half_squared_error() -> None:
    f = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    p = torch.tensor([[[[1.0, 0.0], [3.0, 1.0]]]])
    # 1/2 (0 + 4 + 0 + 9)
    assert content_loss(f, p).item() == pytest.approx(6.5)


def test_style_layer_loss_matches_paper_formula() -> None:
    # N = 2 channels, M = 2 positions: E = 1/(4 N^2 M^2) sum (G - A)^2.
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
    s = torch.tensor([[[[0.0, 1.0]], [[1.0, 0.0]]]])
    g, a = gram_matrix(f), gram_matrix(s)  # a = [[1, 0], [0, 1]]
    expected = ((g - a) ** 2).sum().item() / (4 * 2**2 * 2**2)
    assert expected == pytest.approx((16 + 121 + 121 + 576) / 64)
    target = StyleTarget.from_features({"conv1_1": s})
    assert style_layer_loss(f, target.grams["conv1_1"]).item() == pytest.approx(expected)


def test_style_target_of_another_size_describes_the_same_statistics() -> None:
    # A texture tiled 2x2 has the same Gram per position as one tile, so E_l against either is
    # the same: Gram targets stay comparable when the style image is larger than the output.
    torch.manual_seed(0)
    tile = torch.rand(1, 3, 4, 4)
    tiled = tile.repeat(1, 1, 2, 2)
    small = StyleTarget.from_features({"conv1_1": tile})
    large = StyleTarget.from_features({"conv1_1": tiled})
    x = torch.rand(1, 3, 4, 4)
    assert style_layer_loss(x, large.grams["conv1_1"]).item() == pytest.approx(
        style_layer_loss(x, small.grams["conv1_1"]).item(), rel=1e-5
    )
    assert style_layer_loss(tile, large.grams["conv1_1"]).item() == pytest.approx(0, abs=1e-9)


def test_objective_combines_alpha_content_and_beta_weighted_style() -> None:
    torch.manual_seed(0)
    feats = {"conv1_1": torch.rand(1, 2, 3, 3), "conv2_1": torch.rand(1, 4, 2, 2)}
    content = ContentTarget({"conv2_1": torch.rand(1, 4, 2, 2)})
    style = StyleTarget.from_features(
        {"conv1_1": torch.rand(1, 2, 3, 3), "conv2_1": torch.rand(1, 4, 2, 2)},
        {"conv1_1": 0.25, "conv2_1": 0.75},
    )
    terms = Objective(content, style, alpha=1e-3, beta=2.0)(feats)
    c = content_loss(feats["conv2_1"], content.features["conv2_1"])
    s = 0.25 * style_layer_loss(feats["conv1_1"], style.grams["conv1_1"]) + 0.75 * (
        style_layer_loss(feats["conv2_1"], style.grams["conv2_1"])
    )
    assert terms.content.item() == pytest.approx(c.item())
    assert terms.style.item() == pytest.approx(s.item())
    assert terms.total.item() == pytest.approx(1e-3 * c.item() + 2.0 * s.item())
    assert set(terms.style_layers) == {"conv1_1", "conv2_1"}


def test_objective_with_one_term_switched_off() -> None:
    feats = {"conv1_1": torch.rand(1, 2, 3, 3)}
    style_only = Objective(None, StyleTarget.from_features({"conv1_1": torch.rand(1, 2, 3, 3)}))
    terms = style_only(feats)
    assert terms.content.item() == 0 and terms.total.item() == pytest.approx(terms.style.item())
    content_only = Objective(ContentTarget({"conv1_1": torch.rand(1, 2, 3, 3)}), None)
    terms = content_only(feats)
    assert terms.style.item() == 0 and terms.total.item() == pytest.approx(terms.content.item())


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_gram_backward_is_autograds(layout: torch.memory_format) -> None:
    """gram_matrix's one-matmul backward gives the gradient autograd gets from F F^T, in both
    layouts (a channels_last map is read as positions x channels, without a copy)."""
    torch.manual_seed(0)
    features = torch.randn(1, 6, 5, 7, dtype=torch.float64).contiguous(memory_format=layout)
    weights = torch.randn(6, 6, dtype=torch.float64)  # a non-symmetric upstream gradient
    ours = features.clone().requires_grad_(True)
    (gram_matrix(ours) * weights).sum().backward()
    plain = features.clone().requires_grad_(True)
    flat = plain.reshape(6, -1)
    ((flat @ flat.T) * weights).sum().backward()
    torch.testing.assert_close(ours.grad, plain.grad)
    assert ours.grad.is_contiguous(memory_format=layout)
    assert torch.autograd.gradcheck(gram_matrix, (features.clone().requires_grad_(True),))


LAYOUTS = (torch.contiguous_format, torch.channels_last)


@pytest.mark.parametrize("map_layout", LAYOUTS)
@pytest.mark.parametrize("next_layout", LAYOUTS)
def test_style_gradient_added_into_the_next_layers_is_autograds(map_layout, next_layout) -> None:
    """The in-place style gradient (losses._StyleLayerLoss) equals plain autograd's for every
    pair of layouts of the map and of the gradient from the layer after it (a pair that differs
    takes the out-of-place path), and for a target that is not symmetric."""
    from painterly.losses import _style_loss_into_gradient

    torch.manual_seed(0)
    start = torch.rand(1, 6, 5, 7, dtype=torch.float64)
    target = torch.rand(6, 6, dtype=torch.float64)
    next_weights = torch.randn(1, 6, 5, 7, dtype=torch.float64)
    gradients = []
    for loss_of in (_style_loss_into_gradient, style_layer_loss):
        leaf = start.clone().requires_grad_(True)
        features = (leaf * 1).contiguous(memory_format=map_layout)
        next_layer = (features.contiguous(memory_format=next_layout) * next_weights).sum()
        (loss_of(features, target) + next_layer).backward()
        gradients.append(leaf.grad)
    torch.testing.assert_close(gradients[0], gradients[1])
