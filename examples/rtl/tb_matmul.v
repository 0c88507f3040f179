// Test bench: one integer matmul of a golden file through tiled_mac, operands read from the
// $readmemh files `intsim golden --hex` writes (one value per line, C order, two's complement
// or unsigned at the tensor's declared bits; manifest.json says which).
//
//   out[g, m, n] = Σ_k left[g, m, k] · right(k, n)      (through the tiled accumulator)
//
// Plus-args (run_bench.py passes them from manifest.json's matmul descriptor):
//   +left=FILE +right=FILE +out=FILE      operand files and the result file
//   +G= +M= +K= +N=                       sizes
//   +layout=0|1|2                         right operand stored (N,K), (K,N) or (G,K,N)
//   +lbits= +lsigned= +rbits= +rsigned=   declared width and encoding of each operand
// The result file gets one line per tile end, "T g m n t register tile_sum", and one per
// output, "R g m n result" (decimal).
`timescale 1ns/1ps
module tb_matmul;
    parameter integer A_BITS = 5, B_BITS = 5, ACC_BITS = 8, TILE = 32, MODE = 0;
    parameter integer SYMMETRIC = 1, TS_BITS = 32, MAXMEM = 1 << 18;

    reg clk = 0, valid = 0, first = 0, last = 0;
    reg signed [A_BITS-1:0] a;
    reg signed [B_BITS-1:0] b;
    wire tile_valid, done;
    wire signed [63:0] tile_reg, tile_sum, result;

    tiled_mac #(.A_BITS(A_BITS), .B_BITS(B_BITS), .ACC_BITS(ACC_BITS), .TILE(TILE),
                .MODE(MODE), .SYMMETRIC(SYMMETRIC), .TS_BITS(TS_BITS)) dut (
        .clk(clk), .valid(valid), .first(first), .last(last), .a(a), .b(b),
        .tile_valid(tile_valid), .done(done), .tile_reg(tile_reg), .tile_sum(tile_sum),
        .result(result));

    reg [63:0] lmem [0:MAXMEM-1];
    reg [63:0] rmem [0:MAXMEM-1];
    reg [1023:0] lfile, rfile, ofile;
    integer G, M, K, N, layout, lbits, lsigned, rbits, rsigned;
    integer g, m, n, k, t, fd, ridx;

    function signed [63:0] sx(input [63:0] v, input integer bits, input integer sgn);
        begin
            if (sgn != 0 && v[bits - 1]) sx = $signed(v) - $signed(64'd1 << bits);
            else sx = $signed(v);
        end
    endfunction

    always #1 clk = ~clk;

    always @(negedge clk) begin                 // outputs registered at the previous posedge
        if (tile_valid) begin
            $fwrite(fd, "T %0d %0d %0d %0d %0d %0d\n", g, m, n, t, tile_reg, tile_sum);
            t = t + 1;
        end
        if (done) $fwrite(fd, "R %0d %0d %0d %0d\n", g, m, n, result);
    end

    initial begin
        if (!$value$plusargs("left=%s", lfile) || !$value$plusargs("right=%s", rfile) ||
            !$value$plusargs("out=%s", ofile) || !$value$plusargs("G=%d", G) ||
            !$value$plusargs("M=%d", M) || !$value$plusargs("K=%d", K) ||
            !$value$plusargs("N=%d", N) || !$value$plusargs("layout=%d", layout) ||
            !$value$plusargs("lbits=%d", lbits) || !$value$plusargs("lsigned=%d", lsigned) ||
            !$value$plusargs("rbits=%d", rbits) || !$value$plusargs("rsigned=%d", rsigned)) begin
            $display("tb_matmul: missing plus-args");
            $finish;
        end
        $readmemh(lfile, lmem, 0, G * M * K - 1);
        $readmemh(rfile, rmem, 0, (layout == 2 ? G : 1) * K * N - 1);
        fd = $fopen(ofile, "w");
        @(posedge clk);
        for (g = 0; g < G; g = g + 1)
            for (m = 0; m < M; m = m + 1)
                for (n = 0; n < N; n = n + 1) begin
                    t = 0;
                    for (k = 0; k < K; k = k + 1) begin
                        ridx = (layout == 0) ? n * K + k : (layout == 1) ? k * N + n
                                                         : (g * K + k) * N + n;
                        @(negedge clk);
                        a = sx(lmem[(g * M + m) * K + k], lbits, lsigned);
                        b = sx(rmem[ridx], rbits, rsigned);
                        first = (k == 0);
                        last = (k == K - 1);
                        valid = 1;
                    end
                    @(negedge clk);
                    valid = 0;
                    @(negedge clk);                     // the last tile's outputs are written
                end
        $fclose(fd);
        $finish;
    end
endmodule
