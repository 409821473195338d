//! Glob patterns over keys, as Redis's `SCAN MATCH` reads them (`*`, `?`, `[abc]`, `[^a-z]`,
//! `\` escapes, byte by byte), so that `DatabaseStore::keys` and the Redis store take the
//! same patterns. SQL has no such matching: the pattern becomes a looser `LIKE` that the
//! database filters with, and the rows it returns are matched here exactly.

/// One element of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// This byte.
    Byte(u8),
    /// `?`: any one byte.
    AnyByte,
    /// `*`: any bytes, none included.
    AnyBytes,
    /// `[...]`: one byte in (or, negated, not in) these inclusive ranges.
    Class {
        negated: bool,
        ranges: Vec<(u8, u8)>,
    },
}

/// A parsed glob pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Glob(Vec<Token>);

/// The escape character of the `LIKE` patterns made here. Not `\`, which MySQL string
/// literals would read as an escape of their own.
pub(super) const LIKE_ESCAPE: u8 = b'!';

impl Glob {
    /// Parse `pattern`; the error says what is wrong with it.
    pub(super) fn parse(pattern: &str) -> Result<Glob, String> {
        let bytes = pattern.as_bytes();
        let mut tokens = Vec::new();
        let mut at = 0;
        while let Some(&byte) = bytes.get(at) {
            at += 1;
            tokens.push(match byte {
                b'*' => Token::AnyBytes,
                b'?' => Token::AnyByte,
                b'\\' => {
                    at += 1;
                    Token::Byte(
                        *bytes.get(at - 1).ok_or_else(|| {
                            format!("the pattern {pattern:?} ends with a lone `\\`")
                        })?,
                    )
                }
                b'[' => parse_class(bytes, &mut at)
                    .ok_or_else(|| format!("the pattern {pattern:?} has a `[` without its `]`"))?,
                byte => Token::Byte(byte),
            });
        }
        Ok(Glob(tokens))
    }

    /// Whether `text` matches the whole pattern.
    pub(super) fn matches(&self, text: &[u8]) -> bool {
        let tokens = &self.0;
        let (mut t, mut i) = (0, 0);
        // Where to go back to when a match fails after a `*`: the token after it, and the
        // byte it would then start at.
        let mut retry: Option<(usize, usize)> = None;
        while i < text.len() {
            match tokens.get(t) {
                Some(Token::AnyBytes) => {
                    retry = Some((t + 1, i));
                    t += 1;
                    continue;
                }
                Some(token) if token.matches(text[i]) => {
                    t += 1;
                    i += 1;
                    continue;
                }
                _ => {}
            }
            match retry {
                Some((after_star, from)) => {
                    // Let the `*` take one more byte.
                    retry = Some((after_star, from + 1));
                    t = after_star;
                    i = from + 1;
                }
                None => return false,
            }
        }
        tokens[t..].iter().all(|token| *token == Token::AnyBytes)
    }

    /// A `LIKE` pattern (escaped with [`LIKE_ESCAPE`]) that matches every string the glob
    /// matches, and maybe more: `?` and `[...]` become `%` too, since SQL's `_` is one
    /// character (several bytes in UTF-8) on some databases and one byte on others.
    pub(super) fn like_pattern(&self) -> Vec<u8> {
        let mut like = Vec::new();
        for token in &self.0 {
            match token {
                Token::Byte(byte) => push_like_literal(&mut like, *byte),
                _ if like.last() == Some(&b'%') => {}
                _ => like.push(b'%'),
            }
        }
        like
    }
}

impl Token {
    /// Whether this token, which is not `*`, matches `byte`.
    fn matches(&self, byte: u8) -> bool {
        match self {
            Token::Byte(expected) => *expected == byte,
            Token::AnyByte => true,
            Token::AnyBytes => false,
            Token::Class { negated, ranges } => {
                ranges
                    .iter()
                    .any(|(low, high)| (*low..=*high).contains(&byte))
                    != *negated
            }
        }
    }
}

/// The class of `bytes` from `at` (just after its `[`) to its `]`, `at` moved past it;
/// `None` if it has no `]`. As in Redis, `[]` matches nothing and `[^]` any byte.
fn parse_class(bytes: &[u8], at: &mut usize) -> Option<Token> {
    let mut next = || {
        let byte = bytes.get(*at).copied();
        *at += 1;
        byte
    };
    let mut negated = false;
    let mut ranges: Vec<(u8, u8)> = Vec::new();
    let mut first = true;
    let mut pending = None;
    loop {
        let byte = match pending.take().map_or_else(&mut next, Some)? {
            b'^' if first => {
                negated = true;
                first = false;
                continue;
            }
            b']' => return Some(Token::Class { negated, ranges }),
            b'\\' => next()?,
            byte => byte,
        };
        first = false;
        // `a-z`: the byte after the `-` closes the range, in either order as Redis reads it;
        // `[a-]` makes the `-` itself a member.
        match next()? {
            b'-' => match next()? {
                b']' => {
                    ranges.extend([(byte, byte), (b'-', b'-')]);
                    return Some(Token::Class { negated, ranges });
                }
                high => {
                    let high = if high == b'\\' { next()? } else { high };
                    ranges.push((byte.min(high), byte.max(high)));
                }
            },
            other => {
                ranges.push((byte, byte));
                pending = Some(other);
            }
        }
    }
}

/// Append `byte` to a `LIKE` pattern, as itself.
pub(super) fn push_like_literal(like: &mut Vec<u8>, byte: u8) {
    if matches!(byte, b'%' | b'_' | LIKE_ESCAPE) {
        like.push(LIKE_ESCAPE);
    }
    like.push(byte);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, text: &str) -> bool {
        Glob::parse(pattern).unwrap().matches(text.as_bytes())
    }

    #[test]
    fn globs_match_as_redis_matches() {
        assert!(matches("*", ""));
        assert!(matches("*", "anything"));
        assert!(matches("user:*", "user:1"));
        assert!(!matches("user:*", "User:1"));
        assert!(matches("u?er", "user"));
        assert!(!matches("u?er", "uer"));
        assert!(matches("*:*:end", "a:b:c:end"));
        assert!(!matches("*:*:end", "a:end"));
        assert!(matches("h[ae]llo", "hallo"));
        assert!(!matches("h[ae]llo", "hillo"));
        assert!(matches("h[^e]llo", "hallo"));
        assert!(!matches("h[^e]llo", "hello"));
        assert!(matches("[a-c]x", "bx"));
        assert!(matches("[c-a]x", "bx"));
        assert!(!matches("[a-c]x", "dx"));
        assert!(matches("[a-]", "-"));
        assert!(matches(r"\*", "*"));
        assert!(!matches(r"\*", "x"));
        assert!(matches(r"[\]]", "]"));
        assert!(!matches("[]", "]"));
        assert!(matches("[^]", "x"));
        assert!(matches("100%", "100%"));
        assert!(!matches("a*b", "a"));
        assert!(matches("a**b", "ab"));
        // Byte by byte, as Redis: `?` is one byte of a character's UTF-8.
        assert!(matches("??", "é"));
        assert!(!matches("?", "é"));
    }

    #[test]
    fn bad_patterns_say_what_is_wrong() {
        for bad in ["[abc", "[", "[^", "abc\\", "[a-", r"[a\]"] {
            assert!(Glob::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn like_patterns_match_at_least_what_the_glob_matches() {
        let like = |pattern: &str| String::from_utf8(Glob::parse(pattern).unwrap().like_pattern());
        assert_eq!(like("user:*").unwrap(), "user:%");
        assert_eq!(like("a_b%c!d").unwrap(), "a!_b!%c!!d");
        assert_eq!(like("a?[bc]*d").unwrap(), "a%d");
        assert_eq!(like(r"\*x").unwrap(), "*x");
    }
}
