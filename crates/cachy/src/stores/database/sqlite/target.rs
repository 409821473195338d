//! Where a SQLite store's database is: reading its `sqlite:` URL.

use std::path::{Path, PathBuf};

/// Where the database is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::stores::database) enum Target {
    /// A file, created with its folder if missing unless `read_only`.
    File { path: PathBuf, read_only: bool },
    /// A private database in memory, gone with its (only) connection.
    Memory,
}

impl Target {
    /// Read a `sqlite:` URL as sqlx reads it: `sqlite://path/to/file.db` or `sqlite:file.db`
    /// (relative to the working folder), `sqlite:///absolute/file.db`, `sqlite::memory:`;
    /// `%XX` escapes in the path; and the query parameter `mode` (`rwc`, the default,
    /// `rw`, `ro` or `memory`). Anything else is an error saying what.
    pub(in crate::stores::database) fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or("it does not start with `sqlite:`")?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut memory = path == ":memory:";
        let mut read_only = false;
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            match pair.split_once('=') {
                Some(("mode", "rwc" | "rw")) => {}
                Some(("mode", "ro")) => read_only = true,
                Some(("mode", "memory")) => memory = true,
                Some(("mode", other)) => {
                    return Err(format!("`mode={other}` is not rwc, rw, ro or memory"));
                }
                _ => {
                    return Err(format!(
                        "the URL parameter `{pair}` is not supported (only `mode`)"
                    ));
                }
            }
        }
        if memory {
            return Ok(Target::Memory);
        }
        if path.is_empty() {
            return Err(
                "it names no file (`sqlite://path/to/file.db`, or `sqlite::memory:`)".into(),
            );
        }
        Ok(Target::File {
            path: PathBuf::from(percent_decoded(path)?),
            read_only,
        })
    }

    /// The file, if the database is one.
    pub(in crate::stores::database) fn file(&self) -> Option<&Path> {
        match self {
            Target::File { path, .. } => Some(path),
            Target::Memory => None,
        }
    }
}

fn percent_decoded(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let byte = text
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| {
                    format!(
                        "`{}` is not a %XX escape",
                        &text[i..(i + 3).min(text.len())]
                    )
                })?;
            decoded.push(byte);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(decoded).map_err(|_| "the path's %XX escapes are not UTF-8".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_read_as_sqlx_reads_them() {
        let file = |path: &str| Target::File {
            path: PathBuf::from(path),
            read_only: false,
        };
        assert_eq!(
            Target::parse("sqlite://var/cache.db"),
            Ok(file("var/cache.db"))
        );
        assert_eq!(Target::parse("sqlite:cache.db"), Ok(file("cache.db")));
        assert_eq!(
            Target::parse("sqlite:///tmp/a%20b.db"),
            Ok(file("/tmp/a b.db"))
        );
        assert_eq!(Target::parse("sqlite::memory:"), Ok(Target::Memory));
        assert_eq!(
            Target::parse("sqlite://x.db?mode=memory"),
            Ok(Target::Memory)
        );
        assert_eq!(
            Target::parse("sqlite://x.db?mode=ro"),
            Ok(Target::File {
                path: PathBuf::from("x.db"),
                read_only: true
            })
        );
        for (url, says) in [
            ("sqlite://x.db?mode=rwx", "mode=rwx"),
            ("sqlite://x.db?cache=shared", "cache=shared"),
            ("sqlite://", "no file"),
            ("sqlite://x%2.db", "%2."),
        ] {
            let error = Target::parse(url).unwrap_err();
            assert!(error.contains(says), "{url}: {error}");
        }
    }
}
