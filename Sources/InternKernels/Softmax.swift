// Softmax over one vector in place, max-subtracted so large logits cannot overflow exp. Strategy:
// SIMD8 passes: max, exp (`exp8`: Cephes' range reduction and degree-5 polynomial, within 2 ulp of expf;
// attention computes one per cached position, so libm's scalar expf was a tenth of prefill), scale.
// Single-threaded (one row of attention scores or one vocabulary of logits per call). n = elements.
import Foundation

#if INTERNKIT_FMA
    import _Builtin_intrinsics.intel
#endif

/// x (n) = softmax(x). Does nothing for n = 0.
public func softmax(_ x: UnsafeMutablePointer<Float>, count n: Int) {
    guard n > 0 else { return }
    let n8 = n & ~7
    // The maximum is exact in any order, so the vector pass changes no result.
    var maxima = SIMD8<Float>(repeating: -.infinity)
    var i = 0
    while i < n8 {
        let v = load8(x, i)
        maxima.replace(with: v, where: v .> maxima)  // compare and blend (NaNs skipped, as below)
        i += 8
    }
    var maximum = laneMax(maxima)
    while i < n {
        if x[i] > maximum { maximum = x[i] }
        i += 1
    }
    var sums = SIMD8<Float>()
    i = 0
    while i < n8 {
        let e = exp8(load8(x, i) - SIMD8(repeating: maximum))
        store8(x, i, e)
        sums += e
        i += 8
    }
    var sum = sums.sum()
    while i < n {
        let e = expf(x[i] - maximum)
        x[i] = e
        sum += e
        i += 1
    }
    let inverse = 1 / sum
    i = 0
    while i < n8 {
        store8(x, i, load8(x, i) * inverse)
        i += 8
    }
    while i < n {
        x[i] *= inverse
        i += 1
    }
}

/// The largest lane (a fixed tree of pairwise maxima, in registers).
@inline(__always)
func laneMax(_ v: SIMD8<Float>) -> Float {
    let four = v.lowHalf.replacing(with: v.highHalf, where: v.highHalf .> v.lowHalf)
    let two = four.lowHalf.replacing(with: four.highHalf, where: four.highHalf .> four.lowHalf)
    return two[1] > two[0] ? two[1] : two[0]
}

/// The reference for `softmax`, in Double.
public func softmaxReference(_ x: UnsafeMutablePointer<Float>, count n: Int) {
    guard n > 0 else { return }
    var maximum = -Double.infinity
    for i in 0..<n { maximum = max(maximum, Double(x[i])) }
    var values = [Double](repeating: 0, count: n)
    for i in 0..<n { values[i] = exp(Double(x[i]) - maximum) }
    let sum = values.reduce(0, +)
    for i in 0..<n { x[i] = Float(values[i] / sum) }
}

/// e^x lane by lane for x ≤ 0 (softmax's max-subtracted inputs; below −87.3 it returns e^−87.3 ≈ 1e−38):
/// x = n·ln2 + r with |r| ≤ ln2/2, e^r by Cephes' expf polynomial, then 2^n put into the exponent bits.
@inline(__always) @usableFromInline
func exp8(_ x: SIMD8<Float>) -> SIMD8<Float> {
    #if INTERNKIT_FMA
        // Intrinsics: the generic SIMD rounding and conversions are not specialized into vector code.
        let x = _mm256_max_ps(unsafeBitCast(x, to: __m256.self), _mm256_set1_ps(-87.3))
        let ni = _mm256_cvtps_epi32(_mm256_mul_ps(x, _mm256_set1_ps(1.442_695_04)))
        let n = _mm256_cvtepi32_ps(ni)
        // ln 2 in two parts so n·ln2 is exact enough.
        var r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_375), x)
        r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r)
        var p = _mm256_set1_ps(1.987_569_15e-4)
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.398_199_95e-3))
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.333_451_9e-3))
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.166_579_6e-2))
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.666_666_55e-1))
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.000_000_1e-1))
        let er = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1))
        let twoN = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(ni, _mm256_set1_epi32(127)), 23))
        return unsafeBitCast(_mm256_mul_ps(er, twoN), to: SIMD8<Float>.self)
    #else
        let x = pointwiseMax(x, SIMD8(repeating: -87.3))
        let n = (x * 1.442_695_04).rounded(.toNearestOrEven)
        var r = x - n * 0.693_359_375
        r = r - n * -2.121_944_4e-4
        var p = SIMD8<Float>(repeating: 1.987_569_15e-4)
        p = p * r + 1.398_199_95e-3
        p = p * r + 8.333_451_9e-3
        p = p * r + 4.166_579_6e-2
        p = p * r + 1.666_666_55e-1
        p = p * r + 5.000_000_1e-1
        let er = p * (r * r) + r + 1
        let bits = (SIMD8<Int32>(n, rounding: .towardZero) &+ 127) &<< 23
        return er * unsafeBitCast(bits, to: SIMD8<Float>.self)
    #endif
}
