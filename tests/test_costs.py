"""Parameter and operation counts of the chapter's layers, checked against hand counts."""
import pytest

from sigconv.costs import LayerCost, conv_costs, layer_costs
from sigconv.errors import ArgumentError, ShapeError


def test_figure_9_2_one_dimensional_layer():
    # five inputs, kernel width three, "same": every output sees three inputs
    c = layer_costs((5,), (3,), padding="same")
    assert c["output_size"] == (5,)
    assert c["dense"] == LayerCost(parameters=25, flops=5 * 9)        # 5 outputs x (5 mul + 4 add)
    assert c["conv"] == LayerCost(parameters=3, flops=5 * 5)          # 5 outputs x (3 mul + 2 add)
    assert c["unshared"] == LayerCost(parameters=15, flops=25)        # one kernel per output
    assert c["tiled"] == LayerCost(parameters=3, flops=25)            # one tile = convolution


def test_figure_9_6_edge_detector():
    c = layer_costs((280, 320), (1, 2), tile=(2, 2))
    assert c["output_size"] == (280, 319)
    assert c["conv"] == LayerCost(parameters=2, flops=267_960)        # the chapter's count
    assert c["dense"].parameters == 8_003_072_000                     # 320*280 x 319*280
    assert c["dense"].flops == 89_320 * (2 * 89_600 - 1)
    assert c["unshared"].parameters == 280 * 319 * 2                  # 178,640
    assert c["tiled"].parameters == 2 * 4
    assert conv_costs((280, 320), (1, 2))["conv"] == c["conv"]        # the older helper agrees


def test_multichannel_strided_grouped_layer():
    # 4 -> 6 channels, 8x8 input, 3x3 kernel, stride 2, padding 1: 4x4 outputs
    c = layer_costs((8, 8), (3, 3), in_channels=4, out_channels=6, stride=2, padding=1, groups=2,
                    tile=3)
    assert c["output_size"] == (4, 4)
    assert c["dense"] == LayerCost(parameters=256 * 96, flops=96 * 511)
    assert c["conv"] == LayerCost(parameters=6 * 2 * 9, flops=96 * 35)   # 2 channels per group
    assert c["unshared"] == LayerCost(parameters=6 * 16 * 4 * 9, flops=96 * 71)
    assert c["tiled"] == LayerCost(parameters=6 * 4 * 9 * 9, flops=96 * 71)


def test_three_dimensional_volume():
    c = layer_costs((10, 10, 10), (3, 3, 3), out_channels=2)
    assert c["output_size"] == (8, 8, 8)
    assert c["conv"] == LayerCost(parameters=54, flops=1024 * 53)
    assert c["unshared"].parameters == 2 * 512 * 27
    assert c["dense"].parameters == 1000 * 1024


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(input_size=(5, 5), kernel_size=(3,)), ArgumentError, r"one entry per axis"),
    (dict(input_size=(5,), kernel_size=(3,), in_channels=0), ArgumentError,
     r"in_channels must be a positive int"),
    (dict(input_size=(5,), kernel_size=(3,), in_channels=3, groups=2), ArgumentError,
     r"groups=2 must divide"),
    (dict(input_size=(5,), kernel_size=(7,)), ShapeError, r"larger than the padded input"),
    (dict(input_size=(5,), kernel_size=(3,), tile=0), ArgumentError, r"tile"),
])
def test_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        layer_costs(**kwargs)
