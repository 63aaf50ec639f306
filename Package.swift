// swift-tools-version:6.0
// InternKit: a Swift-native toolkit for the InternLM2 family. Layout and habits: ../shared/STYLE.md.
import Foundation
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

/// The hot loops are compiled with -O in debug builds too, so that `swift test` and the server's
/// end-to-end tests run a model at a usable speed (unoptimized generic SIMD code is ~100x slower).
let optimizedInDebug: [SwiftSetting] = swiftSettings + [.unsafeFlags(["-O"], .when(configuration: .debug))]

// The kernels are compiled for the CPU's wide vectors where the host allows it. Swift on Linux x86-64
// targets baseline x86-64 (SSE2, no FMA): SIMD8<Float> becomes two SSE ops and `addingProduct` a libm
// call. So on x86-64 Linux InternKernels is built for one of three tiers, like llama.cpp's GGML_NATIVE:
//   avx512    `-target-cpu icelake-server` + INTERNKIT_AVX512: 512-bit vectors (32 registers), AVX-512 VNNI
//             int16 dot products (vpdpwssd); chosen when the host's /proc/cpuinfo lists avx512f, avx512bw,
//             avx512vl, avx512dq, avx512_vnni and avx512vbmi (Intel since Ice Lake, AMD Zen 4).
//   haswell   `-target-cpu haswell` (AVX2, FMA, F16C, BMI2: Intel since 2013, every AMD Zen).
//   portable  baseline x86-64 (runs anywhere; the kernels' generic SIMD path).
// Both vector tiers define INTERNKIT_FMA (fused multiply-adds, AVX2 intrinsics). INTERNKIT_CPU=avx512|
// haswell|portable overrides the choice (a binary built for avx512 needs such a CPU to run);
// INTERNKIT_PORTABLE=1 is the same as INTERNKIT_CPU=portable. macOS/arm64 needs no flag: NEON and FMA
// are baseline there.
#if arch(x86_64)
    let hostFlags: Set<String>? = {
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let flagsLine = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
        else { return nil }
        return Set(flagsLine.split(separator: " ").map(String.init))
    }()
    let hostTier: String = {
        let environment = ProcessInfo.processInfo.environment
        if environment["INTERNKIT_PORTABLE"] != nil { return "portable" }
        if let tier = environment["INTERNKIT_CPU"] { return tier }
        guard let flags = hostFlags else { return "haswell" }
        let avx512 = ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512vbmi"]
        return avx512.allSatisfy(flags.contains) ? "avx512" : flags.contains("avx2") && flags.contains("fma") ? "haswell" : "portable"
    }()
    // AVX512-BF16 (Intel since Cooper Lake, AMD Zen 4) on top of the avx512 tier, where the host has it:
    // `vdpbf16ps` for bf16 prefill, through the CBFloat16 header (Swift cannot import `__m512bh`).
    let hostHasBF16 = hostTier == "avx512" && hostFlags?.contains("avx512_bf16") == true
    let kernelSettings: [SwiftSetting] =
        switch hostTier {
        case "avx512":
            [
                .unsafeFlags(["-target-cpu", "icelake-server"] + (hostHasBF16 ? ["-Xcc", "-mavx512bf16"] : []), .when(platforms: [.linux])),
                .define("INTERNKIT_FMA", .when(platforms: [.linux])),
                .define("INTERNKIT_AVX512", .when(platforms: [.linux])),
            ] + (hostHasBF16 ? [.define("INTERNKIT_AVX512BF16", .when(platforms: [.linux]))] : [])
        case "haswell":
            [
                .unsafeFlags(["-target-cpu", "haswell"], .when(platforms: [.linux])),
                .define("INTERNKIT_FMA", .when(platforms: [.linux])),
            ]
        default: []
        }
#else
    let kernelSettings: [SwiftSetting] = []
#endif

let package = Package(
    name: "InternKit",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "intern", targets: ["InternCLI"]),
        .library(name: "InternTokenizer", targets: ["InternTokenizer"]),
        .library(name: "InternChat", targets: ["InternChat"]),
        .library(name: "InternKernels", targets: ["InternKernels"]),
        .library(name: "InternCore", targets: ["InternCore"]),
        .library(name: "InternModels", targets: ["InternModels"]),
        .library(name: "InternEngine", targets: ["InternEngine"]),
        .library(name: "InternEval", targets: ["InternEval"]),
        .library(name: "InternData", targets: ["InternData"]),
        .library(name: "InternServer", targets: ["InternServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.2.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        .target(name: "InternTokenizer", swiftSettings: swiftSettings),
        .target(
            name: "InternKernels", dependencies: ["CPrefetch", "CBFloat16", .product(name: "Atomics", package: "swift-atomics")],
            swiftSettings: optimizedInDebug + kernelSettings),
        .target(name: "InternCore", dependencies: ["InternKernels"], swiftSettings: swiftSettings),
        .target(
            name: "InternModels", dependencies: ["InternCore", "InternKernels", "InternTokenizer"], swiftSettings: optimizedInDebug),
        .target(
            name: "InternEngine",
            dependencies: ["InternModels", "InternCore", "InternKernels", "InternTokenizer"],
            swiftSettings: optimizedInDebug
        ),
        .target(name: "InternChat", dependencies: ["InternTokenizer"], swiftSettings: swiftSettings),
        .target(name: "InternEval", dependencies: ["InternEngine", "InternModels", "InternKernels"], swiftSettings: swiftSettings),
        .target(
            name: "InternServer",
            dependencies: [
                "InternChat", "InternEngine", "InternModels", "InternCore", "InternKernels", "InternTokenizer",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "InternCLI",
            dependencies: [
                "InternTokenizer", "InternChat", "InternCore", "InternKernels", "InternModels", "InternEngine", "InternEval", "InternData",
                "InternServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "InternTokenizerTests",
            dependencies: ["InternTokenizer"],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "InternChatTests", dependencies: ["InternChat"], swiftSettings: swiftSettings),
        // Runs the built `intern` binary as a user would; depends on it so it is built first.
        .testTarget(name: "InternCLITests", dependencies: ["InternCLI"], swiftSettings: swiftSettings),
        .testTarget(
            name: "InternEvalTests", dependencies: ["InternEval", "InternModels", "InternEngine", "InternData", "InternTokenizer", "InternCore"],
            swiftSettings: swiftSettings),
        .testTarget(name: "InternKernelsTests", dependencies: ["InternKernels"], swiftSettings: swiftSettings),
        .testTarget(name: "InternCoreTests", dependencies: ["InternCore"], swiftSettings: swiftSettings),
        .testTarget(
            name: "InternModelsTests",
            dependencies: ["InternModels", "InternEngine", "InternCore", "InternKernels"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "InternServerTests",
            dependencies: [
                "InternServer", "InternModels", "InternEngine", "InternChat", "InternTokenizer",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "InternEngineTests",
            dependencies: ["InternEngine", "InternModels", "InternCore", "InternKernels", "InternTokenizer"],
            swiftSettings: swiftSettings
        ),
        .systemLibrary(
            name: "CZlib",
            path: "Sources/CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]
        ),
        .systemLibrary(
            name: "CZstd",
            path: "Sources/CZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"]), .brew(["zstd"])]
        ),
        .target(name: "CMinHash"),
        // Swift cannot emit a prefetch instruction; the decode kernels' one C helper (Benchmarks/prefetch).
        .target(name: "CPrefetch"),
        .target(name: "CBFloat16"),
        .target(
            name: "InternData", dependencies: ["CZlib", "CZstd", "CMinHash", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings),
        .testTarget(name: "InternDataTests", dependencies: ["InternData"], swiftSettings: swiftSettings),
    ]
)
