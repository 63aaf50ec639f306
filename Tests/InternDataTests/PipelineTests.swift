import Foundation
import Testing

@testable import InternData

@Suite("Pipeline: run, report, shards, bad input")
struct PipelineTests {
    /// A config over a JSONL file with good, boilerplate, duplicate, PII and broken records, and the WARC sample.
    func setUp() throws -> (dir: String, config: PipelineConfig) {
        let dir = DataFixtures.scratchDirectory()
        let input = dir + "/in.jsonl"
        var lines = [
            Document(id: "good-en", text: DataFixtures.english + "\nMail me at someone@example.org today, please."),
            Document(id: "good-zh", text: DataFixtures.chinese),
            Document(id: "menu", text: "Home\nNews\nLogin\nShop"),
            Document(id: "dup-en", text: DataFixtures.english + "\nMail me at someone@example.org today, please."),
        ].map { String($0.jsonLine.dropLast()) }
        lines.insert(#"{"text": "broken"#, at: 2)
        DataFixtures.write(lines.joined(separator: "\n") + "\n", to: input)
        var config = PipelineConfig()
        config.inputs = [input, DataFixtures.fixture("sample.warc.gz")]
        config.output = dir + "/out.jsonl.gz"
        config.safety.wordListFiles = [DataFixtures.asset("safety/ldnoobw/en"), DataFixtures.asset("safety/ldnoobw/zh")]
        config.quality.model = DataFixtures.asset("quality/web-quality.ikqm")
        config.quality.threshold = 0.05
        return (dir, config)
    }

    @Test func runsEveryStageAndReports() throws {
        let (dir, config) = try setUp()
        let report = try Pipeline(config: config).run()
        #expect(report.stages.map(\.stage) == ["format", "clean", "dedup", "safety", "quality"])
        let format = report.stages[0], clean = report.stages[1], dedup = report.stages[2], safety = report.stages[3]
        #expect(format.documentsIn == 7 && format.documentsOut == 7)  // 4 JSONL + 3 WARC pages
        #expect(report.badInputCount == 1 && report.badInputExamples[0].hasPrefix(dir + "/in.jsonl:3: "))
        #expect(clean.removed["empty"] == 1)  // the menu: no line is a sentence
        #expect(clean.samples.map(\.id).contains("menu"))
        #expect(dedup.removed["exact_duplicate"] == 1)
        #expect(safety.counts["pii:email"] == 1)
        for k in 1..<report.stages.count { #expect(report.stages[k].documentsIn == report.stages[k - 1].documentsOut) }
        let out = try DataFixtures.readDocuments(config.output)
        #expect(out.count == report.stages.last!.documentsOut)
        let en = try #require(out.first { $0.id == "good-en" })
        #expect(en.text.contains("Mail me at <EMAIL> today") && en.meta.contains("quality_score"))
        #expect(out.contains { $0.id == "good-zh" })
        #expect(!out.contains { $0.id == "dup-en" || $0.id == "menu" })
        // The JSON report is written next to the output; the work folder is gone.
        #expect(FileManager.default.fileExists(atPath: config.output + ".report.json"))
        #expect(!FileManager.default.fileExists(atPath: config.output + ".work"))
    }

    @Test func resumeReusesTheFinishedFirstPhase() throws {
        let (dir, config) = try setUp()
        var p = Pipeline(config: config)
        p.workDirectory = dir + "/work"
        let first = try p.run()
        let firstOutput = try DataFixtures.readDocuments(config.output).map(\.id)
        // Without its inputs the run can only finish by reusing phase 1 from the work folder.
        try FileManager.default.removeItem(atPath: config.inputs[0])
        p.resume = true
        let second = try p.run()
        #expect(try DataFixtures.readDocuments(config.output).map(\.id) == firstOutput)
        #expect(second.stages.map(\.documentsOut) == first.stages.map(\.documentsOut))
        p.resume = false
        #expect(throws: DatasetError.self) { _ = try p.run() }
    }

    /// Phase 1's output is not synced to disk, so a marker whose recorded size disagrees with the file (as after
    /// a crash of the machine) makes --resume run phase 1 again.
    @Test func resumeRedoesAPhaseWhoseOutputIsNotWhole() throws {
        let (dir, config) = try setUp()
        var p = Pipeline(config: config)
        p.workDirectory = dir + "/work"
        _ = try p.run()
        let firstOutput = try DataFixtures.readDocuments(config.output).map(\.id)
        let phase1 = dir + "/work/phase1.jsonl"
        let whole = try Data(contentsOf: URL(fileURLWithPath: phase1))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: phase1))
        p.resume = true
        _ = try p.run()
        #expect(try DataFixtures.readDocuments(config.output).map(\.id) == firstOutput)
        #expect(try Data(contentsOf: URL(fileURLWithPath: phase1)) == whole)
    }

    @Test func strictStopsAtBadInput() throws {
        let (dir, config) = try setUp()
        var p = Pipeline(config: config)
        p.strict = true
        #expect {
            _ = try p.run()
        } throws: { e in
            guard case let .badRecord(file, line, _) = e as? DatasetError else { return false }
            return file == dir + "/in.jsonl" && line == 3
        }
        #expect(!FileManager.default.fileExists(atPath: config.output))
    }

    @Test func shardsCoverTheInputOnce() throws {
        let (_, base) = try setUp()
        var ids: [String] = []
        for k in 0..<2 {
            var config = base
            config.stages = ["format", "clean"]
            config.output = base.output + ".\(k).jsonl"
            var p = Pipeline(config: config)
            p.shard = Shard(index: k, count: 2)
            let report = try p.run()
            #expect(report.shard == "\(k)/2")
            ids += try DataFixtures.readDocuments(config.output).map(\.id)
        }
        var whole = base
        whole.stages = ["format", "clean"]
        whole.output = base.output + ".all.jsonl"
        _ = try Pipeline(config: whole).run()
        #expect(ids.sorted() == (try DataFixtures.readDocuments(whole.output)).map(\.id).sorted())
    }

    @Test func configFileResolvesPathsAndRejectsUnknownStages() throws {
        let dir = DataFixtures.scratchDirectory()
        DataFixtures.write(#"{"inputs": ["a.jsonl"], "output": "o/out.jsonl", "dedup": {"threshold": 0.7}}"#, to: dir + "/p.json")
        let c = try PipelineConfig.load(path: dir + "/p.json")
        #expect(c.inputs == [dir + "/a.jsonl"] && c.output == dir + "/o/out.jsonl" && c.dedup.threshold == 0.7)
        DataFixtures.write(#"{"stages": ["format", "dedupe"]}"#, to: dir + "/bad.json")
        #expect(throws: DatasetError.config(file: dir + "/bad.json", key: "stages", message: "unknown stage 'dedupe'")) {
            _ = try PipelineConfig.load(path: dir + "/bad.json")
        }
        DataFixtures.write(#"{"safety": {"mask_ips": false, "mask_emails": "no"}}"#, to: dir + "/type.json")
        #expect(throws: DatasetError.self) { _ = try PipelineConfig.load(path: dir + "/type.json") }
    }

    @Test func everyConfigKeyRoundTrips() throws {
        // snake_case keys must map back to the same property (URL-style acronyms would not).
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        #expect(try decoder.decode(CleanConfig.self, from: encoder.encode(CleanConfig())) == CleanConfig())
        #expect(try decoder.decode(SafetyConfig.self, from: encoder.encode(SafetyConfig())) == SafetyConfig())
        #expect(try decoder.decode(DedupConfig.self, from: encoder.encode(DedupConfig())) == DedupConfig())
        #expect(try decoder.decode(QualityConfig.self, from: encoder.encode(QualityConfig())) == QualityConfig())
    }

    @Test func yamlConfigEqualsTheJSONConfig() throws {
        let json = try PipelineConfig.load(path: DataFixtures.asset("data/pipeline.json"))
        let yaml = try PipelineConfig.load(path: DataFixtures.asset("data/pipeline.yaml"))
        #expect(yaml == json)
        #expect(yaml.dedup.verify && yaml.dedup.numPerm == 128 && yaml.stages.count == 5)
        // A non-default value and a typo must behave in YAML as in JSON.
        let dir = DataFixtures.scratchDirectory()
        DataFixtures.write("output: out.jsonl\nclean:\n  min_words: 80\n  top_ngram_max_fraction: [0.3, 0.2, 0.1]\n", to: dir + "/p.yml")
        let c = try PipelineConfig.load(path: dir + "/p.yml")
        #expect(c.clean.minWords == 80 && c.clean.topNgramMaxFraction == [0.3, 0.2, 0.1] && c.output == dir + "/out.jsonl")
        DataFixtures.write("clean:\n  min_word: 80\n", to: dir + "/typo.yaml")
        #expect(throws: DatasetError.self) { _ = try PipelineConfig.load(path: dir + "/typo.yaml") }
        DataFixtures.write("clean: [unclosed\n", to: dir + "/broken.yaml")
        #expect(throws: DatasetError.self) { _ = try PipelineConfig.load(path: dir + "/broken.yaml") }
    }
}
