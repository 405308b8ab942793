// The table of `dmilo bench uncertainty` from its records, and the σ calibration.
//
// Calibration: one scale c for σ, fitted on the tuning split (test images 0–99, every task pooled) so that mean ± 2cσ
// covers 95 % of those pixels: c = q₀.₉₅(|error| / 2σ). It is then applied unchanged to the held-out images (100+).
// The |error|–σ correlation does not change with c, so it is printed once.

import DMiloJobs
import Foundation

struct UncertaintySummary {
    let records: [UncertaintyRecord]
    let samples: Int
    /// Test-split images below this index are the tuning/calibration split.
    static let calibrationLimit = 100

    init(records: [UncertaintyRecord], samples: Int) {
        var unique: [String: UncertaintyRecord] = [:]
        for r in records { unique[r.key] = r }  // a re-run job counts once, the later record winning
        self.records = unique.values.sorted { ($0.task, $0.image, $0.run) < ($1.task, $1.image, $1.run) }
        self.samples = samples
    }

    var calibration: [UncertaintyRecord] { records.filter { $0.image < Self.calibrationLimit && $0.sigma != nil } }

    /// c with a 95 % pooled 2cσ coverage on the calibration split; nil without calibration records.
    var scale: Double? {
        var ratios: [Double] = []
        for r in calibration {
            guard let e = r.absError, let s = r.sigma else { continue }
            for i in 0..<e.count { ratios.append(e[i] == 0 ? 0 : Double(e[i]) / (2 * max(Double(s[i]), 1e-12))) }
        }
        guard !ratios.isEmpty else { return nil }
        ratios.sort()
        return ratios[min(ratios.count - 1, Int((0.95 * Double(ratios.count)).rounded(.up)) - 1)]
    }

    static func coverage(_ rs: [UncertaintyRecord], z: Double) -> Double {
        var inside = 0, total = 0
        for r in rs {
            guard let e = r.absError, let s = r.sigma else { continue }
            for i in 0..<e.count where Double(e[i]) <= z * Double(s[i]) { inside += 1 }
            total += e.count
        }
        return total > 0 ? Double(inside) / Double(total) : .nan
    }

    /// Pearson correlation of |error| and σ over every pixel of the records.
    static func correlation(_ rs: [UncertaintyRecord]) -> Double {
        var xs: [Double] = [], ys: [Double] = []
        for r in rs {
            guard let e = r.absError, let s = r.sigma else { continue }
            xs += e.map(Double.init); ys += s.map(Double.init)
        }
        guard xs.count > 1 else { return .nan }
        let mx = mean(xs), my = mean(ys)
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for i in 0..<xs.count { let (a, b) = (xs[i] - mx, ys[i] - my); sxy += a * b; sxx += a * a; syy += b * b }
        return sxx > 0 && syy > 0 ? sxy / (sxx * syy).squareRoot() : .nan
    }

    func table() -> String {
        let c = scale
        var lines: [String] = []
        if let c {
            let n = Set(calibration.map(\.image)).count
            lines.append(
                String(
                    format: "σ scale c = %.3f, fitted on %d calibration images (test 0–99; %d image × task jobs, all tasks pooled)",
                    c, n, calibration.count))
        } else {
            lines.append("no calibration records (images 0–99): calibrated columns are empty")
        }
        lines.append("")
        lines.append(
            "| task | PSNR mean K=\(samples) [n] | PSNR DAPS K=1 [n] | PSNR DPS [n] | cover 1σ raw | cover 2σ raw | cover 1σ cal | cover 2σ cal | corr(|err|, σ) | wall s K=\(samples) | wall s DAPS K=1 | wall s DPS | CPU s K=\(samples) | CPU s DAPS K=1 | CPU s DPS | K=\(samples) / K=1 wall [n] | K=\(samples) / K=1 CPU | K=\(samples) − DPS dB, paired [n] | K=1 − DPS dB, paired [n] | K=1 / DPS CPU, paired |"
        )
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        let test = records.filter { $0.image >= Self.calibrationLimit }
        let order = BenchTasks.all.map(\.name)
        let tasks = Set(test.map(\.task)).sorted { (order.firstIndex(of: $0) ?? .max) < (order.firstIndex(of: $1) ?? .max) }
        let f2 = { (v: Double) in v.isFinite ? String(format: "%.2f", v) : "–" }
        let f3 = { (v: Double) in v.isFinite ? String(format: "%.3f", v) : "–" }
        for task in tasks {
            let of = { (run: String) in test.filter { $0.task == task && $0.run == run } }
            let (k, one, dps, matched) = (of("daps-k"), of("daps-1"), of("dps"), of("daps-1-matched"))
            let cell = { (rs: [UncertaintyRecord]) in rs.isEmpty ? "–" : "\(f2(mean(rs.map(\.psnr)))) [\(rs.count)]" }
            let secs = { (rs: [UncertaintyRecord]) in rs.isEmpty ? "–" : String(format: "%.1f", mean(rs.map(\.seconds))) }
            // the ratio over images that have both runs
            let pairs = k.compactMap { a in matched.first { $0.image == a.image }.map { a.seconds / $0.seconds } }
            let cpuPairs = k.compactMap { a in
                matched.first { $0.image == a.image }.flatMap { b in
                    a.cpuSeconds.flatMap { x in b.cpuSeconds.map { x / $0 } }
                }
            }
            let cpu = { (rs: [UncertaintyRecord]) in
                let v = rs.compactMap(\.cpuSeconds)
                return v.isEmpty ? "–" : String(format: "%.1f", mean(v))
            }
            // differences over the images both runs have (the columns above may cover different images)
            let paired = { (a: [UncertaintyRecord], value: (UncertaintyRecord, UncertaintyRecord) -> Double?) -> [Double] in
                a.compactMap { x in dps.first { $0.image == x.image }.flatMap { value(x, $0) } }
            }
            let dK = paired(k) { $0.psnr - $1.psnr }, d1 = paired(one) { $0.psnr - $1.psnr }
            let c1 = paired(one) { a, b in a.cpuSeconds.flatMap { x in b.cpuSeconds.map { x / $0 } } }
            let signed = { (v: [Double]) in v.isEmpty ? "–" : String(format: "%+.2f [%d]", mean(v), v.count) }
            let cal = { (z: Double) in c.map { f3(Self.coverage(k, z: z * $0)) } ?? "–" }
            lines.append(
                "| \(task) | \(cell(k)) | \(cell(one)) | \(cell(dps)) | \(f3(Self.coverage(k, z: 1))) | "
                    + "\(f3(Self.coverage(k, z: 2))) | \(cal(1)) | \(cal(2)) | \(f3(Self.correlation(k))) | \(secs(k)) | " + "\(secs(one)) | \(secs(dps)) | \(cpu(k)) | \(cpu(one)) | \(cpu(dps)) | "
                    + "\(pairs.isEmpty ? "–" : "\(f2(mean(pairs))) [\(pairs.count)]") | \(cpuPairs.isEmpty ? "–" : f2(mean(cpuPairs))) | "
                    + "\(signed(dK)) | \(signed(d1)) | \(c1.isEmpty ? "–" : f2(mean(c1))) |")
        }
        lines.append("")
        lines.append("[n] = held-out images (test 100+) the figure is over; coverage and correlation pool every pixel of the " + "K=\(samples) run's images; cal = σ × c.")
        return lines.joined(separator: "\n")
    }

    /// The fitted scale as JSON (docs/INTERFACE.md "uncertainty-calibration.json").
    func writeCalibration(to path: String) throws {
        guard let c = scale else { throw CLIError("no calibration records (test images 0–99) to fit the σ scale on") }
        let doc: [String: Any] = [
            "method": "daps", "samples": samples, "sigma_scale": c, "target_coverage_2sigma": 0.95,
            "calibration_images": Set(calibration.map(\.image)).count, "tasks": Set(calibration.map(\.task)).sorted(),
        ]
        let data = try JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys])
        try (data + Data("\n".utf8)).write(to: URL(fileURLWithPath: path))
        print("wrote \(path)")
    }
}
