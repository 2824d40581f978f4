//! Times and sizes written the way Docker's CLI writes them (go-units).

use std::time::SystemTime;

/// `%.*g` as Go prints it: `prec` significant digits, trailing zeros dropped.
fn go_g(v: f64, prec: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let exp = v.abs().log10().floor() as i32;
    let decimals = (prec as i32 - 1 - exp).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A byte count in decimal units with `prec` significant digits: `1.98MB`, `0B`.
pub fn size(n: u64, prec: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", go_g(v, prec), UNITS[i])
}

/// go-units' `HumanDuration`.
fn duration(secs: u64) -> String {
    let minutes = secs / 60;
    let hours = (secs as f64 / 3600.0 + 0.5) as u64;
    match secs {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", secs / 3600 / 24 / 365),
    }
}

/// `2 hours ago`, as `docker images` shows CREATED; `N/A` when unknown.
pub fn since(created: Option<&str>, now: SystemTime) -> String {
    let Some(t) = created.and_then(|c| humantime::parse_rfc3339_weak(c).ok()) else {
        return "N/A".into();
    };
    let secs = now.duration_since(t).map(|d| d.as_secs()).unwrap_or(0);
    format!("{} ago", duration(secs))
}

/// `2026-11-25 13:51:08 +0000 UTC`, as Docker prints CreatedAt.
pub fn created_at(created: Option<&str>) -> String {
    let Some(t) = created.and_then(|c| humantime::parse_rfc3339_weak(c).ok()) else {
        return String::new();
    };
    let s = humantime::format_rfc3339_seconds(t).to_string();
    format!(
        "{} +0000 UTC",
        s.trim_end_matches('Z').replacen('T', " ", 1)
    )
}

/// `s` cut to `max` characters with a trailing `…`, as Docker's history does.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_go_units() {
        assert_eq!(size(0, 3), "0B");
        assert_eq!(size(3, 3), "3B");
        assert_eq!(size(1_984_000, 3), "1.98MB");
        assert_eq!(size(1_984_000, 4), "1.984MB");
        assert_eq!(size(123_456, 3), "123kB");
        assert_eq!(size(100_000, 3), "100kB");
        assert_eq!(size(1_000, 3), "1kB");
    }

    #[test]
    fn durations_like_go_units() {
        assert_eq!(duration(0), "Less than a second");
        assert_eq!(duration(36), "36 seconds");
        assert_eq!(duration(70), "About a minute");
        assert_eq!(duration(8 * 60), "8 minutes");
        assert_eq!(duration(3600), "About an hour");
        assert_eq!(duration(5 * 3600), "5 hours");
        assert_eq!(duration(3 * 86400), "3 days");
        assert_eq!(
            created_at(Some("2026-11-25T13:51:08.9Z")),
            "2026-11-25 13:51:08 +0000 UTC"
        );
        assert_eq!(ellipsis("abcdef", 4), "abc…");
    }
}
