// `intern chat` driven through pipes: turns, /reset, /exit, and Ctrl-C (SIGINT) stopping a reply
// without ending the program.
import Foundation
import Testing

@Suite struct ChatCommandTests {
    func tinyModel() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("intern-chat-\(UUID().uuidString)")
        let r = try CLIRunner.run(["init", "--preset", "tiny", "--out", dir.path])
        #expect(r.status == 0, "\(r.stderr)")
        return dir
    }

    @Test func turnsResetAndExit() throws {
        let dir = try tinyModel()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CLIRunner.run(
            ["chat", "--model", dir.path, "--max-tokens", "2", "--temperature", "0"], stdin: "hi\n/reset\nhello\n/exit\nnot read\n")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.components(separatedBy: "> ").count == 5, "stdout: \(r.stdout)")
        #expect(r.stdout.contains("(history cleared)"))
    }

    @Test func interruptStopsTheReplyAndKeepsChatting() throws {
        let dir = try tinyModel()
        defer { try? FileManager.default.removeItem(at: dir) }
        let process = Process()
        process.executableURL = CLIRunner.executable
        process.arguments = ["chat", "--model", dir.path, "--max-tokens", "1000000", "--temperature", "0"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        let collected = Collected()
        output.fileHandleForReading.readabilityHandler = { collected.append($0.availableData) }
        try process.run()
        input.fileHandleForWriting.write(Data("hi\n".utf8))
        // Wait until the reply streams (text after the second prompt marker), then press Ctrl-C.
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, collected.text.components(separatedBy: "> ").last!.count < 3 { usleep(50_000) }
        process.interrupt()
        while Date() < deadline, !collected.text.contains("[stopped]") { usleep(50_000) }
        input.fileHandleForWriting.write(Data("/exit\n".utf8))
        try input.fileHandleForWriting.close()
        while Date() < deadline, process.isRunning { usleep(50_000) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        output.fileHandleForReading.readabilityHandler = nil
        #expect(collected.text.contains("[stopped]"), "stdout: \(collected.text)")
        #expect(process.terminationStatus == 0)
    }
}

final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func append(_ d: Data) { lock.withLock { data.append(d) } }
    var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }
}
