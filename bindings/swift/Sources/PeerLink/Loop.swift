// SPDX-License-Identifier: ISC
// The event loop of a Swift app: peerlink's pl_poll over Grand Central
// Dispatch, in Swift, so that it is the same code on iOS, tvOS, macOS and
// Linux (where it runs on the toolchain's Dispatch, and is tested).
//
// Watches are read and write dispatch sources, timers are timer sources,
// all on one serial queue: every peerlink call and every callback of a
// Loop runs on that queue, one at a time. The rules of pl_poll hold: any
// function may be called from inside any callback, freeing the watch or
// timer whose callback runs included (a cancelled source calls nothing
// more; its object goes in its cancel handler); the caller may close a
// watched descriptor right after freeing its watch (Dispatch forbids
// closing a source's descriptor before its cancel handler ran, so the
// sources watch a duplicate, closed there); a timer of 0 ms fires on a
// later turn of the queue, never inside timeout_new or timeout_update.
// (C and Objective-C apps have the same loop in C: pl_apple_poll_new().)
import CPeerLink
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public final class Loop: @unchecked Sendable {
    let queue: DispatchQueue
    /// The vtable handed to the C library; its userdata is this loop.
    let poll: UnsafeMutablePointer<pl_poll>

    public init(label: String = "org.peerlink.loop") {
        queue = DispatchQueue(label: label)
        poll = .allocate(capacity: 1)
        poll.initialize(to: pl_poll())
        poll.pointee.size = MemoryLayout<pl_poll>.size
        poll.pointee.userdata = Unmanaged.passUnretained(self).toOpaque()
        poll.pointee.watch_new = { api, fd, events, cb, ud in
            guard let api, let cb else { return nil }
            let loop = Unmanaged<Loop>.fromOpaque(api.pointee.userdata!).takeUnretainedValue()
            return Watch.make(loop: loop, fd: fd, events: events, cb: cb, ud: ud)
        }
        poll.pointee.watch_update = { w, events in
            guard let w else { return }
            Unmanaged<Watch>.fromOpaque(UnsafeRawPointer(w)).takeUnretainedValue().update(events)
        }
        poll.pointee.watch_free = { w in
            guard let w else { return }
            Unmanaged<Watch>.fromOpaque(UnsafeRawPointer(w)).takeUnretainedValue().free()
        }
        poll.pointee.timeout_new = { api, ms, cb, ud in
            guard let api, let cb else { return nil }
            let loop = Unmanaged<Loop>.fromOpaque(api.pointee.userdata!).takeUnretainedValue()
            return Timer.make(loop: loop, ms: ms, cb: cb, ud: ud)
        }
        poll.pointee.timeout_update = { t, ms in
            guard let t else { return }
            Unmanaged<Timer>.fromOpaque(UnsafeRawPointer(t)).takeUnretainedValue().arm(ms)
        }
        poll.pointee.timeout_free = { t in
            guard let t else { return }
            Unmanaged<Timer>.fromOpaque(UnsafeRawPointer(t)).takeUnretainedValue().free()
        }
    }

    deinit {
        // Every object made on this loop holds it (Node, Discovery): none is left.
        poll.deinitialize(count: 1)
        poll.deallocate()
    }

    /// Run body on the loop's queue, later.
    public func perform(_ body: @escaping @Sendable () -> Void) {
        queue.async(execute: body)
    }

    /// Run body on the loop's queue and return its result.
    func call<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { cont in
            queue.async { cont.resume(with: Result { try body() }) }
        }
    }
}

/// One pl_watch: a read and a write source, resumed while that event is wanted.
final class Watch: @unchecked Sendable {
    let fd: Int32
    let dupfd: Int32
    var events: UInt32 = 0
    let cb: pl_watch_cb
    let ud: UnsafeMutableRawPointer?
    var rd: DispatchSourceRead?
    var wr: DispatchSourceWrite?
    var rdOn = false, wrOn = false, dead = false
    var pendingCancels = 2
    var handle: OpaquePointer { OpaquePointer(Unmanaged.passUnretained(self).toOpaque()) }

    private init(fd: Int32, dupfd: Int32, cb: pl_watch_cb, ud: UnsafeMutableRawPointer?) {
        self.fd = fd
        self.dupfd = dupfd
        self.cb = cb
        self.ud = ud
    }

    static func make(loop: Loop, fd: Int32, events: UInt32, cb: pl_watch_cb,
                     ud: UnsafeMutableRawPointer?) -> OpaquePointer? {
        let d = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        if d < 0 { return nil }
        let w = Watch(fd: fd, dupfd: d, cb: cb, ud: ud)
        let rd = DispatchSource.makeReadSource(fileDescriptor: d, queue: loop.queue)
        let wr = DispatchSource.makeWriteSource(fileDescriptor: d, queue: loop.queue)
        rd.setEventHandler { w.fire(PL_WATCH_IN.rawValue) }
        wr.setEventHandler { w.fire(PL_WATCH_OUT.rawValue) }
        rd.setCancelHandler { w.gone() }
        wr.setCancelHandler { w.gone() }
        w.rd = rd
        w.wr = wr
        _ = Unmanaged.passRetained(w) // the C library's reference, until both cancel handlers ran
        w.update(events)
        return w.handle
    }

    func fire(_ ev: UInt32) {
        if !dead && events & ev != 0 {
            cb(handle, fd, ev, ud)
        }
    }

    func update(_ events: UInt32) {
        self.events = events
        set(rd, &rdOn, events & PL_WATCH_IN.rawValue != 0)
        set(wr, &wrOn, events & PL_WATCH_OUT.rawValue != 0)
    }

    private func set(_ s: DispatchSourceProtocol?, _ on: inout Bool, _ want: Bool) {
        guard let s, want != on else { return }
        if want { s.resume() } else { s.suspend() }
        on = want
    }

    func free() {
        dead = true
        // A suspended source runs its cancel handler only once resumed.
        if !rdOn { rd?.resume() }
        if !wrOn { wr?.resume() }
        rdOn = true
        wrOn = true
        rd?.cancel()
        wr?.cancel()
    }

    func gone() {
        pendingCancels -= 1
        if pendingCancels == 0 {
            close(dupfd)
            rd = nil
            wr = nil
            Unmanaged.passUnretained(self).release()
        }
    }
}

/// One pl_timeout: a one-shot timer source, rescheduled or pushed far away.
final class Timer: @unchecked Sendable {
    let src: DispatchSourceTimer
    let cb: pl_timeout_cb
    let ud: UnsafeMutableRawPointer?
    var armed = false, dead = false
    var due = DispatchTime.distantFuture
    var handle: OpaquePointer { OpaquePointer(Unmanaged.passUnretained(self).toOpaque()) }

    private init(src: DispatchSourceTimer, cb: pl_timeout_cb, ud: UnsafeMutableRawPointer?) {
        self.src = src
        self.cb = cb
        self.ud = ud
    }

    static func make(loop: Loop, ms: Int32, cb: pl_timeout_cb, ud: UnsafeMutableRawPointer?) -> OpaquePointer? {
        let t = Timer(src: DispatchSource.makeTimerSource(queue: loop.queue), cb: cb, ud: ud)
        t.src.setEventHandler { t.fire() }
        t.src.setCancelHandler { Unmanaged.passUnretained(t).release() }
        _ = Unmanaged.passRetained(t) // the C library's reference, until the cancel handler ran
        t.arm(ms)
        t.src.resume()
        return t.handle
    }

    func arm(_ ms: Int32) {
        if ms < 0 {
            armed = false
            due = .distantFuture
            src.schedule(deadline: .distantFuture)
            return
        }
        armed = true
        due = .now() + .milliseconds(Int(ms))
        src.schedule(deadline: due)
    }

    func fire() {
        // A firing of an earlier schedule may still be queued: only the current one counts.
        guard !dead, armed, DispatchTime.now() >= due else { return }
        armed = false
        cb(handle, ud)
    }

    func free() {
        dead = true
        src.cancel()
    }
}
