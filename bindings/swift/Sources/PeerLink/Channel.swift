// SPDX-License-Identifier: ISC
// Sessions over byte pipes the app opens: a Wi-Fi Aware data path, a BLE
// channel, any NWConnection. The same sessions, resumption included.
import CPeerLink
import Foundation
#if canImport(Network)
import Network
#endif

/// A byte pipe the app opened, for a session to run over.
public protocol ByteChannel: AnyObject, Sendable {
    /// Send bytes; call completion once they were taken (with an error if the pipe failed).
    func write(_ data: Data, completion: @escaping @Sendable (Error?) -> Void)
    /// Deliver the next chunk that arrives to completion, once (an empty chunk: the end). The
    /// session asks for the next only after it took this one: a session that holds all it
    /// may stops asking, so the pipe's own flow control holds the peer back (NWConnection's
    /// receive works this way).
    func receive(_ completion: @escaping @Sendable (Data) -> Void)
    /// Release the pipe; nothing more is written or delivered.
    func close()
}

/// One channel as the C library sees it (pl_channel_ops): its write,
/// close and input_ready, on the loop. The C side holds a reference until
/// its close.
final class ChannelGlue: @unchecked Sendable {
    let channel: ByteChannel
    let loop: Loop
    var pch: OpaquePointer? // the pl_channel; nil once closed
    var writing = false
    var held: Data? // the chunk received and not yet taken by the session (it said PL_ERR_AGAIN)

    init(channel: ByteChannel, loop: Loop) {
        self.channel = channel
        self.loop = loop
    }

    nonisolated(unsafe) static let ops: UnsafeMutablePointer<pl_channel_ops> = {
        let o = UnsafeMutablePointer<pl_channel_ops>.allocate(capacity: 1)
        o.initialize(to: pl_channel_ops())
        o.pointee.size = MemoryLayout<pl_channel_ops>.size
        o.pointee.write = { ctx, data, len in
            Unmanaged<ChannelGlue>.fromOpaque(ctx!).takeUnretainedValue().write(data!, len)
        }
        o.pointee.close = { ctx in
            let g = Unmanaged<ChannelGlue>.fromOpaque(ctx!).takeRetainedValue() // the C side's reference
            g.pch = nil
            g.held = nil
            g.channel.close()
        }
        o.pointee.input_ready = { ctx in
            Unmanaged<ChannelGlue>.fromOpaque(ctx!).takeUnretainedValue().feed()
        }
        return o
    }()

    /// On the loop: hand the pipe to the C library with attach (ops, ctx,
    /// the pl_channel out), then start receiving.
    func attach(_ attach: (UnsafePointer<pl_channel_ops>, UnsafeMutableRawPointer,
                           UnsafeMutablePointer<OpaquePointer?>) -> Int32) throws {
        let ctx = Unmanaged.passRetained(self).toOpaque()
        var ch: OpaquePointer?
        let rc = attach(ChannelGlue.ops, ctx, &ch)
        if rc != 0 {
            Unmanaged<ChannelGlue>.fromOpaque(ctx).release() // not taken: no close will come
            throw PeerLinkError(code: rc)
        }
        pch = ch
        receiveNext()
    }

    /// Ask the pipe for one chunk; it goes to the session from the loop.
    private func receiveNext() {
        channel.receive { [self] data in
            loop.perform { [self] in
                held = data
                feed()
            }
        }
    }

    private func write(_ data: UnsafePointer<UInt8>, _ len: Int) -> Int {
        guard !writing else { return 0 }
        writing = true
        channel.write(Data(bytes: data, count: len)) { [self] error in
            loop.perform { [self] in
                writing = false
                guard let pch else { return }
                if error != nil { pl_channel_fail(pch, PL_ERR_IO.rawValue) } else { pl_channel_writable(pch) }
            }
        }
        return len
    }

    /// On the loop: give the session the chunk that arrived; once taken, ask for the next
    /// (refused: input_ready calls this again when the session has room).
    func feed() {
        guard let pch, let data = held else { return }
        let rc = data.withUnsafeBytes { pl_channel_input(pch, $0.baseAddress, $0.count) }
        if rc == PL_ERR_AGAIN.rawValue { return }
        held = nil
        if rc != 0 { return pl_channel_fail(pch, rc) }
        if !data.isEmpty { receiveNext() }
    }
}

extension Session {
    /// Which end of a byte-pipe session this side is.
    public enum Role: Sendable {
        /// Pairs with a code, or reconnects with stored keys; brings a new pipe after a break.
        case initiator
        /// Accepts (usually through a Listener: Listener.accept(_:)).
        case responder

        var c: pl_role { self == .initiator ? PL_ROLE_INITIATOR : PL_ROLE_RESPONDER }
    }

    /// A session over a byte pipe the app opened. instance: the name both
    /// sides bind the handshake to (the responder's published name). The
    /// initiator pairs with code, or uses stored keys. Either end may pair on
    /// a secret instead (16...64 bytes both ends got elsewhere, e.g. what a
    /// Wi-Fi Aware connection derives for the two devices; docs/WIFI-AWARE.md):
    /// then the responder is a session of its own, not a Listener's. resumeTimeout > 0: a
    /// break interrupts the session instead of ending it, and the initiator
    /// carries it on over a new pipe with attach(_:) (the responder's side
    /// resumes when that pipe reaches a Listener of the same node). Returns
    /// once the peer is authenticated.
    public static func over(_ channel: ByteChannel, role: Role, instance: String, node: Node,
                            code: String? = nil, secret: Data? = nil,
                            resumeTimeout milliseconds: Int32 = 0) async throws -> Session {
        let s = Session(node: node)
        let glue = ChannelGlue(channel: channel, loop: node.loop)
        try await s.start(pairing: secret.map { .secret($0) } ?? code.map { .code($0) }) { ud in
            var c: OpaquePointer?
            var rc: Int32 = 0
            do {
                try glue.attach { ops, ctx, _ in
                    rc = pl_session_new_channel(node.raw, ops, ctx, role.c, instance, Session.callback, ud, &c)
                    return rc
                }
            } catch {
                return (rc, nil)
            }
            glue.pch = pl_session_channel(c)
            if milliseconds > 0 { rc = pl_session_set_resume(c, milliseconds) }
            s.channel = glue
            return (rc, c)
        }
        return s
    }

    /// Interrupted initiator of a session over byte pipes: carry it on over
    /// a new pipe. The resumption is reported in events (.resumed).
    public func attach(_ channel: ByteChannel) async throws {
        let glue = ChannelGlue(channel: channel, loop: loop)
        try await loop.call { [self] in
            guard let raw else { throw PeerLinkError.invalidState }
            try glue.attach { ops, ctx, _ in pl_session_attach_channel(raw, ops, ctx) }
            glue.pch = pl_session_channel(raw)
            self.channel = glue
        }
    }
}

#if canImport(Network)
/// An NWConnection (a Wi-Fi Aware path or any other Network.framework connection) as a ByteChannel.
public final class NWConnectionChannel: ByteChannel, @unchecked Sendable {
    let connection: NWConnection
    public init(_ connection: NWConnection) { self.connection = connection }
    public func write(_ data: Data, completion: @escaping @Sendable (Error?) -> Void) {
        connection.send(content: data, completion: .contentProcessed { completion($0) })
    }
    public func receive(_ completion: @escaping @Sendable (Data) -> Void) {
        if connection.state == .setup { connection.start(queue: .global()) }
        connection.receive(minimumIncompleteLength: 1, maximumLength: 65536) { data, _, complete, error in
            if let data, !data.isEmpty {
                completion(data) // an end that came with it is seen at the next receive
            } else if complete || error != nil {
                completion(Data())
            }
        }
    }
    public func close() { connection.cancel() }
}
#endif
