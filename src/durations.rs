//! How every command shows a duration to people. Two kinds, one function
//! each: a [`length`] (a validity, a TTL, a renewal window) as a plan writes
//! it and as kubeadm's and Kubernetes' duration flags take it (`8760h`,
//! `90m`, `90s`), and the time [`remaining`] until an instant as `kubeadm
//! certs check-expiration` shows it (`9y`, `364d`, `5h`, `12m`, `expired`).
//!
//! Reading what people write is `model::values::parse_duration`; a flag value
//! with a format of its own (`--cluster-signing-duration`) is written where
//! the flag is built, not here.

use std::time::Duration;

/// A length as a plan writes it: whole hours (`8760h`), else whole minutes
/// (`90m`), else seconds (`90s`, `1.5s`).
#[must_use]
pub fn length(duration: Duration) -> String {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    let seconds = duration.as_secs();
    let nanos = duration.subsec_nanos();
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        return format!("{seconds}.{}s", fraction.trim_end_matches('0'));
    }
    match seconds {
        0 => "0s".to_string(),
        s if s.is_multiple_of(HOUR) => format!("{}h", s / HOUR),
        s if s.is_multiple_of(MINUTE) => format!("{}m", s / MINUTE),
        s => format!("{s}s"),
    }
}

/// The time left until an instant, as `kubeadm certs check-expiration` shows
/// it: years from two years on (`9y`), else days from two days on (`364d`),
/// else hours from two hours on (`5h`), else minutes (`12m`); `expired` once
/// it is negative.
#[must_use]
pub fn remaining(left: time::Duration) -> String {
    const MINUTE: i64 = 60;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    const YEAR: i64 = 365 * DAY;
    match left.whole_seconds() {
        s if s < 0 => "expired".to_string(),
        s if s >= 2 * YEAR => format!("{}y", s / YEAR),
        s if s >= 2 * DAY => format!("{}d", s / DAY),
        s if s >= 2 * HOUR => format!("{}h", s / HOUR),
        s => format!("{}m", s / MINUTE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_read_like_the_plan() {
        assert_eq!(length(Duration::from_hours(8760)), "8760h");
        assert_eq!(length(Duration::from_hours(87600)), "87600h");
        assert_eq!(length(Duration::from_hours(720)), "720h");
        assert_eq!(length(Duration::from_mins(90)), "90m");
        assert_eq!(length(Duration::from_secs(90)), "90s");
        assert_eq!(length(Duration::from_millis(1500)), "1.5s");
        assert_eq!(length(Duration::from_nanos(1)), "0.000000001s");
        assert_eq!(length(Duration::ZERO), "0s");
    }

    #[test]
    fn remaining_reads_like_kubeadm() {
        assert_eq!(remaining(time::Duration::days(10 * 365)), "10y");
        assert_eq!(remaining(time::Duration::days(730)), "2y");
        assert_eq!(remaining(time::Duration::days(729)), "729d");
        assert_eq!(remaining(time::Duration::seconds(364 * 86_400 + 5)), "364d");
        assert_eq!(remaining(time::Duration::hours(30)), "30h");
        assert_eq!(remaining(time::Duration::hours(5)), "5h");
        assert_eq!(remaining(time::Duration::seconds(90)), "1m");
        assert_eq!(remaining(time::Duration::ZERO), "0m");
        assert_eq!(remaining(time::Duration::seconds(-1)), "expired");
    }
}
