//! The `cachy` command on a file store and a SQLite database store.

use std::path::Path;
use std::process::Command;

fn cachy(config: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_cachy"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("the cachy binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    )
}

fn config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("cache.toml");
    std::fs::write(
        &path,
        format!(
            "default = \"file\"\n[stores.file]\ndriver = \"file\"\npath = {:?}\n[stores.sql]\ndriver = \"database\"\nurl = \"sqlite://{}\"\n",
            dir.join("files"),
            dir.join("cache.db").display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn put_get_has_increment_forget_and_flush() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    assert_eq!(
        cachy(
            &config,
            &["put", "user", r#"{"name":"Anne"}"#, "--minutes", "5"]
        )
        .0,
        0
    );
    assert_eq!(
        cachy(&config, &["get", "user"]),
        (0, r#"{"name":"Anne"}"#.to_owned(), String::new())
    );
    assert_eq!(
        cachy(&config, &["put", "plain", "not json", "--forever"]).0,
        0
    );
    assert_eq!(cachy(&config, &["get", "plain"]).1, r#""not json""#);
    assert_eq!(cachy(&config, &["has", "user"]).0, 0);
    assert_eq!(cachy(&config, &["increment", "hits", "3"]).1, "3");
    assert_eq!(cachy(&config, &["increment", "hits", "-5"]).1, "-2");
    assert_eq!(cachy(&config, &["forget", "user"]).1, "true");
    assert_eq!(cachy(&config, &["get", "user"]).0, 1, "a miss");
    assert_eq!(cachy(&config, &["flush"]).0, 0);
    assert_eq!(cachy(&config, &["has", "plain"]).0, 1);
}

#[test]
fn create_table_then_use_a_database_store() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let (code, _, err) = cachy(&config, &["--store", "sql", "get", "k"]);
    assert_eq!(code, 2);
    assert!(err.contains("create_table"), "{err}");
    assert_eq!(cachy(&config, &["--store", "sql", "create-table"]).0, 0);
    assert_eq!(
        cachy(
            &config,
            &["--store", "sql", "put", "k", "1", "--seconds", "60"]
        )
        .0,
        0
    );
    assert_eq!(cachy(&config, &["--store", "sql", "get", "k"]).1, "1");
    assert_eq!(cachy(&config, &["--store", "sql", "prune"]).1, "0");
}

#[test]
fn errors_name_what_was_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let (code, _, err) = cachy(&dir.path().join("missing.toml"), &["get", "k"]);
    assert_eq!(code, 2);
    assert!(err.contains("missing.toml"), "{err}");
    let (code, _, err) = cachy(&config, &["--store", "nope", "get", "k"]);
    assert_eq!(code, 2);
    assert!(err.contains("nope"), "{err}");
    let (code, _, err) = cachy(&config, &["create-table"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("store `file` is not a `database` store"),
        "{err}"
    );
}
