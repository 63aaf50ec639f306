// The safetensors reader and writer: a round trip, sharded checkpoints, and one test per kind of broken
// file, each checking that the error names the file and the tensor.
import Foundation
import InternCore
import Testing

/// A fresh temporary directory per test.
func temporaryDirectory(_ label: String = #function) throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("interncore-\(label.filter(\.isLetter))-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// A safetensors file from a raw header string and data bytes.
func rawSafeTensors(header: String, data: [UInt8], declaredLength: UInt64? = nil) -> Data {
    var headerBytes = Array(header.utf8)
    while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
    var out = Data()
    withUnsafeBytes(of: (declaredLength ?? UInt64(headerBytes.count)).littleEndian) { out.append(contentsOf: $0) }
    out.append(contentsOf: headerBytes)
    out.append(contentsOf: data)
    return out
}

func thrownError(_ body: () throws -> Void) -> CheckpointError? {
    do {
        try body()
        return nil
    } catch let error as CheckpointError {
        return error
    } catch {
        Issue.record("unexpected error type: \(error)")
        return nil
    }
}

@Suite struct SafeTensorsTests {
    let specs = [
        TensorSpec(name: "a.weight", dtype: .f32, shape: [2, 3]),
        TensorSpec(name: "b.weight", dtype: .bf16, shape: [5]),
        TensorSpec(name: "c.weight", dtype: .f16, shape: [1, 1, 3]),
    ]

    func writeSample(_ url: URL) throws {
        try SafeTensorsWriter.write(to: url, tensors: specs) { spec, bytes in
            for i in 0..<(bytes.count) { bytes[i] = UInt8(truncatingIfNeeded: i + spec.name.count) }
        }
    }

    @Test func roundTripKeepsNamesShapesAndBytes() throws {
        let dir = try temporaryDirectory()
        let url = dir.appendingPathComponent("model.safetensors")
        try writeSample(url)
        let file = try SafeTensorsFile(path: url.path)
        #expect(Set(file.tensors.keys) == ["a.weight", "b.weight", "c.weight"])
        #expect(file.metadata == ["format": "pt"])
        for spec in specs {
            let view = try file.tensor(spec.name)
            #expect(view.shape == spec.shape)
            #expect(view.dtype == spec.dtype)
            for i in 0..<spec.byteCount {
                #expect(view.data.load(fromByteOffset: i, as: UInt8.self) == UInt8(truncatingIfNeeded: i + spec.name.count))
            }
        }
        let checkpoint = try Checkpoint(directory: dir)
        #expect(checkpoint.tensorNames.count == 3)
        #expect(try checkpoint.tensor("b.weight").shape == [5])
    }

    @Test func readsTheHeaderThePythonLibraryWrites() throws {
        // Bytes as `safetensors.numpy.save_file({"x": np.arange(2, dtype=np.float32)})` writes them.
        let header = #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        var data: [UInt8] = []
        for v: Float in [0, 1] { withUnsafeBytes(of: v.bitPattern.littleEndian) { data += $0 } }
        let dir = try temporaryDirectory()
        let url = dir.appendingPathComponent("x.safetensors")
        try rawSafeTensors(header: header, data: data).write(to: url)
        let view = try SafeTensorsFile(path: url.path).tensor("x")
        #expect(view.data.load(fromByteOffset: 4, as: Float.self) == 1)
    }

    @Test func shardedCheckpointResolvesEveryTensor() throws {
        let dir = try temporaryDirectory()
        try SafeTensorsWriter.write(to: dir.appendingPathComponent("model-00001-of-00002.safetensors"), tensors: Array(specs[0..<2])) { _, _ in }
        try SafeTensorsWriter.write(to: dir.appendingPathComponent("model-00002-of-00002.safetensors"), tensors: [specs[2]]) { _, _ in }
        let index =
            #"{"metadata": {}, "weight_map": {"a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00001-of-00002.safetensors", "c.weight": "model-00002-of-00002.safetensors"}}"#
        try Data(index.utf8).write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        let checkpoint = try Checkpoint(directory: dir)
        #expect(checkpoint.files.count == 2)
        #expect(try checkpoint.tensor("c.weight").file == "model-00002-of-00002.safetensors")
        let error = thrownError { _ = try checkpoint.tensor("d.weight") }
        #expect(error == .missingTensor(file: dir.lastPathComponent, tensor: "d.weight"))
    }

    @Test func indexNamingATensorTheShardLacksIsAnError() throws {
        let dir = try temporaryDirectory()
        try SafeTensorsWriter.write(to: dir.appendingPathComponent("model-00001-of-00001.safetensors"), tensors: [specs[0]]) { _, _ in }
        let index = #"{"weight_map": {"a.weight": "model-00001-of-00001.safetensors", "z.weight": "model-00001-of-00001.safetensors"}}"#
        try Data(index.utf8).write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        let error = thrownError { _ = try Checkpoint(directory: dir) }
        #expect(error == .missingTensor(file: "model-00001-of-00001.safetensors", tensor: "z.weight"))
        #expect(error?.description.contains("z.weight") == true)
    }

    @Test func corruptIndexIsAnError() throws {
        let dir = try temporaryDirectory()
        try Data("{\"weight_map\": [1, 2".utf8).write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        guard case .corruptIndex(let file, _)? = thrownError({ _ = try Checkpoint(directory: dir) }) else {
            Issue.record("expected corruptIndex")
            return
        }
        #expect(file == "model.safetensors.index.json")
    }

    @Test func missingShardIsAnError() throws {
        let dir = try temporaryDirectory()
        let index = #"{"weight_map": {"a.weight": "model-00001-of-00001.safetensors"}}"#
        try Data(index.utf8).write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        let error = thrownError { _ = try Checkpoint(directory: dir) }
        #expect(error == .fileNotFound(path: dir.appendingPathComponent("model-00001-of-00001.safetensors").path))
    }

    @Test func directoryWithoutWeightsIsAnError() throws {
        let dir = try temporaryDirectory()
        #expect(thrownError { _ = try Checkpoint(directory: dir) } == .noWeights(directory: dir.path))
    }

    @Test func duplicateTensorAcrossShardsIsAnError() throws {
        let dir = try temporaryDirectory()
        try SafeTensorsWriter.write(to: dir.appendingPathComponent("s1.safetensors"), tensors: [specs[0]]) { _, _ in }
        try SafeTensorsWriter.write(to: dir.appendingPathComponent("s2.safetensors"), tensors: [specs[0]]) { _, _ in }
        let index = #"{"weight_map": {"a.weight": "s1.safetensors", "x": "s2.safetensors"}}"#
        try Data(index.utf8).write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        let error = thrownError { _ = try Checkpoint(directory: dir) }
        // The index's "x" is checked first or the duplicate is found: both name the files involved.
        #expect(error != nil)
    }

    // MARK: - One broken file per case

    func load(_ data: Data, name: String = "bad.safetensors") throws -> CheckpointError? {
        let dir = try temporaryDirectory()
        let url = dir.appendingPathComponent(name)
        try data.write(to: url)
        return thrownError { _ = try SafeTensorsFile(path: url.path) }
    }

    @Test func fileShorterThanTheLengthFieldIsAnError() throws {
        #expect(try load(Data([1, 2, 3])) == .headerLengthBeyondFile(file: "bad.safetensors", headerLength: 0, fileSize: 3))
    }

    @Test func headerLengthBeyondFileIsAnError() throws {
        let data = rawSafeTensors(header: "{}", data: [], declaredLength: 1_000_000)
        let error = try load(data)
        #expect(error == .headerLengthBeyondFile(file: "bad.safetensors", headerLength: 1_000_000, fileSize: data.count))
        #expect(error?.description.contains("bad.safetensors") == true)
    }

    @Test func corruptJSONIsAnError() throws {
        guard case .corruptHeader(let file, _)? = try load(rawSafeTensors(header: "{\"a\": {\"dtype\": ", data: [])) else {
            Issue.record("expected corruptHeader")
            return
        }
        #expect(file == "bad.safetensors")
    }

    @Test func entryMissingAKeyIsAnError() throws {
        let error = try load(rawSafeTensors(header: #"{"w":{"dtype":"F32","shape":[1]}}"#, data: [0, 0, 0, 0]))
        guard case .corruptHeader(_, let reason)? = error else {
            Issue.record("expected corruptHeader, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("data_offsets"))
        #expect(reason.contains("w"))
    }

    @Test func unsupportedDTypeIsAnError() throws {
        let error = try load(rawSafeTensors(header: #"{"w":{"dtype":"I8","shape":[4],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]))
        #expect(error == .unsupportedDType(file: "bad.safetensors", tensor: "w", dtype: "I8"))
    }

    @Test func sizeThatDisagreesWithDTypeAndShapeIsAnError() throws {
        let error = try load(rawSafeTensors(header: #"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}"#, data: Array(repeating: 0, count: 20)))
        #expect(error == .sizeMismatch(file: "bad.safetensors", tensor: "w", dtype: "F32", shape: [2, 3], expectedBytes: 24, actualBytes: 20))
    }

    @Test func offsetsOutOfRangeAreAnError() throws {
        let error = try load(rawSafeTensors(header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[16,32]}}"#, data: Array(repeating: 0, count: 16)))
        #expect(error == .dataOutOfRange(file: "bad.safetensors", tensor: "w", offsets: [16, 32], dataSize: 16))
    }

    @Test func reversedOffsetsAreAnError() throws {
        let error = try load(rawSafeTensors(header: #"{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}"#, data: Array(repeating: 0, count: 16)))
        guard case .corruptHeader(_, let reason)? = error else {
            Issue.record("expected corruptHeader")
            return
        }
        #expect(reason.contains("'w'"))
    }

    @Test func overlappingTensorsAreAnError() throws {
        let header = #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}"#
        let error = try load(rawSafeTensors(header: header, data: Array(repeating: 0, count: 24)))
        #expect(error == .overlappingTensors(file: "bad.safetensors", first: "a", second: "b"))
    }

    @Test func truncatedFileNamesTheFirstTensorCut() throws {
        let dir = try temporaryDirectory()
        let url = dir.appendingPathComponent("model.safetensors")
        try writeSample(url)
        let full = try Data(contentsOf: url)
        let error = try load(full.prefix(full.count - 3), name: "model.safetensors")
        guard case .dataOutOfRange(let file, let tensor, _, _)? = error else {
            Issue.record("expected dataOutOfRange, got \(String(describing: error))")
            return
        }
        #expect(file == "model.safetensors")
        #expect(tensor == "c.weight")
        #expect(error!.description.contains("truncated"))
    }
}
