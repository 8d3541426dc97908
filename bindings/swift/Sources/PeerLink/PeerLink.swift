// PeerLink: a thin async/await layer over the C library (module CPeerLink).
//
// NOBODY HAS COMPILED OR RUN ANY LINE OF THIS FILE. It was written where no
// Swift toolchain for Apple platforms exists; only the module map beneath it
// is checked (scripts/check-modulemap). Compile it, and test it on a device,
// before trusting it. It is kept small for that reason: everything of
// substance (protocol, pairing, discovery, Network.framework) is in C.
//
// Threading: every peerlink call is made on the Loop's serial queue
// (Loop.perform); the C library calls back on that same queue.
import CPeerLink
import Foundation
import Network

public struct PeerLinkError: Error, CustomStringConvertible {
    public let code: Int32
    public var description: String { String(cString: pl_strerror(code)) }
    /// The user denied local network access (Settings > Privacy > Local Network).
    public var isLocalNetworkDenied: Bool { pl_apple_local_network_denied() != 0 }
    public var isWrongCode: Bool { code == PL_ERR_WRONG_CODE.rawValue }
    public var needsCode: Bool { code == PL_ERR_NOT_PAIRED.rawValue }
}

@inline(__always) func check(_ rc: Int32) throws {
    if rc != 0 { throw PeerLinkError(code: rc) }
}

final class Box<T> {
    let value: T
    init(_ value: T) { self.value = value }
}

/// The event loop: a serial dispatch queue of the library's (pl_apple_poll).
public final class Loop: @unchecked Sendable {
    let raw: OpaquePointer
    let poll: UnsafePointer<pl_poll>

    public init() throws {
        var p: OpaquePointer?
        try check(pl_apple_poll_new(&p))
        raw = p!
        poll = pl_apple_poll_get(raw)
    }

    /// Run body on the loop's queue.
    public func perform(_ body: @escaping () -> Void) {
        let ctx = Unmanaged.passRetained(Box(body)).toOpaque()
        pl_apple_poll_async(raw, { ctx in
            Unmanaged<Box<() -> Void>>.fromOpaque(ctx!).takeRetainedValue().value()
        }, ctx)
    }

    func call<T>(_ body: @escaping () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { cont in
            perform { cont.resume(with: Result { try body() }) }
        }
    }

    deinit {
        pl_apple_poll_async(raw, { p in pl_apple_poll_free(OpaquePointer(p)) }, UnsafeMutableRawPointer(raw))
    }
}

/// Our identity and the peers we paired with.
public final class Keystore: @unchecked Sendable {
    let raw: OpaquePointer
    public init(directory: String) throws {
        var k: OpaquePointer?
        try check(pl_keystore_open_dir(directory, &k))
        raw = k!
    }
    public init(inMemory: Void = ()) throws {
        var k: OpaquePointer?
        try check(pl_keystore_new_memory(&k))
        raw = k!
    }
    deinit { pl_keystore_free(raw) }
}

/// This device as one peer (pl_node): the loop, the keystore, and the sessions made with it.
/// Every Session keeps its node alive; the node is freed, on the loop, after the last one.
public final class Node: @unchecked Sendable {
    let raw: OpaquePointer
    public let loop: Loop
    public let keystore: Keystore
    public init(loop: Loop, keystore: Keystore) throws {
        var n: OpaquePointer?
        try check(pl_node_new(loop.poll, keystore.raw, &n))
        raw = n!
        self.loop = loop
        self.keystore = keystore
    }
    deinit {
        let n = raw, keystore = keystore
        loop.perform { pl_node_free(n); _ = keystore } // the keystore outlives the node
    }
}

public struct Service: Sendable, Hashable {
    public let name: String
    public let type: String
    public let domain: String
    public let txt: [String: Data?]

    init(_ p: UnsafePointer<pl_service>) {
        let s = p.pointee
        var txt: [String: Data?] = [:]
        for i in 0..<pl_txt_count(s.txt) {
            var key: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var len = 0
            if pl_txt_at(s.txt, i, &key, &value, &len) == 0, let key {
                txt[String(cString: key)] = value.map { Data(bytes: $0, count: len) }
            }
        }
        name = String(cString: s.name)
        type = String(cString: s.type)
        domain = String(cString: s.domain)
        self.txt = txt
    }
}

public enum BrowseEvent: Sendable {
    case added(Service), updated(Service), removed(Service)
}

public final class Discovery: @unchecked Sendable {
    public let loop: Loop
    var raw: OpaquePointer?

    public init(loop: Loop) async throws {
        self.loop = loop
        raw = try await loop.call {
            var d: OpaquePointer?
            try check(pl_discovery_new(loop.poll, "apple", &d))
            return d!
        }
    }

    deinit {
        let raw = raw
        loop.perform { pl_discovery_free(raw) }
    }

    /// Browse a service type; the stream ends with an error if browsing fails
    /// (e.g. local network access denied: error.isLocalNetworkDenied).
    public func browse(type: String = "_peerlink._tcp") -> AsyncThrowingStream<BrowseEvent, Error> {
        AsyncThrowingStream { continuation in
            let sink = Box(continuation)
            let ctx = Unmanaged.passRetained(sink).toOpaque()
            var browser: OpaquePointer?
            loop.perform { [self] in
                let rc = pl_browse(raw, type, nil, { _, ev, status, svc, ud in
                    let c = Unmanaged<Box<AsyncThrowingStream<BrowseEvent, Error>.Continuation>>
                        .fromOpaque(ud!).takeUnretainedValue().value
                    switch ev {
                    case PL_BROWSE_ADD: c.yield(.added(Service(svc!)))
                    case PL_BROWSE_UPDATE: c.yield(.updated(Service(svc!)))
                    case PL_BROWSE_REMOVE: c.yield(.removed(Service(svc!)))
                    default: c.finish(throwing: PeerLinkError(code: status))
                    }
                }, ctx, &browser)
                if rc != 0 {
                    continuation.finish(throwing: PeerLinkError(code: rc))
                }
            }
            continuation.onTermination = { [loop] _ in
                loop.perform {
                    pl_browser_free(browser)
                    Unmanaged<Box<AsyncThrowingStream<BrowseEvent, Error>.Continuation>>.fromOpaque(ctx).release()
                }
            }
        }
    }
}

/// A byte pipe the application opened (e.g. a Wi-Fi Aware data path) for a session to run over.
public protocol ByteChannel: AnyObject {
    /// Send bytes; call completion once they were taken.
    func write(_ data: Data, completion: @escaping (Error?) -> Void)
    /// Deliver every chunk that arrives to receive; an empty chunk means the end.
    func start(receive: @escaping (Data) -> Void)
    func close()
}

/// An NWConnection (e.g. from a Wi-Fi Aware or any other Network.framework path) as a ByteChannel.
public final class NWConnectionChannel: ByteChannel {
    let connection: NWConnection
    public init(_ connection: NWConnection) { self.connection = connection }
    public func write(_ data: Data, completion: @escaping (Error?) -> Void) {
        connection.send(content: data, completion: .contentProcessed { completion($0) })
    }
    public func start(receive: @escaping (Data) -> Void) {
        func next() {
            connection.receive(minimumIncompleteLength: 1, maximumLength: 65536) { data, _, complete, error in
                if let data, !data.isEmpty { receive(data) }
                if complete || error != nil { receive(Data()) } else { next() }
            }
        }
        if connection.state == .setup { connection.start(queue: .global()) }
        next()
    }
    public func close() { connection.cancel() }
}

/// An authenticated, encrypted session (pl_session).
public final class Session: @unchecked Sendable {
    public let node: Node
    public var loop: Loop { node.loop }
    var conn: OpaquePointer?
    var opened: CheckedContinuation<Void, Error>?
    var channel: ByteChannel?
    var writing = false
    /// Channel input the session refused for now (PL_ERR_AGAIN), in order; fed on input_ready.
    var refused: [Data] = []
    private var continuation: AsyncThrowingStream<Data, Error>.Continuation!
    /// The peer's messages; ends when the session closes (with an error unless cleanly).
    public private(set) var messages: AsyncThrowingStream<Data, Error>!

    init(node: Node) {
        self.node = node
        messages = AsyncThrowingStream { self.continuation = $0 }
    }

    static let callback: pl_session_cb = { _, ev, status, data, len, ud in
        let s = Unmanaged<Session>.fromOpaque(ud!).takeUnretainedValue()
        switch ev {
        case PL_SESSION_OPEN:
            s.opened?.resume()
            s.opened = nil
        case PL_SESSION_MESSAGE:
            s.continuation.yield(Data(bytes: data!, count: len))
        case PL_SESSION_CLOSED:
            let error = status == 0 ? nil : PeerLinkError(code: status)
            s.opened?.resume(throwing: error ?? PeerLinkError(code: PL_ERR_CLOSED.rawValue))
            s.opened = nil
            s.continuation.finish(throwing: error)
            s.conn = nil // the C side frees nothing by itself: release below
            Unmanaged<Session>.fromOpaque(ud!).release()
        default:
            break
        }
    }

    /// Connect to a browsed service; pairs with code if given, else uses the stored keys.
    public static func connect(to service: Service, node: Node, code: String? = nil) async throws -> Session {
        let s = Session(node: node)
        let loop = node.loop
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Void, Error>) in
            loop.perform {
                s.opened = cont
                var svc = pl_service()
                let ud = Unmanaged.passRetained(s).toOpaque()
                let rc = service.name.withCString { n in
                    service.type.withCString { t in
                        service.domain.withCString { d -> Int32 in
                            svc.name = n; svc.type = t; svc.domain = d
                            return pl_apple_connect(node.raw, &svc, 0, Session.callback, ud, &s.conn)
                        }
                    }
                }
                if rc == 0, let code { _ = pl_session_set_code(s.conn, code) }
                if rc != 0 {
                    Unmanaged<Session>.fromOpaque(ud).release()
                    s.opened = nil
                    cont.resume(throwing: PeerLinkError(code: rc))
                }
            }
        }
        return s
    }

    /// Run a session over a byte channel the application opened (a Wi-Fi Aware data path).
    /// instance: the name both sides bind the handshake to.
    public static func over(_ channel: ByteChannel, role: pl_role, instance: String, node: Node,
                            code: String? = nil) async throws -> Session {
        let s = Session(node: node)
        let loop = node.loop
        s.channel = channel
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Void, Error>) in
            loop.perform {
                s.opened = cont
                var ops = pl_channel_ops()
                ops.size = MemoryLayout<pl_channel_ops>.size
                ops.write = { ctx, data, len in
                    let s = Unmanaged<Session>.fromOpaque(ctx!).takeUnretainedValue()
                    guard !s.writing, let channel = s.channel else { return 0 }
                    s.writing = true
                    channel.write(Data(bytes: data!, count: len)) { error in
                        s.loop.perform {
                            s.writing = false
                            if error != nil { _ = pl_session_channel_input(s.conn, nil, 0) } else { pl_session_channel_writable(s.conn) }
                        }
                    }
                    return len
                }
                ops.close = { ctx in
                    let s = Unmanaged<Session>.fromOpaque(ctx!).takeUnretainedValue()
                    s.channel?.close()
                    s.channel = nil
                }
                ops.input_ready = { ctx in
                    Unmanaged<Session>.fromOpaque(ctx!).takeUnretainedValue().feedRefused()
                }
                let ud = Unmanaged.passRetained(s).toOpaque()
                var rc = pl_session_new_channel(node.raw, &ops, ud, role, instance, Session.callback, ud, &s.conn)
                if rc == 0, let code { rc = pl_session_set_code(s.conn, code) }
                if rc != 0 {
                    pl_session_free(s.conn)
                    Unmanaged<Session>.fromOpaque(ud).release()
                    s.opened = nil
                    cont.resume(throwing: PeerLinkError(code: rc))
                    return
                }
                channel.start { data in
                    loop.perform {
                        // ByteChannel cannot be paused: what the session refuses waits here, in order.
                        s.refused.append(data)
                        s.feedRefused()
                    }
                }
            }
        }
        return s
    }

    /// On the loop: give the session the channel input it refused before, until it refuses again.
    func feedRefused() {
        while let conn, let data = refused.first {
            let rc = data.withUnsafeBytes { pl_session_channel_input(conn, $0.baseAddress, $0.count) }
            if rc == PL_ERR_AGAIN.rawValue { return } // input_ready comes when there is room
            refused.removeFirst()
        }
    }

    public func send(_ data: Data) async throws {
        try await loop.call { [self] in
            guard let conn else { throw PeerLinkError(code: PL_ERR_STATE.rawValue) }
            try data.withUnsafeBytes { try check(pl_session_send(conn, $0.baseAddress, $0.count)) }
        }
    }

    /// End our direction; messages continues until the peer ends too.
    public func finish() async throws {
        try await loop.call { [self] in try check(pl_session_shutdown(conn)) }
    }

    /// Close at once.
    public func close() {
        loop.perform { [self] in
            guard let conn else { return }
            pl_session_free(conn)
            self.conn = nil
            continuation.finish()
            Unmanaged.passUnretained(self).release()
        }
    }
}
