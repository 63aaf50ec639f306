// swift-tools-version:6.0
// InternKit: a Swift-native toolkit for the InternLM2 family. Layout and habits: ../shared/STYLE.md.
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

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
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .target(name: "InternTokenizer", swiftSettings: swiftSettings),
        .target(name: "InternKernels", swiftSettings: swiftSettings),
        .target(name: "InternCore", dependencies: ["InternKernels"], swiftSettings: swiftSettings),
        .target(
            name: "InternModels", dependencies: ["InternCore", "InternKernels", "InternTokenizer"], swiftSettings: swiftSettings),
        .target(
            name: "InternEngine",
            dependencies: ["InternModels", "InternCore", "InternKernels", "InternTokenizer"],
            swiftSettings: swiftSettings
        ),
        .target(name: "InternChat", dependencies: ["InternTokenizer"], swiftSettings: swiftSettings),
        .target(name: "InternEval", dependencies: ["InternEngine", "InternModels"], swiftSettings: swiftSettings),
        .executableTarget(
            name: "InternCLI",
            dependencies: [
                "InternTokenizer", "InternChat", "InternCore", "InternModels", "InternEngine", "InternEval", "InternData",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
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
        .testTarget(name: "InternEvalTests", dependencies: ["InternEval", "InternModels", "InternEngine"], swiftSettings: swiftSettings),
        .testTarget(name: "InternKernelsTests", dependencies: ["InternKernels"], swiftSettings: swiftSettings),
        .testTarget(name: "InternCoreTests", dependencies: ["InternCore"], swiftSettings: swiftSettings),
        .testTarget(
            name: "InternModelsTests",
            dependencies: ["InternModels", "InternEngine", "InternCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "InternEngineTests",
            dependencies: ["InternEngine", "InternModels", "InternCore"],
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
        .target(name: "InternData", dependencies: ["CZlib", "CZstd", "CMinHash"], swiftSettings: swiftSettings),
        .testTarget(name: "InternDataTests", dependencies: ["InternData"], swiftSettings: swiftSettings),
    ]
)
