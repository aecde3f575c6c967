"""NumPy reference of Adafactor (see cyoptim.optimizers.adafactor for the update rule).

The sums are the kernel's (pyx/adafactor.pxi), reproduced with NumPy: norms
over the fixed chunks of ``_chunks``; row and column sums of g*g over the
kernel's tiles, and the mean of each matrix's row factor over lanes
(``np.cumsum`` adds in order, so it gives the kernel's sequential sums
bitwise).
"""

import numpy as np

from ..optimizers import adafactor as fast
from ._base import ReferenceMixin, lerp_
from ._chunks import LANES, sum_sq

# The tiles of pyx/adafactor.pxi: ADAFACTOR_TILE_COLS, ADAFACTOR_TILE.
TILE_COLS = 1024
TILE = 32768


def _in_order(x, axis):
    """The sum of x along axis, added one element after the other (in double)."""
    return np.cumsum(x, axis=axis).take(-1, axis=axis)


def _combine_lanes(lanes):
    """The lanes (last axis) combined as the kernels do."""
    a = np.moveaxis(lanes, -1, 0)
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))


def lane_sums(x):
    """Sums along the last axis of x over LANES interleaved lanes, in double
    (lane j adds elements j, j + LANES, ... in order; zero-padded), combined
    as the kernels' sum_sq does."""
    n = x.shape[-1]
    width = max(-(-n // LANES) * LANES, LANES)
    padded = np.zeros(x.shape[:-1] + (width,))
    padded[..., :n] = x
    return _combine_lanes(_in_order(padded.reshape(x.shape[:-1] + (width // LANES, LANES)), -2))


def tile_shape(rows, cols):
    """(tile rows, tile columns) of an R x C matrix, as the kernel cuts it."""
    tile_cols = min(cols, TILE_COLS)
    return min(rows, max(1, TILE // max(tile_cols, 1))), tile_cols


def row_col_sums(g):
    """Sums of g*g (in double) over each row and each column of every matrix of
    g (..., R, C), as the kernel's tiles compute them: (B, R) and (B, C) arrays."""
    rows, cols = g.shape[-2:]
    sq = g.astype(np.float64).reshape(-1, rows, cols)
    sq *= sq
    batch = sq.shape[0]
    tile_rows, tile_cols = tile_shape(rows, cols)
    row_sums = np.zeros((batch, rows))
    col_sums = np.zeros((batch, cols))
    if rows and cols:
        # A row: segments of tile_cols columns, each over LANES lanes, the
        # segments in order.
        n_segments = -(-cols // tile_cols)
        padded = np.zeros((batch, rows, n_segments, tile_cols))
        for q in range(n_segments):
            segment = sq[:, :, q * tile_cols : (q + 1) * tile_cols]
            padded[:, :, q, : segment.shape[2]] = segment
        row_sums = _in_order(lane_sums(padded), 2)
        # A column: its rows in order within a row block, the blocks in order.
        n_blocks = -(-rows // tile_rows)
        padded = np.zeros((batch, n_blocks * tile_rows, cols))
        padded[:, :rows] = sq
        blocks = _in_order(padded.reshape(batch, n_blocks, tile_rows, cols), 2)
        col_sums = _in_order(blocks, 1)
    return row_sums, col_sums


def _norm(sum_of_squares, dtype):
    """sqrt of a sum, rounded to the param's precision (torch's norm().item())."""
    return float(dtype.type(np.sqrt(sum_of_squares)))


class Adafactor(ReferenceMixin, fast.Adafactor):
    """cyoptim.Adafactor computed with NumPy ufuncs (sums: the kernel's, bitwise)."""

    def _update(self, group, plan, blocks, grads, n_threads):
        lr, wd, d = group["lr"], group["weight_decay"], group["d"]
        eps1, eps2 = group["eps"]
        dtype = plan.dtype
        if eps1 is None:
            eps1 = float(np.finfo(dtype).eps)
        one = dtype.type(1)
        floor = dtype.type(eps1 * eps1)
        views = {
            name: self._views(plan, blocks[name], name)
            for name in ("row_var", "col_var", "variance")
        }
        for k, p, g, _, step, (u, b, tmp) in self._tensors(plan, blocks, grads, ()):
            weight = step ** group["beta2_decay"]
            inverse_sqrt = 1 / step**0.5
            rho = inverse_sqrt if inverse_sqrt < lr else lr
            root_n = p.size**0.5
            rms = _norm(sum_sq(p), dtype) / root_n
            alpha = (rms if rms > eps2 else eps2) * rho
            if group["maximize"]:
                g = np.negative(g, out=b)
            if p.ndim >= 2:
                rows, cols = p.shape[-2:]
                row_var = views["row_var"][k].reshape(-1, rows)
                col_var = views["col_var"][k].reshape(-1, cols)
                row_sums, col_sums = row_col_sums(g)
                for factor, sums, length in ((row_var, row_sums, cols), (col_var, col_sums, rows)):
                    norm = np.sqrt(sums).astype(dtype)
                    mean = norm * norm
                    mean /= dtype.type(length)
                    lerp_(factor, mean, weight, np.empty_like(factor))
                total = lane_sums(row_var.astype(np.float64)).astype(dtype)
                m = np.maximum(total / dtype.type(rows), dtype.type(eps1))
                v = u.reshape(-1, rows, cols)
                np.multiply(row_var[:, :, None], col_var[:, None, :], out=v)
                v /= m[:, None, None]
            else:
                variance = views["variance"][k]
                np.multiply(g, g, out=u)
                lerp_(variance, u, weight, tmp)
                u[...] = variance
            np.maximum(u, floor, out=u)
            np.sqrt(u, out=u)
            np.divide(one, u, out=u)
            u *= g
            ratio = _norm(sum_sq(u), dtype) / (root_n * d)
            scale = -alpha / (ratio if ratio > 1.0 else 1.0)
            p *= dtype.type(1 - lr * wd)
            u *= dtype.type(scale)
            p += u
