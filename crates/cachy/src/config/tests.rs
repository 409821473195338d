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

#[test]
fn passwords_in_query_parameters_and_with_unencoded_delimiters_are_redacted() {
    for (url, shown) in [
        (
            "redis+unix:///tmp/redis.sock?pass=S3CRET&db=2",
            "redis+unix:///tmp/redis.sock?pass=<redacted>&db=2",
        ),
        (
            "postgres://h/db?password=S3CRET&port=x",
            "postgres://h/db?password=<redacted>&port=x",
        ),
        ("redis://u:pa/S3CRET@h:1/0", "redis://u:<redacted>@h:1/0"),
        (
            "postgresql://u:pa?S3#CRET@h/db",
            "postgresql://u:<redacted>@h/db",
        ),
        ("redis://host/0?a=b@c", "redis://host/0?a=b@c"),
    ] {
        assert_eq!(redact_url(url), shown, "{url}");
        assert!(!redact_url(url).contains("S3"), "{url}");
    }
}
