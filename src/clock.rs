//! Time as this tool shows and records it: Unix seconds, UTC timestamps, short durations.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the epoch.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `2026-11-23T10:15:12Z` for a Unix time (UTC, proleptic Gregorian).
pub fn format_utc(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `3m 04s`, `1.2s`, `85ms`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m {:02}s", ms / 60_000, ms % 60_000 / 1000)
    }
}

/// How long ago `then` was (a file's modification time), or `None` when it is in the future (a
/// skewed clock, a file copied from another machine): such a time tells nothing of an age, and a
/// cache treats its copy as expired rather than fresh until that moment comes.
pub fn age_of(then: SystemTime) -> Option<Duration> {
    SystemTime::now().duration_since(then).ok()
}

/// `fetched 3m ago`, or, for a time in the future (`None`), `dated in the future (…)`.
pub fn describe_age(age: Option<Duration>) -> String {
    match age {
        Some(age) => format!("fetched {} ago", format_age(age.as_secs())),
        None => "dated in the future (a skewed clock or a copied file)".into(),
    }
}

/// `5s`, `3m`, `2h`, `4d`: an age in seconds, in its largest whole unit.
pub fn format_age(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{format_duration, format_utc};

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_duration(Duration::from_millis(85)), "85ms");
        assert_eq!(format_duration(Duration::from_millis(64_200)), "1m 04s");
    }
}
