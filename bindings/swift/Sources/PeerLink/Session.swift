// SPDX-License-Identifier: ISC
// Sessions: messages as an AsyncSequence, sends that wait under
// backpressure, and what happens to the link as events.
import CPeerLink
import Foundation

/// What happens to a session besides its messages.
public enum SessionEvent: Sendable, Equatable {
    /// The link broke (why); the session waits for a new one, and sends still queue.
    case interrupted(PeerLinkError)
    /// A new link carries the session on. peerReset: the peer had lost the
    /// session (it restarted); messages it had not acknowledged may come again.
    case resumed(peerReset: Bool)
    /// The session is over: nil if everything was delivered both ways, else why.
    case closed(PeerLinkError?)
    /// The peer sent its TXT record inside the session (its setTXT), new or changed:
    /// key to value (nil: a key without "="). For links whose discovery carries none.
    case peerTXT([String: Data?])
}

/// What a session pairs with: a code a person reads, or a secret from elsewhere.
enum PairingKey: Sendable {
    case code(String)
    case secret(Data)
}

/// Names one waiting send, for its cancellation.
final class SendToken: Sendable {}

/// The C library's reference to a session: weak, so that the Swift object
/// can go whatever the C side still has queued.
final class SessionRef: @unchecked Sendable {
    weak var session: Session?
}

/// An authenticated, encrypted session with a peer (pl_session). It
/// outlives the connections that carry it: after a break it resumes, and
/// every message arrives once and in order. Dropping the last reference
/// aborts it and frees everything.
public final class Session: @unchecked Sendable {
    public let node: Node
    var loop: Loop { node.loop }
    /// The peer's messages, in order; ends when the peer ends its
    /// direction (cleanly), or with the error that ended the session. A
    /// slow reader holds the peer back: past 1 MiB not yet read the
    /// session pauses (the peer's sends wait), and it goes on below 256 KiB.
    public var messages: Messages { Messages(session: self, stream: stream) }
    private let stream: AsyncThrowingStream<Data, Error>
    /// Interruptions, resumptions and the end.
    public let events: AsyncStream<SessionEvent>

    // On the loop's queue only:
    var raw: OpaquePointer?
    let ref = SessionRef()
    var channel: ChannelGlue?
    private let messageSink: AsyncThrowingStream<Data, Error>.Continuation
    private let eventSink: AsyncStream<SessionEvent>.Continuation
    private var opened: CheckedContinuation<Void, Error>?
    private var waiting: [(token: SendToken, data: Data, cont: CheckedContinuation<Void, Error>)] = []
    private var ended: PeerLinkError??
    private var unread = 0 // bytes of messages handed to the stream and not read yet
    private var paused = false
    static let pauseAbove = 1 << 20, resumeBelow = 256 << 10
    /// Sends that had to wait for room (for tests; read once the loop is idle).
    var sendsThatWaited = 0

    init(node: Node) {
        self.node = node
        (stream, messageSink) = AsyncThrowingStream.makeStream()
        (events, eventSink) = AsyncStream.makeStream()
        ref.session = self
    }

    /// On the loop: a session the C library made (an accepted one); we own it.
    init(node: Node, accepted c: OpaquePointer) {
        self.node = node
        (stream, messageSink) = AsyncThrowingStream.makeStream()
        (events, eventSink) = AsyncStream.makeStream()
        ref.session = self
        raw = c
        pl_session_set_callback(c, Session.callback, retainRef())
    }

    deinit {
        messageSink.finish()
        eventSink.finish()
        let c = raw.map(Handle.init)
        let ref = ref, channel = channel, node = node
        node.loop.perform {
            if let c {
                pl_session_free(c.raw) // aborts an open session; calls nothing back
                Unmanaged.passUnretained(ref).release()
            }
            _ = channel
            _ = node
        }
    }

    /// The C side's reference to ref, released when the C session is freed.
    func retainRef() -> UnsafeMutableRawPointer { Unmanaged.passRetained(ref).toOpaque() }

    static let callback: pl_session_cb = { _, ev, status, data, len, ud in
        guard let s = Unmanaged<SessionRef>.fromOpaque(ud!).takeUnretainedValue().session else { return }
        s.handle(ev, status, data, len)
    }

    private func handle(_ ev: pl_session_event, _ status: Int32, _ data: UnsafeRawPointer?, _ len: Int) {
        switch ev {
        case PL_SESSION_OPEN:
            opened?.resume()
            opened = nil
        case PL_SESSION_MESSAGE:
            messageSink.yield(len > 0 ? Data(bytes: data!, count: len) : Data())
            unread += len
            if !paused && unread > Session.pauseAbove, let raw {
                paused = pl_session_pause(raw, 1) == 0
            }
        case PL_SESSION_PEER_EOF:
            messageSink.finish()
        case PL_SESSION_INTERRUPTED:
            eventSink.yield(.interrupted(PeerLinkError(code: status)))
        case PL_SESSION_RESUMED:
            eventSink.yield(.resumed(peerReset: status != 0))
        case PL_SESSION_ACKED:
            sendWaiting()
        case PL_SESSION_PEER_TXT:
            var t: OpaquePointer?
            if let data, pl_txt_decode(data.assumingMemoryBound(to: UInt8.self), len, &t) == 0 {
                eventSink.yield(.peerTXT(dictionary(of: t)))
                pl_txt_free(t)
            }
        case PL_SESSION_CLOSED:
            end(status == 0 ? nil : PeerLinkError(code: status))
        default:
            break
        }
    }

    /// A message of len bytes was read from messages.
    func read(_ len: Int) {
        loop.perform { [self] in
            unread -= len
            if paused && unread < Session.resumeBelow, let raw {
                paused = pl_session_pause(raw, 0) != 0
            }
        }
    }

    /// The peer's messages as an AsyncSequence that tells the session what was read.
    public struct Messages: AsyncSequence, Sendable {
        public typealias Element = Data
        let session: Session
        let stream: AsyncThrowingStream<Data, Error>

        public struct AsyncIterator: AsyncIteratorProtocol {
            let session: Session
            var inner: AsyncThrowingStream<Data, Error>.AsyncIterator

            public mutating func next() async throws -> Data? {
                let m = try await inner.next()
                if let m { session.read(m.count) }
                return m
            }
        }

        public func makeAsyncIterator() -> AsyncIterator {
            AsyncIterator(session: session, inner: stream.makeAsyncIterator())
        }
    }

    /// On the loop: the session is over (err nil: cleanly).
    private func end(_ err: PeerLinkError?) {
        guard ended == nil else { return }
        ended = .some(err)
        opened?.resume(throwing: err ?? .closed)
        opened = nil
        if let err { messageSink.finish(throwing: err) } else { messageSink.finish() }
        eventSink.yield(.closed(err))
        eventSink.finish()
        for w in waiting { w.cont.resume(throwing: err ?? .invalidState) }
        waiting.removeAll()
    }

    /// On the loop: send what waited for room, in order, until the send limit holds again.
    private func sendWaiting() {
        while let raw, let w = waiting.first {
            let rc = w.data.withUnsafeBytes { pl_session_send(raw, $0.baseAddress, $0.count) }
            if rc == PL_ERR_AGAIN.rawValue { return }
            waiting.removeFirst()
            if rc == 0 { w.cont.resume() } else { w.cont.resume(throwing: PeerLinkError(code: rc)) }
        }
    }

    // ------------------------------------------------------------ making sessions

    /// Connect to a service (from a browser, or Service(name:address:port:)).
    /// Pairs with code if given; otherwise authenticates with the keys
    /// stored when the peer was paired (PeerLinkError.needsCode: ask the
    /// user for the code and connect again with it). Returns once the peer
    /// is authenticated. Cancelling the task cancels the attempt.
    public static func connect(to service: Service, node: Node, code: String? = nil) async throws -> Session {
        let s = Session(node: node)
        try await s.start(pairing: code.map { .code($0) }) { ud in
            var c: OpaquePointer?
            let rc = service.withC { pl_connect(node.raw, $0, 0, Session.callback, ud, &c) }
            return (rc, c)
        }
        return s
    }

    /// Start the C session made by make (on the loop), keyed for pairing by key if given, and
    /// wait for it to open.
    func start(pairing key: PairingKey?,
               _ make: @escaping @Sendable (UnsafeMutableRawPointer) -> (Int32, OpaquePointer?)) async throws {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Void, Error>) in
                loop.perform { [self] in
                    let ud = retainRef()
                    var (rc, c) = make(ud)
                    if rc == 0, let c {
                        raw = c
                        switch key {
                        case .code(let code): rc = pl_session_set_code(c, code)
                        case .secret(let secret):
                            rc = secret.withUnsafeBytes { pl_session_set_secret(c, $0.baseAddress, $0.count) }
                        case nil: break
                        }
                    } else {
                        Unmanaged.passUnretained(ref).release()
                    }
                    if rc != 0 {
                        end(PeerLinkError(code: rc))
                        cont.resume(throwing: PeerLinkError(code: rc))
                        return
                    }
                    opened = cont
                }
            }
        } onCancel: {
            loop.perform { [self] in
                guard let waiter = opened else { return }
                opened = nil
                close()
                waiter.resume(throwing: CancellationError())
            }
        }
    }

    // ------------------------------------------------------------ using sessions

    /// Queue a message (any bytes, up to the peer's maximum). Returns once
    /// the session took it; while the peer has not acknowledged enough of
    /// what was sent (the send limit, 4 MiB by default), it waits. Sends
    /// keep their order. Throws if the session ends first, or if the task
    /// is cancelled while it waits (that message is then not sent).
    public func send(_ data: Data) async throws {
        let token = SendToken()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Void, Error>) in
                loop.perform { [self] in
                    guard let raw, ended == nil else {
                        cont.resume(throwing: PeerLinkError.invalidState)
                        return
                    }
                    if waiting.isEmpty {
                        let rc = data.withUnsafeBytes { pl_session_send(raw, $0.baseAddress, $0.count) }
                        if rc == 0 { return cont.resume() }
                        if rc != PL_ERR_AGAIN.rawValue { return cont.resume(throwing: PeerLinkError(code: rc)) }
                    }
                    waiting.append((token, data, cont))
                    sendsThatWaited += 1
                }
            }
        } onCancel: {
            loop.perform { [self] in
                if let i = waiting.firstIndex(where: { $0.token === token }) {
                    waiting.remove(at: i).cont.resume(throwing: CancellationError())
                }
            }
        }
    }

    /// End our direction; messages go on until the peer ends too, and
    /// events then reports .closed(nil): everything was delivered.
    public func finish() async throws {
        try await loop.call { [self] in
            guard let raw else { throw PeerLinkError.invalidState }
            try check(pl_session_shutdown(raw))
        }
    }

    /// Abort at once: what is queued is dropped, the peer is told.
    public func cancel() {
        loop.perform { [self] in close() }
    }

    /// On the loop: free the C session now.
    private func close() {
        guard let c = raw else { return }
        raw = nil
        pl_session_free(c)
        Unmanaged.passUnretained(ref).release()
        end(.aborted)
    }

    /// Bound the bytes of unacknowledged messages (default 4 MiB); past it, send waits.
    public func setSendLimit(_ bytes: Int) async throws {
        try await loop.call { [self] in
            guard let raw else { throw PeerLinkError.invalidState }
            try check(pl_session_set_send_limit(raw, bytes))
        }
    }

    /// How long the session may stay interrupted before it ends (0: a broken link ends it).
    public func setResumeTimeout(milliseconds: Int32) async throws {
        try await loop.call { [self] in
            guard let raw else { throw PeerLinkError.invalidState }
            try check(pl_session_set_resume(raw, milliseconds))
        }
    }

    /// The name the peer gave in the handshake (its claim), once open.
    public var peerName: String? {
        get async {
            try? await loop.call { [self] in
                guard let raw, let n = pl_session_peer_name(raw) else { return nil }
                return String(cString: n)
            }
        }
    }

    /// The name this device's keystore holds the peer under, once open: what to show the user
    /// (peerName is only what the peer calls itself on this connection). For a responder this
    /// device dialled, the instance name it was paired under, even when reached under another.
    public var peerStoredName: String? {
        get async {
            try? await loop.call { [self] in
                guard let raw, let n = pl_session_peer_stored_name(raw) else { return nil }
                return String(cString: n)
            }
        }
    }

    /// Send this side's TXT record to the peer inside the session (sealed), now if open and again
    /// on every later connection; the peer sees .peerTXT. For links whose discovery carries no
    /// metadata (Wi-Fi Aware on iOS, a pipe). At most 4000 bytes encoded.
    public func setTXT(_ txt: [String: String]) async throws {
        try await loop.call { [self] in
            guard let raw else { throw PeerLinkError.invalidState }
            try withTXT(txt) { try check(pl_session_set_txt(raw, $0)) }
        }
    }

    /// The peer's TXT record sent inside the session (the last .peerTXT), or nil if none came.
    public var peerTXT: [String: Data?]? {
        get async {
            try? await loop.call { [self] in
                var t: OpaquePointer?
                guard let raw, pl_session_peer_txt(raw, &t) == 0 else { return nil }
                defer { pl_txt_free(t) }
                return dictionary(of: t)
            }
        }
    }

    /// Keying material bound to this session and its two authenticated peers (RFC 5705 style,
    /// docs/PROTOCOL.md 8.14): length bytes (1...16320) for label (1...255 bytes, naming the
    /// use) and context (0...1024 bytes); the same on both ends and on every connection of the
    /// session. For example a Wi-Fi Aware data path's PMK. Secret: keep it no longer than needed.
    public func export(label: String, context: Data = Data(), length: Int) async throws -> Data {
        try await loop.call { [self] in
            guard let raw else { throw PeerLinkError.invalidState }
            var out = Data(count: length)
            let rc = out.withUnsafeMutableBytes { o in
                context.withUnsafeBytes { c in
                    pl_session_export(raw, label, c.baseAddress, c.count, o.baseAddress, length)
                }
            }
            try check(rc)
            return out
        }
    }

    /// Whether this connection paired with a code (false: stored keys).
    public var paired: Bool {
        get async {
            (try? await loop.call { [self] in raw.map { pl_session_paired($0) == 1 } ?? false }) ?? false
        }
    }

    /// For tests: the C side still holds this session's reference.
    var cReference: SessionRef { ref }
}
