//! Test-directory names: the natural order that sorts `NAME.in` files must be a total
//! order on any names (antisymmetric, reflexive, transitive), or sorting could panic or
//! give an order that depends on the input's.
#![no_main]
use judgebox::judge::cases::natural_cmp;
use libfuzzer_sys::fuzz_target;
use std::cmp::Ordering;

fuzz_target!(|names: (&str, &str, &str)| {
    let (a, b, c) = names;
    assert_eq!(natural_cmp(a, a), Ordering::Equal);
    assert_eq!(
        natural_cmp(a, b),
        natural_cmp(b, a).reverse(),
        "{a:?} {b:?}"
    );
    if natural_cmp(a, b) != Ordering::Greater && natural_cmp(b, c) != Ordering::Greater {
        assert_ne!(natural_cmp(a, c), Ordering::Greater, "{a:?} {b:?} {c:?}");
    }
});
