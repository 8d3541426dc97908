// swift-tools-version:6.0
// SPDX-License-Identifier: ISC
//
// PeerLink for Swift: the C library as the module CPeerLink and an
// async/await layer, PeerLink, in the Swift 6 language mode.
//
// CPeerLink is, when CPeerLink.xcframework is next to this file (made on
// a Mac by scripts/build-xcframework: libpeerlink with its
// Network.framework backend, libsodium and the protobuf-c runtime, for
// iOS, tvOS and macOS), that binary target; otherwise a system library
// found through pkg-config: an installed libpeerlink (./configure && make
// install), or the .pc file tests/swift.sh writes for a build tree, which
// is how this package is built and tested on Linux (make check-swift, run
// by scripts/quickstart test). See docs/APPLE.md, "Using PeerLink from Swift".
import Foundation
import PackageDescription

let xcframework = FileManager.default.fileExists(atPath: Context.packageDirectory + "/CPeerLink.xcframework")

let package = Package(
    name: "PeerLink",
    platforms: [.iOS(.v13), .tvOS(.v13), .macOS(.v11)],
    products: [
        .library(name: "PeerLink", targets: ["PeerLink"]),
    ],
    targets: [
        xcframework
            ? .binaryTarget(name: "CPeerLink", path: "CPeerLink.xcframework")
            : .systemLibrary(name: "CPeerLink", path: "Sources/CPeerLink", pkgConfig: "peerlink"),
        .target(name: "PeerLink", dependencies: ["CPeerLink"], path: "Sources/PeerLink"),
        .testTarget(name: "PeerLinkTests", dependencies: ["PeerLink"], path: "Tests/PeerLinkTests"),
    ],
    swiftLanguageModes: [.v6]
)
