//! The commands and their rough edges: exit codes, JSON documents, errors, help, prompts.

use super::*;

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
        err.contains("store `file`") && err.contains("cannot create a schema"),
        "{err}"
    );
}

#[test]
fn every_command_prints_one_json_document_with_json() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let (code, put, _) = cachy_json(&config, &["put", "user", r#"{"name":"Anne"}"#]);
    assert_eq!(
        (code, &put["stored"], &put["store"]),
        (0, &Value::Bool(true), &"file".into())
    );
    let (code, get, _) = cachy_json(&config, &["get", "user"]);
    assert_eq!((code, &get["found"]), (0, &Value::Bool(true)));
    assert_eq!(get["value"]["name"], "Anne");
    let (code, has, _) = cachy_json(&config, &["has", "user"]);
    assert_eq!((code, &has["found"]), (0, &Value::Bool(true)));
    let (code, increment, _) = cachy_json(&config, &["increment", "hits", "3"]);
    assert_eq!((code, &increment["value"]), (0, &3.into()));
    let (code, forget, _) = cachy_json(&config, &["forget", "user"]);
    assert_eq!((code, &forget["removed"]), (0, &Value::Bool(true)));
    let (code, miss, _) = cachy_json(&config, &["get", "user"]);
    assert_eq!(
        (code, &miss["found"], &miss["key"]),
        (1, &Value::Bool(false), &"user".into())
    );
    let (code, has, _) = cachy_json(&config, &["has", "user"]);
    assert_eq!((code, &has["found"]), (1, &Value::Bool(false)));
    // Global flags may come after the command; a put of no lifetime is an error.
    let (code, put, err) = cachy(&config, &["put", "gone", "1", "--seconds", "0", "--json"]);
    assert_eq!((code, put.as_str()), (2, ""));
    let error: Value = serde_json::from_str(&err).unwrap();
    assert_eq!(error["error"]["kind"], "invalid_input", "{error}");
    let (code, flush, _) = cachy(&config, &["flush", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&flush).unwrap()["flushed"],
        true
    );

    // An error: nothing on stdout, one JSON document on stderr.
    let (code, out, err) = cachy(&config, &["--json", "--store", "nope", "get", "k"]);
    assert_eq!((code, out.as_str()), (2, ""));
    let error: Value = serde_json::from_str(&err).unwrap();
    assert_eq!(error["error"]["kind"], "unknown_store", "{err}");
}

#[test]
fn a_mistyped_store_name_suggests_the_nearest_and_lists_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let (code, _, err) = cachy(&config, &["--store", "fiel", "get", "k"]);
    assert_eq!(code, 2);
    assert!(err.contains("did you mean `file`?"), "{err}");
    assert!(err.contains("its stores: file, sql"), "{err}");
    let (code, _, err) = cachy(&config, &["--store", "elsewhere", "get", "k"]);
    assert_eq!(code, 2);
    assert!(!err.contains("did you mean"), "{err}");
    assert!(err.contains("its stores: file, sql"), "{err}");
}

#[test]
fn a_miss_says_so_in_text_and_only_in_the_document_with_json() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    for command in ["get", "ttl"] {
        let (code, out, err) = cachy(&config, &[command, "nothing"]);
        assert_eq!((code, out.as_str()), (1, ""), "{command}");
        assert_eq!(err, "no value under `nothing` in store `file`", "{command}");
        let (code, document, err) = cachy_json(&config, &[command, "nothing"]);
        assert_eq!(
            (code, &document["found"]),
            (1, &Value::Bool(false)),
            "{command}"
        );
        assert_eq!(err, "", "{command}");
    }
}

#[test]
fn a_lifetime_of_zero_is_an_error_not_a_silent_delete() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    assert_eq!(cachy(&config, &["put", "k", "1", "--minutes", "5"]).0, 0);
    for flag in [["--minutes", "0"], ["--seconds", "0"], ["--seconds=-3", ""]] {
        let flag: Vec<&str> = flag.into_iter().filter(|part| !part.is_empty()).collect();
        let (code, _, err) = cachy(&config, &[&["put", "k", "2"][..], &flag[..]].concat());
        assert_eq!(code, 2, "{flag:?}");
        let shown = flag.join(" ").replace('=', " ");
        assert!(err.contains(&format!("`{shown}`")), "{err}");
        assert!(err.contains("cachy forget k"), "{err}");
    }
    assert_eq!(cachy(&config, &["get", "k"]).1, "1", "nothing was removed");
}

#[test]
fn cachy_config_names_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let output = Command::new(env!("CARGO_BIN_EXE_cachy"))
        .args(["put", "k", "7"])
        .env("CACHY_CONFIG", &config)
        .current_dir(dir.path().parent().unwrap())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(cachy(&config, &["get", "k"]).1, "7");
}

/// `cachy ARGS` at a terminal (a pseudo-terminal made by `script`), answering `answer`.
fn at_a_terminal(config: &Path, args: &str, answer: &str) -> (bool, String) {
    let command = format!(
        "{} --config {} {args}",
        env!("CARGO_BIN_EXE_cachy"),
        config.display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("`script` (util-linux) runs");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), answer.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn flush_asks_at_a_terminal_unless_yes_and_says_what_it_removed() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    assert_eq!(cachy(&config, &["put", "k", "1"]).0, 0);
    let (flushed, shown) = at_a_terminal(&config, "flush", "n\n");
    assert!(!flushed, "{shown}");
    assert!(
        shown.contains("remove every item of store `file`? [y/N]"),
        "{shown}"
    );
    assert!(shown.contains("not flushed"), "{shown}");
    assert_eq!(cachy(&config, &["get", "k"]).1, "1", "kept");
    let (flushed, shown) = at_a_terminal(&config, "flush", "y\n");
    assert!(flushed, "{shown}");
    assert!(
        shown.contains("flushed store `file`: every item removed"),
        "{shown}"
    );
    assert_eq!(cachy(&config, &["get", "k"]).0, 1, "flushed");
    assert_eq!(cachy(&config, &["put", "k", "1"]).0, 0);
    let (flushed, shown) = at_a_terminal(&config, "flush --yes", "");
    assert!(flushed, "{shown}");
    assert!(!shown.contains("[y/N]"), "{shown}");
}

#[test]
fn every_argument_has_help_text() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    for command in [
        "get",
        "has",
        "put",
        "forget",
        "increment",
        "ttl",
        "stats",
        "keys",
        "flush",
        "create-table",
        "prune",
    ] {
        let (code, help, _) = cachy(&config, &[command, "-h"]);
        assert_eq!(code, 0, "{command}");
        let entries = help
            .lines()
            .skip_while(|line| !line.starts_with("Arguments:") && !line.starts_with("Options:"))
            .filter(|line| line.starts_with("  "));
        for entry in entries {
            let name_and_help: Vec<&str> = entry.trim().splitn(2, "  ").collect();
            assert!(
                name_and_help.len() == 2 && !name_and_help[1].trim().is_empty(),
                "`cachy {command}`: no help for {entry:?}"
            );
        }
    }
}

/// `simulate` replays a trace of keys at several capacities without any configuration: ten
/// keys read ten times each hit 90% of the time once the store holds them all, never more,
/// and less in a store of five.
#[test]
fn simulate_replays_a_trace_at_several_capacities() {
    let dir = tempfile::tempdir().unwrap();
    let no_config = dir.path().join("none.toml");
    let trace = dir.path().join("keys.log");
    let keys: Vec<String> = (0..100).map(|i| format!("user:{}", i % 10)).collect();
    std::fs::write(&trace, keys.join("\n") + "\n\n").unwrap();
    let path = trace.to_str().unwrap();

    let (code, document, _) =
        cachy_json(&no_config, &["simulate", path, "--capacities", "10,5,1000"]);
    assert_eq!(code, 0, "{document}");
    assert_eq!(document["requests"], 100);
    assert_eq!(document["distinct_keys"], 10);
    assert_eq!(document["ceiling"], 0.9);
    let ratios: Vec<(u64, f64)> = document["capacities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["entries"].as_u64().unwrap(),
                row["hit_ratio"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ratios[0].0, 5, "sorted: {ratios:?}");
    assert!(ratios[0].1 < 0.9, "{ratios:?}");
    assert_eq!(&ratios[1..], [(10, 0.9), (1000, 0.9)]);

    let (code, text, _) = cachy(&no_config, &["simulate", path]);
    assert_eq!(code, 0);
    assert!(text.starts_with("100 requests, 10 distinct keys"), "{text}");

    let empty = dir.path().join("empty.log");
    std::fs::write(&empty, "\n").unwrap();
    let (code, _, err) = cachy(&no_config, &["simulate", empty.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("holds no key"), "{err}");
    let (code, _, err) = cachy(&no_config, &["simulate", path, "--capacities", "0"]);
    assert_eq!(code, 2);
    assert!(err.contains("at least 1"), "{err}");
    let missing = dir.path().join("missing.log");
    let (code, _, err) = cachy(&no_config, &["simulate", missing.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read the trace"), "{err}");
}
