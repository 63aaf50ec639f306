// `intern quantize`: a checkpoint directory with its two-dimensional weights in ggml's Q8_0 or Q4_0 blocks
// (32 weights and an f16 scale per block, the bytes llama-quantize writes for the same values), loadable by
// every command that takes --model. Layout: model.safetensors with each quantized matrix as a U8 tensor of
// shape (rows, rowBytes) under its original name, vectors (norms) as they were, and config.json with
// `"quantization": {"type": "q4_0", "block_size": 32}`; the other files (tokenizer) are copied.
import ArgumentParser
import Foundation
import InternCore
import InternKernels
import InternModels

struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Write a Q8_0 or Q4_0 copy of a checkpoint directory (ggml block layout, safetensors)."
    )

    enum QuantType: String, ExpressibleByArgument, CaseIterable {
        case q8_0, q4_0
        var blocks: BlockQuantization { self == .q8_0 ? .q8_0 : .q4_0 }
    }

    @Option(help: "The checkpoint directory to quantize (f32, f16 or bf16 safetensors).")
    var model: String

    @Option(help: "The directory to write.")
    var out: String

    @Option(help: "q8_0 | q4_0")
    var type: QuantType

    func run() throws {
        let source = URL(fileURLWithPath: model), target = URL(fileURLWithPath: out)
        guard source.standardizedFileURL != target.standardizedFileURL else { throw ValidationError("--out must differ from --model") }
        let configURL = source.appendingPathComponent("config.json")
        let configuration = try InternLM2Configuration.load(from: configURL)
        guard configuration.quantization == nil else { throw ValidationError("\(model) is already quantized") }
        let checkpoint = try Checkpoint(directory: source)
        let q = type.blocks
        let views = try checkpoint.tensorNames.sorted().map { try checkpoint.tensor($0) }
        func quantized(_ view: TensorView) -> Bool { view.shape.count == 2 && view.shape[1] % q.blockSize == 0 }
        let specs = views.map { view in
            quantized(view)
                ? TensorSpec(name: view.name, dtype: .u8, shape: [view.shape[0], q.rowBytes(view.shape[1])])
                : TensorSpec(name: view.name, dtype: view.dtype, shape: view.shape)
        }
        let fm = FileManager.default
        try fm.createDirectory(at: target, withIntermediateDirectories: true)
        for name in try fm.contentsOfDirectory(atPath: source.path)
        where !name.hasSuffix(".safetensors") && name != Checkpoint.indexFileName && name != "config.json" {
            let destination = target.appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: source.appendingPathComponent(name).path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            if fm.fileExists(atPath: destination.path) { try fm.removeItem(at: destination) }
            try fm.copyItem(at: source.appendingPathComponent(name), to: destination)
        }
        for name in try fm.contentsOfDirectory(atPath: target.path) where name.hasSuffix(".safetensors") || name == Checkpoint.indexFileName {
            try fm.removeItem(at: target.appendingPathComponent(name))
        }
        let byName = Dictionary(uniqueKeysWithValues: views.map { ($0.name, $0) })
        try SafeTensorsWriter.write(to: target.appendingPathComponent(Checkpoint.singleFileName), tensors: specs) { spec, bytes in
            let view = byName[spec.name]!
            guard spec.dtype == .u8 else {
                bytes.copyMemory(from: UnsafeRawBufferPointer(start: view.data, count: spec.byteCount))
                return
            }
            let matrix = try WeightMatrix(view)
            let cols = view.shape[1], rowBytes = q.rowBytes(cols)
            var row = [Float](repeating: 0, count: cols)
            try row.withUnsafeMutableBufferPointer { buffer in
                for r in 0..<view.shape[0] {
                    matrix.readRow(r, into: buffer.baseAddress!)
                    guard buffer.allSatisfy(\.isFinite) else {
                        throw ValidationError("\(spec.name) row \(r) holds a non-finite value")
                    }
                    quantizeRow(buffer.baseAddress!, count: cols, type: q, into: bytes.baseAddress! + r * rowBytes)
                }
            }
        }
        // config.json as it was, plus the quantization entry.
        guard var json = try JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as? [String: Any] else {
            throw ValidationError("\(configURL.path): not a JSON object")
        }
        json["quantization"] = ["type": q.rawValue, "block_size": q.blockSize]
        try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
            .write(to: target.appendingPathComponent("config.json"))
        let bytes = specs.reduce(0) { $0 + $1.byteCount }
        print("wrote \(target.path): \(q.rawValue), \(specs.filter { $0.dtype == .u8 }.count) of \(specs.count) tensors quantized, \(bytes / 1_000_000) MB")
    }
}
