//! The `STAGEFLOW_SMTP_*` (and `STAGEFLOW_MAIL_FROM`) settings of outgoing mail (`crate::mailer`, docs/mail.md).

use std::time::Duration;

use super::{ConfigError, bounded};
use crate::mailer::{SmtpSecurity, SmtpSettings, mailbox_domain};

/// The server, security and credentials of `STAGEFLOW_SMTP_URL`, as the separate settings
/// they stand for: `smtp://[user:password@]host[:port][?tls=required|none]` (no TLS unless
/// `tls=required`, which is STARTTLS; port 25, or 587 with STARTTLS) or
/// `smtps://[user:password@]host[:port]` (TLS from the first byte; port 465) — lettre's URL
/// convention. User and password are percent-decoded.
fn url_settings(raw: &str) -> Result<Vec<(&'static str, String)>, ConfigError> {
    let bad = |m: &str| ConfigError::new("STAGEFLOW_SMTP_URL", m.to_owned());
    let url = url::Url::parse(raw.trim()).map_err(|e| bad(&format!("not a URL: {e}")))?;
    let mut tls = None;
    for (key, value) in url.query_pairs() {
        match (key.as_ref(), value.as_ref()) {
            ("tls", "required") => tls = Some(SmtpSecurity::StartTls),
            ("tls", "none") => tls = Some(SmtpSecurity::None),
            _ => return Err(bad("the only query parameter is tls=required or tls=none")),
        }
    }
    let (security, port) = match (url.scheme(), tls) {
        ("smtps", None) => (SmtpSecurity::Tls, 465),
        ("smtp", Some(SmtpSecurity::StartTls)) => (SmtpSecurity::StartTls, 587),
        ("smtp", None | Some(SmtpSecurity::None)) => (SmtpSecurity::None, 25),
        _ => {
            return Err(bad(
                "must be smtp://host[:port][?tls=required] or smtps://host[:port]",
            ));
        }
    };
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("names no host"))?;
    if !matches!(url.path(), "" | "/") || url.fragment().is_some() {
        return Err(bad("takes no path or fragment"));
    }
    let decode = |part: &str| {
        url::form_urlencoded::parse(format!("v={part}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let mut settings = vec![
        (
            "STAGEFLOW_SMTP_HOST",
            host.trim_matches(['[', ']']).to_owned(),
        ),
        (
            "STAGEFLOW_SMTP_PORT",
            url.port().unwrap_or(port).to_string(),
        ),
        ("STAGEFLOW_SMTP_SECURITY", security.as_str().to_owned()),
    ];
    if !url.username().is_empty() {
        settings.push(("STAGEFLOW_SMTP_USERNAME", decode(url.username())));
    }
    if let Some(password) = url.password() {
        settings.push(("STAGEFLOW_SMTP_PASSWORD", decode(password)));
    }
    Ok(settings)
}

/// `None` when neither `STAGEFLOW_SMTP_URL` nor `STAGEFLOW_SMTP_HOST` is set: no mail goes
/// out. The URL stands for the host, port, security and credential settings (setting both is
/// refused); `STAGEFLOW_MAIL_FROM` is another name of `STAGEFLOW_SMTP_FROM`.
pub(super) fn smtp_settings(
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<SmtpSettings>, ConfigError> {
    let from_url = match lookup("STAGEFLOW_SMTP_URL") {
        Some(raw) => {
            let taken = [
                "STAGEFLOW_SMTP_HOST",
                "STAGEFLOW_SMTP_PORT",
                "STAGEFLOW_SMTP_SECURITY",
            ]
            .into_iter()
            .chain(["STAGEFLOW_SMTP_USERNAME", "STAGEFLOW_SMTP_PASSWORD"])
            .find(|name| lookup(name).is_some());
            if let Some(name) = taken {
                return Err(ConfigError::new(
                    "STAGEFLOW_SMTP_URL",
                    format!("is set together with {name}: use one or the other"),
                ));
            }
            url_settings(&raw)?
        }
        None => Vec::new(),
    };
    let mail_from = lookup("STAGEFLOW_MAIL_FROM");
    if let (Some(a), Some(b)) = (&mail_from, lookup("STAGEFLOW_SMTP_FROM"))
        && a.trim() != b.trim()
    {
        return Err(ConfigError::new(
            "STAGEFLOW_MAIL_FROM",
            "differs from STAGEFLOW_SMTP_FROM: set one of them",
        ));
    }
    let get = |name: &str| -> Option<String> {
        if let Some((_, value)) = from_url.iter().find(|(n, _)| *n == name) {
            return Some(value.clone());
        }
        match name {
            "STAGEFLOW_SMTP_FROM" => lookup(name).or_else(|| mail_from.clone()),
            _ => lookup(name),
        }
    };
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

/// `STAGEFLOW_ALERT_EMAIL`: comma-separated addresses the operator's failure mail goes to.
pub(super) fn alert_addresses(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ConfigError> {
    let Some(raw) = get("STAGEFLOW_ALERT_EMAIL") else {
        return Ok(Vec::new());
    };
    let mut addresses = Vec::new();
    for part in raw.split(',').filter(|p| !p.trim().is_empty()) {
        let address = crate::domain::mail_channel::normalize_address(part).ok_or_else(|| {
            ConfigError::new(
                "STAGEFLOW_ALERT_EMAIL",
                format!("{:?} is not a mail address", part.trim()),
            )
        })?;
        if !addresses.contains(&address) {
            addresses.push(address);
        }
    }
    if addresses.len() > 20 {
        return Err(ConfigError::new(
            "STAGEFLOW_ALERT_EMAIL",
            "at most 20 addresses",
        ));
    }
    Ok(addresses)
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
    fn the_url_stands_for_server_security_and_credentials() {
        let from = ("STAGEFLOW_MAIL_FROM", "Stageflow <noreply@example.jp>");
        let plain = config(&[("STAGEFLOW_SMTP_URL", "smtp://127.0.0.1:2525"), from])
            .unwrap()
            .smtp
            .unwrap();
        assert_eq!(
            (plain.host.as_str(), plain.port, plain.security),
            ("127.0.0.1", 2525, SmtpSecurity::None)
        );
        assert_eq!(plain.from, "Stageflow <noreply@example.jp>");
        let submission = config(&[
            (
                "STAGEFLOW_SMTP_URL",
                "smtp://desk%40example.jp:p%40ss@smtp.example.jp?tls=required",
            ),
            from,
        ])
        .unwrap()
        .smtp
        .unwrap();
        assert_eq!(submission.port, 587);
        assert_eq!(submission.security, SmtpSecurity::StartTls);
        assert_eq!(submission.username.as_deref(), Some("desk@example.jp"));
        assert_eq!(submission.password.as_deref(), Some("p@ss"));
        let tls = config(&[("STAGEFLOW_SMTP_URL", "smtps://smtp.example.jp"), from])
            .unwrap()
            .smtp
            .unwrap();
        assert_eq!((tls.port, tls.security), (465, SmtpSecurity::Tls));
        for (vars, variable) in [
            (
                vec![("STAGEFLOW_SMTP_URL", "http://smtp.example.jp"), from],
                "STAGEFLOW_SMTP_URL",
            ),
            (
                vec![("STAGEFLOW_SMTP_URL", "smtp://h.example?tls=maybe"), from],
                "STAGEFLOW_SMTP_URL",
            ),
            (
                vec![
                    ("STAGEFLOW_SMTP_URL", "smtp://h.example"),
                    ("STAGEFLOW_SMTP_HOST", "x"),
                    from,
                ],
                "STAGEFLOW_SMTP_URL",
            ),
            // Credentials in clear are refused as with the separate settings.
            (
                vec![("STAGEFLOW_SMTP_URL", "smtp://u:p@h.example"), from],
                "STAGEFLOW_SMTP_SECURITY",
            ),
            (
                vec![
                    ("STAGEFLOW_SMTP_URL", "smtp://h.example"),
                    from,
                    ("STAGEFLOW_SMTP_FROM", "x@y.example"),
                ],
                "STAGEFLOW_MAIL_FROM",
            ),
        ] {
            assert_eq!(config(&vars).unwrap_err().variable, variable, "{vars:?}");
        }
    }

    #[test]
    fn alert_addresses_are_a_checked_list() {
        let set = config(&[(
            "STAGEFLOW_ALERT_EMAIL",
            " Ops@Example.jp, oncall@example.jp,ops@example.jp ",
        )])
        .unwrap();
        assert_eq!(set.alert_to, ["ops@example.jp", "oncall@example.jp"]);
        assert!(config(&[]).unwrap().alert_to.is_empty());
        assert_eq!(
            config(&[("STAGEFLOW_ALERT_EMAIL", "ops@example.jp, nope")])
                .unwrap_err()
                .variable,
            "STAGEFLOW_ALERT_EMAIL"
        );
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
