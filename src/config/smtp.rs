//! The `STAGEFLOW_SMTP_*` settings of outgoing mail (`crate::mailer`, docs/mail.md).

use std::time::Duration;

use super::{ConfigError, bounded};
use crate::mailer::{SmtpSecurity, SmtpSettings, mailbox_domain};

/// `None` when `STAGEFLOW_SMTP_HOST` is unset: no mail goes out.
pub(super) fn smtp_settings(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<SmtpSettings>, ConfigError> {
    let Some(host) = get("STAGEFLOW_SMTP_HOST") else {
        return Ok(None);
    };
    let security = match get("STAGEFLOW_SMTP_SECURITY") {
        Some(raw) => raw
            .parse::<SmtpSecurity>()
            .map_err(|m| ConfigError::new("STAGEFLOW_SMTP_SECURITY", m))?,
        None => SmtpSecurity::StartTls,
    };
    let default_port = if security == SmtpSecurity::Tls {
        465
    } else {
        587
    };
    let port = bounded(
        "STAGEFLOW_SMTP_PORT",
        get("STAGEFLOW_SMTP_PORT"),
        default_port,
        1..=65_535,
    )?;
    let username = get("STAGEFLOW_SMTP_USERNAME");
    let password = get("STAGEFLOW_SMTP_PASSWORD");
    match (&username, &password) {
        (Some(_), None) => {
            return Err(ConfigError::new(
                "STAGEFLOW_SMTP_PASSWORD",
                "must be set too when STAGEFLOW_SMTP_USERNAME is set",
            ));
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                "STAGEFLOW_SMTP_USERNAME",
                "must be set too when STAGEFLOW_SMTP_PASSWORD is set",
            ));
        }
        (Some(_), Some(_)) if security == SmtpSecurity::None => {
            return Err(ConfigError::new(
                "STAGEFLOW_SMTP_SECURITY",
                "is none, but credentials are set: they would cross the network in clear; \
                 use starttls or tls",
            ));
        }
        _ => {}
    }
    let from = get("STAGEFLOW_SMTP_FROM").ok_or_else(|| {
        ConfigError::new(
            "STAGEFLOW_SMTP_FROM",
            "must be set when STAGEFLOW_SMTP_HOST is set (e.g. `Stageflow <noreply@example.com>`)",
        )
    })?;
    let from_domain = mailbox_domain(from.trim())
        .map_err(|m| ConfigError::new("STAGEFLOW_SMTP_FROM", format!("not a mailbox: {m}")))?;
    let message_id_domain = match get("STAGEFLOW_MAIL_DOMAIN") {
        Some(raw) => parse_domain(raw.trim())
            .ok_or_else(|| ConfigError::new("STAGEFLOW_MAIL_DOMAIN", "must be a domain name"))?,
        None => from_domain,
    };
    let timeout = Duration::from_secs(bounded(
        "STAGEFLOW_SMTP_TIMEOUT_SECONDS",
        get("STAGEFLOW_SMTP_TIMEOUT_SECONDS"),
        30,
        1..=600,
    )?);
    Ok(Some(SmtpSettings {
        host: host.trim().to_owned(),
        port,
        security,
        username,
        password,
        from: from.trim().to_owned(),
        timeout,
        message_id_domain,
    }))
}

/// A host name as it may stand right of the `@` of a Message-ID.
fn parse_domain(raw: &str) -> Option<String> {
    let valid = !raw.is_empty()
        && raw.len() <= 253
        && raw.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    valid.then(|| raw.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn no_host_means_no_mail() {
        assert!(config(&[]).unwrap().smtp.is_none());
        assert!(
            config(&[("STAGEFLOW_SMTP_FROM", "a@b.example")])
                .unwrap()
                .smtp
                .is_none()
        );
    }

    #[test]
    fn defaults_follow_the_from_address() {
        let smtp = config(&[
            ("STAGEFLOW_SMTP_HOST", "smtp.example.jp"),
            ("STAGEFLOW_SMTP_FROM", "Stageflow <noreply@desk.example.jp>"),
        ])
        .unwrap()
        .smtp
        .unwrap();
        assert_eq!(smtp.port, 587);
        assert_eq!(smtp.security, SmtpSecurity::StartTls);
        assert_eq!(smtp.timeout, Duration::from_secs(30));
        assert_eq!(smtp.message_id_domain, "desk.example.jp");
        assert_eq!(smtp.username, None);
        let tls = config(&[
            ("STAGEFLOW_SMTP_HOST", "smtp.example.jp"),
            ("STAGEFLOW_SMTP_FROM", "noreply@example.jp"),
            ("STAGEFLOW_SMTP_SECURITY", "tls"),
            ("STAGEFLOW_MAIL_DOMAIN", "Mail.Example.JP"),
        ])
        .unwrap()
        .smtp
        .unwrap();
        assert_eq!((tls.port, tls.security), (465, SmtpSecurity::Tls));
        assert_eq!(tls.message_id_domain, "mail.example.jp");
    }

    #[test]
    fn bad_values_name_their_variable() {
        let host = ("STAGEFLOW_SMTP_HOST", "smtp.example.jp");
        let from = ("STAGEFLOW_SMTP_FROM", "noreply@example.jp");
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[host], "STAGEFLOW_SMTP_FROM"),
            (
                &[host, ("STAGEFLOW_SMTP_FROM", "not a mailbox")],
                "STAGEFLOW_SMTP_FROM",
            ),
            (
                &[host, from, ("STAGEFLOW_SMTP_SECURITY", "ssl")],
                "STAGEFLOW_SMTP_SECURITY",
            ),
            (
                &[host, from, ("STAGEFLOW_SMTP_PORT", "0")],
                "STAGEFLOW_SMTP_PORT",
            ),
            (
                &[host, from, ("STAGEFLOW_SMTP_USERNAME", "u")],
                "STAGEFLOW_SMTP_PASSWORD",
            ),
            (
                &[host, from, ("STAGEFLOW_SMTP_PASSWORD", "p")],
                "STAGEFLOW_SMTP_USERNAME",
            ),
            (
                &[
                    host,
                    from,
                    ("STAGEFLOW_SMTP_SECURITY", "none"),
                    ("STAGEFLOW_SMTP_USERNAME", "u"),
                    ("STAGEFLOW_SMTP_PASSWORD", "p"),
                ],
                "STAGEFLOW_SMTP_SECURITY",
            ),
            (
                &[host, from, ("STAGEFLOW_MAIL_DOMAIN", "a@b")],
                "STAGEFLOW_MAIL_DOMAIN",
            ),
            (
                &[host, from, ("STAGEFLOW_SMTP_TIMEOUT_SECONDS", "0")],
                "STAGEFLOW_SMTP_TIMEOUT_SECONDS",
            ),
        ];
        for (vars, variable) in cases {
            assert_eq!(config(vars).unwrap_err().variable, *variable, "{vars:?}");
        }
    }
}
