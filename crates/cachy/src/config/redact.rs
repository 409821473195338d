//! Secrets kept out of Debug output and error messages.

use serde_json::Value;

/// Whether an option's name says it holds a secret.
fn is_secret_field(field: &str) -> bool {
    let field = field.to_ascii_lowercase();
    field == "key"
        || field.ends_with("_key")
        || field == "encrypt"
        || ["password", "passwd", "secret", "token", "credential"]
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
/// like one) replaced by `<redacted>`, and the values of query parameters that carry one
/// (`?pass=`, `&password=`, as Redis and PostgreSQL URLs may), so that config errors and
/// Debug output can show where a store connects without showing how it authenticates. A
/// password holding an unencoded `/`, `?` or `#` is hidden too: when in doubt, more is
/// hidden rather than less.
pub fn redact_url(text: &str) -> String {
    redact_query(&redact_user_info(text))
}

fn redact_user_info(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_owned();
    };
    let authority_start = scheme_end + 3;
    let rest = &text[authority_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = match rest[..authority_end].rfind('@') {
        Some(at) => at,
        // No `@` before the path: one further on is a password's end only if a `:` before
        // the path started that password (`redis://user:pa/ss@host`).
        None => match rest.rfind('@') {
            Some(at) if rest[..authority_end].contains(':') => at,
            _ => return text.to_owned(),
        },
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

/// `text` with the value of every query parameter named as a secret hidden.
fn redact_query(text: &str) -> String {
    let Some(query_start) = text.find('?') else {
        return text.to_owned();
    };
    let (head, query) = text.split_at(query_start + 1);
    let parameters: Vec<String> = query
        .split('&')
        .map(|parameter| match parameter.split_once('=') {
            Some((name, _)) if is_secret_field(name) || name.eq_ignore_ascii_case("pass") => {
                format!("{name}=<redacted>")
            }
            _ => parameter.to_owned(),
        })
        .collect();
    format!("{head}{}", parameters.join("&"))
}
