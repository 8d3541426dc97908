// swift-tools-version:6.0
//
// Package.swift for iOS, tvOS and macOS apps: CPeerLink is the
// XCFramework that scripts/build-xcframework makes on a Mac (libpeerlink
// with its Network.framework backend, libsodium and the protobuf-c
// runtime). Copy this file over Package.swift after building it.
// Not built yet: see docs/APPLE.md, "Using PeerLink from Swift".
import PackageDescription

let package = Package(
    name: "PeerLink",
    platforms: [.iOS(.v13), .tvOS(.v13), .macOS(.v11)],
    products: [
        .library(name: "PeerLink", targets: ["PeerLink"]),
    ],
    targets: [
        .binaryTarget(name: "CPeerLink", path: "CPeerLink.xcframework"),
        .target(name: "PeerLink", dependencies: ["CPeerLink"], path: "Sources/PeerLink"),
        .testTarget(name: "PeerLinkTests", dependencies: ["PeerLink"], path: "Tests/PeerLinkTests"),
    ],
    swiftLanguageModes: [.v6]
)
