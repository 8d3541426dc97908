// SPDX-License-Identifier: ISC
// The keystore (this device's identity and the peers it paired with) and
// the node (this device as one peer: its loop, its keystore, its sessions).
import CPeerLink
import Foundation

/// A C pointer that crosses to the loop's queue. Only ever used there.
struct Handle: @unchecked Sendable {
    let raw: OpaquePointer
}

/// This device's identity and the peers it paired with.
public final class Keystore: @unchecked Sendable {
    let raw: OpaquePointer

    /// The store in a directory (created if missing, mode 0700).
    public init(directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        var k: OpaquePointer?
        try check(pl_keystore_open_dir(directory.path, &k))
        raw = k!
    }

    /// The store at the platform's place for it: Application Support on
    /// Apple platforms, $XDG_DATA_HOME (or ~/.local/share) on Linux,
    /// under "peerlink".
    public convenience init() throws {
        try self.init(directory: Keystore.defaultDirectory)
    }

    /// A store in memory: nothing is kept after the process ends (tests, guests).
    public init(inMemory: Void = ()) throws {
        var k: OpaquePointer?
        try check(pl_keystore_new_memory(&k))
        raw = k!
    }

    deinit { pl_keystore_free(raw) }

    public static var defaultDirectory: URL {
        #if canImport(Darwin)
        let base = FileManager.default.urls(for: .applicationSupportDirectory, in: .userDomainMask)[0]
        #else
        let env = ProcessInfo.processInfo.environment
        let base: URL
        if let xdg = env["XDG_DATA_HOME"], !xdg.isEmpty {
            base = URL(fileURLWithPath: xdg, isDirectory: true)
        } else {
            base = FileManager.default.homeDirectoryForCurrentUser
                .appendingPathComponent(".local/share", isDirectory: true)
        }
        #endif
        return base.appendingPathComponent("peerlink", isDirectory: true)
    }
}

/// A peer this device paired with.
public struct PairedPeer: Sendable, Hashable {
    /// How it paired with this device.
    public enum Role: Sendable, Hashable {
        /// This device dialled it: `name` is the instance name it was paired under, which
        /// connecting to that name expects (and finds again after a rename).
        case responder
        /// It paired with one of this device's listeners: `name` is what it called itself, a
        /// label only (it is known by its key).
        case initiator
    }
    /// The name it is stored under (see Role).
    public let name: String
    /// Its identity key (32 bytes).
    public let id: [UInt8]
    public let pairedAt: Date
    public let role: Role
}

/// This device as one peer: the loop, the keystore, and every session and
/// listener made with it (pl_node). Sessions and listeners keep their node
/// alive; the node keeps its loop and keystore.
public final class Node: @unchecked Sendable {
    let raw: OpaquePointer
    public let loop: Loop
    public let keystore: Keystore

    public init(loop: Loop, keystore: Keystore) async throws {
        self.loop = loop
        self.keystore = keystore
        let poll = UnsafePointer(loop.poll)
        let ks = Handle(raw: keystore.raw)
        let p = PollRef(poll: poll)
        raw = try await loop.call {
            var n: OpaquePointer?
            try check(pl_node_new(p.poll, ks.raw, &n))
            return Handle(raw: n!)
        }.raw
    }

    deinit {
        let n = Handle(raw: raw)
        let keystore = keystore, loop = loop
        loop.perform {
            pl_node_free(n.raw) // and what is left of its sessions and listeners
            _ = keystore // freed after the node
            _ = loop     // its vtable outlives every C object that holds it
        }
    }

    /// The peers this device paired with, oldest first.
    public func pairedPeers() async throws -> [PairedPeer] {
        let ks = Handle(raw: keystore.raw)
        return try await loop.call {
            var peers: UnsafeMutablePointer<pl_paired_peer>?
            var n = 0
            try check(pl_keystore_list_peers(ks.raw, &peers, &n))
            defer { free(peers) }
            return (0..<n).map { i in
                var p = peers![i]
                let name = withUnsafeBytes(of: &p.name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                let id = withUnsafeBytes(of: &p.id) { Array($0) }
                return PairedPeer(name: name, id: id, pairedAt: Date(timeIntervalSince1970: TimeInterval(p.paired_at)),
                                  role: p.role == PL_PEER_RESPONDER ? .responder : .initiator)
            }
        }
    }

    /// Forget the peer paired under name: it needs the code again.
    public func forget(name: String) async throws {
        let ks = Handle(raw: keystore.raw)
        try await loop.call { try check(pl_keystore_forget(ks.raw, name)) }
    }

    /// Forget the peer with this identity key (32 bytes), under every name and in both roles.
    public func forget(id: [UInt8]) async throws {
        guard id.count == Int(PL_ID_SIZE) else { throw PeerLinkError.failed(code: PL_ERR_INVALID.rawValue) }
        let ks = Handle(raw: keystore.raw)
        try await loop.call { try id.withUnsafeBufferPointer { try check(pl_keystore_forget_id(ks.raw, $0.baseAddress)) } }
    }

    /// The name this device gives the peers it dials, and sends when it answers a byte session
    /// without an instance name (they show it, and store it when they pair with it); nil: the host name. At most 63 bytes of UTF-8. Sessions begun afterwards use it.
    public func setName(_ name: String?) async throws {
        let n = Handle(raw: raw)
        try await loop.call { try check(pl_node_set_name(n.raw, name)) }
    }
}

/// The loop's vtable, as it crosses to the queue (it lives as long as the loop).
struct PollRef: @unchecked Sendable {
    let poll: UnsafePointer<pl_poll>
}
