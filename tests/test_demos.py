"""The chapter's edge-detection example (figure 9.6) and its cost counts."""
import numpy as np
import pytest

from sigconv import ShapeError
from sigconv.cli import main
from sigconv.costs import conv_costs
from sigconv.demos import edge_detection, to_grey


def test_figure_9_6_counts():
    costs = conv_costs((280, 320), (1, 2))
    assert costs["output_size"] == (280, 319)
    assert costs["conv"].flops == 267_960          # 319 * 280 * 3, as the chapter says
    assert costs["conv"].parameters == 2
    assert costs["dense"].parameters == 320 * 280 * 319 * 280   # over eight billion entries
    assert costs["dense"].flops > 16e9


def test_edges_equal_neighbour_differences(shared_data):
    imageio = pytest.importorskip("imageio.v3")
    image = imageio.imread(shared_data / "images" / "camera.png")
    edges, _ = edge_detection(image)
    grey = to_grey(image)
    top, left = (grey.shape[0] - 280) // 2, (grey.shape[1] - 320) // 2
    crop = grey[top:top + 280, left:left + 320]
    assert edges.shape == (280, 319)
    np.testing.assert_allclose(edges, crop[:, 1:] - crop[:, :-1], atol=1e-12)


def test_edges_of_a_step_are_at_the_step():
    image = np.zeros((280, 320))
    image[:, 100:] = 1.0
    edges, _ = edge_detection(image)
    assert np.flatnonzero(edges[0]).tolist() == [99]


def test_edges_reject_small_images():
    with pytest.raises(ShapeError, match="at least"):
        edge_detection(np.zeros((10, 10)))


def test_cli_edges(shared_data, tmp_path, capsys):
    out = tmp_path / "edges.png"
    assert main(["edges", str(shared_data / "images" / "camera.png"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "280 x 319" in printed and "267,960" in printed
    assert out.stat().st_size > 0


def test_cli_edges_unreadable_file(tmp_path, capsys):
    bad = tmp_path / "not_an_image.png"
    bad.write_bytes(b"this is not a PNG")
    assert main(["edges", str(bad)]) == 2
    assert "cannot read image" in capsys.readouterr().err


def test_demo_trains_on_three_ranks(tmp_path, capsys):
    from sigconv.demos import demo

    results = demo(tmp_path, epochs=3, count=90, progress=False)
    assert set(results) == {"1-D", "2-D", "3-D", "3-D labels"}
    assert results["1-D"]["accuracy"] > 0.5                 # three classes: chance is 1/3
    assert results["2-D"]["accuracy"] > 0.3                 # ten digits: chance is 1/10
    assert results["3-D"]["psnr"] > results["3-D"]["psnr_noisy"]
    assert "psnr_gaussian" in results["3-D"]
    assert results["3-D labels"]["dice"] > 0.5 and "dice_threshold" in results["3-D labels"]
    for name in results:
        assert (tmp_path / f"{name.replace(' ', '-')}-run" / "metrics.json").exists()
    assert main(["demo", "--out", str(tmp_path / "cli"), "--epochs", "1", "--quiet"]) == 0
    assert "results: 1-D accuracy" in capsys.readouterr().out
    # a second demo into the same folder replaces its runs
    assert main(["demo", "--out", str(tmp_path / "cli"), "--epochs", "1", "--quiet"]) == 0
    assert "results: 1-D accuracy" in capsys.readouterr().out
