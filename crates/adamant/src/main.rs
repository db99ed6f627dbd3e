//! The `adamant` command: parses the command line and hands over to the library. Started as
//! `kubectl-eve` (a link or copy on the `PATH`), it is the `kubectl eve` plugin.

use clap::Parser;

/// jemalloc rather than the system's allocator: glibc's malloc took a quarter of the server's
/// CPU under load, much of it waiting on its arenas' locks (docs/benchmarks.md, "Allocator").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    if adamant::plugin::invoked_as_plugin() {
        return adamant::plugin::run(adamant::plugin::EveCli::parse());
    }
    adamant::run(adamant::Cli::parse())
}
