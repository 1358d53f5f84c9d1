//! Scraping a host's `--metrics` listener.

use super::{Trellis, get};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// The address in the `metrics on http://ADDR/metrics` line of `trellis up`.
pub fn metrics_addr(trellis: &Trellis) -> SocketAddr {
    trellis
        .stdout
        .iter()
        .find_map(|l| l.strip_prefix("metrics on http://"))
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("no metrics line in {:?}", trellis.stdout))
        .parse()
        .expect("metrics address")
}

/// Every sample of the exposition, `name{labels}` → value, and the names of the metric
/// families (`# TYPE` lines).
pub struct Scrape {
    pub samples: BTreeMap<String, f64>,
    pub families: Vec<String>,
    pub text: String,
}

pub fn scrape_metrics(addr: SocketAddr) -> Scrape {
    let response = get(addr, "/metrics");
    assert_eq!(response.status, 200, "{}", response.body);
    let content_type = response
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(
        response.body.trim_end().ends_with("# EOF"),
        "{}",
        response.body
    );
    let mut samples = BTreeMap::new();
    let mut families = Vec::new();
    for line in response.body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            families.push(rest.split(' ').next().unwrap_or_default().to_owned());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        samples.insert(series.to_owned(), value.parse().expect("sample value"));
    }
    Scrape {
        samples,
        families,
        text: response.body,
    }
}

impl Scrape {
    /// The value of the one sample of `name` whose labels include every `labels` pair.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let matching: Vec<f64> = self
            .samples
            .iter()
            .filter(|(series, _)| {
                series.starts_with(&format!("{name}{{"))
                    && labels
                        .iter()
                        .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
            })
            .map(|(_, v)| *v)
            .collect();
        assert!(
            matching.len() <= 1,
            "{name} {labels:?} matches several series:\n{}",
            self.text
        );
        matching.first().copied()
    }

    /// The sum of every sample of `name` whose labels include every `labels` pair.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(series, _)| {
                series.starts_with(&format!("{name}{{"))
                    && labels
                        .iter()
                        .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
            })
            .map(|(_, v)| *v)
            .sum()
    }

    /// The operations of `capability` counted as `operation` with `outcome` (`ok`/`error`).
    pub fn operations(&self, capability: &str, operation: &str, outcome: &str) -> f64 {
        self.sum(
            "trellis_provider_operations_total",
            &[
                ("capability", capability),
                ("operation", operation),
                ("outcome", outcome),
            ],
        )
    }

    pub fn expect(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{}", self.text))
    }
}
