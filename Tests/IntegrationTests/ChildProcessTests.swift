import Foundation
import Spawn
import XCTest

/// ChildProcess starts real programs: what the child gets is read back from the child itself.
final class ChildProcessTests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "childprocess-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func run(_ script: String, limit: Int) throws -> (ChildProcess.Outcome, String) {
        let child = try ChildProcess(["/bin/sh", "-c", script], environment: ["PATH": "/usr/bin:/bin"],
                                     stdout: dir + "/out", stderr: dir + "/err", addressSpaceLimit: limit)
        let outcome = child.wait(deadline: Date().addingTimeInterval(60), isCancelled: { false })
        return (outcome, ChildProcess.tail(dir + "/out"))
    }

    func testChildGetsLimitsOwnGroupEmptyMaskAndNullStdin() throws {
        // Workers block SIGTERM in their threads: the child must not inherit that.
        var term = sigset_t(), old = sigset_t()
        sigemptyset(&term)
        sigaddset(&term, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &term, &old)
        defer { pthread_sigmask(SIG_SETMASK, &old, nil) }
        let (outcome, out) = try run("""
            echo "as=$(ulimit -v)"; echo "core=$(ulimit -c)"
            echo "pgrp=$(cut -d' ' -f5 /proc/$$/stat) pid=$$"
            echo "$(grep SigBlk /proc/$$/status | tr -d '[:space:]')"
            echo "stdin=$(readlink /proc/$$/fd/0)"
            """, limit: 1 << 30)
        XCTAssertEqual(outcome, .exited(0), out)
        XCTAssertTrue(out.contains("as=1048576\n"), out)
        XCTAssertTrue(out.contains("core=0\n"), out)
        let pgrp = out.firstMatch(of: /pgrp=(\d+) pid=(\d+)/)
        XCTAssertNotNil(pgrp, out)
        XCTAssertEqual(pgrp.map { String($0.1) }, pgrp.map { String($0.2) }, "the child leads its own process group")
        XCTAssertTrue(out.contains("SigBlk:0000000000000000"), out)
        XCTAssertTrue(out.contains("stdin=/dev/null"), out)
    }

    func testChildInheritsOnlyItsStandardDescriptors() throws {
        // A descriptor the parent opened without O_CLOEXEC must still not reach the child.
        let leak = open("/dev/null", O_RDONLY)
        XCTAssertGreaterThan(leak, 2)
        defer { close(leak) }
        let child = try ChildProcess(["/bin/ls", "/proc/self/fd"], environment: [:], stdout: dir + "/out", stderr: dir + "/err")
        XCTAssertEqual(child.wait(deadline: Date().addingTimeInterval(60), isCancelled: { false }), .exited(0))
        let fds = ChildProcess.tail(dir + "/out").split(separator: "\n").compactMap { Int32($0) }.sorted()
        // 0-2, and the directory `ls` itself opens to list /proc/self/fd (the lowest free number).
        XCTAssertEqual(fds, [0, 1, 2, 3])
    }

    func testAddressSpaceLimitStopsAGreedyChild() throws {
        // 64 MB is too little for a shell asked to build a 200 MB string.
        let (outcome, out) = try run("x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}", limit: 64 << 20)
        XCTAssertNotEqual(outcome, .exited(0), out)
        XCTAssertFalse(out.contains("200000000"), out)
    }

    func testChildDiesWithTheThreadThatStartedIt() throws {
        let started = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var child: ChildProcess?
        nonisolated(unsafe) var failure: Error?
        let out = dir + "/out", err = dir + "/err"
        let thread = Thread {
            do { child = try ChildProcess(["/bin/sleep", "600"], environment: [:], stdout: out, stderr: err) } catch { failure = error }
            started.signal()
            // The thread ends here: the kernel sends the child SIGKILL.
        }
        thread.start()
        started.wait()
        XCTAssertNil(failure)
        let sleeper = try XCTUnwrap(child)
        let outcome = sleeper.wait(deadline: Date().addingTimeInterval(120), isCancelled: { false })
        XCTAssertEqual(outcome, .signalled(SIGKILL))
    }

    func testExecFailureIsReportedToTheCaller() {
        XCTAssertThrowsError(try ChildProcess(["/nonexistent/tool"], environment: [:], stdout: dir + "/out", stderr: dir + "/err")) { error in
            XCTAssertTrue("\(error)".contains("exec"), "\(error)")
            XCTAssertTrue("\(error)".contains("No such file"), "\(error)")
        }
    }
}
