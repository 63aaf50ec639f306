// swift-tools-version:6.0
// Why InternKernels prefetches in software (Sources/CPrefetch): the decode kernels' access patterns over a
// 190 MB bf16 matrix, with and without `intern_prefetch` (the same C target, by a symbolic link), one core.
// Run: swift run -c release --package-path Benchmarks/prefetch prefetch-bench [cols]
import PackageDescription

#if arch(x86_64)
    let vectorFlags = ["-target-cpu", "haswell"]  // AVX2 + FMA, as InternKernels' haswell tier
#else
    let vectorFlags: [String] = []
#endif

let package = Package(
    name: "prefetch-bench",
    targets: [
        .target(name: "CPrefetch"),
        .executableTarget(
            name: "prefetch-bench", dependencies: ["CPrefetch"],
            swiftSettings: [.unsafeFlags(["-Ounchecked"] + vectorFlags)]),
    ],
    swiftLanguageModes: [.v5]  // a script: top-level globals, one thread
)
