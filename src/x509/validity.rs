//! Validity periods. Both ends are inclusive, so NotAfter = NotBefore + duration − 1 s;
//! UTCTime through 2049 and GeneralizedTime from 2050, whole seconds, always Z.

use std::str::FromStr;
use std::time::Duration;

use der::DateTime;
use der::asn1::{GeneralizedTime, UtcTime};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time as TimeOfDay, UtcOffset};
use x509_cert::time::{Time, Validity};

use super::error::{Result, X509Error};

/// A requested lifetime such as `20y`, `5y`, `90d`, `12h`, `30m` or `3600s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// Calendar years (Feb 29 falls back to Feb 28).
    Years(u32),
    /// Days of 86 400 s.
    Days(u32),
    /// Hours.
    Hours(u32),
    /// Minutes.
    Minutes(u32),
    /// Seconds.
    Seconds(u32),
}

impl FromStr for Lifetime {
    type Err = X509Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            X509Error::refused(
                format!("invalid duration \"{s}\""),
                "write a whole number and a unit: 20y, 5y, 90d, 12h, 30m or 3600s",
            )
        };
        let unit = s.chars().last().ok_or_else(bad)?;
        let n: u32 = s[..s.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
        if n == 0 {
            return Err(bad());
        }
        Ok(match unit {
            'y' => Lifetime::Years(n),
            'd' => Lifetime::Days(n),
            'h' => Lifetime::Hours(n),
            'm' => Lifetime::Minutes(n),
            's' => Lifetime::Seconds(n),
            _ => return Err(bad()),
        })
    }
}

/// A validity period in whole UTC seconds, both ends inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidityPeriod {
    /// First second of validity.
    pub not_before: OffsetDateTime,
    /// Last second of validity.
    pub not_after: OffsetDateTime,
}

/// Parses an RFC 3339 time, or a bare date (start or end of that UTC day).
pub fn parse_time(s: &str, end_of_day: bool) -> Result<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t.to_offset(UtcOffset::UTC));
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = Date::parse(s, &format).map_err(|_| {
        X509Error::refused(
            format!("invalid date \"{s}\""),
            "write an RFC 3339 time such as 2026-12-01T00:00:00Z, or a date such as 2026-12-01",
        )
    })?;
    let tod = if end_of_day {
        TimeOfDay::from_hms(23, 59, 59).unwrap_or(TimeOfDay::MIDNIGHT)
    } else {
        TimeOfDay::MIDNIGHT
    };
    Ok(PrimitiveDateTime::new(date, tod).assume_utc())
}

impl ValidityPeriod {
    /// Starts at `not_before` (truncated to the second) and lasts `lifetime`, both ends inclusive.
    pub fn starting(not_before: OffsetDateTime, lifetime: Lifetime) -> Result<Self> {
        let nb = not_before
            .to_offset(UtcOffset::UTC)
            .replace_nanosecond(0)
            .map_err(|e| X509Error::internal(e.to_string()))?;
        let overflow = || {
            X509Error::refused(
                "the validity period runs past the year 9999",
                "choose a shorter --validity",
            )
        };
        let end = match lifetime {
            Lifetime::Years(y) => {
                let year = i32::try_from(y)
                    .ok()
                    .and_then(|y| nb.year().checked_add(y))
                    .ok_or_else(overflow)?;
                let date = Date::from_calendar_date(year, nb.month(), nb.day())
                    .or_else(|_| Date::from_calendar_date(year, nb.month(), nb.day() - 1))
                    .map_err(|_| overflow())?;
                nb.replace_date(date)
            }
            Lifetime::Days(d) => nb
                .checked_add(time::Duration::days(d.into()))
                .ok_or_else(overflow)?,
            Lifetime::Hours(h) => nb
                .checked_add(time::Duration::hours(h.into()))
                .ok_or_else(overflow)?,
            Lifetime::Minutes(m) => nb
                .checked_add(time::Duration::minutes(m.into()))
                .ok_or_else(overflow)?,
            Lifetime::Seconds(s) => nb
                .checked_add(time::Duration::seconds(s.into()))
                .ok_or_else(overflow)?,
        };
        Self::between(nb, end - time::Duration::SECOND)
    }

    /// From two explicit instants, both inclusive.
    pub fn between(not_before: OffsetDateTime, not_after: OffsetDateTime) -> Result<Self> {
        if not_after <= not_before {
            return Err(X509Error::refused(
                format!(
                    "NotAfter {} is not after NotBefore {}",
                    fmt(not_after),
                    fmt(not_before)
                ),
                "check --not-before/--not-after or --validity",
            ));
        }
        if not_after.year() > 9999 || not_before.year() < 1970 {
            return Err(X509Error::refused(
                "the validity period is outside 1970..9999",
                "choose dates within that range",
            ));
        }
        Ok(ValidityPeriod {
            not_before,
            not_after,
        })
    }

    /// The X.509 encoding: UTCTime through 2049, GeneralizedTime from 2050.
    pub fn to_x509(&self) -> Result<Validity> {
        Ok(Validity::new(
            to_x509_time(self.not_before)?,
            to_x509_time(self.not_after)?,
        ))
    }

    /// Fails unless this period lies within `issuer` (both ends): nothing is clamped silently.
    pub fn check_within(&self, issuer: &Validity) -> Result<()> {
        let inb = from_x509_time(&issuer.not_before)?;
        let ina = from_x509_time(&issuer.not_after)?;
        if self.not_after > ina {
            return Err(X509Error::refused(
                format!(
                    "the requested NotAfter {} is after the issuer's NotAfter {}",
                    fmt(self.not_after),
                    fmt(ina)
                ),
                "request a shorter --validity or an earlier --not-after; hsmca does not shorten it for you",
            ));
        }
        if self.not_before < inb {
            return Err(X509Error::refused(
                format!(
                    "the requested NotBefore {} is before the issuer's NotBefore {}",
                    fmt(self.not_before),
                    fmt(inb)
                ),
                "choose a --not-before within the issuer's validity",
            ));
        }
        Ok(())
    }
}

/// An X.509 time as an [`OffsetDateTime`].
pub fn from_x509_time(t: &Time) -> Result<OffsetDateTime> {
    let secs = t.to_unix_duration().as_secs();
    OffsetDateTime::from_unix_timestamp(secs as i64)
        .map_err(|e| X509Error::refused(format!("time out of range: {e}"), "check the certificate"))
}

/// Formats a UTC instant as RFC 3339 with Z.
pub fn fmt(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// An instant as X.509 Time: UTCTime through 2049, GeneralizedTime from 2050.
pub fn to_x509_time(t: OffsetDateTime) -> Result<Time> {
    let secs = u64::try_from(t.unix_timestamp())
        .map_err(|_| X509Error::refused("a time before 1970", "choose a later date"))?;
    let dt = DateTime::from_unix_duration(Duration::from_secs(secs)).map_err(|e| {
        X509Error::refused(format!("time out of range: {e}"), "choose another date")
    })?;
    let bad =
        |e: der::Error| X509Error::refused(format!("time encoding: {e}"), "choose another date");
    Ok(if dt.year() < 2050 {
        Time::UtcTime(UtcTime::from_date_time(dt).map_err(bad)?)
    } else {
        Time::GeneralTime(GeneralizedTime::from_date_time(dt))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn both_ends_inclusive() {
        let v = ValidityPeriod::starting(datetime!(2026-11-29 10:00:00.5 UTC), Lifetime::Days(90))
            .unwrap();
        assert_eq!(v.not_before, datetime!(2026-11-29 10:00:00 UTC));
        assert_eq!(v.not_after, datetime!(2027-02-27 09:59:59 UTC));
        let v =
            ValidityPeriod::starting(datetime!(2028-02-29 00:00 UTC), Lifetime::Years(1)).unwrap();
        assert_eq!(v.not_after, datetime!(2029-02-27 23:59:59 UTC));
    }

    #[test]
    fn utctime_until_2049_then_generalized() {
        let v = ValidityPeriod::starting(datetime!(2026-11-29 00:00 UTC), Lifetime::Years(30))
            .unwrap()
            .to_x509()
            .unwrap();
        assert!(matches!(v.not_before, Time::UtcTime(_)));
        assert!(matches!(v.not_after, Time::GeneralTime(_)));
        let v = ValidityPeriod::between(
            datetime!(2049-12-31 23:59:59 UTC),
            datetime!(2050-01-01 00:00:00 UTC),
        )
        .unwrap()
        .to_x509()
        .unwrap();
        assert!(matches!(v.not_before, Time::UtcTime(_)));
        assert!(matches!(v.not_after, Time::GeneralTime(_)));
    }

    #[test]
    fn parses_lifetimes_and_dates() {
        assert_eq!("20y".parse::<Lifetime>().unwrap(), Lifetime::Years(20));
        assert_eq!("90d".parse::<Lifetime>().unwrap(), Lifetime::Days(90));
        for bad in ["", "y", "0d", "5w", "-1d", "1.5y"] {
            assert!(bad.parse::<Lifetime>().is_err(), "{bad}");
        }
        assert_eq!(
            parse_time("2030-01-01", true).unwrap(),
            datetime!(2030-01-01 23:59:59 UTC)
        );
        assert_eq!(
            parse_time("2030-01-01T01:00:00+01:00", false).unwrap(),
            datetime!(2030-01-01 00:00:00 UTC)
        );
    }

    // Found by fuzz/fuzz_targets/validity.rs (input "9999-12-31", end of day, + 1 s, and
    // "2147483645y"); the CLI panics the same way on `--validity 4294967295d` or `--not-before
    // 9999-12-31T23:59:59Z --validity 1s`: OffsetDateTime + Duration panics past year 9999.
    #[test]
    fn lifetime_past_year_9999_is_refused_not_a_panic() {
        let last_day = parse_time("9999-12-31", true).unwrap();
        assert!(ValidityPeriod::starting(last_day, Lifetime::Seconds(1)).is_err());
        // u32::MAX seconds is 136 years: a valid (if unwise) period, not an overflow.
        assert!(
            ValidityPeriod::starting(
                datetime!(2026-11-29 00:00:00 UTC),
                Lifetime::Seconds(u32::MAX)
            )
            .is_ok()
        );
        let now = datetime!(2026-11-29 00:00:00 UTC);
        for lifetime in [
            Lifetime::Days(u32::MAX),
            Lifetime::Hours(u32::MAX),
            Lifetime::Minutes(u32::MAX),
            Lifetime::Years(u32::MAX),
            // i32 year + 2147483645 overflows (a panic in debug builds, a wrap in release).
            Lifetime::Years(2_147_483_645),
        ] {
            assert!(
                ValidityPeriod::starting(now, lifetime).is_err(),
                "{lifetime:?}"
            );
        }
    }
}
