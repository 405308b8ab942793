// swift-tools-version:6.0
// dmilo: diffusion-prior image reconstruction (DMILO / DMILO-PGD) as a systemd spool daemon.
//
// One module per concern (see README "Architecture"):
//   CDMiloSIMD    C: CPUID dispatch, int8/bf16 GEMMs with portable references (baseline x86-64 build)
//   DMiloKernels  tensor kernels, each forward beside its VJP (OpenBLAS GEMM; int8/bf16 GEMMs from CDMiloSIMD), threads
//   DMiloFormats  on-disk formats: safetensors, GGUF, NPY (one reader/writer per format)
//   DMiloImage    PNG I/O (libpng simplified API), montage, PSNR/SSIM
//   DMiloModel    ModelFile + ModelPool; UNetRuntime (forward + input VJP) with UNet2DModel / ADMUNet as wiring;
//                 noise schedule; low-precision weight packing and its accuracy gate
//   DMiloOperators sensor physics A(x) with adjoints / VJPs
//   DMiloSolvers  DDIM steps, DMILO, DMILO-PGD, DMPlug, DPS, classical baselines
//   DMiloJobs     manifest, one reconstruction job end to end (shared by `dmilo reconstruct` and `dmilod`)
//   DMiloSpool    spool protocol (daemon and client side: dmilo submit/wait/status/cancel), inotify, job worker processes, systemd notify/watchdog, metrics
//   DMiloVersion  version, git commit and build date (CDMiloVersion holds the stamped strings)
//   DMiloQuantization (Quantization/) F32/F16/Q8_0 conversion policy and reports
//   DMiloBench    `dmilo bench …` (speed, memory, quality, throughput tables): tooling, not product
import PackageDescription

// Kernels are hot loops: drop overflow/bounds checks in release builds only (debug keeps them for tests).
// Only the modules that run the UNet and the solvers' inner loops get it; every module that parses or plans from
// client input (Formats, Image, Operators, Jobs, Spool) keeps Swift's overflow and bounds checks in release too,
// so a size in a manifest or a file header can never wrap silently.
let fast: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release))]
let checked: [SwiftSetting] = []

let package = Package(
    name: "dmilo",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "dmilo", targets: ["dmilo"]),
        .executable(name: "dmilod", targets: ["dmilod"]),
        .executable(name: "dmilo-quantize", targets: ["dmilo-quantize"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
    ],
    targets: [
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),

        // Semantic version + git commit + build date (the Makefile stamps commit and date; see version.c).
        .target(name: "CDMiloVersion"),
        .target(name: "DMiloVersion", dependencies: ["CDMiloVersion"]),

        // SIMD kernels (int8 VNNI/AVX2, bf16) chosen at run time from CPUID; portable C reference beside each.
        // -O2 in debug builds too: the accuracy-gate tests run whole UNet passes through these kernels.
        .target(name: "CDMiloSIMD", cSettings: [.unsafeFlags(["-O2", "-std=c11"])]),
        .target(name: "DMiloKernels", dependencies: ["COpenBLAS", "CDMiloSIMD"], swiftSettings: fast),
        .target(name: "DMiloFormats", dependencies: ["DMiloKernels"], swiftSettings: checked),
        .target(name: "DMiloImage", dependencies: ["CPNG", "DMiloKernels"], swiftSettings: checked),
        .target(name: "DMiloModel", dependencies: ["DMiloKernels", "DMiloFormats"], swiftSettings: fast),
        .target(name: "DMiloOperators", dependencies: ["DMiloKernels", "DMiloFormats"], swiftSettings: checked),
        .target(name: "DMiloSolvers", dependencies: ["DMiloKernels", "DMiloModel", "DMiloOperators"], swiftSettings: fast),
        .target(
            name: "DMiloJobs",
            dependencies: [
                "DMiloKernels", "DMiloFormats", "DMiloImage", "DMiloModel", "DMiloOperators", "DMiloSolvers",
                "DMiloVersion",
            ],
            swiftSettings: checked),
        .target(
            name: "DMiloSpool",
            dependencies: [
                "DMiloJobs", "CSystemd", "DMiloVersion",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .target(
            name: "DMiloQuantization", dependencies: ["DMiloKernels", "DMiloFormats", "DMiloModel"],
            path: "Quantization/DMiloQuantization", swiftSettings: fast),

        .target(
            name: "DMiloBench",
            dependencies: [
                "DMiloJobs", "DMiloSolvers", "DMiloOperators", "DMiloModel", "DMiloImage", "DMiloFormats",
                "DMiloKernels", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        .executableTarget(
            name: "dmilo",
            dependencies: [
                "DMiloBench", "DMiloJobs", "DMiloSpool", "DMiloSolvers", "DMiloModel", "DMiloImage",
                "DMiloFormats", "DMiloKernels", "DMiloVersion",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: fast),
        .executableTarget(
            name: "dmilod",
            dependencies: [
                "DMiloSpool", "DMiloJobs", "DMiloKernels", "DMiloVersion",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // Test only (not a product, never installed): dmilod with a model-free runner for DMiloSpoolTests.
        .executableTarget(
            name: "dmilod-test",
            dependencies: ["DMiloSpool", "DMiloJobs", "DMiloKernels", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(
            name: "dmilo-quantize",
            dependencies: ["DMiloQuantization", "DMiloVersion", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Quantization/dmilo-quantize"),

        .testTarget(name: "DMiloKernelsTests", dependencies: ["DMiloKernels", "CDMiloSIMD"]),
        .testTarget(name: "DMiloFormatsTests", dependencies: ["DMiloFormats"], resources: [.copy("Fixtures")]),
        .testTarget(name: "DMiloImageTests", dependencies: ["DMiloImage"], resources: [.copy("Fixtures")]),
        .testTarget(name: "DMiloModelTests", dependencies: ["DMiloModel"], resources: [.copy("Fixtures")]),
        .testTarget(name: "DMiloOperatorsTests", dependencies: ["DMiloOperators"], resources: [.copy("Fixtures")]),
        .testTarget(name: "DMiloSolversTests", dependencies: ["DMiloSolvers"]),
        .testTarget(
            name: "DMiloJobsTests", dependencies: ["DMiloJobs", "DMiloSolvers", "DMiloOperators", "DMiloModel"],
            exclude: ["Fixtures"]),
        .testTarget(name: "DMiloSpoolTests", dependencies: ["DMiloSpool"]),
        // Seeded mutations of manifests, NPY and PNG files through the daemon's readers (`make fuzz` for a long run).
        .testTarget(name: "DMiloFuzzTests", dependencies: ["DMiloJobs", "DMiloImage", "DMiloFormats", "DMiloOperators", "DMiloSolvers", "DMiloKernels"]),
        .testTarget(name: "BundledModelTests", dependencies: ["DMiloModel", "DMiloImage"]),
        .testTarget(name: "DMiloQuantizationTests", dependencies: ["DMiloQuantization", "DMiloModel", "DMiloFormats"]),
        // Runs the built `dmilo` executable as a child process (no module dependencies: it tests the CLI from outside).
        .testTarget(name: "DMiloCLITests", dependencies: ["DMiloFormats"]),
    ]
)
