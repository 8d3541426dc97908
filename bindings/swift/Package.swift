// swift-tools-version:5.7
//
// PeerLink for Swift: the C library as the module CPeerLink (a module map
// over its public headers, checked by scripts/check-modulemap) and a thin
// async/await layer, PeerLink.
//
// NOT BUILT HERE: the machines this was written on have no Swift toolchain
// for Apple platforms. See docs/APPLE.md before relying on it.
//
// CPeerLink is a system library target: it finds the installed C library
// through pkg-config (macOS: ./configure && make install). For iOS and tvOS,
// build libpeerlink (with libsodium and protobuf-c) for each SDK, wrap the
// static libraries, the headers and Sources/CPeerLink/module.modulemap into
// an XCFramework, and replace the CPeerLink target with
//     .binaryTarget(name: "CPeerLink", path: "CPeerLink.xcframework")
// as docs/APPLE.md ("Building for iOS") describes.
import PackageDescription

let package = Package(
    name: "PeerLink",
    platforms: [.iOS(.v13), .tvOS(.v13), .macOS(.v11)],
    products: [
        .library(name: "PeerLink", targets: ["PeerLink"]),
    ],
    targets: [
        .systemLibrary(name: "CPeerLink", path: "Sources/CPeerLink", pkgConfig: "peerlink"),
        .target(name: "PeerLink", dependencies: ["CPeerLink"], path: "Sources/PeerLink"),
    ]
)
