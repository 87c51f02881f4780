//! Image references, manifests and indexes from registries and archives: the parsers
//! never panic, and a reference that parses prints to one that parses to the same.
#![no_main]
use judgebox::image::reference::Reference;
use judgebox::image::spec::parse_document;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &[u8])| {
    let (text, doc) = input;
    if let Ok(r) = Reference::parse(text) {
        let again = Reference::parse(&r.canonical()).expect("a canonical reference parses");
        assert_eq!(again.canonical(), r.canonical());
    }
    let _ = parse_document("fuzz", doc, None);
    let _ = parse_document("fuzz", doc, Some("application/vnd.oci.image.index.v1+json"));
});
