//! Warm instances, opted into with an app annotation (wadm ignores annotations, so the
//! manifest stays one wadm accepts):
//!
//! ```yaml
//! metadata:
//!   annotations:
//!     trellis.dev/warm.hello: "true"                        # component `hello`
//!     trellis.dev/warm.api: "max-requests=500, idle=30s"    # on, with its own limits
//!     trellis.dev/warm: "true"                              # every component of the app
//! ```
//!
//! A WASI 0.2 HTTP component's instances then serve one request after another instead of a
//! fresh instance each; a WASI 0.3 component's instances are always reused, and these
//! settings tune how. The per-component key wins over the app-wide one; `false` turns warm
//! instances off; what a value does not set comes from the host's flags. Validation checks
//! every such annotation ([`WarmSetting::parse`]) and that it names a component.

use std::time::Duration;

/// The app-wide annotation (and the one a host's `component.scale` carries).
pub const WARM_ANNOTATION: &str = "trellis.dev/warm";

/// What an annotation asks for, when it turns warm instances on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WarmSetting {
    /// Requests one instance serves before it is retired; the host's default when `None`.
    pub max_requests: Option<usize>,
    /// How long an idle instance is kept; the host's default when `None`.
    pub idle: Option<Duration>,
}

impl WarmSetting {
    /// Reads an annotation's value: `Some` when it turns warm instances on (`true`, or
    /// settings such as `max-requests=500, idle=30s`), `None` for `false`.
    pub fn parse(value: &str) -> Result<Option<Self>, String> {
        match value.trim() {
            "true" | "on" | "yes" => return Ok(Some(Self::default())),
            "false" | "off" | "no" => return Ok(None),
            _ => {}
        }
        let mut setting = Self::default();
        for part in value.split(',').map(str::trim) {
            let Some((name, v)) = part.split_once('=') else {
                return Err(format!(
                    "`{part}` is neither `true`, `false` nor `name=value`"
                ));
            };
            let v = v.trim();
            match name.trim() {
                "max-requests" => {
                    setting.max_requests =
                        Some(v.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                            format!("max-requests `{v}` is not a positive number")
                        })?);
                }
                "idle" => setting.idle = Some(duration(v)?),
                other => {
                    return Err(format!(
                        "unknown setting `{other}` (known: max-requests, idle)"
                    ));
                }
            }
        }
        Ok(Some(setting))
    }
}

/// The annotation that sets warm instances for component `name`.
pub fn component_key(name: &str) -> String {
    format!("{WARM_ANNOTATION}.{name}")
}

/// The value that applies to component `name` among `annotations`, with its key: the
/// component's own, else the app-wide one.
pub fn lookup<'a>(
    annotations: &'a std::collections::BTreeMap<String, String>,
    name: &str,
) -> Option<(String, &'a String)> {
    let key = component_key(name);
    match annotations.get(&key) {
        Some(v) => Some((key, v)),
        None => annotations
            .get(WARM_ANNOTATION)
            .map(|v| (WARM_ANNOTATION.to_owned(), v)),
    }
}

/// The hint every refused value gets.
pub const HINT: &str = "write `true`, `false`, or settings such as `max-requests=500, idle=30s`";

/// `500ms`, `30s`, `2m`.
fn duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let bad = || format!("idle `{s}` is not a duration such as 30s or 500ms");
    let n: u64 = digits.parse().map_err(|_| bad())?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n.saturating_mul(60))),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_on_off_and_settings() {
        assert_eq!(WarmSetting::parse("true"), Ok(Some(WarmSetting::default())));
        assert_eq!(WarmSetting::parse(" false "), Ok(None));
        assert_eq!(
            WarmSetting::parse("max-requests=5, idle=250ms"),
            Ok(Some(WarmSetting {
                max_requests: Some(5),
                idle: Some(Duration::from_millis(250)),
            }))
        );
        assert_eq!(
            WarmSetting::parse("idle=2m"),
            Ok(Some(WarmSetting {
                max_requests: None,
                idle: Some(Duration::from_secs(120)),
            }))
        );
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        for value in [
            "maybe",
            "",
            "max-requests=0",
            "max-requests=lots",
            "idle=soon",
            "speed=9",
        ] {
            assert!(WarmSetting::parse(value).is_err(), "{value}");
        }
    }
}
