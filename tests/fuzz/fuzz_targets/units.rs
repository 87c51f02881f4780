//! Size and time parsers (`--memory 64M`, `--time 250ms`): never a panic, and what they
//! accept is a number the rest of judgebox can use (finite, non-negative seconds).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(size) = judgebox::units::parse_size(text) {
        // A parsed size printed back in plain bytes parses to itself.
        assert_eq!(
            judgebox::units::parse_size(&size.to_string()).ok(),
            Some(size)
        );
    }
    if let Ok(secs) = judgebox::units::parse_seconds(text) {
        assert!(secs.is_finite() && secs >= 0.0, "{text:?} -> {secs}");
    }
});
