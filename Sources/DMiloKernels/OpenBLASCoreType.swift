// OpenBLAS picks its kernels in a load-time constructor, before main() runs, so `setenv("OPENBLAS_CORETYPE")` inside
// the process is too late (docs/platform.md §1). Two cases are worth a re-exec with the variable set:
//  - AMD Zen: the auto-detected AVX-512 "Cooperlake" kernels are 5-30 % slower than the AVX2 "Haswell" ones -> Haswell;
//  - CPUs this OpenBLAS does not recognise (e.g. virtualised Xeons reporting "Intel Xeon Processor"), where it falls
//    back to SSE3 "Prescott" kernels although AVX2+FMA are present: measured 2× slower UNet passes than Haswell, and
//    on such an AVX-512 Xeon the AVX-512 "SkylakeX" kernels were another ~2× faster -> SkylakeX with avx512f, else Haswell.
// Used by both executables (dmilo, dmilod) first thing in main.

import CDMiloSIMD

#if canImport(Glibc)
import Glibc
#endif

public enum OpenBLASCoreType {
    /// Core names OpenBLAS falls back to that do not use AVX2/FMA.
    static let preAVX2Cores: Set<String> = [
        "prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "katmai",
        "coppermine", "northwood", "banias", "sandybridge", "generic", "unknown",
    ]

    /// Re-exec `/proc/self/exe` with the same arguments and OPENBLAS_CORETYPE set (see above) when OPENBLAS_CORETYPE and
    /// DMILO_NO_REEXEC are unset and either the CPU is AMD or `detectedCore` is a pre-AVX2 fallback on an AVX2+FMA
    /// CPU. Returns (continuing in this process) when nothing is to be done or execv fails.
    public static func reexecIfNeeded(detectedCore: String) {
        #if os(Linux)
        guard getenv("OPENBLAS_CORETYPE") == nil, getenv("DMILO_NO_REEXEC") == nil else { return }
        // Never force AVX2 kernels on a CPU whose CPUID / XCR0 lack them (/proc/cpuinfo is the host's under
        // qemu-user emulation of an older CPU, and the forced kernels would die with SIGILL).
        guard Int(dmilo_cpu_detected()) & DMILO_CPU_AVX2 != 0 else { return }
        let cpu = cpuInfo()
        let fallback = preAVX2Cores.contains(detectedCore.lowercased()) && cpu.avx2 && cpu.fma
        guard cpu.amd || fallback else { return }
        setenv("OPENBLAS_CORETYPE", cpu.amd || !cpu.avx512f ? "Haswell" : "SkylakeX", 1)
        setenv("DMILO_NO_REEXEC", "1", 1)  // never loop, whatever happens
        var cargs: [UnsafeMutablePointer<CChar>?] = CommandLine.arguments.map { strdup($0) }
        cargs.append(nil)
        execv("/proc/self/exe", &cargs)
        // execv returned, so it failed: carry on with the auto-detected kernels.
        unsetenv("OPENBLAS_CORETYPE")
        unsetenv("DMILO_NO_REEXEC")
        for p in cargs { free(p) }
        #endif
    }

    /// Vendor and the two flags we care about, from the first processor entry of /proc/cpuinfo.
    static func cpuInfo() -> (amd: Bool, avx2: Bool, fma: Bool, avx512f: Bool) {
        guard let f = fopen("/proc/cpuinfo", "r") else { return (false, false, false, false) }
        defer { fclose(f) }
        var amd = false, flags: [Substring] = []
        var line = [CChar](repeating: 0, count: 8192)
        for _ in 0..<64 {
            guard fgets(&line, Int32(line.count), f) != nil else { break }
            let s = line.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            if s.hasPrefix("vendor_id") { amd = s.contains("AuthenticAMD") }
            if s.hasPrefix("flags") { flags = s.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }); break }
        }
        return (amd, flags.contains("avx2"), flags.contains("fma"), flags.contains("avx512f"))
    }
}
