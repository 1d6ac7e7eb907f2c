"""Review of 5cd80f1 (kernels.histogram.quantiles_from_counts, every
quantile at once): the bits of the loop it replaced (copied here as it was
at 2d6b357) on counts whose cumulative sums the targets hit exactly,
empty bins at either end and around a target, fractional (weighted)
counts, everything below or above the range, one bin, and quantiles 0 and 1."""
import numpy as np

from insitu.kernels.histogram import quantiles_from_counts


def _old(counts, below, above, edges, qs):
    total = below + counts.sum() + above
    out = np.full(len(qs), np.nan)
    if total == 0:
        return out
    cum = below + np.concatenate([[0.0], np.cumsum(counts)])
    for i, q in enumerate(qs):
        target = q * total
        if target < below or target > cum[-1]:
            continue
        k = int(np.searchsorted(cum, target, side="left"))
        k = min(max(k, 1), len(counts))
        c = counts[k - 1]
        frac = 0.5 if c == 0 else (target - cum[k - 1]) / c
        out[i] = edges[k - 1] + frac * (edges[k] - edges[k - 1])
    return out


def _cases():
    rng = np.random.default_rng(16)
    for trial in range(400):
        nb = int(rng.integers(1, 12))
        kind = trial % 4
        if kind == 0:    # integer counts, many zeros
            counts = rng.choice([0.0, 0.0, 1.0, 2.0, 5.0], nb)
        elif kind == 1:  # weighted counts
            counts = rng.random(nb) * rng.choice([0.0, 1.0, 1e-300, 1e12], nb)
        elif kind == 2:  # all in one bin
            counts = np.zeros(nb)
            counts[rng.integers(0, nb)] = float(rng.integers(1, 9))
        else:
            counts = np.zeros(nb)
        below = float(rng.choice([0.0, 0.0, 1.0, 3.5, 1e6]))
        above = float(rng.choice([0.0, 0.0, 2.0, 1e6]))
        lo = float(rng.normal(0, 100))
        edges = np.linspace(lo, lo + float(rng.random() * 50 + 1e-9), nb + 1)
        total = below + counts.sum() + above
        # targets that hit the cumulative sums exactly, and quantiles 0 and 1
        cum = below + np.concatenate([[0.0], np.cumsum(counts)])
        hits = [c / total for c in cum if total > 0]
        qs = sorted(set([0.0, 1.0, 0.5, 0.25, 0.999, 1e-9, *hits,
                         *rng.random(4).tolist()]))
        yield counts, below, above, edges, qs


def test_vectorised_quantiles_give_the_loops_bits():
    for counts, below, above, edges, qs in _cases():
        with np.errstate(all="ignore"):
            want = _old(counts, below, above, edges, qs)
            got = quantiles_from_counts(counts, below, above, edges, qs)
        assert got.shape == want.shape
        same = (got.view(np.int64) == want.view(np.int64)) | (np.isnan(got) & np.isnan(want))
        assert same.all(), (counts, below, above, edges, qs, got, want)
