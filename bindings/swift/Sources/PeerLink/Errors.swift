// SPDX-License-Identifier: ISC
// The library's errors as one Swift enum: the cases an app handles by
// name, and every other pl_error by its code.
import CPeerLink

public enum PeerLinkError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The peer is not paired with us (or forgot us): ask the user for the code and connect again.
    case needsCode
    /// The code was wrong.
    case wrongCode
    /// Too many wrong codes: pairing is locked for a while.
    case locked
    /// Another pairing is in progress on the other side.
    case busy
    /// Connecting, the handshake, or an interruption took too long.
    case timedOut
    /// The user denied local network access (Settings > Privacy > Local Network).
    case localNetworkDenied
    /// The system refused a privileged operation (a socket, bind or multicast join; Avahi's access
    /// control): not the user's Local Network choice, which is localNetworkDenied.
    case permissionDenied
    /// No usable network interface (none up with multicast, or a named one down or without multicast).
    case noInterface
    /// The peer closed the connection before the session ended.
    case closed
    /// The peer freed the session.
    case aborted
    /// The session is over, or the call does not fit its state.
    case invalidState
    /// Any other error of the library (a negative pl_error).
    case failed(code: Int32)

    public init(code: Int32) {
        switch code {
        case PL_ERR_NOT_PAIRED.rawValue: self = .needsCode
        case PL_ERR_WRONG_CODE.rawValue: self = .wrongCode
        case PL_ERR_LOCKED.rawValue: self = .locked
        case PL_ERR_BUSY.rawValue: self = .busy
        case PL_ERR_TIMEOUT.rawValue: self = .timedOut
        case PL_ERR_DENIED.rawValue: self = .localNetworkDenied
        case PL_ERR_PERMISSION.rawValue: self = .permissionDenied
        case PL_ERR_NO_INTERFACE.rawValue: self = .noInterface
        case PL_ERR_CLOSED.rawValue: self = .closed
        case PL_ERR_ABORTED.rawValue: self = .aborted
        case PL_ERR_STATE.rawValue: self = .invalidState
        default: self = .failed(code: code)
        }
    }

    /// The library's error code (pl_error).
    public var code: Int32 {
        switch self {
        case .needsCode: return PL_ERR_NOT_PAIRED.rawValue
        case .wrongCode: return PL_ERR_WRONG_CODE.rawValue
        case .locked: return PL_ERR_LOCKED.rawValue
        case .busy: return PL_ERR_BUSY.rawValue
        case .timedOut: return PL_ERR_TIMEOUT.rawValue
        case .localNetworkDenied: return PL_ERR_DENIED.rawValue
        case .permissionDenied: return PL_ERR_PERMISSION.rawValue
        case .noInterface: return PL_ERR_NO_INTERFACE.rawValue
        case .closed: return PL_ERR_CLOSED.rawValue
        case .aborted: return PL_ERR_ABORTED.rawValue
        case .invalidState: return PL_ERR_STATE.rawValue
        case .failed(let code): return code
        }
    }

    public var description: String { String(cString: pl_strerror(code)) }
}

/// Throw the error of a C call that did not return PL_OK.
@inline(__always) func check(_ rc: Int32) throws {
    if rc != 0 { throw PeerLinkError(code: rc) }
}
