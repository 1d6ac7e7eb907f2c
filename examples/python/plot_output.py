"""After a run: open insitu's output with xarray and save a figure.

    python examples/python/plot_output.py heat2d.h5 [figure.png]

Plots the global mean with a band of one standard deviation and the
min/max envelope, for the first field with statistics in the file.
"""
import sys

import matplotlib
import xarray as xr

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(path, figure="insitu_output.png"):
    ds = xr.open_dataset(path, engine="h5netcdf")
    means = [v for v in ds.data_vars if v.endswith("_mean") and ds[v].dims == ("time",)]
    if not means:
        raise SystemExit(f"{path}: no time series of means to plot")
    prefix = means[0][: -len("_mean")]
    mean = ds[f"{prefix}_mean"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    mean.plot(ax=ax, label="mean")
    if f"{prefix}_std" in ds:
        std = ds[f"{prefix}_std"]
        ax.fill_between(ds["time"].values, mean - std, mean + std, alpha=0.3, label="+-1 std")
    for k in ("min", "max"):
        if f"{prefix}_{k}" in ds:
            ds[f"{prefix}_{k}"].plot(ax=ax, linestyle="--", label=k)
    ax.legend()
    ax.set_title(f"{mean.attrs.get('long_name', prefix)} ({ds.attrs.get('insitu_ranks')} ranks)")
    fig.savefig(figure, dpi=100, bbox_inches="tight")
    print(f"wrote {figure}")


if __name__ == "__main__":
    main(*sys.argv[1:])
