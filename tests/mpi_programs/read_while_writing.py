"""Read an insitu file N times while a run writes it (tests/test_reader_stress.py,
scripts/bench/live_reader.py): alternately with h5py (insitu.reader.read_rows
of every result along ``time``) and with xarray (insitu.reader.open_dataset),
the last ``--tail`` committed rows of everything along ``time``, as fast
as it can, at least ``--reads`` times and on until the run finished.  Each
read keeps the rows it saw; at the end, after the run finished, every row read is compared, bit for bit (NaN equal
to NaN), with the final file's row.  Prints one JSON line: the reads, how
many happened before the run finished, rows compared, mismatches, failed
reads, retried reads.

    python read_while_writing.py OUT.h5 --reads 100 [--tail 100] [--sleep S] [--wait 120]
"""
import argparse
import json
import os
import sys
import time

import numpy as np

from insitu import reader


def main():
    p = argparse.ArgumentParser()
    p.add_argument("path")
    p.add_argument("--reads", type=int, default=100,
                   help="read at least this often, and on until the run finished")
    p.add_argument("--wait", type=float, default=120, help="seconds to wait for the file")
    p.add_argument("--final-wait", type=float, default=300,
                   help="seconds to wait for the run to finish before comparing")
    p.add_argument("--tail", type=int, default=100,
                   help="rows read at each read: the last committed ones (each read stays "
                        "short, so that many reads land while the run writes)")
    p.add_argument("--sleep", type=float, default=0.0, help="seconds between reads")
    args = p.parse_args()
    if not reader.wait_for(args.path, timeout=args.wait, poll=0.05):
        print(json.dumps({"error": f"no file after {args.wait} s"}))
        return 1
    seen, failures, during, rows_read = [], [], 0, []
    i = 0
    while i < args.reads or not (seen and seen[-1][-1]):  # until the run finished
        i += 1
        finished = False
        try:
            if i % 2 == 0:
                snap = reader.snapshot(args.path)
                names = [n for n, v in snap.variables.items() if v.axis == "time"]
                n = snap.rows.get("time", 0)
                n, rows = reader.read_rows(args.path, "time", names, start=max(0, n - args.tail))
                start = max(0, n - len(rows["step"]))
                finished = snap.finished
                rows = {k: np.asarray(v) for k, v in rows.items()}
            else:
                part = reader.open_dataset(args.path, load=True, tail=args.tail,
                                           decode_times=False)
                finished = "insitu_finished" in part.attrs
                rows = {k: part[k].values for k in part.variables if part[k].dims[:1] == ("time",)}
                n, start = None, None  # found from the steps read, in the final file
            during += not finished
            rows_read.append(n if n is not None else len(rows["step"]))
            seen.append(("h5py" if i % 2 == 0 else "xarray", start, rows, finished))
        except Exception as exc:  # noqa: BLE001 - a failed read is what the test counts
            failures.append(f"read {i}: {type(exc).__name__}: {exc}")
            if len(failures) > 50:
                break
        if args.sleep:
            time.sleep(args.sleep)
    # the comparison waits for the finished file
    deadline = time.monotonic() + args.final_wait
    while not reader.snapshot(args.path, variables=False).finished:
        if time.monotonic() > deadline:
            print(json.dumps({"error": "the run did not finish"}))
            return 1
        time.sleep(0.2)
    # each read against the final file read the same way: xarray masks an
    # integer's fill (as float NaN), h5py gives the raw values
    snap = reader.snapshot(args.path)
    final_rows, h5 = reader.read_rows(args.path, "time", [n for n, v in snap.variables.items()
                                                         if v.axis == "time"])
    xr_final = reader.open_dataset(args.path, load=True, decode_times=False)
    final = {"h5py": h5, "xarray": {k: xr_final[k].values for k in xr_final.variables}}
    compared, mismatches = 0, []
    for i, (how, start, rows, _) in enumerate(seen):
        for name, got in rows.items():
            ref = final[how].get(name)
            if start is None:  # a tail read with xarray: where its first step is
                start = int(np.searchsorted(final["h5py"]["step"], rows["step"][0])) \
                    if len(rows["step"]) else 0
            want = None if ref is None else np.asarray(ref)[start:start + len(got)]
            if want is None or start + len(got) > final_rows or not np.array_equal(
                    got, want, equal_nan=got.dtype.kind == "f"):
                mismatches.append(f"read {i} ({how}): {name} ({len(got)} rows)")
            compared += got.size
    print(json.dumps({"reads": len(seen) + len(failures), "during_run": during,
                      "rows_read": rows_read, "values_compared": compared,
                      "mismatches": mismatches[:20], "failures": failures[:20],
                      "retried": reader.stats["retries"], "final_rows": final_rows,
                      "pid": os.getpid()}))
    return 0 if not (mismatches or failures) else 1


if __name__ == "__main__":
    sys.exit(main())
