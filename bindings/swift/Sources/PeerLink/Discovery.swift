// SPDX-License-Identifier: ISC
// DNS-SD: browsing as an AsyncSequence, and the services it finds.
import CPeerLink
import Foundation

/// A service instance found by browsing (or named by hand with its address).
public struct Service: Sendable, Hashable {
    public let name: String
    public let type: String
    public let domain: String
    /// Empty, with port 0 and no addresses, on Apple: Network.framework resolves the service when it connects.
    public let host: String
    public let port: UInt16
    /// The TXT record: key to value (nil: a key present without "=").
    public let txt: [String: Data?]
    /// Every address known, as "192.0.2.1" or "fe80::1%3".
    public let addresses: [String]
    let raw: [Address]

    /// A service at an address of your choosing (no discovery): a TCP
    /// listener on host:port, e.g. "127.0.0.1" or "::1".
    public init(name: String, type: String = "_peerlink._tcp", address: String, port: UInt16) {
        var a = pl_address()
        if address.contains(":") {
            a.family = AF_INET6
            withUnsafeMutableBytes(of: &a.addr) { _ = inet_pton(AF_INET6, address, $0.baseAddress) }
        } else {
            a.family = AF_INET
            withUnsafeMutableBytes(of: &a.addr) { _ = inet_pton(AF_INET, address, $0.baseAddress) }
        }
        self.name = name
        self.type = type
        domain = "local"
        host = address
        self.port = port
        txt = [:]
        addresses = [address]
        raw = [Address(a)]
    }

    init(_ p: UnsafePointer<pl_service>) {
        let s = p.pointee
        name = String(cString: s.name)
        type = s.type.map { String(cString: $0) } ?? ""
        domain = s.domain.map { String(cString: $0) } ?? "local"
        host = s.host.map { String(cString: $0) } ?? ""
        port = s.port
        txt = dictionary(of: s.txt)
        let raw = (0..<s.n_addresses).map { Address(s.addresses[$0]) }
        self.raw = raw
        addresses = raw.map { $0.description }
    }

    /// Call body with the C form of this service (valid for the call).
    func withC<T>(_ body: (UnsafePointer<pl_service>) throws -> T) rethrows -> T {
        let addrs = raw.map { $0.value }
        return try name.withCString { n in
            try type.withCString { t in
                try domain.withCString { d in
                    try host.withCString { h in
                        try addrs.withUnsafeBufferPointer { a in
                            var s = pl_service()
                            s.name = n
                            s.type = type.isEmpty ? nil : t
                            s.domain = d
                            s.host = h
                            s.port = port
                            s.n_addresses = a.count
                            s.addresses = a.baseAddress
                            return try withUnsafePointer(to: &s) { try body($0) }
                        }
                    }
                }
            }
        }
    }
}

/// A pl_address as a Sendable, Hashable value.
struct Address: Sendable, Hashable, CustomStringConvertible {
    let family: Int32
    let bytes: [UInt8]
    let ifindex: UInt32

    init(_ a: pl_address) {
        var a = a
        family = a.family
        bytes = withUnsafeBytes(of: &a.addr) { Array($0) }
        ifindex = a.ifindex
    }

    var value: pl_address {
        var a = pl_address()
        a.family = family
        a.ifindex = ifindex
        withUnsafeMutableBytes(of: &a.addr) { $0.copyBytes(from: bytes) }
        return a
    }

    var description: String {
        var a = value
        var buf = [CChar](repeating: 0, count: 64)
        guard pl_address_to_string(&a, &buf, buf.count) == 0 else { return "?" }
        return buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}

public enum BrowseEvent: Sendable, Equatable {
    case added(Service), updated(Service), removed(Service)
    /// The answers to the first query are in and every instance among them has
    /// been added: what is on the network now is listed (like `avahi-browse -t`).
    /// Once per browse; browsing goes on (see pl_browse() for when it comes).
    case allForNow
}

/// DNS-SD on a loop: "apple" (Network.framework) on Apple platforms, Avahi
/// or the built-in mDNS engine ("mdns") elsewhere.
public final class Discovery: @unchecked Sendable {
    public let loop: Loop
    let raw: OpaquePointer

    /// backend: nil for the platform's default, or "apple", "avahi", "mdns".
    public init(loop: Loop, backend: String? = nil) async throws {
        self.loop = loop
        let p = PollRef(poll: UnsafePointer(loop.poll))
        raw = try await loop.call {
            var d: OpaquePointer?
            try check(pl_discovery_new(p.poll, backend, &d))
            return Handle(raw: d!)
        }.raw
    }

    deinit {
        let d = Handle(raw: raw), loop = loop
        loop.perform {
            pl_discovery_free(d.raw)
            _ = loop // its vtable outlives the discovery
        }
    }

    /// Browse a service type. The sequence ends with an error if browsing
    /// fails (e.g. .localNetworkDenied); ending the iteration (or its task)
    /// stops the browser. type "_services._dns-sd._udp" lists the service
    /// types on the network instead: each is a Service named after the type
    /// ("_http._tcp"), with port 0 and no address, added and removed.
    public func browse(type: String = "_peerlink._tcp") -> AsyncThrowingStream<BrowseEvent, Error> {
        AsyncThrowingStream { continuation in
            let sink = BrowseSink(continuation: continuation)
            let d = Handle(raw: raw)
            let loop = loop
            loop.perform {
                let ud = Unmanaged.passRetained(sink).toOpaque() // the C browser's, released with it
                var b: OpaquePointer?
                let rc = pl_browse(d.raw, type, nil, { _, ev, status, svc, ud in
                    let c = Unmanaged<BrowseSink>.fromOpaque(ud!).takeUnretainedValue().continuation
                    switch ev {
                    case PL_BROWSE_ADD: c.yield(.added(Service(svc!)))
                    case PL_BROWSE_UPDATE: c.yield(.updated(Service(svc!)))
                    case PL_BROWSE_REMOVE: c.yield(.removed(Service(svc!)))
                    case PL_BROWSE_ALL_FOR_NOW: c.yield(.allForNow)
                    default: c.finish(throwing: PeerLinkError(code: status))
                    }
                }, ud, &b)
                if rc != 0 {
                    continuation.finish(throwing: PeerLinkError(code: rc))
                    Unmanaged<BrowseSink>.fromOpaque(ud).release()
                    return
                }
                sink.browser = b.map(Handle.init)
                if sink.cancelled { sink.stop() }
            }
            continuation.onTermination = { [self] _ in
                // The browser needs its discovery: it stays alive until the browse ends.
                loop.perform {
                    sink.cancelled = true
                    sink.stop()
                    _ = self
                }
            }
        }
    }
}

final class BrowseSink: @unchecked Sendable {
    let continuation: AsyncThrowingStream<BrowseEvent, Error>.Continuation
    var browser: Handle?
    var cancelled = false

    init(continuation: AsyncThrowingStream<BrowseEvent, Error>.Continuation) {
        self.continuation = continuation
    }

    /// On the loop: free the browser, then the C side's reference to us.
    func stop() {
        guard let b = browser else { return }
        browser = nil
        pl_browser_free(b.raw)
        Unmanaged.passUnretained(self).release()
    }
}
