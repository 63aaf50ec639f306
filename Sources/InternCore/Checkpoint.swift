// A checkpoint directory as Hugging Face publishes it: `model.safetensors`, or shards
// `model-0000N-of-0000M.safetensors` listed in `model.safetensors.index.json` ({"weight_map": {tensor:
// file}}). Every shard is mapped and validated; the index must agree with the shards' headers.
public import Foundation

/// All tensors of a checkpoint directory, over mapped safetensors files.
public final class Checkpoint: @unchecked Sendable {
    public let directory: URL
    public let files: [SafeTensorsFile]
    private var location: [String: Int] = [:]  // tensor name → index in `files`

    public static let singleFileName = "model.safetensors"
    public static let indexFileName = "model.safetensors.index.json"

    public init(directory: URL) throws {
        self.directory = directory
        let fm = FileManager.default
        let index = directory.appendingPathComponent(Self.indexFileName)
        let single = directory.appendingPathComponent(Self.singleFileName)
        if fm.fileExists(atPath: index.path) {
            let weightMap = try Self.readIndex(index)
            let shardNames = Array(Set(weightMap.values)).sorted()
            var files: [SafeTensorsFile] = []
            for shard in shardNames {
                guard !shard.contains("/") else {
                    throw CheckpointError.corruptIndex(file: Self.indexFileName, reason: "shard name '\(shard)' must be a file in the same directory")
                }
                files.append(try SafeTensorsFile(path: directory.appendingPathComponent(shard).path))
            }
            self.files = files
            for (name, shard) in weightMap {
                let i = shardNames.firstIndex(of: shard)!
                guard files[i].tensors[name] != nil else { throw CheckpointError.missingTensor(file: shard, tensor: name) }
            }
        } else if fm.fileExists(atPath: single.path) {
            files = [try SafeTensorsFile(path: single.path)]
        } else {
            throw CheckpointError.noWeights(directory: directory.path)
        }
        for (i, file) in files.enumerated() {
            for name in file.tensors.keys {
                if let other = location[name] {
                    throw CheckpointError.duplicateTensor(tensor: name, files: [files[other].fileName, file.fileName])
                }
                location[name] = i
            }
        }
    }

    /// Every tensor name in the checkpoint.
    public var tensorNames: Set<String> { Set(location.keys) }

    /// The tensor called `name`, or `CheckpointError.missingTensor` naming where it was looked for.
    public func tensor(_ name: String) throws -> TensorView {
        guard let i = location[name] else {
            let where_ = files.count == 1 ? files[0].fileName : directory.lastPathComponent
            throw CheckpointError.missingTensor(file: where_, tensor: name)
        }
        return try files[i].tensor(name)
    }

    private static func readIndex(_ url: URL) throws -> [String: String] {
        struct Index: Decodable {
            let weightMap: [String: String]
            enum CodingKeys: String, CodingKey { case weightMap = "weight_map" }
        }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw CheckpointError.unreadable(path: url.path, reason: error.localizedDescription)
        }
        do {
            return try JSONDecoder().decode(Index.self, from: data).weightMap
        } catch {
            throw CheckpointError.corruptIndex(file: indexFileName, reason: SafeTensorsFile.describe(error))
        }
    }
}
