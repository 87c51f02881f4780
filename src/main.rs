//! The judgebox binary: a thin edge over the library. Parses the command line, runs the
//! subcommand, and maps errors to exit code 2.

mod cli;

#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

fn main() {
    std::process::exit(cli::main());
}
