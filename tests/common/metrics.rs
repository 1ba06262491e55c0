//! Reading `/metrics` the way Prometheus does: the text is parsed by a Prometheus
//! exposition parser (`prometheus-parse`), so a test asserts on samples, not on
//! substrings that would also match a neighbouring series.

use std::collections::BTreeMap;

use prometheus_parse::{Sample, Scrape, Value};

/// Parses a `/metrics` text; panics (the test fails) when Prometheus could not read it.
pub fn parse(text: &str) -> Scrape {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    Scrape::parse(lines).unwrap_or_else(|e| panic!("unparsable exposition: {e}\n{text}"))
}

/// GETs `url` (a `/metrics` address) and parses it.
pub fn scrape(url: &str) -> Scrape {
    super::install_crypto();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let text = rt
        .block_on(async { reqwest::get(url).await?.error_for_status()?.text().await })
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    parse(&text)
}

/// The samples of `name` whose labels include every pair of `labels`.
pub fn samples<'a>(
    scrape: &'a Scrape,
    name: &'a str,
    labels: &'a [(&'a str, &'a str)],
) -> impl Iterator<Item = &'a Sample> + 'a {
    scrape.samples.iter().filter(move |s| {
        s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
    })
}

/// The value of the one counter, gauge or untyped sample `name{labels}`; `None` when
/// there is none.
pub fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples(scrape, name, labels).find_map(|s| match s.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
        _ => None,
    })
}

/// Every label set of `name`, for assertions on which series exist.
pub fn label_sets(scrape: &Scrape, name: &str) -> Vec<BTreeMap<String, String>> {
    samples(scrape, name, &[])
        .map(|s| {
            s.labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .collect()
}

/// The observation count of histogram `name{labels}` (its `_count` sample).
pub fn histogram_count(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    value(scrape, &format!("{name}_count"), labels)
}

/// Every metric family name in the scrape (a histogram's under its base name, as
/// Prometheus names it in `# TYPE`, and also as its `_count` and `_sum` series).
pub fn names(scrape: &Scrape) -> std::collections::BTreeSet<String> {
    scrape.samples.iter().map(|s| s.metric.clone()).collect()
}
