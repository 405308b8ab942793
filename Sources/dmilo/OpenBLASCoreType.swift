// OpenBLAS picks its kernels in a load-time constructor, before main() runs, so `setenv("OPENBLAS_CORETYPE")` inside
// the process is too late (notes/platform.md §1). On AMD Zen the auto-detected AVX-512 "Cooperlake" kernels are
// 5-30 % slower than the AVX2 "Haswell" ones; we therefore re-exec ourselves once with the variable set.
// Independent of DMiloKernels on purpose: it must run before any BLAS call and be reusable by the daemon.

#if canImport(Glibc)
import Glibc
#endif

enum OpenBLASCoreType {
    /// Value we set on AMD CPUs.
    static let amdCoreType = "Haswell"

    /// When OPENBLAS_CORETYPE is unset, DMILO_NO_REEXEC is unset and the CPU vendor is AMD: set OPENBLAS_CORETYPE and
    /// execv /proc/self/exe with the same arguments. Returns (continuing in this process) on any failure.
    static func reexecIfNeeded() {
        #if os(Linux)
        guard getenv("OPENBLAS_CORETYPE") == nil, getenv("DMILO_NO_REEXEC") == nil, isAMD() else { return }
        setenv("OPENBLAS_CORETYPE", amdCoreType, 1)
        setenv("DMILO_NO_REEXEC", "1", 1)  // belt and braces: never loop
        let args = CommandLine.arguments
        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cargs.append(nil)
        execv("/proc/self/exe", &cargs)
        // execv returned: it failed. Carry on with auto-detected kernels; undo the marker so children behave normally.
        unsetenv("DMILO_NO_REEXEC")
        for p in cargs { free(p) }
        #endif
    }

    /// True when /proc/cpuinfo reports vendor_id AuthenticAMD.
    static func isAMD() -> Bool {
        guard let f = fopen("/proc/cpuinfo", "r") else { return false }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 512)
        for _ in 0..<64 {
            guard fgets(&line, Int32(line.count), f) != nil else { return false }
            let s = line.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            if s.hasPrefix("vendor_id") { return s.contains("AuthenticAMD") }
        }
        return false
    }
}
