// swift-tools-version:5.9
// The Swift package of guanxi. Its sources are generated from the built library by
// bindings/swift/run-tests.sh (never committed): Sources/GuanxiFFI gets the C header and module
// map, Sources/Guanxi the Swift bindings. GUANXI_LIB_DIR names the folder holding
// libguanxi_uniffi.so.
import Foundation
import PackageDescription

let libDir = ProcessInfo.processInfo.environment["GUANXI_LIB_DIR"] ?? "../../target/debug"

let package = Package(
    name: "Guanxi",
    products: [.library(name: "Guanxi", targets: ["Guanxi"])],
    targets: [
        .systemLibrary(name: "GuanxiFFI", path: "Sources/GuanxiFFI"),
        .target(
            name: "Guanxi",
            dependencies: ["GuanxiFFI"],
            path: "Sources/Guanxi",
            linkerSettings: [
                .linkedLibrary("guanxi_uniffi"),
                .unsafeFlags(["-L", libDir, "-Xlinker", "-rpath", "-Xlinker", libDir]),
            ]
        ),
        .testTarget(name: "GuanxiTests", dependencies: ["Guanxi"], path: "Tests/GuanxiTests"),
    ]
)
