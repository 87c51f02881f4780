//! The judgebox binary: a thin edge over the library. Parses the command line, runs the
//! subcommand, and maps errors to exit code 2.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
