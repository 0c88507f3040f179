"""Run every integer matmul of a golden file through the Verilog bench and write the dump.

    intsim golden --numerics examples/datapath_hdqt.toml --model fcnet:40,36,20,5 \
        --batch 6 --out golden.h5 --hex hex/
    python examples/rtl/run_bench.py hex/ --dump dump.h5 [--bug wrap|floor|tile]
    intsim compare golden.h5 dump.h5 --expect '*/acc' --expect '*/acc_register' \
        --expect '*/acc_tile_sum' [--explain]

For each matmul descriptor of hex/manifest.json (operand files, sizes, layouts, accumulator),
tb_matmul.v + tiled_mac.v are compiled with Icarus Verilog (`iverilog`, once per accumulator
configuration, into --build) and simulated (`vvp`); the bench's tile registers, tile-sum
registers and results are written to dump.h5 at the golden paths (acc_register, acc_tile_sum,
acc), which `intsim compare` checks. --bug compiles a planted bug into the MAC (BUG_WRAP,
BUG_FLOOR, BUG_TILE of tiled_mac.v): compare must then fail. Needs numpy and h5py only; the
hex files must be in C order, one value per line (the `intsim golden --hex` default).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MODES = {"saturate": 0, "clamp_tile": 1, "wrap": 2, "exact": 3}
LAYOUTS = {"N,K": 0, "K,N": 1, "G,K,N": 2}
BUGS = {"wrap": "BUG_WRAP", "floor": "BUG_FLOOR", "tile": "BUG_TILE"}
UNTILED = 1 << 30


def port_bits(entry: dict) -> int:
    """Two's-complement port width that holds a tensor's declared values."""
    return int(entry["bits"]) + (0 if entry["signed"] else 1)


def compile_bench(params: dict, bug: str | None, build: str) -> str:
    """The vvp executable for one parameter set (compiled once)."""
    name = "tb_" + "_".join(f"{k}{v}" for k, v in sorted(params.items())) + (f"_{bug}" if bug
                                                                              else "")
    exe = os.path.join(build, name + ".vvp")
    if not os.path.exists(exe):
        cmd = ["iverilog", "-g2005", "-o", exe, "-s", "tb_matmul"]
        cmd += [f"-Ptb_matmul.{k}={v}" for k, v in params.items()]
        if bug:
            cmd.append(f"-D{BUGS[bug]}")
        cmd += [os.path.join(HERE, "tb_matmul.v"), os.path.join(HERE, "tiled_mac.v")]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    return exe


def run_matmul(desc: dict, files: dict, hex_dir: str, bug: str | None, build: str) -> dict:
    """{path: array} of one matmul's bench results (register, tile_sum, result)."""
    left, right = files[desc["files"]["left"]], files[desc["files"]["right"]]
    for e in (left, right):
        if e["order"] != "c" or e["word_bits"]:
            raise SystemExit(f"run_bench: {e['file']}: needs C order and one value per line")
    G, M, K, N = (int(desc[x]) for x in "GMKN")
    params = dict(A_BITS=port_bits(left), B_BITS=port_bits(right), ACC_BITS=desc["acc_bits"],
                  TILE=desc["tile_configured"] or UNTILED, MODE=MODES[desc["mode"]],
                  SYMMETRIC=int(bool(desc["acc_symmetric"])), TS_BITS=desc["tile_sum_bits"],
                  MAXMEM=1 << max(G * M * K, G * K * N, 1).bit_length())   # small memories
    # start fast: the bench's operand memories are sized per matmul (a power of two)
    exe = compile_bench(params, bug, build)
    out = os.path.join(build, "out.txt")
    args = dict(left=os.path.join(hex_dir, left["file"]), right=os.path.join(hex_dir, right["file"]),
                out=out, G=G, M=M, K=K, N=N, layout=LAYOUTS[desc["right_layout"]],
                lbits=left["bits"], lsigned=int(left["signed"]), rbits=right["bits"],
                rsigned=int(right["signed"]))
    subprocess.run(["vvp", "-n", exe] + [f"+{k}={v}" for k, v in args.items()], check=True,
                   capture_output=True, text=True)
    n_tiles = int(desc["n_tiles"])
    reg = np.zeros((n_tiles, G, M, N), np.int64)
    ts = np.zeros_like(reg)
    res = np.zeros((G, M, N), np.int64)
    with open(out, encoding="ascii") as f:
        for line in f:
            w = line.split()
            if w[0] == "T" and int(w[4]) < n_tiles:    # a buggy tiling may emit other counts
                g, m, n, t = (int(x) for x in w[1:5])
                reg[t, g, m, n], ts[t, g, m, n] = int(w[5]), int(w[6])
            elif w[0] == "R":
                g, m, n = (int(x) for x in w[1:4])
                res[g, m, n] = int(w[4])
    return {desc["register"]: reg, desc["tile_sum"]: ts, desc["result"]: res}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("hex_dir", help="folder written by `intsim golden --hex` (manifest.json)")
    p.add_argument("--dump", default="dump.h5", help="output HDF5 dump (default dump.h5)")
    p.add_argument("--bug", choices=sorted(BUGS), help="compile a planted bug into the MAC")
    p.add_argument("--build", help="folder for the compiled benches (default: a temp folder)")
    args = p.parse_args(argv)
    with open(os.path.join(args.hex_dir, "manifest.json"), encoding="utf-8") as f:
        man = json.load(f)
    files = {e["file"]: e for e in man["tensors"]}
    build = args.build or tempfile.mkdtemp(prefix="intsim-rtl-")
    os.makedirs(build, exist_ok=True)
    results = {}
    for desc in man["matmuls"]:
        results.update(run_matmul(desc, files, args.hex_dir, args.bug, build))
    tmp = args.dump + ".tmp"
    with h5py.File(tmp, "w") as d:
        for path, arr in results.items():
            d.create_dataset(path, data=arr)
    os.replace(tmp, args.dump)
    print(f"wrote {args.dump}: {len(man['matmuls'])} matmuls through tiled_mac.v"
          + (f" with the planted bug {BUGS[args.bug]}" if args.bug else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
