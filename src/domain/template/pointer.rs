//! JSON pointers (RFC 6901) for locating lint issues and guard clauses.

use std::fmt::Display;

/// `base` extended by one segment, escaping `~` and `/` so map keys that contain them still
/// point at the right place.
pub fn join(base: &str, segment: impl Display) -> String {
    let segment = segment.to_string();
    let mut out = String::with_capacity(base.len() + segment.len() + 1);
    out.push_str(base);
    out.push('/');
    for c in segment.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_segments() {
        assert_eq!(join("", "transitions"), "/transitions");
        assert_eq!(join("/transitions", 3), "/transitions/3");
        assert_eq!(join("/field_rules", "a/b~c"), "/field_rules/a~1b~0c");
    }
}
