use super::redact::redact_url;

#[test]
fn url_passwords_are_redacted_and_the_rest_kept() {
    assert_eq!(
        redact_url("redis://user:hunter2@host:6379/0"),
        "redis://user:<redacted>@host:6379/0"
    );
    assert_eq!(
        redact_url("redis://:hunter2@host"),
        "redis://:<redacted>@host"
    );
    assert_eq!(
        redact_url("redis://hunter2@host"),
        "redis://<redacted>@host"
    );
    assert_eq!(redact_url("redis://host/0?a=b@c"), "redis://host/0?a=b@c");
    assert_eq!(redact_url("not a url"), "not a url");
    assert_eq!(
        redact_url("postgres://u:p@ss:w@rd@db/x"),
        "postgres://u:<redacted>@db/x"
    );
}
