//! The `adamant` command: parses the command line and hands over to the library. Started as
//! `kubectl-eve` (a link or copy on the `PATH`), it is the `kubectl eve` plugin.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    if adamant::plugin::invoked_as_plugin() {
        return adamant::plugin::run(adamant::plugin::EveCli::parse());
    }
    adamant::run(adamant::Cli::parse())
}
