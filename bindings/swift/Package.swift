// swift-tools-version:6.0
//
// PeerLink for Swift: the C library as the module CPeerLink (a module map
// over its public headers, checked by scripts/check-modulemap) and an
// async/await layer, PeerLink, in the Swift 6 language mode.
//
// Built and tested on Linux by tests/swift.sh (make check-swift, run by
// `scripts/quickstart test`) against the library built from this tree.
// CPeerLink is a system library target found through pkg-config: an
// installed libpeerlink (./configure && make install), or the .pc file
// tests/swift.sh writes for a build tree. For iOS, tvOS and macOS apps,
// scripts/build-xcframework (run on a Mac) makes CPeerLink.xcframework, and
// Package-xcframework.swift is this manifest with CPeerLink as that binary
// target (docs/APPLE.md, "Using PeerLink from Swift").
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
        .testTarget(name: "PeerLinkTests", dependencies: ["PeerLink"], path: "Tests/PeerLinkTests"),
    ],
    swiftLanguageModes: [.v6]
)
