// A tiled multiply-accumulate unit as NUMERICS.md §4 specifies it, for one output at a time:
//
//   total = 0
//   for each K-tile (TILE MACs, the last may be shorter):
//       reg = 0;  for k in the tile:  reg = R(reg + a[k]·b[k])      R: the register's rule
//       part = C(reg);  total = TS(total + part)
//   result = total
//
// MODE 0 saturate   (R clamps to [LO, HI] after every MAC, an ACC_BITS-bit register)
//      1 clamp_tile (R exact, C clamps the tile sum once)
//      2 wrap       (R keeps the low ACC_BITS bits: two's complement wrap-around)
//      3 exact      (no limit)
// [LO, HI] = ±(2^(ACC_BITS-1) - 1) when SYMMETRIC (wrap ignores it), else [-2^(ACC_BITS-1), HI].
// TS: a TS_BITS-bit tile-sum register, saturating with the same rule (wrapping in wrap mode);
// TS_BITS = 0: unbounded (64 bits here).
//
// Protocol: one MAC per clock with `valid`; `first` marks k = 0 of an output, `last` its
// k = K-1. At the end of every tile `tile_valid` pulses with the register (`tile_reg`) and
// the tile-sum register (`tile_sum`); after the last tile `done` pulses with `result`.
//
// Planted bugs for the test bench (intsim compare must catch each):
//   BUG_WRAP   saturate mode wraps instead of saturating
//   BUG_FLOOR  the lower limit is -2^(ACC_BITS-1) (-128 at 8 bits) although SYMMETRIC
//   BUG_TILE   tiles of TILE+1 MACs (a 33-MAC tile at TILE = 32)
`timescale 1ns/1ps
module tiled_mac #(
    parameter integer A_BITS = 5,       // operand port widths (two's complement)
    parameter integer B_BITS = 5,
    parameter integer ACC_BITS = 8,
    parameter integer TILE = 32,        // MACs per tile; a huge value = one tile
    parameter integer MODE = 0,
    parameter integer SYMMETRIC = 1,
    parameter integer TS_BITS = 32
) (
    input  wire                     clk,
    input  wire                     valid,
    input  wire                     first,
    input  wire                     last,
    input  wire signed [A_BITS-1:0] a,
    input  wire signed [B_BITS-1:0] b,
    output reg                      tile_valid,
    output reg                      done,
    output reg  signed [63:0]       tile_reg,
    output reg  signed [63:0]       tile_sum,
    output reg  signed [63:0]       result
);
    localparam integer TSW = (TS_BITS == 0) ? 64 : TS_BITS;
    localparam signed [63:0] HI = (64'sd1 <<< (ACC_BITS - 1)) - 64'sd1;
`ifdef BUG_FLOOR
    localparam signed [63:0] LO = -HI - 64'sd1;
`else
    localparam signed [63:0] LO = (SYMMETRIC != 0 && MODE != 2) ? -HI : -HI - 64'sd1;
`endif
    localparam signed [63:0] TS_HI = (TSW == 64) ? 64'sh7fffffffffffffff
                                                 : (64'sd1 <<< (TSW - 1)) - 64'sd1;
    localparam signed [63:0] TS_LO = (SYMMETRIC != 0 && MODE != 2) ? -TS_HI : -TS_HI - 64'sd1;
`ifdef BUG_TILE
    localparam integer T = TILE + 1;
`else
    localparam integer T = TILE;
`endif

    reg signed [ACC_BITS-1:0] acc;      // the register of saturate / wrap modes
    reg signed [63:0]         wide;     // the exact tile sum of clamp_tile / exact modes
    reg signed [TSW-1:0]      ts;       // the tile-sum register
    integer                   kc;       // MACs done in the current tile
    wire signed [63:0]        p = a * b;

    always @(posedge clk) begin : mac
        reg signed [63:0] prev, s, part, t;
        tile_valid <= 1'b0;
        done <= 1'b0;
        if (valid) begin
            if (first) begin
                kc = 0;
                ts = 0;
            end
            prev = (kc == 0) ? 64'sd0 : ((MODE == 0 || MODE == 2) ? acc : wide);
            s = prev + p;
            if (MODE == 0) begin
`ifdef BUG_WRAP
                acc = s[ACC_BITS-1:0];                  // the bug: plain truncation
`else
                acc = (s > HI) ? HI[ACC_BITS-1:0] : (s < LO) ? LO[ACC_BITS-1:0]
                                                             : s[ACC_BITS-1:0];
`endif
            end else if (MODE == 2) begin
                acc = s[ACC_BITS-1:0];                  // two's complement wrap-around
            end else begin
                wide = s;
            end
            if (last || kc == T - 1) begin              // the tile ends
                if (MODE == 0 || MODE == 2) part = acc;
                else if (MODE == 1) part = (wide > HI) ? HI : (wide < LO) ? LO : wide;
                else part = wide;
                t = ts + part;
                if (TS_BITS != 0 && MODE != 2)
                    t = (t > TS_HI) ? TS_HI : (t < TS_LO) ? TS_LO : t;
                ts = t[TSW-1:0];                        // wraps in wrap mode
                kc = 0;
                tile_valid <= 1'b1;
                tile_reg <= part;
                tile_sum <= ts;
                if (last) begin
                    done <= 1'b1;
                    result <= ts;
                end
            end else begin
                kc = kc + 1;
            end
        end
    end
endmodule
