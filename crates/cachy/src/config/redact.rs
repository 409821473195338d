//! Secrets kept out of Debug output and error messages.

use serde_json::Value;

/// Whether an option's name says it holds a secret.
fn is_secret_field(field: &str) -> bool {
    let field = field.to_ascii_lowercase();
    ["password", "passwd", "secret", "token", "credential"]
        .iter()
        .any(|word| field.contains(word))
}

/// `value` with secrets hidden, for Debug output.
pub(super) fn redacted(field: &str, value: &Value) -> Value {
    match value {
        _ if is_secret_field(field) => Value::String("<redacted>".to_owned()),
        Value::String(text) => Value::String(redact_url(text)),
        Value::Array(items) => Value::Array(items.iter().map(|v| redacted(field, v)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, v)| (key.clone(), redacted(key, v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `text` with the password of a `scheme://user:password@host` URL (or anything shaped
/// like one) replaced by `<redacted>`, so that config errors and Debug output can show
/// where a store connects without showing how it authenticates.
pub fn redact_url(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_owned();
    };
    let authority_start = scheme_end + 3;
    let rest = &text[authority_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return text.to_owned();
    };
    let user = rest[..at].split(':').next().unwrap_or_default();
    let password_given = rest[..at].contains(':');
    let user_info = if password_given {
        format!("{user}:<redacted>")
    } else if user.is_empty() {
        String::new()
    } else {
        // A URL with only one part before `@` (`redis://secret@host`) gives a password.
        "<redacted>".to_owned()
    };
    format!("{}{user_info}{}", &text[..authority_start], &rest[at..])
}
