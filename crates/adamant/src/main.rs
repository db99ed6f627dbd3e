//! The `adamant` command: parses the command line and hands over to the library.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    adamant::run(adamant::Cli::parse())
}
