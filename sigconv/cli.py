"""The ``sigconv`` command line."""
import argparse
import sys

__all__ = ["main"]


def _edges(args):
    import imageio.v3 as iio
    import numpy as np

    from .demos import edge_detection
    from .errors import SigconvError

    try:
        image = iio.imread(args.image)
    except (OSError, ValueError) as exc:
        print(f"sigconv edges: cannot read image {args.image!r}: {exc}", file=sys.stderr)
        return 2
    try:
        edges, costs = edge_detection(image)
    except SigconvError as exc:
        print(f"sigconv edges: {exc}", file=sys.stderr)
        return 2
    conv, dense = costs["conv"], costs["dense"]
    print(f"edge map: {edges.shape[0]} x {edges.shape[1]} (rows x columns)")
    print(f"convolution: {conv.parameters} weights, {conv.flops:,} floating-point operations")
    print(f"dense matrix: {dense.parameters:,} weights, {dense.flops:,} floating-point operations")
    print(f"the convolution is {dense.flops / conv.flops:,.0f} times cheaper")
    if args.out:
        scaled = np.clip(np.abs(edges) / max(np.abs(edges).max(), 1e-12), 0, 1)
        iio.imwrite(args.out, (255 * (1 - scaled)).astype(np.uint8))
        print(f"wrote {args.out}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="sigconv", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    edges = commands.add_parser("edges", help="figure 9.6: vertical edges of a photograph")
    edges.add_argument("image", help="a photograph (PNG, JPEG, ...), at least 280 x 320 pixels")
    edges.add_argument("--out", help="write the edge map to this image file")
    edges.set_defaults(run=_edges)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
