// SPDX-License-Identifier: ISC
// Tests of PeerLink for Swift against the C library built from this tree:
// two peers in one process over TCP on loopback and over byte channels in
// memory; browsing with the built-in mDNS engine (only on the loopback
// interface: tests/swift.sh runs this inside a network namespace of its
// own with PEERLINK_MDNS_INTERFACES=lo); the Dispatch event loop itself.
import CPeerLink
import Dispatch
import Foundation
import Testing
@testable import PeerLink

let code = "135790"

/// Run body, failing if it takes longer than seconds (a hang fails the test).
func within<T: Sendable>(_ seconds: Double = 20, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw TimedOut()
        }
        return value
    }
}

struct TimedOut: Error {}

/// Two peers on one loop: a listener's node and a dialler's.
struct Peers {
    let loop = Loop()
    let server: Node
    let client: Node

    init() async throws {
        server = try await Node(loop: loop, keystore: Keystore(inMemory: ()))
        client = try await Node(loop: loop, keystore: Keystore(inMemory: ()))
    }

    /// A listener "Kitchen" on the server, and a session the client paired with it over TCP.
    func paired() async throws -> (Listener, client: Session, server: Session) {
        let listener = try await Listener(node: server, name: "Kitchen", pairing: .code(code))
        let service = Service(name: "Kitchen", address: "127.0.0.1", port: await listener.port)
        let node = client
        let c = try await within { try await Session.connect(to: service, node: node, code: code) }
        var accepted = listener.sessions.makeAsyncIterator()
        let s = try #require(await accepted.next())
        return (listener, c, s)
    }
}

func message(_ i: Int, size: Int = 64) -> Data {
    var bytes = (0..<size).map { k in UInt8(truncatingIfNeeded: i &* 31 &+ k) }
    for k in 0..<4 { bytes[k] = UInt8(truncatingIfNeeded: UInt32(i) >> (24 - 8 * k)) }
    return Data(bytes)
}

func index(of d: Data) -> Int {
    Int(d.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
}

// ---------------------------------------------------------------- TCP on loopback

@Test(.timeLimit(.minutes(1))) func pairExchangeAndReconnectOverTCP() async throws {
    let p = try await Peers()
    let listener = try await Listener(node: p.server, name: "Kitchen", pairing: .code(code))
    let port = await listener.port
    #expect(port > 0)
    let service = Service(name: "Kitchen", address: "127.0.0.1", port: port)

    // Not paired, no code: the typed error that asks for one.
    await #expect(throws: PeerLinkError.needsCode) {
        try await within { try await Session.connect(to: service, node: p.client) }
    }
    // The wrong code.
    await #expect(throws: PeerLinkError.wrongCode) {
        try await within { try await Session.connect(to: service, node: p.client, code: "000000") }
    }
    // After a failed attempt the next waits a second (PROTOCOL.md section 11.2): .busy until then.
    await #expect(throws: PeerLinkError.busy) {
        try await within { try await Session.connect(to: service, node: p.client, code: code) }
    }
    try await Task.sleep(nanoseconds: 1_100_000_000)
    // The right one: both directions, in order.
    let client = try await within { try await Session.connect(to: service, node: p.client, code: code) }
    #expect(await client.paired)
    var accepted = listener.sessions.makeAsyncIterator()
    let server = try #require(await accepted.next())
    try await client.send(Data("hello".utf8))
    try await server.send(Data("world".utf8))
    var fromClient = server.messages.makeAsyncIterator()
    var fromServer = client.messages.makeAsyncIterator()
    #expect(try await fromClient.next() == Data("hello".utf8))
    #expect(try await fromServer.next() == Data("world".utf8))
    // Both end: each side's messages end, and the session closes cleanly.
    try await client.finish()
    try await server.finish()
    #expect(try await fromClient.next() == nil)
    #expect(try await fromServer.next() == nil)
    var events = client.events.makeAsyncIterator()
    #expect(await events.next() == .closed(nil))

    // Paired now: a new session with the stored keys, no code.
    let again = try await within { try await Session.connect(to: service, node: p.client) }
    #expect(await again.paired == false)
    #expect(try await p.client.pairedPeers().map(\.name) == ["Kitchen"])
    try await p.client.forget(name: "Kitchen")
    #expect(try await p.client.pairedPeers().isEmpty)
}

@Test(.timeLimit(.minutes(1))) func pairingClosesAfterTheFirstPeerUntilOpenedAgain() async throws {
    let p = try await Peers()
    let third = try await Node(loop: p.loop, keystore: Keystore(inMemory: ()))
    try await third.setName("Laptop")
    let (listener, client, server) = try await p.paired()
    #expect(await server.peerStoredName == (await server.peerName))
    #expect(await client.peerStoredName == "Kitchen")
    _ = client
    var news = listener.pairingEvents.makeAsyncIterator()
    #expect(await news.next() == .closed(nil)) // a peer paired
    #expect(await listener.code == nil)
    let service = Service(name: "Kitchen", address: "127.0.0.1", port: await listener.port)
    // Closed after the first pairing: a second device with the code is refused.
    await #expect(throws: PeerLinkError.needsCode) {
        try await within { try await Session.connect(to: service, node: third, code: code) }
    }
    // Opened again on the user's act, and kept open after a pairing.
    try await listener.setPairingWindow(seconds: 60, keepOpenAfterPairing: true)
    try await listener.openPairing(.code(code))
    try await Task.sleep(nanoseconds: 1_100_000_000) // the failed attempt's pause
    let s3 = try await within { try await Session.connect(to: service, node: third, code: code) }
    #expect(await s3.paired)
    var accepted = listener.sessions.makeAsyncIterator() // paired() took the first client's session
    let at3 = try #require(await accepted.next())
    #expect(await at3.peerName == "Laptop")
    // The roles: the dialler stored a responder, the listener an initiator; forget by id.
    let mine = try await third.pairedPeers()
    #expect(mine.map(\.role) == [.responder] && mine.map(\.name) == ["Kitchen"])
    let theirs = try await p.server.pairedPeers().filter { $0.name == "Laptop" }
    #expect(theirs.map(\.role) == [.initiator])
    try await p.server.forget(id: try #require(theirs.first).id)
    #expect(try await p.server.pairedPeers().allSatisfy { $0.name != "Laptop" })
    await #expect(throws: (any Error).self) { try await p.server.forget(id: [1, 2, 3]) }
}

@Test(.timeLimit(.minutes(1))) func sendWaitsUnderBackpressureAndLosesNothing() async throws {
    let p = try await Peers()
    let (_, client, server) = try await p.paired() // the listener may go: accepted sessions live on
    try await client.setSendLimit(4096)
    let count = 300
    let sender = Task {
        for i in 0..<count { try await client.send(message(i, size: 1000)) }
        try await client.finish()
    }
    var got = 0
    for try await m in server.messages {
        #expect(index(of: m) == got) // once each, in order
        #expect(m == message(got, size: 1000))
        got += 1
    }
    try await sender.value
    #expect(got == count)
    #expect(client.sendsThatWaited > 0) // the limit held: some sends waited for acknowledgements
}

final class Tally: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.withLock { n += 1 } }
    var value: Int { lock.withLock { n } }
}

/// A reader that does not read holds the sender back (the session pauses
/// past 1 MiB unread, the peer's send limit does the rest); once it
/// reads, everything arrives, once and in order.
@Test(.timeLimit(.minutes(1))) func slowReaderHoldsBackTheSender() async throws {
    let p = try await Peers()
    let (_, client, server) = try await p.paired() // the listener may go: accepted sessions live on
    let count = 8000, sent = Tally()
    let sender = Task {
        for i in 0..<count {
            try await client.send(message(i, size: 1000))
            sent.add()
        }
        try await client.finish()
    }
    // Nothing read: the sender stops (no progress for half a second), short
    // of the end, having sent at most what the reader's 1 MiB, the C
    // session's receive limit and the sender's send limit (4 MiB each) hold.
    var stopped = -1
    for _ in 0..<60 {
        let before = sent.value
        try await Task.sleep(nanoseconds: 500_000_000)
        if sent.value == before { stopped = before; break }
    }
    #expect(stopped > 0 && stopped < count)
    #expect(stopped * 1000 <= (1 << 20) + 4 * (1 << 20) + 100_000)
    var got = 0
    for try await m in server.messages {
        #expect(index(of: m) == got)
        got += 1
    }
    try await sender.value
    #expect(got == count)
}

// ---------------------------------------------------------------- byte channels in memory

/// One end of a pipe in memory. cut() breaks the pipe: both ends see its end.
final class MemoryChannel: ByteChannel, @unchecked Sendable {
    private let lock = NSLock()
    private let queue = DispatchQueue(label: "memory-channel")
    weak var other: MemoryChannel?
    private var pending: (@Sendable (Data) -> Void)? // a receive waiting for a chunk
    private var inbox: [Data] = []                     // chunks waiting for a receive
    private var broken = false

    static func pair() -> (MemoryChannel, MemoryChannel) {
        let a = MemoryChannel(), b = MemoryChannel()
        a.other = b
        b.other = a
        return (a, b)
    }

    func write(_ data: Data, completion: @escaping @Sendable (Error?) -> Void) {
        let peer = lock.withLock { broken ? nil : other }
        guard let peer else { return completion(TimedOut()) }
        peer.deliver(data)
        completion(nil)
    }

    func receive(_ completion: @escaping @Sendable (Data) -> Void) {
        let ready: Data? = lock.withLock {
            if inbox.isEmpty {
                pending = completion
                return nil
            }
            return inbox.removeFirst()
        }
        if let ready { queue.async { completion(ready) } }
    }

    fileprivate func deliver(_ data: Data) {
        let r: (@Sendable (Data) -> Void)? = lock.withLock {
            if broken { return nil }
            guard let r = pending else {
                inbox.append(data)
                return nil
            }
            pending = nil
            return r
        }
        if let r { queue.async { r(data) } }
    }

    /// Chunks that arrived and that nobody has asked for yet.
    var unread: Int { lock.withLock { inbox.count } }

    func close() { cut() }

    /// The pipe breaks: each end reads its end.
    func cut() {
        let peer: MemoryChannel? = lock.withLock {
            if broken { return nil }
            return other
        }
        deliver(Data())
        lock.withLock { broken = true }
        peer?.deliver(Data())
        peer?.lock.withLock { peer?.broken = true }
    }
}

@Test(.timeLimit(.minutes(1))) func channelSessionSurvivesCutLinks() async throws {
    let p = try await Peers()
    let listener = try await Listener(node: p.server, detachedAs: "aware", pairing: .code(code))
    var (a, b) = MemoryChannel.pair()
    try await listener.accept(b)
    let first = a
    let client = try await within {
        try await Session.over(first, role: .initiator, instance: "aware", node: p.client, code: code,
                               resumeTimeout: 30000)
    }
    var accepted = listener.sessions.makeAsyncIterator()
    let server = try #require(await accepted.next())
    var fromClient = server.messages.makeAsyncIterator()
    var clientEvents = client.events.makeAsyncIterator()
    let count = 60
    for i in 0..<count {
        try await client.send(message(i))
        if i % 20 == 19 {
            // Cut the pipe: the initiator is interrupted, brings a new pipe, the session resumes.
            a.cut()
            let ev = await clientEvents.next()
            guard case .interrupted = ev else {
                Issue.record("expected an interruption, got \(String(describing: ev))")
                return
            }
            (a, b) = MemoryChannel.pair()
            try await listener.accept(b)
            try await client.attach(a)
            #expect(await clientEvents.next() == .resumed(peerReset: false))
        }
    }
    for i in 0..<count {
        let m = try await fromClient.next()
        #expect(m.map(index(of:)) == i) // every message once, in order, across three links
    }
    try await client.finish()
    try await server.finish()
    #expect(await clientEvents.next() == .closed(nil))
}

/// Wi-Fi Aware on iOS, as far as it runs here: both ends pair over a pipe on a secret they got
/// elsewhere (what WAConnection.deriveSharedSecret would give), tell each other their TXT
/// records inside the session, and derive the same bytes from it. The pipe is in memory:
/// Network.framework and the WiFiAware framework are not exercised (they exist on Apple only).
@Test(.timeLimit(.minutes(1))) func secretPairingTXTAndExporterOverAChannel() async throws {
    let p = try await Peers()
    let secret = Data((0..<32).map { UInt8($0) })
    let (a, b) = MemoryChannel.pair()
    let server = p.server, client = p.client
    async let accepted = within {
        try await Session.over(b, role: .responder, instance: "aware", node: server, secret: secret)
    }
    let c = try await within {
        try await Session.over(a, role: .initiator, instance: "aware", node: client, secret: secret)
    }
    let s = try await accepted
    #expect(await c.paired)
    #expect(await s.paired)
    #expect(await c.peerTXT == nil)
    var serverEvents = s.events.makeAsyncIterator()
    try await c.setTXT(["model": "phone"])
    #expect(await serverEvents.next() == .peerTXT(["model": Data("phone".utf8)]))
    #expect(await s.peerTXT == ["model": Data("phone".utf8)])
    let x = try await c.export(label: "EXAMPLE wifi-aware pmk", context: Data("nan".utf8), length: 32)
    let y = try await s.export(label: "EXAMPLE wifi-aware pmk", context: Data("nan".utf8), length: 32)
    #expect(x.count == 32 && x == y)
    await #expect(throws: PeerLinkError.self) { try await c.export(label: "", length: 32) }
    // A secret on one end and another on the other: the pairing fails on both.
    let (a2, b2) = MemoryChannel.pair()
    let refused = Task {
        try await within {
            try await Session.over(b2, role: .responder, instance: "aware", node: server, secret: Data(count: 16))
        }
    }
    await #expect(throws: PeerLinkError.self) {
        try await within { try await Session.over(a2, role: .initiator, instance: "aware", node: client, secret: secret) }
    }
    await #expect(throws: PeerLinkError.self) { try await refused.value }
}

/// A sender that does not wait for the reader (here: a send limit of 16 MiB,
/// four times what the reading session holds unread) fills the pipe, not
/// the reader's memory: the session takes one chunk at a time and stops
/// asking the pipe for more once it holds all it may.
@Test(.timeLimit(.minutes(1))) func channelSessionLeavesWhatItCannotHoldInThePipe() async throws {
    let p = try await Peers()
    let listener = try await Listener(node: p.server, detachedAs: "aware", pairing: .code(code))
    let (a, b) = MemoryChannel.pair()
    try await listener.accept(b)
    let client = try await within {
        try await Session.over(a, role: .initiator, instance: "aware", node: p.client, code: code)
    }
    var accepted = listener.sessions.makeAsyncIterator()
    let server = try #require(await accepted.next())
    try await client.setSendLimit(16 << 20)
    let size = 2000, count = 10_000, sent = Tally()
    let sender = Task {
        for i in 0..<count {
            try await client.send(message(i, size: size))
            sent.add()
        }
        try await client.finish()
    }
    var stopped = -1
    for _ in 0..<60 {
        let before = sent.value
        try await Task.sleep(nanoseconds: 500_000_000)
        if sent.value == before { stopped = before; break }
    }
    #expect(stopped > 0 && stopped < count)
    #expect(b.unread > 0) // the rest waits in the pipe
    var got = 0
    for try await m in server.messages {
        #expect(index(of: m) == got)
        got += 1
    }
    try await sender.value
    #expect(got == count)
}

// ---------------------------------------------------------------- freeing

@Test(.timeLimit(.minutes(1))) func droppingEverythingFreesEverything() async throws {
    weak var weakLoop: Loop?
    weak var weakSessionRef: SessionRef?
    weak var weakServerRef: SessionRef?
    weak var weakListener: Listener?
    do {
        let p = try await Peers()
        weakLoop = p.loop
        let (listener, client, server) = try await p.paired()
        weakListener = listener
        weakSessionRef = client.cReference
        weakServerRef = server.cReference
        try await client.send(Data("open and in use".utf8))
    }
    // The C objects go on the loop's queue after the Swift ones: wait for it.
    for _ in 0..<200 where weakLoop != nil || weakSessionRef != nil || weakServerRef != nil {
        try await Task.sleep(nanoseconds: 10_000_000)
    }
    #expect(weakListener == nil)
    #expect(weakSessionRef == nil) // the C session let go of its reference: it was freed
    #expect(weakServerRef == nil)
    #expect(weakLoop == nil)       // nothing kept the loop: no retain cycle
}

@Test(.timeLimit(.minutes(1))) func cancellingConnectFreesTheAttempt() async throws {
    let p = try await Peers()
    // A listener that never answers the handshake: a TCP socket nobody accepts on.
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var sa = sockaddr_in()
    sa.sin_family = sa_family_t(AF_INET)
    sa.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    _ = listen(fd, 4)
    _ = withUnsafeMutablePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    let service = Service(name: "Silent", address: "127.0.0.1", port: UInt16(bigEndian: sa.sin_port))
    let attempt = Task { try await Session.connect(to: service, node: p.client, code: code) }
    try await Task.sleep(nanoseconds: 100_000_000)
    attempt.cancel()
    await #expect(throws: CancellationError.self) { try await attempt.value }
}

// ---------------------------------------------------------------- discovery

let onLoopback = ProcessInfo.processInfo.environment["PEERLINK_MDNS_INTERFACES"] == "lo"

@Test(.enabled(if: onLoopback, "multicast stays on lo: run through tests/swift.sh"), .timeLimit(.minutes(1)))
func browseSeesPublishTXTUpdateAndRemoval() async throws {
    let p = try await Peers()
    let disc = try await Discovery(loop: p.loop, backend: "mdns")
    let type = "_peerlinkswift._tcp"
    var events = disc.browse(type: type).makeAsyncIterator()
    var listener: Listener? = try await Listener(node: p.server, name: "Swift Kitchen", type: type,
                                                 txt: ["model": "k1"], discovery: disc, pairing: .code(code))
    func next() async throws -> BrowseEvent? {
        while let ev = try await events.next() {
            if ev != .allForNow { return ev } // when it comes depends on the publication's probing
        }
        return nil
    }
    guard case .added(let s)? = try await next() else { Issue.record("no ADD"); return }
    #expect(s.name == "Swift Kitchen")
    #expect(s.txt["model"] == Data("k1".utf8))
    #expect(s.port == (await listener!.port))
    try await listener!.setTXT(["model": "k2"])
    var updated = false
    while let ev = try await next() {
        if case .updated(let u) = ev, u.txt["model"] == Data("k2".utf8) { updated = true; break }
    }
    #expect(updated)
    // A browse result connects as is.
    let client = try await within { try await Session.connect(to: s, node: p.client, code: code) }
    try await client.send(Data("found you".utf8))
    listener = nil // withdraws the publication
    var removed = false
    while let ev = try await next() {
        if case .removed(let r) = ev, r.name == "Swift Kitchen" { removed = true; break }
    }
    #expect(removed)
}

@Test(.enabled(if: onLoopback, "multicast stays on lo: run through tests/swift.sh"), .timeLimit(.minutes(1)))
func browseSaysWhenTheInitialListIsIn() async throws {
    let p = try await Peers()
    let disc = try await Discovery(loop: p.loop, backend: "mdns")
    let listener = try await Listener(node: p.server, name: "Swift Pantry", type: "_peerlinkafn._tcp",
                                      discovery: disc, pairing: .code(code))
    // Wait until it is published (its ADD), wherever this browse's .allForNow falls.
    var first = disc.browse(type: "_peerlinkafn._tcp").makeAsyncIterator()
    while let ev = try await first.next() {
        if case .added = ev { break }
    }
    // Published before these browses start: listed first, then .allForNow.
    var types = disc.browse(type: "_services._dns-sd._udp").makeAsyncIterator()
    var sawType = false
    while let ev = try await types.next() {
        if case .added(let t) = ev, t.name == "_peerlinkafn._tcp" {
            #expect(t.type == "_services._dns-sd._udp")
            #expect(t.port == 0 && t.addresses.isEmpty)
            sawType = true
        }
        if ev == .allForNow { break }
    }
    #expect(sawType)
    var events = disc.browse(type: "_peerlinkafn._tcp").makeAsyncIterator()
    guard case .added(let s)? = try await events.next() else { Issue.record("no ADD"); return }
    #expect(s.name == "Swift Pantry")
    #expect(try await events.next() == .allForNow)
    _ = listener
}

// ---------------------------------------------------------------- the loop itself

final class LoopProbe: @unchecked Sendable {
    let loop = Loop()
    var fired = 0
    var insideTimeoutNew = false
    var timerFiredInside = false
    var done: CheckedContinuation<Void, Never>?
}

/// The pl_poll rules the C library relies on: a watch freed from inside its
/// own callback (its descriptor closed at once) calls nothing more; a timer
/// of 0 ms fires later, never inside timeout_new.
@Test(.timeLimit(.minutes(1))) func loopKeepsThePollRules() async throws {
    let probe = LoopProbe()
    var fds: [Int32] = [0, 0]
    #expect(pipe(&fds) == 0)
    let (rfd, wfd) = (fds[0], fds[1])
    await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in
        probe.loop.perform {
            probe.done = cont
            let api = UnsafePointer(probe.loop.poll)
            let ud = Unmanaged.passUnretained(probe).toOpaque()
            let w = api.pointee.watch_new!(api, rfd, PL_WATCH_IN.rawValue, { w, fd, _, ud in
                let p = Unmanaged<LoopProbe>.fromOpaque(ud!).takeUnretainedValue()
                let api = UnsafePointer(p.loop.poll)
                p.fired += 1
                api.pointee.watch_free!(w)
                close(fd)
                p.insideTimeoutNew = true
                _ = api.pointee.timeout_new!(api, 0, { t, ud in
                    let p = Unmanaged<LoopProbe>.fromOpaque(ud!).takeUnretainedValue()
                    if p.insideTimeoutNew { p.timerFiredInside = true }
                    UnsafePointer(p.loop.poll).pointee.timeout_free!(t)
                    p.done?.resume()
                    p.done = nil
                }, ud)
                p.insideTimeoutNew = false
            }, ud)
            #expect(w != nil)
            var byte: UInt8 = 1
            _ = write(wfd, &byte, 1)
            _ = write(wfd, &byte, 1) // still readable after the first callback: it must not come again
        }
    }
    try await Task.sleep(nanoseconds: 100_000_000)
    #expect(probe.fired == 1)
    #expect(!probe.timerFiredInside)
    close(wfd)
}
