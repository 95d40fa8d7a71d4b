//! Metrics a test can read: a Prometheus recorder installed for the test's thread only
//! (`metrics::set_default_local_recorder`), so tests running in parallel do not see each
//! other's counts. Actors started in an `#[actix_rt::test]` run on that thread.

use metrics::LocalRecorderGuard;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

/// What this thread records while it lives.
pub(crate) struct TestMetrics {
    handle: PrometheusHandle,
    _guard: LocalRecorderGuard<'static>,
}

impl std::fmt::Debug for TestMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestMetrics").finish_non_exhaustive()
    }
}

impl TestMetrics {
    /// Record this thread's metrics from now on.
    pub(crate) fn install() -> Self {
        // One small recorder per test, kept for the process (the guard borrows it).
        let recorder: &'static PrometheusRecorder =
            Box::leak(Box::new(PrometheusBuilder::new().build_recorder()));
        TestMetrics {
            handle: recorder.handle(),
            _guard: metrics::set_default_local_recorder(recorder),
        }
    }

    /// The value of `name` with exactly these labels (in any order), 0 if never recorded.
    pub(crate) fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        wanted.sort();
        self.handle
            .render()
            .lines()
            .filter(|line| !line.starts_with('#'))
            .find_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let (metric, rest) = match series.split_once('{') {
                    Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
                    None => (series, ""),
                };
                let mut have: Vec<String> = if rest.is_empty() {
                    Vec::new()
                } else {
                    rest.split(',').map(str::to_owned).collect()
                };
                have.sort();
                (metric == name && have == wanted).then(|| value.parse().ok())?
            })
            .unwrap_or(0.0)
    }
}
