//! The 40 adversarial layers of the research notes (oci-unpack.md §5), one test per case
//! named by its number, plus tests of the pieces (resolver, removal, caps). Layers are
//! built in the test; each case runs with openat2 and with the forced component walk, in
//! a fresh root inside a directory of "host" canaries that must not change. Run as root.

mod cases_links;
mod cases_metadata;
mod cases_paths;
mod cases_stream;
mod cases_whiteouts;
mod extra;
mod support;
