// SPDX-License-Identifier: ISC
// Publish and listen with one object, as NWListener does.
import CPeerLink
import Foundation

/// How a listener accepts peers that are not paired yet.
public enum Pairing: Sendable, Equatable {
    /// Only paired peers get in.
    case off
    /// A fixed code (a printed label): 1..32 printable ASCII characters.
    case code(String)
    /// Numeric codes of this many digits, generated, shown to the user
    /// (Listener.code), replaced after too many failures.
    case generated(digits: Int)
    // Pairing closes by itself after its window (900 s) and after the first peer pairs:
    // Listener.setPairingWindow(seconds:keepOpenAfterPairing:), Listener.openPairing(_:).
}

/// What happens to a listener's pairing (Listener.pairingEvents).
public enum PairingEvent: Sendable, Equatable {
    /// Too many failures replaced the generated code: show this one instead.
    case newCode(String)
    /// An attempt failed (wrongCode, closed, ...).
    case failed(PeerLinkError)
    /// Pairing closed by itself: nil when a peer paired, timedOut when its window ended, locked
    /// when generated codes' budget of failures is spent. openPairing(_:) opens it again.
    case closed(PeerLinkError?)
}

final class ListenerRef: @unchecked Sendable {
    weak var listener: Listener?
}

/// Accepts sessions: on a TCP port of its own, published through a
/// discovery under a name with a TXT record (on Apple, the publication's
/// Network.framework listener accepts), and over byte channels the app
/// hands it. Every peer that completes the handshake arrives in sessions;
/// a peer that comes back to continue an interrupted session resumes it
/// instead. Dropping the last reference withdraws the publication and
/// stops listening; accepted sessions live on.
public final class Listener: @unchecked Sendable {
    public let node: Node
    public let discovery: Discovery?
    /// The sessions of peers that connected, as they complete their handshake.
    public let sessions: AsyncStream<Session>
    /// Pairing news, as it happens (the newest 16 are kept for a slow reader).
    public let pairingEvents: AsyncStream<PairingEvent>
    let raw: OpaquePointer
    private let ref = ListenerRef()
    private let sink: AsyncStream<Session>.Continuation
    private let pairingSink: AsyncStream<PairingEvent>.Continuation

    /// Listen on port (0: any) and, with a discovery, publish as name of
    /// type with txt. The handshake is bound to the published name, renames
    /// included. Without a discovery nothing is published (name is still the
    /// instance name handshakes are bound to).
    public convenience init(node: Node, name: String, type: String = "_peerlink._tcp", txt: [String: String] = [:],
                port: UInt16 = 0, discovery: Discovery? = nil, pairing: Pairing = .off) async throws {
        try await self.init(node: node, discovery: discovery) { l in
            var raw: OpaquePointer?
            try check(pl_listener_new(node.raw, port, Listener.accepted, l, &raw))
            return raw!
        } setup: { raw in
            try Listener.configure(raw, name: name, pairing: pairing)
            if let discovery {
                try withTXT(txt) { t in
                    try check(pl_listener_publish(raw, discovery.raw, name, type, t, nil, nil))
                }
            }
        }
    }

    /// A listener with no socket of its own: it accepts only the byte
    /// channels given to accept(_:) (Wi-Fi Aware data paths, BLE channels).
    public convenience init(node: Node, detachedAs name: String, pairing: Pairing = .off) async throws {
        try await self.init(node: node, discovery: nil) { l in
            var raw: OpaquePointer?
            try check(pl_listener_new_detached(node.raw, Listener.accepted, l, &raw))
            return raw!
        } setup: { raw in
            try Listener.configure(raw, name: name, pairing: pairing)
        }
    }

    private init(node: Node, discovery: Discovery?,
                 make: @escaping @Sendable (UnsafeMutableRawPointer) throws -> OpaquePointer,
                 setup: @escaping @Sendable (OpaquePointer) throws -> Void) async throws {
        self.node = node
        self.discovery = discovery
        (sessions, sink) = AsyncStream.makeStream()
        (pairingEvents, pairingSink) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(16))
        let ref = ref
        raw = try await node.loop.call {
            let ud = Unmanaged.passRetained(ref).toOpaque() // the C listener's, released with it
            do {
                let raw = try make(ud)
                pl_listener_set_pairing_callback(raw, Listener.pairingNews, ud)
                do {
                    try setup(raw)
                } catch {
                    pl_listener_free(raw)
                    throw error
                }
                return Handle(raw: raw)
            } catch {
                Unmanaged<ListenerRef>.fromOpaque(ud).release()
                throw error
            }
        }.raw
        ref.listener = self
    }

    private static func configure(_ raw: OpaquePointer, name: String, pairing: Pairing) throws {
        try check(pl_listener_set_instance(raw, name))
        try setPairing(raw, pairing)
    }

    private static func setPairing(_ raw: OpaquePointer, _ pairing: Pairing) throws {
        switch pairing {
        case .off: break
        case .code(let code): try check(pl_listener_set_pairing(raw, code, 0, 0))
        case .generated(let digits): try check(pl_listener_set_pairing(raw, nil, UInt32(digits), 0))
        }
    }

    deinit {
        sink.finish()
        pairingSink.finish()
        let l = Handle(raw: raw), ref = ref, node = node, discovery = discovery
        node.loop.perform {
            pl_listener_free(l.raw) // withdraws the publication first
            Unmanaged.passUnretained(ref).release()
            _ = node
            _ = discovery
        }
    }

    static let accepted: pl_accept_cb = { _, c, ud in
        guard let c else { return }
        guard let l = Unmanaged<ListenerRef>.fromOpaque(ud!).takeUnretainedValue().listener else {
            pl_session_free(c) // the listener is going: nobody to take it
            return
        }
        l.sink.yield(Session(node: l.node, accepted: c))
    }

    static let pairingNews: pl_pairing_cb = { _, ev, status, code, ud in
        guard let l = Unmanaged<ListenerRef>.fromOpaque(ud!).takeUnretainedValue().listener else { return }
        switch ev {
        case PL_PAIRING_NEW_CODE: l.pairingSink.yield(.newCode(code.map { String(cString: $0) } ?? ""))
        case PL_PAIRING_FAILED: l.pairingSink.yield(.failed(PeerLinkError(code: status)))
        case PL_PAIRING_CLOSED: l.pairingSink.yield(.closed(status == 0 ? nil : PeerLinkError(code: status)))
        default: break
        }
    }

    /// Pairing stays open for seconds (1...86400; 0: until the app closes it with openPairing(.off)), and, unless
    /// keepOpenAfterPairing, closes after the first peer pairs (the default: 900 s, then closed).
    /// Restarts the window of the pairing open now, and applies to later openPairing(_:) calls.
    public func setPairingWindow(seconds: Int, keepOpenAfterPairing: Bool = false) async throws {
        guard (0...86400).contains(seconds) else { throw PeerLinkError.failed(code: PL_ERR_INVALID.rawValue) }
        let l = Handle(raw: raw)
        try await node.loop.call {
            try check(pl_listener_set_pairing_window(l.raw, UInt32(seconds), keepOpenAfterPairing ? PL_PAIRING_KEEP_OPEN : 0))
        }
    }

    /// Open pairing again, on the user's act (a button): a new window, and for generated codes a
    /// fresh budget of failed attempts. .off stops pairing; paired peers still get in.
    public func openPairing(_ pairing: Pairing) async throws {
        let l = Handle(raw: raw)
        try await node.loop.call {
            if pairing == .off {
                pl_listener_stop_pairing(l.raw)
            } else {
                try Listener.setPairing(l.raw, pairing)
            }
        }
    }

    /// The pairing code accepted now (a generated one changes after too many failures); nil if pairing is off
    /// or has closed (its window ended, a peer paired): pairingEvents says when.
    public var code: String? {
        get async {
            let l = Handle(raw: raw)
            return try? await node.loop.call { pl_listener_code(l.raw).map { String(cString: $0) } }
        }
    }

    /// The TCP port listened on (0 when detached, or when the publication accepts by itself).
    public var port: UInt16 {
        get async {
            let l = Handle(raw: raw)
            return (try? await node.loop.call { pl_listener_port(l.raw) }) ?? 0
        }
    }

    /// The name published now (a conflict may have renamed it), or nil if not published.
    public var publishedName: String? {
        get async {
            let l = Handle(raw: raw)
            return try? await node.loop.call {
                pl_listener_publication(l.raw).flatMap { pl_publication_name($0) }.map { String(cString: $0) }
            }
        }
    }

    /// Replace the published TXT record.
    public func setTXT(_ txt: [String: String]) async throws {
        let l = Handle(raw: raw)
        try await node.loop.call {
            guard let p = pl_listener_publication(l.raw) else { throw PeerLinkError.invalidState }
            try withTXT(txt) { try check(pl_publication_set_txt(p, $0)) }
        }
    }

    /// Accept a byte channel the app opened (the responder's end): its
    /// handshake runs under this listener's pairing; a new peer arrives in
    /// sessions, a returning one resumes its session.
    public func accept(_ channel: ByteChannel) async throws {
        let glue = ChannelGlue(channel: channel, loop: node.loop)
        let l = Handle(raw: raw)
        try await node.loop.call {
            try glue.attach { ops, ctx, out in pl_listener_add_channel(l.raw, ops, ctx, out) }
        }
    }
}

/// A C TXT record as key to value (nil: a key present without "=").
func dictionary(of t: OpaquePointer?) -> [String: Data?] {
    var txt: [String: Data?] = [:]
    for i in 0..<pl_txt_count(t) {
        var key: UnsafePointer<CChar>?
        var value: UnsafeRawPointer?
        var len = 0
        if pl_txt_at(t, i, &key, &value, &len) == 0, let key {
            txt[String(cString: key)] = value.map { Data(bytes: $0, count: len) }
        }
    }
    return txt
}

/// Call body with txt as a C TXT record (valid for the call).
func withTXT<T>(_ txt: [String: String], _ body: (OpaquePointer?) throws -> T) throws -> T {
    var t: OpaquePointer?
    try check(pl_txt_new(&t))
    defer { pl_txt_free(t) }
    for (k, v) in txt.sorted(by: { $0.key < $1.key }) {
        try check(pl_txt_set_str(t, k, v))
    }
    return try body(t)
}
