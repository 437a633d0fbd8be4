import Foundation
import HTTPKit
import Postgres

extension PGConnection.Watch {
    /// What a request's statement watches: nginx hanging up on the request's connection, and `deadline`.
    /// Without `isAborted` where the descriptor is known: the wait polls that descriptor together with the
    /// result already, and `request.isClientGone` would poll the same descriptor again, one more syscall per
    /// wait on every tile and query (seen with `strace -f` on maps-api).
    public init(request: HTTPRequest, deadline: Date?) {
        if request.abortDescriptor >= 0 {
            self.init(abortDescriptor: request.abortDescriptor, deadline: deadline)
        } else {
            self.init(isAborted: request.isClientGone, deadline: deadline)
        }
    }
}
