// swift-tools-version:5.9
// The Swift package of guanxi. Its sources are generated from the built library by
// bindings/swift/run-tests.sh (never committed): Sources/GuanxiFFI gets the C header and module
// map, Sources/Guanxi the Swift bindings. The native library is found through pkg-config
// (`guanxi.pc`, which run-tests.sh writes beside libguanxi_uniffi.so; put its folder on
// PKG_CONFIG_PATH), so the manifest needs no unsafe flags and other packages can depend on this
// one by path or URL. On Apple platforms, replace the system library with the XCFramework that
// build-xcframework.sh makes: .binaryTarget(name: "GuanxiFFI", path: "GuanxiFFI.xcframework").
import PackageDescription

let package = Package(
    name: "Guanxi",
    products: [.library(name: "Guanxi", targets: ["Guanxi"])],
    targets: [
        .systemLibrary(name: "GuanxiFFI", path: "Sources/GuanxiFFI", pkgConfig: "guanxi"),
        .target(name: "Guanxi", dependencies: ["GuanxiFFI"], path: "Sources/Guanxi"),
        .testTarget(name: "GuanxiTests", dependencies: ["Guanxi"], path: "Tests/GuanxiTests"),
    ]
)
