// `dmilo simulate`: a measurement y = A(x) + σ·n and its manifest, ready to drop into a spool.

import ArgumentParser
import DMiloJobs
import Foundation

struct SimulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Make a measurement (NAME.npy), its truth and a manifest (NAME.json, written last) from a clean image.")

    @Option(help: "Clean image (.png, or .npy in model units).") var image: String
    @Option(help: "Operator: a JSON object (inline, or a path to a .json file), as the manifest's `operator`.")
    var `operator`: String
    @Option(name: .customLong("noise-sigma"), help: "Noise std in model units [-1, 1].") var noiseSigma: Double = 0
    @Option(help: "Seed of the noise (and the manifest's solver seed).") var seed: UInt64 = 0
    @Option(help: "Output manifest DIR/NAME.json.") var out: String
    @Option(help: "Optional solver object to embed (JSON), e.g. '{\"method\":\"dmilo\"}'.") var solver: String?

    func run() throws {
        func object(_ text: String, what: String) throws -> [String: Any] {
            let raw: Data
            if FileManager.default.fileExists(atPath: text) { raw = try Data(contentsOf: URL(fileURLWithPath: text)) } else { raw = Data(text.utf8) }
            // The manifest's strict reader: what simulate accepts, the daemon accepts.
            let value: JSONValue
            do { value = try JSONValue.parse(raw) } catch {
                throw CLIError("--\(what) is not valid JSON (or a path to a JSON file): \(error)")
            }
            guard let o = value.foundationValue as? [String: Any] else {
                throw CLIError("--\(what) must be a JSON object or a path to one")
            }
            return o
        }
        do {
            let out = try Simulation.run(
                image: image, operatorSpec: try object(self.operator, what: "operator"),
                noiseSigma: noiseSigma, seed: seed, manifest: URL(fileURLWithPath: self.out),
                solver: try solver.map { try object($0, what: "solver") })
            print(out.manifest.path)
        } catch let e as CodedError {
            throw CLIError("\(e.code): \(e.message)")
        }
    }
}
