//! The server's request handling: a submission body (JSON, plain or base64 fields, with
//! additional_files zips) through the real validating parser, the `fields` parameter,
//! and the zip reader on raw bytes. Never a panic; an accepted request keeps the limits
//! inside the configured maxima.
#![no_main]
use judgebox::lang::Catalog;
use judgebox::server::config::Config;
use judgebox::server::files::read_zip;
use judgebox::server::languages::Table;
use judgebox::server::wire::{parse_fields, Parser};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn setup() -> &'static (Config, Table) {
    static SETUP: OnceLock<(Config, Table)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let catalog = Catalog::shipped().expect("the shipped languages load");
        (Config::defaults(), Table::build(&catalog, None))
    })
}

fuzz_target!(|input: &[u8]| {
    let (config, languages) = setup();
    let Some((&selector, body)) = input.split_first() else {
        return;
    };
    match selector % 3 {
        0 => {
            if let Ok(text) = std::str::from_utf8(body) {
                let _ = parse_fields(Some(text));
            }
        }
        1 => {
            let _ = read_zip(body, 64);
        }
        _ => {
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
                return;
            };
            for base64 in [false, true] {
                let parser = Parser {
                    config,
                    languages,
                    base64,
                };
                if let Ok((r, _)) = parser.parse(&v) {
                    assert!(r.cpu_time_limit <= config.max_cpu_time_limit, "{r:?}");
                    assert!(r.wall_time_limit <= config.max_wall_time_limit, "{r:?}");
                    assert!(r.memory_limit <= config.max_memory_limit, "{r:?}");
                    assert!(r.number_of_runs <= config.max_number_of_runs, "{r:?}");
                }
            }
        }
    }
});
