//! The configurations shown in the user-facing Markdown (README.md, ARCHITECTURE.md,
//! CONTRIBUTING.md and docs/*.md) are real: each one loads and builds every store it names.
//! (Their Rust blocks are doctests: see the end of `src/lib.rs`.)
//!
//! Convention: a fenced block tagged `toml` that has a `[stores.<name>]` table is a whole
//! cachy configuration and is checked here; a `toml` block without one (a Cargo manifest
//! fragment, say) is skipped. A configuration meant as a fragment must therefore leave out
//! `[stores.` tables, and one that should be checked must be a whole file.
//!
//! Each configuration is written to `cache.toml` in a temporary folder and loaded with
//! `CacheManager::from_file`, as a program would load it; then `manager.store(name)` builds
//! each store. Building connects to nothing (servers are reached on first use), so no
//! server is needed.

use std::path::{Path, PathBuf};

use cachy::CacheManager;

/// A fenced code block: where it starts, its language tag and its text.
struct Block {
    file: PathBuf,
    line: usize,
    lang: String,
    text: String,
}

/// The repository's root (the crate is `crates/cachy`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The user-facing Markdown files.
fn markdown_files() -> Vec<PathBuf> {
    let root = root();
    let mut files: Vec<PathBuf> = ["README.md", "ARCHITECTURE.md", "CONTRIBUTING.md"]
        .iter()
        .map(|name| root.join(name))
        .collect();
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ is readable")
        .map(|entry| entry.expect("docs/ is readable").path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The fenced blocks (``` or ~~~, indented or not) of the Markdown file `path`.
fn blocks(path: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(path).expect("the Markdown file is readable");
    let mut found = Vec::new();
    // The open block: its fence, its indentation, where it started, its tag, its lines.
    let mut open: Option<(String, usize, usize, String, Vec<String>)> = None;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start_matches(' ');
        let indent = line.len() - trimmed.len();
        match &mut open {
            None => {
                let fence_char = match trimmed.chars().next() {
                    Some(c @ ('`' | '~')) => c,
                    _ => continue,
                };
                let fence_len = trimmed.chars().take_while(|&c| c == fence_char).count();
                if fence_len < 3 {
                    continue;
                }
                let info = trimmed[fence_len..].trim();
                let lang = info
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .next()
                    .unwrap_or("")
                    .to_owned();
                let fence = trimmed[..fence_len].to_owned();
                open = Some((fence, indent, index + 1, lang, Vec::new()));
            }
            Some((fence, block_indent, start, lang, lines)) => {
                if trimmed.starts_with(fence.as_str()) && trimmed.trim_end() == fence.as_str() {
                    found.push(Block {
                        file: path.to_owned(),
                        line: *start,
                        lang: std::mem::take(lang),
                        text: std::mem::take(lines).join("\n"),
                    });
                    open = None;
                } else {
                    // Content lines lose the fence's indentation, as Markdown reads them.
                    let strip = indent.min(*block_indent);
                    lines.push(line[strip..].to_owned());
                }
            }
        }
    }
    assert!(
        open.is_none(),
        "{}: a code block is never closed",
        path.display()
    );
    found
}

/// Whether a `toml` block is a whole cachy configuration (see the module's docs).
fn is_configuration(block: &Block) -> bool {
    block.lang == "toml"
        && block
            .text
            .lines()
            .any(|line| line.trim_start().starts_with("[stores."))
}

/// Load `block` as a config file and build each of its stores.
fn check(block: &Block) -> Result<usize, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("cache.toml");
    std::fs::write(&path, &block.text).map_err(|e| e.to_string())?;
    let manager = CacheManager::from_file(&path).map_err(|e| format!("loading: {e}"))?;
    let names: Vec<String> = manager.config().stores().keys().cloned().collect();
    for name in &names {
        manager
            .store(name.as_str())
            .map_err(|e| format!("building store `{name}`: {e}"))?;
    }
    manager
        .default_store_name()
        .map_err(|e| format!("the default store: {e}"))?;
    Ok(names.len())
}

#[tokio::test]
async fn every_configuration_in_the_markdown_builds_its_stores() {
    let mut checked = Vec::new();
    let mut failures = Vec::new();
    for file in markdown_files() {
        for block in blocks(&file).iter().filter(|b| is_configuration(b)) {
            let place = format!("{}:{}", block.file.display(), block.line);
            match check(block) {
                Ok(stores) => checked.push(format!("{place} ({stores} stores)")),
                Err(error) => failures.push(format!("{place}: {error}")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "configurations in the Markdown that do not build:\n{}",
        failures.join("\n")
    );
    // The configuration guide and the hybrid store's section each have one: finding none
    // would mean this test reads the Markdown wrong.
    assert!(
        checked.len() >= 2,
        "expected at least 2 configurations, found: {checked:?}"
    );
}
