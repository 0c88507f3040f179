"""Optional cocotb bench: drive tiled_mac.v with every matmul of a golden file and check each
tile register, tile-sum register and result against it.

Needs cocotb (not an intsim dependency: `pip install cocotb`). With cocotb's makefiles, e.g.

    GOLDEN=golden.h5 make SIM=icarus TOPLEVEL_LANG=verilog \
        VERILOG_SOURCES=examples/rtl/tiled_mac.v TOPLEVEL=tiled_mac MODULE=cocotb_golden \
        COMPILE_ARGS="-Ptiled_mac.ACC_BITS=8 -Ptiled_mac.TILE=32"

Matmuls whose accumulator does not match the DUT's parameters (ACC_BITS, TILE, MODE,
SYMMETRIC, TS_BITS) are skipped, so one golden file serves several builds. Without cocotb this
module still imports (the iterator below is plain intsim).
"""
from __future__ import annotations

import os

from intsim.formats.golden_file import iter_matmuls

try:                                  # optional: only a cocotb run needs it
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import FallingEdge, RisingEdge
except ImportError:                   # pragma: no cover - depends on the environment
    cocotb = None

MODES = {"saturate": 0, "clamp_tile": 1, "wrap": 2, "exact": 3}
UNTILED = 1 << 30


def matches_dut(desc: dict, params: dict) -> bool:
    """Whether a matmul's accumulator is the one the DUT was built with."""
    return (params["ACC_BITS"] == desc["acc_bits"] and params["MODE"] == MODES[desc["mode"]]
            and params["TILE"] == (desc["tile_configured"] or UNTILED)
            and params["SYMMETRIC"] == int(bool(desc["acc_symmetric"]))
            and params["TS_BITS"] == desc["tile_sum_bits"])


if cocotb is not None:                # pragma: no cover - runs under a simulator only
    @cocotb.test()
    async def golden_matmuls(dut):
        """Every matching matmul of $GOLDEN, output by output, k by k."""
        params = {k: int(getattr(dut, k).value) for k in ("ACC_BITS", "TILE", "MODE",
                                                          "SYMMETRIC", "TS_BITS")}
        cocotb.start_soon(Clock(dut.clk, 2, units="ns").start())
        dut.valid.value = 0
        checked = 0
        for mv in iter_matmuls(os.environ["GOLDEN"]):
            if not matches_dut(mv.desc, params):
                continue
            G, M, K, N = (mv.desc[x] for x in "GMKN")
            for g in range(G):
                for m in range(M):
                    for n in range(N):
                        tiles = []
                        for k in range(K):
                            await FallingEdge(dut.clk)
                            dut.a.value = int(mv.left[g, m, k])
                            dut.b.value = int(mv.right[g, k, n])
                            dut.first.value = int(k == 0)
                            dut.last.value = int(k == K - 1)
                            dut.valid.value = 1
                            await RisingEdge(dut.clk)
                            await FallingEdge(dut.clk)
                            if dut.tile_valid.value:
                                tiles.append((dut.tile_reg.value.signed_integer,
                                              dut.tile_sum.value.signed_integer))
                            dut.valid.value = 0
                        for t, (reg, ts) in enumerate(tiles):
                            assert reg == mv.expected["register"][t, g, m, n], (mv.desc["matmul"], g, m, n, t)
                            assert ts == mv.expected["tile_sum"][t, g, m, n], (mv.desc["matmul"], g, m, n, t)
                        assert int(dut.result.value.signed_integer) == \
                            mv.expected["result"][g, m, n]
                        checked += 1
        dut._log.info(f"{checked} outputs match the golden file")
