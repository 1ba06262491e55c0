//! The `hookrelay` binary: everything lives in the library; this only hands over.

/// mimalloc instead of glibc's malloc. At full speed glibc's malloc and free took
/// about 12 % of the relay's CPU; with mimalloc, ingest rose from ~0.75x to ~1.0x the
/// bare hyper + sled baseline, and an event at a trickle costs a little less. It is
/// set here, not in the library, so that a program embedding the library keeps its
/// own allocator. Measurements: docs/benchmarks.md, "mimalloc, landed".
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    hookrelay::cli::main()
}
