//! Sizes (`256MiB`) and durations (`30s`) in flags: parsed from what people write, and
//! shown the same way, so a flag's default in `--help` is the library's own default value
//! (see `LimitArgs`) rather than a second copy of it.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A byte size as a flag takes it: `256MiB`, `8k`, `1024`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// A size given in bytes as `usize`.
    pub fn of(bytes: usize) -> Self {
        Self(bytes as u64)
    }
}

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_bytes(s).map(Self)
    }
}

impl fmt::Display for ByteSize {
    /// The largest binary unit that divides the size exactly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
            if n != 0 && n.is_multiple_of(1 << shift) {
                return write!(f, "{}{unit}", n >> shift);
            }
        }
        write!(f, "{n}B")
    }
}

/// A duration as a flag takes it: `30s`, `500ms`, `2m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub Duration);

impl FromStr for Span {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_duration(s).map(Self)
    }
}

impl fmt::Display for Span {
    /// The largest unit that divides the duration exactly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        for (per, unit) in [(3_600_000, "h"), (60_000, "m"), (1000, "s")] {
            if ms != 0 && ms.is_multiple_of(per) {
                return write!(f, "{}{unit}", ms / per);
            }
        }
        write!(f, "{ms}ms")
    }
}

/// Parses a byte size: a number with an optional unit `B`, `K`/`KB`/`KiB`, `M`/`MB`/`MiB`,
/// `G`/`GB`/`GiB` (all binary multiples).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        format!("`{s}` is not a size; use a number with an optional unit, e.g. 256MiB")
    })?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{s}`; use B, KiB, MiB or GiB"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// Parses a duration: a number with a unit `ms`, `s`, `m`, `h` or `d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        format!("`{s}` is not a duration; use a number with a unit, e.g. 30s or 500ms")
    })?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        "d" => Ok(Duration::from_secs(n.saturating_mul(86_400))),
        "" => Err(format!("`{s}` has no unit; write e.g. {n}s or {n}ms")),
        other => Err(format!(
            "unknown duration unit `{other}` in `{s}`; use ms, s, m, h or d"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("1024"), Ok(1024));
        assert_eq!(parse_bytes("256MiB"), Ok(256 << 20));
        assert_eq!(parse_bytes("8k"), Ok(8 << 10));
        assert!(
            parse_bytes("12parsecs")
                .expect_err("must fail")
                .contains("unknown size unit")
        );
        assert!(
            parse_bytes("lots")
                .expect_err("must fail")
                .contains("not a size")
        );
    }

    #[test]
    fn sizes_and_durations_print_as_they_parse() {
        for text in ["256MiB", "512KiB", "1GiB", "1000B", "10MiB"] {
            assert_eq!(text.parse::<ByteSize>().expect(text).to_string(), text);
        }
        for text in ["30s", "500ms", "2m", "1h", "1500ms"] {
            assert_eq!(text.parse::<Span>().expect(text).to_string(), text);
        }
        assert_eq!(ByteSize(0).to_string(), "0B");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(
            parse_duration("30")
                .expect_err("must fail")
                .contains("no unit")
        );
        assert!(
            parse_duration("3 days")
                .expect_err("must fail")
                .contains("unknown duration unit")
        );
    }
}
