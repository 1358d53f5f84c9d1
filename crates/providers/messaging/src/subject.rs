//! NATS subject rules, shared by every backend so that a component sees the same subjects
//! accepted and matched whether it runs embedded or against a broker.
//!
//! A subject is a non-empty list of non-empty tokens separated by `.`, with no whitespace.
//! In subscriptions `*` matches exactly one token and `>` matches one or more trailing
//! tokens; both must be whole tokens, and `>` must be the last one.

use crate::Error;

/// Checks `subject` against NATS rules. `allow_wildcards` is true for subscriptions and
/// false for publishing, where a wildcard would have no meaning.
pub fn validate(subject: &str, allow_wildcards: bool) -> Result<(), Error> {
    let invalid = |reason: &str| {
        Err(Error::InvalidSubject {
            subject: subject.to_owned(),
            reason: reason.to_owned(),
        })
    };
    if subject.is_empty() {
        return invalid("it is empty");
    }
    if subject.chars().any(char::is_whitespace) {
        return invalid("it contains whitespace");
    }
    let mut tokens = subject.split('.').peekable();
    while let Some(token) = tokens.next() {
        let last = tokens.peek().is_none();
        match token {
            "" => return invalid("it has an empty token"),
            "*" | ">" if !allow_wildcards => {
                return invalid("wildcards are not allowed here");
            }
            "*" => {}
            ">" if !last => return invalid("`>` must be the last token"),
            ">" => {}
            _ if token.contains(['*', '>']) => {
                return invalid("`*` and `>` must be whole tokens");
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether `subject` (a concrete subject) is matched by `pattern` (which may contain
/// wildcards). Both are assumed valid; invalid input simply does not match.
pub fn matches(pattern: &str, subject: &str) -> bool {
    let mut pattern_tokens = pattern.split('.');
    let mut subject_tokens = subject.split('.');
    loop {
        match (pattern_tokens.next(), subject_tokens.next()) {
            // `>` needs at least one token to match, which the `Some` here guarantees.
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(p), Some(s)) if p == s => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_subjects() {
        for s in ["a", "a.b.c", "orders.created", "_INBOX.abc123", "a-b_c.d"] {
            assert!(validate(s, false).is_ok(), "{s}");
            assert!(validate(s, true).is_ok(), "{s}");
        }
    }

    #[test]
    fn rejects_malformed_subjects() {
        for s in ["", " ", "a b", "a\tb", "a\n", ".", "a.", ".a", "a..b"] {
            assert!(validate(s, false).is_err(), "{s:?}");
            assert!(validate(s, true).is_err(), "{s:?}");
        }
    }

    #[test]
    fn wildcards_only_where_allowed() {
        for s in ["*", ">", "a.*", "a.>", "*.b", "a.*.c", "*.*.>"] {
            assert!(validate(s, true).is_ok(), "{s}");
            assert!(
                matches!(validate(s, false), Err(Error::InvalidSubject { .. })),
                "{s}"
            );
        }
    }

    #[test]
    fn wildcards_must_be_whole_tokens() {
        for s in ["a*", "a.b*", "*b", "a.>b", "a>", ">.a", "a.>.b"] {
            assert!(validate(s, true).is_err(), "{s}");
            assert!(validate(s, false).is_err(), "{s}");
        }
    }

    #[test]
    fn error_names_the_subject() {
        let err = validate("a..b", true).expect_err("empty token");
        assert_eq!(
            err,
            Error::InvalidSubject {
                subject: "a..b".into(),
                reason: "it has an empty token".into()
            }
        );
    }

    #[test]
    fn literal_matching() {
        assert!(matches("a.b", "a.b"));
        assert!(!matches("a.b", "a.c"));
        assert!(!matches("a.b", "a.b.c"));
        assert!(!matches("a.b.c", "a.b"));
    }

    #[test]
    fn star_matches_one_token() {
        assert!(matches("a.*", "a.b"));
        assert!(matches("*.b", "a.b"));
        assert!(matches("a.*.c", "a.x.c"));
        assert!(!matches("a.*", "a"));
        assert!(!matches("a.*", "a.b.c"));
        assert!(matches("*", "a"));
        assert!(!matches("*", "a.b"));
    }

    #[test]
    fn gt_matches_the_rest() {
        assert!(matches("a.>", "a.b"));
        assert!(matches("a.>", "a.b.c.d"));
        assert!(!matches("a.>", "a"));
        assert!(!matches("a.>", "b.c"));
        assert!(matches(">", "a"));
        assert!(matches(">", "a.b.c"));
        assert!(matches("*.>", "a.b"));
        assert!(!matches("*.>", "a"));
    }
}
