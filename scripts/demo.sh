#!/usr/bin/env bash
# Install everything (idempotent), run the main job, and show what it wrote:
#   mpirun -n 4 python -m insitu.run  (heat2d stand-in, examples/heat2d.yaml)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/install.sh
source scripts/env.sh
OUT="${INSITU_DEMO_OUTPUT:-$ROOT/demo-output.h5}"
NP="${INSITU_DEMO_RANKS:-4}"
echo "== mpirun -n $NP python -m insitu.run --model heat2d --config examples/heat2d.yaml --steps 200 --output $OUT"
mpirun -n "$NP" "$VENV/bin/python" -m insitu.run --model heat2d \
  --config examples/heat2d.yaml --steps 200 --output "$OUT" --overwrite
echo
echo "== python -m insitu.inspect $OUT"
"$VENV/bin/python" -m insitu.inspect "$OUT"
echo
echo "== xarray.open_dataset($OUT, engine='h5netcdf')"
"$VENV/bin/python" -c "import sys, xarray as xr; print(xr.open_dataset(sys.argv[1], engine='h5netcdf'))" "$OUT"
