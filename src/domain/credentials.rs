//! Login names and passwords, parsed once at the edge so the rest of the code only ever holds
//! values that satisfy the rules.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// Default shortest password a new credential may have (`STAGEFLOW_PASSWORD_MIN_LENGTH`).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted anywhere; bounds the work a single login can cause.
pub const MAX_PASSWORD_BYTES: usize = 1_024;
const MAX_USERNAME_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("must be 1 to {MAX_USERNAME_CHARS} characters")]
    UsernameLength,
    #[error("may contain only letters, digits and . _ - @")]
    UsernameCharacters,
    #[error("must be at least {0} characters")]
    PasswordTooShort(usize),
    #[error("must be at most {MAX_PASSWORD_BYTES} bytes")]
    PasswordTooLong,
    #[error("must not contain the username")]
    PasswordContainsUsername,
    #[error("must not be empty")]
    PasswordEmpty,
}

impl CredentialError {
    /// Stable machine-readable code for validation problem entries.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UsernameLength => "length",
            Self::UsernameCharacters => "pattern",
            Self::PasswordTooShort(_) => "too_short",
            Self::PasswordTooLong => "too_long",
            Self::PasswordContainsUsername => "contains_username",
            Self::PasswordEmpty => "required",
        }
    }
}

/// The canonical form of a name people type and compare by eye: NFKC-normalised (full-width
/// `ａｄｍｉｎ` and half-width kana become their ordinary forms) and lowercased. Two names
/// with the same canonical form are the same name.
pub fn canonical_name(raw: &str) -> String {
    raw.nfkc().flat_map(char::to_lowercase).nfkc().collect()
}

/// A login name: 1–64 characters of letters, digits and `. _ - @`, held in its
/// [canonical form](canonical_name), so `Admin`, `ADMIN` and `ａｄｍｉｎ` are one name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, CredentialError> {
        let canonical = canonical_name(raw);
        let chars = canonical.chars().count();
        if chars == 0 || chars > MAX_USERNAME_CHARS {
            return Err(CredentialError::UsernameLength);
        }
        if !canonical
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
        {
            return Err(CredentialError::UsernameCharacters);
        }
        Ok(Self(canonical))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password presented at login: anything non-empty up to the size bound. Its `Debug` never
/// shows the secret.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, CredentialError> {
        if raw.is_empty() {
            return Err(CredentialError::PasswordEmpty);
        }
        if raw.len() > MAX_PASSWORD_BYTES {
            return Err(CredentialError::PasswordTooLong);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A password chosen for a new or changed credential: it also satisfies the policy.
#[derive(Clone, Debug)]
pub struct NewPassword(Password);

impl NewPassword {
    pub fn parse(raw: &str, username: &str, min_chars: usize) -> Result<Self, CredentialError> {
        let password = Password::parse(raw)?;
        if raw.chars().count() < min_chars {
            return Err(CredentialError::PasswordTooShort(min_chars));
        }
        if !username.is_empty() && raw.to_lowercase().contains(&username.to_lowercase()) {
            return Err(CredentialError::PasswordContainsUsername);
        }
        Ok(Self(password))
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(Username::parse("operator").is_ok());
        assert!(Username::parse("yamada.taro@example.jp").is_ok());
        assert!(Username::parse("山田").is_ok());
        assert_eq!(Username::parse(""), Err(CredentialError::UsernameLength));
        assert_eq!(
            Username::parse(&"a".repeat(65)),
            Err(CredentialError::UsernameLength)
        );
        assert_eq!(
            Username::parse("a b"),
            Err(CredentialError::UsernameCharacters)
        );
        assert_eq!(
            Username::parse("a/b"),
            Err(CredentialError::UsernameCharacters)
        );
    }

    #[test]
    fn look_alike_usernames_are_one_name() {
        for same in ["admin", "Admin", "ADMIN", "ａｄｍｉｎ", "ＡＤＭＩＮ"] {
            assert_eq!(Username::parse(same).unwrap().as_str(), "admin", "{same}");
        }
        // Half-width katakana and its full-width form are one name.
        assert_eq!(
            Username::parse("ﾔﾏﾀﾞ").unwrap(),
            Username::parse("ヤマダ").unwrap()
        );
        // A full-width space is a space after normalisation, and still refused.
        assert_eq!(
            Username::parse("a\u{3000}b"),
            Err(CredentialError::UsernameCharacters)
        );
    }

    #[test]
    fn passwords() {
        assert!(Password::parse("x").is_ok());
        assert_eq!(
            Password::parse("").map(|_| ()),
            Err(CredentialError::PasswordEmpty)
        );
        assert_eq!(
            Password::parse(&"x".repeat(1025)).map(|_| ()),
            Err(CredentialError::PasswordTooLong)
        );
        assert!(format!("{:?}", Password::parse("secret").unwrap()).contains("***"));
    }

    #[test]
    fn new_password_policy() {
        assert!(NewPassword::parse("correct horse battery", "alice", 12).is_ok());
        assert_eq!(
            NewPassword::parse("short", "alice", 12).map(|_| ()),
            Err(CredentialError::PasswordTooShort(12))
        );
        assert_eq!(
            NewPassword::parse("my-name-is-Alice!", "alice", 12).map(|_| ()),
            Err(CredentialError::PasswordContainsUsername)
        );
        // Length counts characters, not bytes: twelve kana are long enough.
        assert!(NewPassword::parse("あいうえおかきくけこさし", "alice", 12).is_ok());
    }
}
