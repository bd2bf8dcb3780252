//! A metric family over an open label set (refusal reasons: the codec names its own), listed
//! in the order of its label values.
//!
//! prometheus-client's [`Family`](prometheus_client::metrics::family::Family) lists its series
//! in hash order, which changes from one process to the next; the exposition has always
//! listed refusals by reason, sorted, and readers compare them in that order. [`Sorted`] is
//! the same shape on a `BTreeMap`: a counted value takes a read lock and a lookup (a write
//! lock the first time it is seen), never an allocation (values are `&'static str`).

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// One metric per value of the label `label`, made when the value is first seen, listed by
/// value. Cloning shares the series.
#[derive(Debug, Clone)]
pub(crate) struct Sorted<M> {
    label: &'static str,
    series: Arc<RwLock<BTreeMap<&'static str, M>>>,
}

impl<M: Default + Clone> Sorted<M> {
    /// No series yet; each will be labelled `label`.
    pub(crate) fn new(label: &'static str) -> Self {
        Self {
            label,
            series: Arc::default(),
        }
    }

    /// Runs `f` on the series of `value`, made (from zero) if it is the first time.
    pub(crate) fn with<T>(&self, value: &'static str, f: impl FnOnce(&M) -> T) -> T {
        if let Some(m) = self
            .series
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(value)
        {
            return f(m);
        }
        let mut series = self.series.write().unwrap_or_else(PoisonError::into_inner);
        f(series.entry(value).or_default())
    }
}

impl<M: EncodeMetric + TypedMetric> EncodeMetric for Sorted<M> {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let series = self.series.read().unwrap_or_else(PoisonError::into_inner);
        for (value, metric) in series.iter() {
            metric.encode(encoder.encode_family(&[(self.label, *value)])?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        M::TYPE
    }

    /// No `# HELP`/`# TYPE` before a first series, as prometheus-client's `Family`.
    fn is_empty(&self) -> bool {
        self.series
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }
}
