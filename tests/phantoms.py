"""Small generated volumes for the tests of training, inference and the CLI."""
import numpy as np


def blobs(rng, shape, *, scale=1.0, dtype=np.float64):
    """Four balls of value ``scale`` or ``2 * scale`` on 0 in a volume of ``shape``: a
    piecewise-constant signal to denoise and label."""
    grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    volume = np.zeros(shape, dtype=dtype)
    for _ in range(4):
        centre = [rng.uniform(0, n) for n in shape]
        radius = rng.uniform(2, 4)
        inside = sum((g - c) ** 2 for g, c in zip(grids, centre)) < radius ** 2
        volume[inside] = scale * rng.integers(1, 3)
    return volume
