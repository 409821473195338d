use super::*;
use crate::serializer::pickle::scalars::latin1;

/// `callable` (`module\nname\n`) called `calls` times on the memoized argument tuple the
/// opcodes `arguments` push, the results in a list.
fn repeated_calls(callable: &[u8], arguments: &[u8], calls: usize) -> Vec<u8> {
    let mut pickle = b"\x80\x02c".to_vec();
    pickle.extend(callable);
    pickle.extend(b"q\x00");
    pickle.extend(arguments);
    pickle.extend(b"q\x01](");
    pickle.extend(std::iter::repeat_n(&b"h\x00h\x01R"[..], calls).flatten());
    pickle.extend(b"e.");
    pickle
}

/// The arguments `(text, 'latin1')`.
fn latin1_text(text: &str) -> Vec<u8> {
    let mut arguments = b"X".to_vec();
    arguments.extend(u32::try_from(text.len()).unwrap().to_le_bytes());
    arguments.extend(text.as_bytes());
    arguments.extend(b"X\x06\x00\x00\x00latin1\x86");
    arguments
}

/// How much of a default reader's budget the machine spent on `pickle`.
fn spent(pickle: &[u8]) -> Outcome<usize> {
    let limits = DecodeLimits::default();
    let arena = run(pickle, &limits)?;
    Ok(limits.budget(pickle.len()) - arena.budget)
}

#[test]
fn each_copy_is_charged_what_it_allocates() {
    // list((0, 1, 2)) five times: five copies of three ids.
    let pickle = repeated_calls(b"builtins\nlist\n", b"(K\x00K\x01K\x02t\x85", 5);
    assert_eq!(spent(&pickle), Ok(5 * 3 * size_of::<Id>()));
    // bytearray('abc', 'latin1') four times: four new 3-byte strings.
    let pickle = repeated_calls(b"builtins\nbytearray\n", &latin1_text("abc"), 4);
    assert_eq!(spent(&pickle), Ok(4 * 3));
    // bytearray(b'abc') lends the pickle's bytes: nothing is copied.
    let pickle = repeated_calls(b"builtins\nbytearray\n", b"C\x03abc\x85", 4);
    assert_eq!(spent(&pickle), Ok(0));
}

#[test]
fn memo_references_and_dup_copy_nothing() {
    // A 1 KiB string memoized, then referenced 1,000 times and DUPed 1,000 times.
    let mut pickle = b"\x80\x02X\x00\x04\x00\x00".to_vec();
    pickle.extend([b'x'; 1 << 10]);
    pickle.extend(b"q\x00](");
    pickle.extend(std::iter::repeat_n(&b"h\x002"[..], 1_000).flatten());
    pickle.extend(b"e.");
    assert_eq!(spent(&pickle), Ok(0));
}

#[test]
fn the_copy_beyond_the_budget_is_refused_before_it_is_made() {
    // A 1 MiB string copied 100 times: 100 MiB against a 16 MiB budget.
    let text = "x".repeat(1 << 20);
    let pickle = repeated_calls(b"_codecs\nencode\n", &latin1_text(&text), 100);
    let error = spent(&pickle).unwrap_err();
    assert!(error.contains("decode limit"), "{error}");
}

#[test]
fn copies_and_the_value_read_share_one_budget() {
    // One 9 MiB copy fits a 16 MiB budget, but reading it then needs 9 MiB more.
    let limits = DecodeLimits::default().with_max_expansion(1);
    let text = "x".repeat(9 << 20);
    let pickle = repeated_calls(b"_codecs\nencode\n", &latin1_text(&text), 1);
    let arena = run(&pickle, &limits).unwrap();
    assert_eq!(arena.budget, limits.budget(pickle.len()) - (9 << 20));
    let error = arena.tree(&limits).unwrap_err();
    assert!(error.contains("decode limit"), "{error}");
}

#[test]
fn latin1_text_becomes_its_bytes() {
    let every: String = (0..=255u8).map(char::from).collect();
    assert_eq!(latin1(&every), Ok((0..=255u8).collect()));
    assert!(latin1("\u{100}").is_err());
    assert!(latin1("x\u{20ac}").is_err());
}
