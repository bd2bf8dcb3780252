//! A metric family over a closed label set, for the series whose labels are an enum.
//!
//! prometheus-client's [`Family`](prometheus_client::metrics::family::Family) keeps its series
//! in a hash map behind a lock and looks the label set up on every increment, and exposes them
//! in hash order. When every label set is known up front (`kind` of ingest, `channel` ×
//! `result` of alerts, ...) that is work for nothing: [`Fixed`] makes each series once, the
//! caller increments it by its index (one array index and one atomic add: no hash, no lock,
//! no allocation), and the exposition lists them in the order given, every one from zero.
//! The encoding itself is the library's ([`MetricEncoder::encode_family`]).

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// A label set of `K` fixed `(name, value)` pairs.
pub(crate) type Labels<const K: usize> = [(&'static str, &'static str); K];

/// `N` series of one metric, one per label set, in a fixed order. Cloning shares the series
/// (the metrics are handles on shared atomics), so the registry holds one clone and the
/// callers the other.
#[derive(Debug, Clone)]
pub(crate) struct Fixed<L, M, const N: usize> {
    series: [(L, M); N],
}

impl<L, M: Default, const N: usize> Fixed<L, M, N> {
    /// One series per label set, each from zero.
    pub(crate) fn new(labels: [L; N]) -> Self {
        Self {
            series: labels.map(|l| (l, M::default())),
        }
    }
}

impl<L, M, const N: usize> Fixed<L, M, N> {
    /// The series of the label set at `index` (in the order given to [`Fixed::new`]).
    ///
    /// # Panics
    /// If `index >= N`: callers index with an enum whose variants number `N`.
    pub(crate) fn at(&self, index: usize) -> &M {
        &self.series[index].1
    }

    /// Every series with its labels, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &(L, M)> {
        self.series.iter()
    }
}

impl<L, M, const N: usize> EncodeMetric for Fixed<L, M, N>
where
    L: EncodeLabelSet,
    M: EncodeMetric + TypedMetric,
{
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        for (labels, metric) in &self.series {
            metric.encode(encoder.encode_family(labels)?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        M::TYPE
    }
}
