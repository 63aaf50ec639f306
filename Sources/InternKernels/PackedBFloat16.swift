// Lossless 12-bit storage of bf16 weights, for decode, which reads every weight once per token and is bound by
// memory bandwidth (prefill decodes blocks of rows for PrefillGEMM.swift's GEMM: to f32, or to bf16 for the
// `vdpbf16ps` form, so nothing needs the mapped bf16). A bf16 is a sign, 8 exponent bits and 7 mantissa bits; across a weight matrix its top byte
// (the sign and the exponent's high 7 bits) takes few values, since the weights span a few binades around the
// matrix's scale (random and trained weights alike). So each weight keeps its low byte as is and its top byte
// becomes a 4-bit code into the matrix's table of the 15 most common top bytes (code 0: top byte 0x00). The
// rare weights whose top byte is not in the table (values far below the matrix's scale; 1.4e-4 of the
// uniform random weights of `intern init`, at most 7.9e-4 in any matrix of SmolLM2-135M in bf16) are stored
// as +0 and listed per row as exceptions, added after the vector loop; a matrix with more than 0.5% of them
// stays unpacked. 12 bits a weight instead of 16: a decode step reads 25% fewer bytes, every weight bit-exact.
// Layout: rows of chunks of 64 weights, 96 bytes each: the 64 low bytes, then 32 bytes of codes (byte j: the
// code of weight j in its low nibble, of weight j + 32 in its high nibble).
// Decoding a chunk (AVX-512): one 64-byte load; one 32-byte load broadcast to both halves, the upper half
// shifted right by 4 (the high nibbles) and masked; `vpshufb` into the table gives the 64 top bytes;
// `vpunpcklbw`/`vpunpckhbw` with the low bytes give 2 × 32 bf16 (in each 128-bit lane l, weights 16l + 0…7,
// then 16l + 8…15), and a shift and a mask turn their even and odd words into four f32 vectors, which meet
// the activations permuted once per call into that order; no software prefetch: the matrix lies in huge
// pages (PageBuffer) and the hardware prefetchers follow the row stream, while prefetching 4 KiB ahead cost
// decode 10–16% (medians of 8 alternating runs, 2 Zen 4 threads: 1.8B bf16 12.0 → 13.2 t/s without, small
// 81 → 95; the C prototype at 2048 columns in huge pages: 14.7 → 20.4 Gweights/s; the AVX2 path keeps its
// prefetch, last measured on Zen 1 with 4 KiB pages). Measured against
// llama.cpp's arithmetic (`vdpbf16ps` on bf16-rounded activations) by the C prototype in Benchmarks/packed-bf16
// (AMD Zen 4, 2 threads, 400 MB matrix in huge pages): 20.4 vs 16.9 Gweights/s at 2048 columns, 21.6 vs 16.6
// at 1024; the f32-activation bf16 kernel 16.1 and 16.0. Rows longer than `packedOneRowColumns` run in tiles
// of 4 rows (their f32 activations would not stay in L1 beside the weight stream): 19.4 vs 17.6 at 8192
// columns, where one row at a time reads 12.2.
// With bf16-rounded activations (`multiplyBFloat16`, the default on AVX512-BF16 hosts, llama.cpp's arithmetic) the
// two bf16 word vectors of a chunk go straight into `vdpbf16ps` against the activations rounded and permuted once
// per call into the words' order: no shifts and masks, half the multiply instructions. Exact f32 activations
// leave the decoding the bound where memory is fast: `Benchmarks/packed-bf16/decode-step-bench.c` (one decode
// step of internlm2-1_8b's matrices in huge pages, 2 Zen 4 threads, 4 steps of every variant in turn): 14.3–16.2
// Gweights/s exact, 16.6–21.1 rounded, against 13.3–16.0 for plain bf16 with `vdpbf16ps` (llama.cpp's kernel,
// 2 bytes a weight) and 12.9–14.2 for that in tiles of 4 rows (llama.cpp's tinyBLAS shape).
// AVX2 (the haswell tier) decodes the same layout in two halves of 32 weights: the 32 code bytes masked for
// the low nibbles (first half) or shifted right by 4 and masked (second half), `vpshufb`, `vpunpck{l,h}bw`,
// shift and mask; its f32 vectors are the AVX-512 lanes 0–1 and 2–3, so the permuted activations are the
// same. Every row runs alone. C prototype on AMD Zen 1 (2 threads, 400 MB): 10.5 vs 8.8 Gweights/s for the
// f32-activation bf16 kernel at 1024 columns, 9.5 vs 8.2 at 2048, 10.0 vs 8.6 at 8192; one thread 6.6 vs 4.9.
// Reduction order (fixed, independent of the batch size): each output has four FloatVector accumulators
// over the chunks in ascending order (one-row) or one (tiles), then its lane sum, then the exceptions in
// ascending column order. Exact f32 FMAs of the exact weights, in another order than `matMul`'s.
#if INTERNKIT_FMA
    import _Builtin_intrinsics.intel
#endif
#if INTERNKIT_AVX512BF16
    import CBFloat16
#endif

/// Whether `PackedBFloat16Matrix.multiply` runs vector code in this build (AVX-512 or AVX2); elsewhere it
/// decodes rows in scalar code, slower than reading bf16, so `WeightMatrix` does not pack there.
public let packedBFloat16IsVectorized: Bool = {
    #if INTERNKIT_FMA
        true
    #else
        false
    #endif
}()

/// Rows of up to this many columns run one at a time (their activations stay in L1 as f32), longer ones
/// in tiles of 4 rows sharing each activation load (AVX-512; the AVX2 tier runs every row alone: with 16
/// registers the tiles spill, and one row at a time streamed 8192 columns at 9.96 Gweights/s against 7.38
/// in the C prototype on Zen 1).
let packedOneRowColumns = 4096

/// A bf16 matrix (rows, cols) in the 12-bit layout above, with its exceptions; immutable once built.
public final class PackedBFloat16Matrix: @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    /// Top bytes by code (16 entries; entry 0 is 0x00).
    public let table: [UInt8]
    /// Weights whose top byte is not in `table` (stored as +0, added per row after the vector loop).
    public let exceptionCount: Int
    let rowBytes: Int
    let data: UnsafeMutableRawPointer  // rows × rowBytes, in `pages`
    private let pages: PageBuffer
    let exceptionStarts: UnsafeMutablePointer<Int32>  // rows + 1, offsets into the two below
    let exceptionColumns: UnsafeMutablePointer<Int32>
    let exceptionValues: UnsafeMutablePointer<Float>

    /// Bytes of weights read per product (data and exception lists).
    public var byteCount: Int { rows * rowBytes + (rows + 1) * 4 + exceptionCount * 8 }

    /// Packs `rows` × `cols` bf16 weights (threaded over rows when `pool` is given). Nil when `cols` is not a
    /// multiple of 64 or more than `maxExceptionFraction` of the weights would be exceptions.
    public init?(bf16 weight: UnsafeRawPointer, rows: Int, cols: Int, pool: ThreadPool?, maxExceptionFraction: Double = 0.005) {
        guard rows > 0, cols > 0, cols % 64 == 0, rows < Int(Int32.max), cols < Int(Int32.max) else { return nil }
        let rowBytes = cols / 64 * 96
        let table = commonTopBytes(weight, rows: rows, cols: cols)
        var codeOf = [UInt8](repeating: 0xFF, count: 256)  // 0xFF: an exception
        for (code, top) in table.enumerated().reversed() { codeOf[Int(top)] = UInt8(code) }
        let nibbleTables = highNibbleTables(codeOf)
        let pages = PageBuffer(byteCount: rows * rowBytes), data = pages.base
        // Each worker lists the exceptions of its rows; merged in row order below.
        var lists = [[PackingException]](repeating: [], count: pool?.threadCount ?? 1)
        lists.withUnsafeMutableBufferPointer { lists in
            let lists = SendablePointer(lists.baseAddress!), out = SendablePointer(data.assumingMemoryBound(to: UInt8.self))
            codeOf.withUnsafeBufferPointer { codeOf in
                nibbleTables.withUnsafeBufferPointer { nibbleTables in
                    let body = { (range: Range<Int>, worker: Int) in
                        for r in range {
                            encodeRow(
                                weight + r * cols * 2, into: out.base + r * rowBytes, cols: cols, row: r, codeOf: codeOf,
                                nibbleTables: nibbleTables, exceptions: &lists.base[worker])
                        }
                    }
                    if let pool { pool.parallelFor(rows, granularity: 16, body) } else { body(0..<rows, 0) }
                }
            }
        }
        let exceptions = lists.joined().sorted { ($0.row, $0.col) < ($1.row, $1.col) }
        guard Double(exceptions.count) <= maxExceptionFraction * Double(rows * cols) else { return nil }
        self.rows = rows
        self.cols = cols
        self.rowBytes = rowBytes
        self.table = table
        self.pages = pages
        self.data = data
        exceptionCount = exceptions.count
        exceptionStarts = .allocate(capacity: rows + 1)
        exceptionColumns = .allocate(capacity: max(1, exceptions.count))
        exceptionValues = .allocate(capacity: max(1, exceptions.count))
        var e = 0
        for r in 0..<rows {
            exceptionStarts[r] = Int32(e)
            while e < exceptions.count && exceptions[e].row == r {
                exceptionColumns[e] = exceptions[e].col
                exceptionValues[e] = exceptions[e].value
                e += 1
            }
        }
        exceptionStarts[rows] = Int32(e)
    }

    deinit {
        exceptionStarts.deallocate()
        exceptionColumns.deallocate()
        exceptionValues.deallocate()
    }

    /// Row `r`'s bf16 bit patterns in column order (exceptions restored): the original row.
    public func unpackRow(_ r: Int, into out: UnsafeMutablePointer<UInt16>) {
        let row = UnsafeRawPointer(data) + r * rowBytes
        for c in 0..<cols {
            let chunk = row + c / 64 * 96, j = c % 64
            let nibbles = chunk.load(fromByteOffset: 64 + j % 32, as: UInt8.self)
            let code = j < 32 ? nibbles & 0x0F : nibbles >> 4
            out[c] = UInt16(table[Int(code)]) << 8 | UInt16(chunk.load(fromByteOffset: j, as: UInt8.self))
        }
        for e in Int(exceptionStarts[r])..<Int(exceptionStarts[r + 1]) {
            out[Int(exceptionColumns[e])] = UInt16(exceptionValues[e].bitPattern >> 16)
        }
    }

    /// out (T, R) = x (T, C) · Wᵀ, threaded over rows when `pool` is given.
    public func multiply(
        _ out: UnsafeMutablePointer<Float>,  // (tokens, rows)
        input: UnsafePointer<Float>,  // (tokens, cols)
        tokens: Int, pool: ThreadPool?
    ) {
        guard tokens > 0 else { return }
        #if INTERNKIT_FMA
            overRows(of: input, tokens: tokens, permutedBy: { permuteActivations($0, into: $1, cols: $2) }, pool: pool) { x, range in
                self.vectorRows(out, x, input, tokens, range)
            }
        #else
            let body = { (range: Range<Int>, _: Int) in
                withUnsafeTemporaryAllocation(of: UInt16.self, capacity: self.cols) { row in
                    for r in range {
                        self.unpackRow(r, into: row.baseAddress!)
                        for t in 0..<tokens {
                            let x = input + t * self.cols
                            var s: Float = 0
                            for c in 0..<self.cols { s += Float(bitPattern: UInt32(row[c]) << 16) * x[c] }
                            out[t * self.rows + r] = s
                        }
                    }
                }
            }
            if let pool { pool.parallelFor(rows, granularity: 4, body) } else { body(0..<rows, 0) }
        #endif
    }

    /// Decode's frame: each token's activations written by `permute` (`cols` elements a token) into one temporary
    /// buffer, then `body(x, rows)` over the matrix's rows, in chunks of 4 over the pool's workers when given.
    @inline(__always)
    private func overRows<Element>(
        of input: UnsafePointer<Float>, tokens: Int,
        permutedBy permute: (UnsafePointer<Float>, UnsafeMutablePointer<Element>, Int) -> Void, pool: ThreadPool?,
        _ body: (UnsafePointer<Element>, Range<Int>) -> Void
    ) {
        withUnsafeTemporaryAllocation(of: Element.self, capacity: tokens * cols) { buffer in
            let permuted = buffer.baseAddress!
            for t in 0..<tokens { permute(input + t * cols, permuted + t * cols, cols) }
            let x = UnsafePointer(permuted)
            if let pool { pool.parallelFor(rows, granularity: 4) { range, _ in body(x, range) } } else { body(x, 0..<rows) }
        }
    }

    /// out (T, R) = x (T, C) · Wᵀ for prefill (many tokens): `PrefillGEMM.swift`'s GEMM, its weight blocks decoded
    /// to f32 in the chunks' vector order with the activations permuted alike (exact f32 FMAs of the exact
    /// weights, one chain per output over the permuted columns).
    public func multiplyPrefill(
        _ out: UnsafeMutablePointer<Float>,  // (tokens, rows)
        input: UnsafePointer<Float>,  // (tokens, cols)
        tokens: Int, pool: ThreadPool?
    ) {
        #if INTERNKIT_FMA
            guard tokens > 0 else { return }
            let C = cols
            scratch.with(bytes: tokens * C * 4) { raw in
                let permuted = raw.assumingMemoryBound(to: Float.self)
                for t in 0..<tokens { permuteActivations(input + t * C, into: permuted + t * C, cols: C) }
                gemm(out, FloatGEMM(rows: PackedRows(matrix: self, table: tableVector)), UnsafePointer(permuted), tokens, rows, C, pool)
            }
        #else
            multiply(out, input: input, tokens: tokens, pool: pool)
        #endif
    }

    /// out (T, R) = bf16(x) (T, C) · Wᵀ for prefill: `BFloat16Prefill.swift`'s GEMM (`vdpbf16ps` on activations
    /// rounded to bf16, llama.cpp's arithmetic) over this matrix's weights, decoded to bf16 block by block; the
    /// same results as `matMulBF16Prefill` on the unpacked matrix. AVX512-BF16 hosts only.
    public func multiplyPrefillBFloat16(
        _ out: UnsafeMutablePointer<Float>,  // (tokens, rows)
        input: UnsafePointer<Float>,  // (tokens, cols)
        tokens: Int, pool: ThreadPool?
    ) {
        #if INTERNKIT_AVX512BF16
            gemm(out, BFloat16GEMM(rows: PackedRows(matrix: self, table: tableVector)), input, tokens, rows, cols, pool)
        #else
            preconditionFailure("multiplyPrefillBFloat16 needs AVX512-BF16 (bf16PrefillIsVectorized)")
        #endif
    }

    /// out (T, R) = bf16(x) (T, C) · Wᵀ for decode: each token's activations rounded to bf16 (llama.cpp's arithmetic,
    /// as `multiplyPrefillBFloat16`) and permuted to the order of a chunk's bf16 words (`permuteActivationsBFloat16`),
    /// which meet them in `vdpbf16ps`: no widening to f32 and half the multiply instructions of `multiply`, whose
    /// decoding is the bound where the memory is fast (see the header). AVX512-BF16 hosts only.
    public func multiplyBFloat16(
        _ out: UnsafeMutablePointer<Float>,  // (tokens, rows)
        input: UnsafePointer<Float>,  // (tokens, cols)
        tokens: Int, pool: ThreadPool?
    ) {
        #if INTERNKIT_AVX512BF16
            guard tokens > 0 else { return }
            overRows(of: input, tokens: tokens, permutedBy: { permuteActivationsBFloat16($0, into: $1, cols: $2) }, pool: pool) { x, range in
                self.bfloat16Rows(out, UnsafeRawPointer(x), input, tokens, range)
            }
        #else
            preconditionFailure("multiplyBFloat16 needs AVX512-BF16 (bf16PrefillIsVectorized)")
        #endif
    }

    /// The naive twin of `multiply`: rows unpacked, products accumulated in Double.
    public func multiplyReference(_ out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, tokens: Int) {
        var row = [UInt16](repeating: 0, count: cols)
        for r in 0..<rows {
            row.withUnsafeMutableBufferPointer { unpackRow(r, into: $0.baseAddress!) }
            for t in 0..<tokens {
                var s = 0.0
                for c in 0..<cols { s += Double(Float(bitPattern: UInt32(row[c]) << 16)) * Double(input[t * cols + c]) }
                out[t * rows + r] = Float(s)
            }
        }
    }

    /// The naive twin of `multiplyBFloat16`: rows unpacked, activations rounded to bf16, products accumulated in
    /// Double.
    public func multiplyBFloat16Reference(_ out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, tokens: Int) {
        var row = [UInt16](repeating: 0, count: cols)
        for r in 0..<rows {
            row.withUnsafeMutableBufferPointer { unpackRow(r, into: $0.baseAddress!) }
            for t in 0..<tokens {
                var s = 0.0
                for c in 0..<cols {
                    s += Double(Float(bitPattern: UInt32(row[c]) << 16)) * Double(roundedToBFloat16(input[t * cols + c]))
                }
                out[t * rows + r] = Float(s)
            }
        }
    }

    /// `s` plus row `r`'s exceptions times their activations (natural order; rounded to bf16 where
    /// `roundingToBFloat16`), in ascending column order.
    @inline(__always)
    private func addingExceptions(_ s: Float, _ r: Int, _ x: UnsafePointer<Float>, roundingToBFloat16: Bool) -> Float {
        var s = s
        var e = Int(exceptionStarts[r])
        let end = Int(exceptionStarts[r &+ 1])
        while e < end {
            let xc = x[Int(exceptionColumns[e])]
            s = s.addingProduct(exceptionValues[e], roundingToBFloat16 ? roundedToBFloat16(xc) : xc)
            e &+= 1
        }
        return s
    }

    #if INTERNKIT_FMA
        /// `table` in each 128-bit lane, as `vpshufb` looks it up.
        private var tableVector: TableVector {
            table.withUnsafeBytes { table in
                let lane = table.loadUnaligned(as: __m128i.self)
                #if INTERNKIT_AVX512
                    return _mm512_broadcast_i32x4(lane)
                #else
                    return _mm256_broadcastsi128_si256(lane)
                #endif
            }
        }

        /// Row `r`'s columns `from ..< from + count` (whole chunks) as f32 in the chunks' vector order
        /// (`permuteActivations`), exceptions included.
        func decodeColumns(_ r: Int, from: Int, count: Int, into out: UnsafeMutablePointer<Float>, _ table: TableVector) {
            let row = UnsafeRawPointer(data) + r &* rowBytes + from / 64 &* 96
            for k in 0..<(count / 64) {
                let chunk = row + k &* 96, o = UnsafeMutableRawPointer(out + k &* 64)
                #if INTERNKIT_AVX512
                    let v = decodeChunk(chunk, table)
                    o.storeBytes(of: v.0, as: FloatVector.self)
                    o.storeBytes(of: v.1, toByteOffset: 64, as: FloatVector.self)
                    o.storeBytes(of: v.2, toByteOffset: 128, as: FloatVector.self)
                    o.storeBytes(of: v.3, toByteOffset: 192, as: FloatVector.self)
                #else
                    let (first, second) = decodeChunk(chunk, table)
                    o.storeBytes(of: first.0, as: FloatVector.self)
                    o.storeBytes(of: second.0, toByteOffset: 32, as: FloatVector.self)
                    o.storeBytes(of: first.1, toByteOffset: 64, as: FloatVector.self)
                    o.storeBytes(of: second.1, toByteOffset: 96, as: FloatVector.self)
                    o.storeBytes(of: first.2, toByteOffset: 128, as: FloatVector.self)
                    o.storeBytes(of: second.2, toByteOffset: 160, as: FloatVector.self)
                    o.storeBytes(of: first.3, toByteOffset: 192, as: FloatVector.self)
                    o.storeBytes(of: second.3, toByteOffset: 224, as: FloatVector.self)
                #endif
            }
            for e in Int(exceptionStarts[r])..<Int(exceptionStarts[r + 1]) {
                let c = Int(exceptionColumns[e])
                guard c >= from && c < from + count else { continue }
                let j = c % 64, lane = j / 16, m = j % 16
                out[c - from - j + (m >= 8 ? 32 : 0) + m % 2 * 16 + lane * 4 + m % 8 / 2] = exceptionValues[e]
            }
        }

        #if INTERNKIT_AVX512BF16
            /// Row `r`'s columns `from ..< from + count` (whole chunks) as bf16 in natural column order, exceptions
            /// included: a chunk's bytes interleaved with its top bytes give its words in the order 16l + 0…7
            /// (first vector) and 16l + 8…15 (second) per 128-bit lane l, and one `vpermt2q` per 32 weights puts
            /// the lanes back in order.
            func decodeBFloat16Columns(_ r: Int, from: Int, count: Int, into out: UnsafeMutablePointer<UInt16>, _ table: TableVector) {
                let row = UnsafeRawPointer(data) + r &* rowBytes + from / 64 &* 96
                let firstHalf = unsafeBitCast(SIMD8<Int64>(0, 1, 8, 9, 2, 3, 10, 11), to: __m512i.self)
                let secondHalf = unsafeBitCast(SIMD8<Int64>(4, 5, 12, 13, 6, 7, 14, 15), to: __m512i.self)
                for k in 0..<(count / 64) {
                    let (first, second) = decodeChunkWords(row + k &* 96, table)
                    let o = UnsafeMutableRawPointer(out + k &* 64)
                    o.storeBytes(of: _mm512_permutex2var_epi64(first, firstHalf, second), as: __m512i.self)
                    o.storeBytes(of: _mm512_permutex2var_epi64(first, secondHalf, second), toByteOffset: 64, as: __m512i.self)
                }
                for e in Int(exceptionStarts[r])..<Int(exceptionStarts[r + 1]) {
                    let c = Int(exceptionColumns[e])
                    if c >= from && c < from + count { out[c - from] = UInt16(exceptionValues[e].bitPattern >> 16) }
                }
            }
        #endif

        private func vectorRows(
            _ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ natural: UnsafePointer<Float>, _ T: Int,
            _ range: Range<Int>
        ) {
            let table = tableVector
            let chunks = cols / 64, C = cols
            #if INTERNKIT_AVX512
                let tiledAbove = packedOneRowColumns
            #else
                let tiledAbove = Int.max  // AVX2 runs every row alone (see `packedOneRowColumns`)
            #endif
            walkRows(out, natural, T, range, tiledAbove: tiledAbove, roundingToBFloat16: false) { row, t in
                #if INTERNKIT_AVX512
                    return packedDot4(row, rowBytes, x + t &* C, chunks, table)
                #else
                    preconditionFailure("AVX2 runs no tiles")
                #endif
            } one: { row, t in
                packedDot(row, x + t &* C, chunks, table)
            }
        }

        /// The row walk of the decode kernels over `range`: tiles of 4 rows (`tile(first row, token)` gives their
        /// sums) while rows are longer than `tiledAbove` columns, then one row at a time (`one`); each sum plus its
        /// row's exceptions (their activations rounded to bf16 where `roundingToBFloat16`) into out (T, R).
        @inline(__always)
        private func walkRows(
            _ out: UnsafeMutablePointer<Float>, _ natural: UnsafePointer<Float>, _ T: Int, _ range: Range<Int>,
            tiledAbove: Int, roundingToBFloat16: Bool, tile: (UnsafeRawPointer, Int) -> (Float, Float, Float, Float),
            one: (UnsafeRawPointer, Int) -> Float
        ) {
            let C = cols, R = rows
            var r = range.lowerBound
            if C > tiledAbove {
                while r &+ 4 <= range.upperBound {
                    let row = UnsafeRawPointer(data) + r &* rowBytes
                    for t in 0..<T {
                        let s = tile(row, t)
                        let xt = natural + t &* C, o = out + (t &* R &+ r)
                        o[0] = addingExceptions(s.0, r, xt, roundingToBFloat16: roundingToBFloat16)
                        o[1] = addingExceptions(s.1, r &+ 1, xt, roundingToBFloat16: roundingToBFloat16)
                        o[2] = addingExceptions(s.2, r &+ 2, xt, roundingToBFloat16: roundingToBFloat16)
                        o[3] = addingExceptions(s.3, r &+ 3, xt, roundingToBFloat16: roundingToBFloat16)
                    }
                    r &+= 4
                }
            }
            while r < range.upperBound {
                let row = UnsafeRawPointer(data) + r &* rowBytes
                for t in 0..<T {
                    out[t &* R &+ r] = addingExceptions(one(row, t), r, natural + t &* C, roundingToBFloat16: roundingToBFloat16)
                }
                r &+= 1
            }
        }
    #endif

    #if INTERNKIT_AVX512BF16
        /// `vectorRows` for `multiplyBFloat16`: `x` holds each token's permuted bf16 activations (C words a token).
        private func bfloat16Rows(
            _ out: UnsafeMutablePointer<Float>, _ x: UnsafeRawPointer, _ natural: UnsafePointer<Float>, _ T: Int, _ range: Range<Int>
        ) {
            let table = tableVector
            let chunks = cols / 64, C = cols
            walkRows(out, natural, T, range, tiledAbove: packedOneRowBFloat16Columns, roundingToBFloat16: true) { row, t in
                packedDot4BFloat16(row, rowBytes, x + t &* C &* 2, chunks, table)
            } one: { row, t in
                packedDotBFloat16(row, x + t &* C &* 2, chunks, table)
            }
        }
    #endif
}

/// A weight whose top byte is not in the table.
private struct PackingException {
    var row: Int32
    var col: Int32
    var value: Float
}

/// The table: 0x00, then the 15 most common other top bytes of about 256K weights (whole rows, evenly spaced;
/// a weight the table misses only costs an exception).
private func commonTopBytes(_ weight: UnsafeRawPointer, rows: Int, cols: Int) -> [UInt8] {
    var histogram = [Int](repeating: 0, count: 256)
    let step = max(1, rows / max(1, (1 << 18) / cols))
    for r in stride(from: 0, to: rows, by: step) {
        let row = weight + r * cols * 2
        for c in 0..<cols { histogram[Int(row.loadUnaligned(fromByteOffset: c &* 2, as: UInt16.self) >> 8)] &+= 1 }
    }
    let common = (1..<256).filter { histogram[$0] > 0 }.sorted { (histogram[$0], $1) > (histogram[$1], $0) }.prefix(15)
    return [0] + common.map(UInt8.init) + [UInt8](repeating: 0, count: 15 - common.count)
}

/// `codeOf` (256 entries, 0xFF for an exception) split by the top byte's high nibble, for the AVX2 encoder:
/// per high nibble h that some top byte of the table (0x00 aside) has, 32 bytes: the codes of the top bytes
/// 16h + 0…15 (0 where not in the table), then h sixteen times. Random weights have two (0x3_ and 0xB_).
private func highNibbleTables(_ codeOf: [UInt8]) -> [UInt8] {
    var tables: [UInt8] = []
    for high in 0..<16 {
        let codes = (0..<16).map { low in codeOf[high * 16 + low] == 0xFF ? 0 : codeOf[high * 16 + low] }
        if codes.contains(where: { $0 != 0 }) { tables += codes + [UInt8](repeating: UInt8(high), count: 16) }
    }
    return tables
}

/// One row of bf16 weights into the packed layout; the exceptions are appended to `exceptions`.
private func encodeRow(
    _ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<UInt8>, cols: Int, row: Int, codeOf: UnsafeBufferPointer<UInt8>,
    nibbleTables: UnsafeBufferPointer<UInt8>, exceptions: inout [PackingException]
) {
    @inline(__always) func element(_ c: Int) -> UInt16 { src.loadUnaligned(fromByteOffset: c &* 2, as: UInt16.self) }
    @inline(__always) func record(_ c: Int) {
        exceptions.append(PackingException(row: Int32(row), col: Int32(c), value: Float(bitPattern: UInt32(element(c)) << 16)))
    }
    #if INTERNKIT_AVX512
        // Per chunk: the 128 source bytes split into low and top bytes by two `vpermi2b`; the top bytes'
        // codes looked up in the 256-entry `codeOf` (two `vpermi2b` over its halves, blended by bit 7).
        let table = UnsafeRawPointer(codeOf.baseAddress!)
        let lookup = (
            table.loadUnaligned(as: __m512i.self), table.loadUnaligned(fromByteOffset: 64, as: __m512i.self),
            table.loadUnaligned(fromByteOffset: 128, as: __m512i.self), table.loadUnaligned(fromByteOffset: 192, as: __m512i.self)
        )
        let (evenBytes, oddBytes) = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 128) { index in
            for i in 0..<128 { index[i] = UInt8(i % 64 * 2 + i / 64) }
            return (
                UnsafeRawPointer(index.baseAddress!).loadUnaligned(as: __m512i.self),
                UnsafeRawPointer(index.baseAddress! + 64).loadUnaligned(as: __m512i.self)
            )
        }
        let swapHalves = _mm512_set_epi64(3, 2, 1, 0, 7, 6, 5, 4)
        for k in 0..<(cols / 64) {
            let s = src + k &* 128, d = UnsafeMutableRawPointer(dst + k &* 96)
            let a = s.loadUnaligned(as: __m512i.self), b = s.loadUnaligned(fromByteOffset: 64, as: __m512i.self)
            var low = _mm512_permutex2var_epi8(a, evenBytes, b)
            let top = _mm512_permutex2var_epi8(a, oddBytes, b)
            var codes = _mm512_mask_blend_epi8(
                _mm512_movepi8_mask(top), _mm512_permutex2var_epi8(lookup.0, top, lookup.1),
                _mm512_permutex2var_epi8(lookup.2, top, lookup.3))
            var missing = _mm512_movepi8_mask(codes)  // codes are < 16 but the 0xFF of an exception
            if missing != 0 {
                codes = _mm512_maskz_mov_epi8(~missing, codes)
                low = _mm512_maskz_mov_epi8(~missing, low)
                while missing != 0 {
                    record(k &* 64 &+ missing.trailingZeroBitCount)
                    missing &= missing &- 1
                }
            }
            // Byte j: code j | code j + 32 << 4 (codes < 16, so the 16-bit shift moves no bit across bytes).
            let nibbles = _mm512_or_si512(codes, _mm512_slli_epi16(_mm512_permutexvar_epi64(swapHalves, codes), 4))
            d.storeBytes(of: low, as: __m512i.self)
            d.storeBytes(of: _mm512_castsi512_si256(nibbles), toByteOffset: 64, as: __m256i.self)
        }
    #elseif INTERNKIT_FMA
        // Per half chunk (32 weights, two 32-byte loads): the words' low and high bytes by `vpackuswb` (a
        // permutation of 32-bit lanes restores the order); each top byte's code from the 16-entry table of its
        // high nibble (`vpshufb` on the low nibble), one table per high nibble in use.
        let lowBytes = _mm256_set1_epi16(0x00FF), nibble = _mm256_set1_epi8(0x0F), zero = _mm256_setzero_si256()
        let order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7)
        let tables = UnsafeRawPointer(nibbleTables.baseAddress!), tableCount = nibbleTables.count / 32
        @inline(__always) func encodeHalf(_ s: UnsafeRawPointer, _ d: UnsafeMutableRawPointer, _ firstColumn: Int) -> __m256i {
            let a = s.loadUnaligned(as: __m256i.self), b = s.loadUnaligned(fromByteOffset: 32, as: __m256i.self)
            var low = _mm256_permutevar8x32_epi32(
                _mm256_packus_epi16(_mm256_and_si256(a, lowBytes), _mm256_and_si256(b, lowBytes)), order)
            let top = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(_mm256_srli_epi16(a, 8), _mm256_srli_epi16(b, 8)), order)
            let high = _mm256_and_si256(_mm256_srli_epi16(top, 4), nibble), lowNibble = _mm256_and_si256(top, nibble)
            var codes = zero
            for t in 0..<tableCount {
                let entry = tables + t &* 32
                let match = _mm256_cmpeq_epi8(high, entry.loadUnaligned(fromByteOffset: 16, as: __m128i.self).broadcast256)
                let lookup = _mm256_shuffle_epi8(entry.loadUnaligned(as: __m128i.self).broadcast256, lowNibble)
                codes = _mm256_or_si256(codes, _mm256_and_si256(match, lookup))
            }
            let missingBytes = _mm256_andnot_si256(_mm256_cmpeq_epi8(top, zero), _mm256_cmpeq_epi8(codes, zero))
            var missing = UInt32(bitPattern: _mm256_movemask_epi8(missingBytes))
            if missing != 0 {
                low = _mm256_andnot_si256(missingBytes, low)
                while missing != 0 {
                    record(firstColumn &+ missing.trailingZeroBitCount)
                    missing &= missing &- 1
                }
            }
            d.storeBytes(of: low, as: __m256i.self)
            return codes
        }
        for k in 0..<(cols / 64) {
            let s = src + k &* 128, d = UnsafeMutableRawPointer(dst + k &* 96)
            let first = encodeHalf(s, d, k &* 64), second = encodeHalf(s + 64, d + 32, k &* 64 &+ 32)
            d.storeBytes(of: _mm256_or_si256(first, _mm256_slli_epi16(second, 4)), toByteOffset: 64, as: __m256i.self)
        }
    #else
        for k in 0..<(cols / 64) {
            let d = dst + k &* 96
            for j in 0..<64 {
                let c = k &* 64 &+ j, w = element(c)
                var code = codeOf[Int(w >> 8)], low = UInt8(truncatingIfNeeded: w)
                if code == 0xFF {
                    (code, low) = (0, 0)
                    record(c)
                }
                d[j] = low
                if j < 32 { d[64 &+ j] = code } else { d[32 &+ j] |= code << 4 }
            }
        }
    #endif
}

#if INTERNKIT_FMA && !INTERNKIT_AVX512
    extension __m128i {
        /// These 16 bytes in both 128-bit lanes.
        @inline(__always) fileprivate var broadcast256: __m256i { _mm256_broadcastsi128_si256(self) }
    }
#endif

/// Reorders one token's activations to match the four vectors a chunk decodes to: per chunk of 64, vector 0
/// holds weights 16l + 2d (lane 4l + d), vector 1 weights 16l + 2d + 1, vectors 2 and 3 the same plus 8.
func permuteActivations(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, cols: Int) {
    for chunk in stride(from: 0, to: cols, by: 64) {
        for lane in 0..<4 {
            for d in 0..<4 {
                let p = out + chunk + lane * 4 + d, source = x + chunk + lane * 16 + 2 * d
                p[0] = source[0]
                p[16] = source[1]
                p[32] = source[8]
                p[48] = source[9]
            }
        }
    }
}

#if INTERNKIT_AVX512
    typealias TableVector = __m512i

    /// The 64 weights of a chunk as bf16 words: in each 128-bit lane l, weights 16l + 0…7 (first) and
    /// 16l + 8…15 (second).
    @inline(__always)
    private func decodeChunkWords(_ chunk: UnsafeRawPointer, _ table: __m512i) -> (__m512i, __m512i) {
        let low = chunk.loadUnaligned(as: __m512i.self)
        let nibbles = _mm512_broadcast_i64x4(chunk.loadUnaligned(fromByteOffset: 64, as: __m256i.self))
        // Words 16…31 (the upper 32 bytes) shifted right by 4: their bytes then hold the high nibbles.
        let codes = _mm512_and_si512(_mm512_mask_srli_epi16(nibbles, 0xFFFF_0000, nibbles, 4), _mm512_set1_epi8(0x0F))
        let top = _mm512_shuffle_epi8(table, codes)
        return (_mm512_unpacklo_epi8(low, top), _mm512_unpackhi_epi8(low, top))
    }

    /// The 64 weights of a chunk as four f32 vectors, in `permuteActivations`' order.
    @inline(__always)
    private func decodeChunk(_ chunk: UnsafeRawPointer, _ table: __m512i) -> (FloatVector, FloatVector, FloatVector, FloatVector) {
        let (first, second) = decodeChunkWords(chunk, table)
        let odd = _mm512_set1_epi32(Int32(bitPattern: 0xFFFF_0000))
        return (
            unsafeBitCast(_mm512_slli_epi32(first, 16), to: FloatVector.self),
            unsafeBitCast(_mm512_and_si512(first, odd), to: FloatVector.self),
            unsafeBitCast(_mm512_slli_epi32(second, 16), to: FloatVector.self),
            unsafeBitCast(_mm512_and_si512(second, odd), to: FloatVector.self)
        )
    }

    /// One row against one token's permuted activations: four accumulators, one per decoded vector.
    @inline(__always)
    private func packedDot(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ chunks: Int, _ table: __m512i) -> Float {
        var a0 = FloatVector(), a1 = a0, a2 = a0, a3 = a0
        var k = 0
        while k < chunks {
            let (v0, v1, v2, v3) = decodeChunk(row + k &* 96, table)
            let xk = x + k &* 64
            a0 = madd(a0, v0, loadVector(xk, 0))
            a1 = madd(a1, v1, loadVector(xk, 16))
            a2 = madd(a2, v2, loadVector(xk, 32))
            a3 = madd(a3, v3, loadVector(xk, 48))
            k &+= 1
        }
        return laneSum((a0 + a1) + (a2 + a3))
    }

    /// Four consecutive rows against one token, sharing each activation load: one accumulator per row.
    @inline(__always)
    private func packedDot4(
        _ row: UnsafeRawPointer, _ rowBytes: Int, _ x: UnsafePointer<Float>, _ chunks: Int, _ table: __m512i
    ) -> (Float, Float, Float, Float) {
        var a0 = FloatVector(), a1 = a0, a2 = a0, a3 = a0
        @inline(__always) func add(_ acc: FloatVector, _ chunk: UnsafeRawPointer, _ x: (FloatVector, FloatVector, FloatVector, FloatVector)) -> FloatVector {
            let v = decodeChunk(chunk, table)
            return madd(madd(madd(madd(acc, v.0, x.0), v.1, x.1), v.2, x.2), v.3, x.3)
        }
        var k = 0
        while k < chunks {
            let xk = x + k &* 64
            let xv = (loadVector(xk, 0), loadVector(xk, 16), loadVector(xk, 32), loadVector(xk, 48))
            let chunk = row + k &* 96
            a0 = add(a0, chunk, xv)
            a1 = add(a1, chunk + rowBytes, xv)
            a2 = add(a2, chunk + 2 &* rowBytes, xv)
            a3 = add(a3, chunk + 3 &* rowBytes, xv)
            k &+= 1
        }
        return (laneSum(a0), laneSum(a1), laneSum(a2), laneSum(a3))
    }
#endif

#if INTERNKIT_AVX512BF16
    /// Rows of up to this many columns run one at a time in `multiplyBFloat16`: the same 16 KiB of activations in L1
    /// as `packedOneRowColumns`, at 2 bytes a column (C prototype, 2 Zen 4 threads, 8192 columns: one row 21.4
    /// Gweights/s, tiles of 4 rows 20.6).
    let packedOneRowBFloat16Columns = 2 * packedOneRowColumns

    /// One token's activations rounded to bf16 in the order of a chunk's two word vectors (`decodeChunkWords`): per
    /// chunk of 64, word 8l + j is column 16l + j and word 32 + 8l + j column 16l + 8 + j (l < 4, j < 8).
    func permuteActivationsBFloat16(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<UInt16>, cols: Int) {
        for chunk in stride(from: 0, to: cols, by: 64) {
            for lane in 0..<4 {
                for j in 0..<8 {
                    out[chunk + 8 * lane + j] = bfloat16Bits(x[chunk + 16 * lane + j])
                    out[chunk + 32 + 8 * lane + j] = bfloat16Bits(x[chunk + 16 * lane + 8 + j])
                }
            }
        }
    }

    /// One row against one token's permuted bf16 activations (128 bytes a chunk): two `vdpbf16ps` chains, one per
    /// word vector.
    @inline(__always)
    private func packedDotBFloat16(_ row: UnsafeRawPointer, _ x: UnsafeRawPointer, _ chunks: Int, _ table: __m512i) -> Float {
        var a0 = FloatVector(), a1 = a0
        var k = 0
        while k < chunks {
            let (first, second) = decodeChunkWords(row + k &* 96, table)
            let xk = x + k &* 128
            a0 = intern_dpbf16(a0, first, xk.loadUnaligned(as: __m512i.self))
            a1 = intern_dpbf16(a1, second, xk.loadUnaligned(fromByteOffset: 64, as: __m512i.self))
            k &+= 1
        }
        return laneSum(a0 + a1)
    }

    /// Four consecutive rows against one token, sharing each activation load: one chain per row.
    @inline(__always)
    private func packedDot4BFloat16(
        _ row: UnsafeRawPointer, _ rowBytes: Int, _ x: UnsafeRawPointer, _ chunks: Int, _ table: __m512i
    ) -> (Float, Float, Float, Float) {
        var a0 = FloatVector(), a1 = a0, a2 = a0, a3 = a0
        @inline(__always) func add(_ acc: FloatVector, _ chunk: UnsafeRawPointer, _ x0: __m512i, _ x1: __m512i) -> FloatVector {
            let (first, second) = decodeChunkWords(chunk, table)
            return intern_dpbf16(intern_dpbf16(acc, first, x0), second, x1)
        }
        var k = 0
        while k < chunks {
            let xk = x + k &* 128
            let x0 = xk.loadUnaligned(as: __m512i.self), x1 = xk.loadUnaligned(fromByteOffset: 64, as: __m512i.self)
            let chunk = row + k &* 96
            a0 = add(a0, chunk, x0, x1)
            a1 = add(a1, chunk + rowBytes, x0, x1)
            a2 = add(a2, chunk + 2 &* rowBytes, x0, x1)
            a3 = add(a3, chunk + 3 &* rowBytes, x0, x1)
            k &+= 1
        }
        return (laneSum(a0), laneSum(a1), laneSum(a2), laneSum(a3))
    }
#endif

#if INTERNKIT_FMA && !INTERNKIT_AVX512
    typealias TableVector = __m256i

    /// Half a chunk (32 weights: low bytes at `low`, their codes in the bytes of `codes`) as four f32 vectors,
    /// the lanes 0–1 (first half) or 2–3 (second half) of the AVX-512 decode: the same activation order.
    @inline(__always)
    private func decodeHalf(_ low: UnsafeRawPointer, _ codes: __m256i, _ table: __m256i) -> (FloatVector, FloatVector, FloatVector, FloatVector) {
        let bytes = low.loadUnaligned(as: __m256i.self)
        let top = _mm256_shuffle_epi8(table, codes)
        let first = _mm256_unpacklo_epi8(bytes, top), second = _mm256_unpackhi_epi8(bytes, top)
        let odd = _mm256_set1_epi32(Int32(bitPattern: 0xFFFF_0000))
        return (
            unsafeBitCast(_mm256_slli_epi32(first, 16), to: FloatVector.self),
            unsafeBitCast(_mm256_and_si256(first, odd), to: FloatVector.self),
            unsafeBitCast(_mm256_slli_epi32(second, 16), to: FloatVector.self),
            unsafeBitCast(_mm256_and_si256(second, odd), to: FloatVector.self)
        )
    }

    /// The 64 weights of a chunk as two halves of four f32 vectors; vector k of half h meets the permuted
    /// activations 16k + 8h…16k + 8h + 7.
    @inline(__always)
    private func decodeChunk(
        _ chunk: UnsafeRawPointer, _ table: __m256i
    ) -> ((FloatVector, FloatVector, FloatVector, FloatVector), (FloatVector, FloatVector, FloatVector, FloatVector)) {
        let nibbles = chunk.loadUnaligned(fromByteOffset: 64, as: __m256i.self), mask = _mm256_set1_epi8(0x0F)
        return (
            decodeHalf(chunk, _mm256_and_si256(nibbles, mask), table),
            decodeHalf(chunk + 32, _mm256_and_si256(_mm256_srli_epi16(nibbles, 4), mask), table)
        )
    }

    /// One row against one token's permuted activations: four accumulators, one per decoded vector index
    /// (each takes both halves of a chunk in turn).
    @inline(__always)
    private func packedDot(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ chunks: Int, _ table: __m256i) -> Float {
        var a0 = FloatVector(), a1 = a0, a2 = a0, a3 = a0
        var k = 0
        while k < chunks {
            prefetch(row + (k &* 96 &+ prefetchDistance), bytes: 96)
            let (first, second) = decodeChunk(row + k &* 96, table)
            let xk = x + k &* 64
            a0 = madd(a0, first.0, loadVector(xk, 0))
            a1 = madd(a1, first.1, loadVector(xk, 16))
            a2 = madd(a2, first.2, loadVector(xk, 32))
            a3 = madd(a3, first.3, loadVector(xk, 48))
            a0 = madd(a0, second.0, loadVector(xk, 8))
            a1 = madd(a1, second.1, loadVector(xk, 24))
            a2 = madd(a2, second.2, loadVector(xk, 40))
            a3 = madd(a3, second.3, loadVector(xk, 56))
            k &+= 1
        }
        return laneSum((a0 + a1) + (a2 + a3))
    }
#endif

#if INTERNKIT_FMA
    /// A packed matrix's rows for the prefill GEMM (whole chunks of 64 per block: `gemmDepth` is a multiple).
    struct PackedRows: GEMMWeightRows {
        let matrix: PackedBFloat16Matrix
        let table: TableVector

        @inline(__always)
        func convert(row: Int, from: Int, count: Int, into out: UnsafeMutablePointer<Float>) {
            matrix.decodeColumns(row, from: from, count: count, into: out, table)
        }
    }
#endif

#if INTERNKIT_AVX512BF16
    extension PackedRows: GEMMBFloat16Rows {
        @inline(__always)
        func convertBFloat16(row: Int, from: Int, count: Int, into out: UnsafeMutablePointer<UInt16>) {
            matrix.decodeBFloat16Columns(row, from: from, count: count, into: out, table)
        }
    }
#endif
