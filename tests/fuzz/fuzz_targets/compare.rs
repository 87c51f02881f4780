//! The streaming output comparison against the in-memory rule it replaced, on any two
//! outputs read in any chunk sizes: the same verdict every time (differential).
#![no_main]
use judgebox::judge::compare::oracle::{trim_matches as reference_trim, Dribble};
use judgebox::judge::Compare;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u8, u8, &[u8], &[u8])| {
    let (sa, sb, a, b) = input;
    let (sa, sb) = (sa as usize % 17 + 1, sb as usize % 17 + 1);
    let trim = Compare::Trim
        .matches_stream(Dribble { data: a, step: sa }, Dribble { data: b, step: sb })
        .unwrap();
    assert_eq!(trim, reference_trim(a, b), "{a:?} vs {b:?}");
    let exact = Compare::Exact
        .matches_stream(Dribble { data: a, step: sa }, Dribble { data: b, step: sb })
        .unwrap();
    assert_eq!(exact, a == b);
});
