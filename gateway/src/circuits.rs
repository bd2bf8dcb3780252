//! Leak tracing over a circuit tree: given the residual (leakage) current measured at the head
//! of a feeder and of some of its branches, where on the tree does the leak most likely sit?
//!
//! A residual-current monitor at the head of a circuit measures the leakage of everything
//! downstream of it: its own wiring and loads, and every branch below. So a circuit's
//! **unexplained** leakage is what its monitor measures minus what the monitors of its direct
//! branches measure — the leakage of its own segment (and of branches nobody measures). The
//! leak most likely sits where the unexplained leakage is largest: in a branch (its own
//! segment, when it has no measured sub-branch that explains it), or in the feeder's own
//! segment when the branches explain little of what the feeder sees.
//!
//! Residual currents add as phasors, not as numbers: leakage through insulation is mostly
//! resistive and in phase, so the sum is a good approximation, but the background leakage of
//! healthy wiring (tens of mA, partly capacitive) blurs it. Hence a floor (`min_ma`): below it
//! no leak is named, and the answer gives the evidence either way — every circuit with what it
//! measures, what its branches explain and what is left — so a person can judge it.
//!
//! Pure: the tree and the measurements in, the verdict out (`api/circuits.rs` reads them).
//! docs/utility.md has a worked example, which its test reproduces.

use std::collections::BTreeMap;

use serde::Serialize;

/// A circuit of the tree, with the mean residual current its monitor(s) measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Circuit {
    /// Its id.
    pub id: i64,
    /// The circuit it branches from (`None` for a feeder, or when the parent is outside the
    /// tree asked about).
    pub parent: Option<i64>,
    /// Its name.
    pub name: String,
    /// Mean residual current at its head over the window, mA; `None` when nothing measures it.
    pub residual_ma: Option<f64>,
}

/// What one measured circuit contributes to the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = TraceEvidence)]
pub struct Evidence {
    /// The circuit.
    pub circuit_id: i64,
    /// Its name.
    pub name: String,
    /// What its monitor measured, mA.
    pub measured_ma: f64,
    /// What the monitors of its direct branches measured together, mA.
    pub branches_ma: f64,
    /// `measured − branches` (not below 0): the leakage of its own segment and unmeasured
    /// branches, mA.
    pub unexplained_ma: f64,
    /// Its direct branches that nothing measures (their leakage is in `unexplained_ma`).
    pub unmeasured_branches: Vec<i64>,
}

/// Where the leak most likely is.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Suspect {
    /// The circuit whose own segment (or unmeasured branches) holds the leak.
    pub circuit_id: i64,
    /// Its name.
    pub name: String,
    /// `feeder_segment` when it is the circuit asked about (the leak is in its own wiring,
    /// upstream of its measured branches), `branch` otherwise.
    pub place: Place,
    /// Its unexplained leakage, mA.
    pub unexplained_ma: f64,
    /// That leakage's share of what the traced circuit measures (0–1).
    pub share: f64,
}

/// Which part of the tree a suspect is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    /// The traced circuit's own segment.
    FeederSegment,
    /// A branch below it.
    Branch,
}

/// The verdict and its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Trace {
    /// The circuit traced.
    pub circuit_id: i64,
    /// Where the leak most likely is; `None` when no circuit's unexplained leakage reaches the
    /// floor.
    pub suspect: Option<Suspect>,
    /// Every measured circuit of the subtree, the largest unexplained leakage first.
    pub evidence: Vec<Evidence>,
    /// The floor a suspect's unexplained leakage must reach, mA.
    pub min_ma: f64,
}

/// Why a trace cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceError {
    /// The circuit asked about is not in the tree.
    #[error("circuit {0} is not in the tree")]
    Unknown(i64),
    /// Nothing measures it.
    #[error(
        "nothing measures the residual current of circuit {0}: bind a residual-current \
         monitor to it"
    )]
    Unmeasured(i64),
}

/// Traces the leak under `root` in `tree` (which may hold other circuits too: only `root`'s
/// subtree is looked at; a cycle is cut where it closes).
///
/// # Errors
/// [`TraceError`] when `root` is not in the tree or nothing measures it.
pub fn trace(tree: &[Circuit], root: i64, min_ma: f64) -> Result<Trace, TraceError> {
    let by_id: BTreeMap<i64, &Circuit> = tree.iter().map(|c| (c.id, c)).collect();
    let top = by_id.get(&root).ok_or(TraceError::Unknown(root))?;
    let total = top.residual_ma.ok_or(TraceError::Unmeasured(root))?;
    let mut children: BTreeMap<i64, Vec<&Circuit>> = BTreeMap::new();
    for c in tree {
        if let Some(p) = c.parent {
            children.entry(p).or_default().push(c);
        }
    }
    // The subtree, each circuit once.
    let mut seen = std::collections::BTreeSet::from([root]);
    let mut stack = vec![root];
    let mut evidence = Vec::new();
    while let Some(id) = stack.pop() {
        let c = by_id[&id];
        let below: Vec<&Circuit> = children
            .get(&id)
            .map(|v| v.iter().copied().filter(|b| seen.insert(b.id)).collect())
            .unwrap_or_default();
        stack.extend(below.iter().map(|b| b.id));
        let Some(measured_ma) = c.residual_ma else {
            continue;
        };
        // A branch nobody measures counts with its parent; its measured sub-branches, seen
        // from here, are a level further down and explain part of it, not of this circuit.
        let branches_ma: f64 = below.iter().filter_map(|b| b.residual_ma).sum();
        evidence.push(Evidence {
            circuit_id: id,
            name: c.name.clone(),
            measured_ma,
            branches_ma,
            unexplained_ma: (measured_ma - branches_ma).max(0.0),
            unmeasured_branches: below
                .iter()
                .filter(|b| b.residual_ma.is_none())
                .map(|b| b.id)
                .collect(),
        });
    }
    evidence.sort_by(|a, b| {
        b.unexplained_ma
            .total_cmp(&a.unexplained_ma)
            .then(a.circuit_id.cmp(&b.circuit_id))
    });
    let suspect = evidence
        .first()
        .filter(|e| e.unexplained_ma >= min_ma)
        .map(|e| Suspect {
            circuit_id: e.circuit_id,
            name: e.name.clone(),
            place: if e.circuit_id == root {
                Place::FeederSegment
            } else {
                Place::Branch
            },
            unexplained_ma: e.unexplained_ma,
            share: if total > 0.0 {
                (e.unexplained_ma / total).min(1.0)
            } else {
                0.0
            },
        });
    Ok(Trace {
        circuit_id: root,
        suspect,
        evidence,
        min_ma,
    })
}

/// The least-squares slope of `points` (time in ms, value), per day; `None` with fewer than
/// two distinct times. Used to rank circuits by how fast their leakage rises.
pub fn slope_per_day(points: &[(u64, f64)]) -> Option<f64> {
    const DAY_MS: f64 = 86_400_000.0;
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    // Times relative to the first, in days, so that the sums stay small.
    let t0 = points[0].0;
    let xs = points.iter().map(|(t, _)| (*t as f64 - t0 as f64) / DAY_MS);
    let mean_x = xs.clone().sum::<f64>() / n;
    let mean_y = points.iter().map(|(_, y)| y).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (x, (_, y)) in xs.zip(points) {
        sxy += (x - mean_x) * (y - mean_y);
        sxx += (x - mean_x) * (x - mean_x);
    }
    (sxx > 0.0).then(|| sxy / sxx)
}

/// One circuit in a ranking.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Ranked {
    /// The circuit.
    pub circuit_id: i64,
    /// Its name.
    pub name: String,
    /// Its site.
    pub site_id: i64,
    /// Its residual current's trend over the window, mA per day (the steepest of its
    /// monitors' residual channels); `None` without two hours of readings.
    pub trend_ma_per_day: Option<f64>,
    /// Its latest hourly mean residual current, mA.
    pub latest_ma: Option<f64>,
    /// Alarm episodes of its devices that opened in the window.
    pub alarms: u64,
}

/// What to rank by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RankBy {
    /// The steepest rising residual current first.
    Trend,
    /// The most alarms first.
    Alarms,
}

/// Sorts `rows` by `by`, highest first (ties: the other measure, then the circuit id; circuits
/// without a trend last).
pub fn rank(rows: &mut [Ranked], by: RankBy) {
    let trend = |r: &Ranked| r.trend_ma_per_day.unwrap_or(f64::NEG_INFINITY);
    rows.sort_by(|a, b| {
        let (first, second) = match by {
            RankBy::Trend => (trend(b).total_cmp(&trend(a)), b.alarms.cmp(&a.alarms)),
            RankBy::Alarms => (b.alarms.cmp(&a.alarms), trend(b).total_cmp(&trend(a))),
        };
        first.then(second).then(a.circuit_id.cmp(&b.circuit_id))
    });
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn c(id: i64, parent: Option<i64>, ma: Option<f64>) -> Circuit {
        Circuit {
            id,
            parent,
            name: format!("c{id}"),
            residual_ma: ma,
        }
    }

    /// docs/utility.md's worked example: a feeder (1) with three branches (2, 3, 4); branch 3
    /// has a sub-branch (5); branch 4 has no monitor.
    fn example(leak_in: i64) -> Vec<Circuit> {
        // Background leakage of healthy wiring: 8 mA per circuit segment; the leak: 120 mA.
        let own = |id: i64| 8.0 + if id == leak_in { 120.0 } else { 0.0 };
        let five = own(5);
        let three = own(3) + five;
        let two = own(2);
        let four = own(4);
        let one = own(1) + two + three + four;
        vec![
            c(1, None, Some(one)),
            c(2, Some(1), Some(two)),
            c(3, Some(1), Some(three)),
            c(4, Some(1), None),
            c(5, Some(3), Some(five)),
        ]
    }

    #[test]
    fn the_worked_example_names_the_leaking_branch() {
        let t = trace(&example(5), 1, 30.0).unwrap();
        let s = t.suspect.expect("a suspect");
        assert_eq!((s.circuit_id, s.place), (5, Place::Branch));
        assert_eq!(s.unexplained_ma, 128.0);
        assert!((s.share - 128.0 / 160.0).abs() < 1e-9, "{s:?}");
        let rows: Vec<(i64, f64, f64, f64)> = t
            .evidence
            .iter()
            .map(|e| (e.circuit_id, e.measured_ma, e.branches_ma, e.unexplained_ma))
            .collect();
        assert_eq!(
            rows,
            [
                (5, 128.0, 0.0, 128.0),
                (1, 160.0, 144.0, 16.0),
                (2, 8.0, 0.0, 8.0),
                (3, 136.0, 128.0, 8.0),
            ]
        );
        assert_eq!(t.evidence[1].unmeasured_branches, [4]);
    }

    #[test]
    fn a_leak_in_a_middle_branch_or_the_feeder_or_an_unmeasured_branch() {
        let s = trace(&example(3), 1, 30.0).unwrap().suspect.unwrap();
        assert_eq!((s.circuit_id, s.place), (3, Place::Branch));
        let s = trace(&example(1), 1, 30.0).unwrap().suspect.unwrap();
        assert_eq!((s.circuit_id, s.place), (1, Place::FeederSegment));
        // Nothing measures branch 4: its leak shows as the feeder's, which lists it.
        let t = trace(&example(4), 1, 30.0).unwrap();
        let s = t.suspect.unwrap();
        assert_eq!((s.circuit_id, s.place), (1, Place::FeederSegment));
        assert_eq!(t.evidence[0].unmeasured_branches, [4]);
        // Traced from branch 3: its subtree only.
        let t = trace(&example(5), 3, 30.0).unwrap();
        assert_eq!(t.suspect.unwrap().circuit_id, 5);
        assert_eq!(t.evidence.len(), 2);
    }

    #[test]
    fn background_leakage_alone_names_nothing() {
        let t = trace(&example(0), 1, 30.0).unwrap();
        assert_eq!(t.suspect, None);
        assert_eq!(t.evidence.len(), 4);
    }

    #[test]
    fn unknown_or_unmeasured_roots_say_so() {
        assert_eq!(trace(&example(5), 9, 30.0), Err(TraceError::Unknown(9)));
        assert_eq!(trace(&example(5), 4, 30.0), Err(TraceError::Unmeasured(4)));
    }

    #[test]
    fn a_cycle_is_cut() {
        let tree = vec![c(1, Some(2), Some(50.0)), c(2, Some(1), Some(40.0))];
        let t = trace(&tree, 1, 5.0).unwrap();
        assert_eq!(t.evidence.len(), 2);
    }

    #[test]
    fn slopes_are_per_day() {
        const H: u64 = 3_600_000;
        // 2 mA per day, hourly for 30 days, with alternating noise.
        let points: Vec<(u64, f64)> = (0..720)
            .map(|h| {
                (
                    h * H,
                    20.0 + 2.0 * h as f64 / 24.0 + if h % 2 == 0 { 1.0 } else { -1.0 },
                )
            })
            .collect();
        let s = slope_per_day(&points).unwrap();
        assert!((s - 2.0).abs() < 0.01, "{s}");
        assert_eq!(slope_per_day(&points[..1]), None);
        assert_eq!(slope_per_day(&[(5, 1.0), (5, 2.0)]), None);
        let falling = [(0, 10.0), (86_400_000, 7.0)];
        assert_eq!(slope_per_day(&falling), Some(-3.0));
    }

    #[test]
    fn rankings_put_the_worst_first() {
        let r = |id: i64, trend: Option<f64>, alarms: u64| Ranked {
            circuit_id: id,
            name: format!("c{id}"),
            site_id: 1,
            trend_ma_per_day: trend,
            latest_ma: None,
            alarms,
        };
        let mut rows = vec![
            r(1, Some(0.5), 3),
            r(2, None, 9),
            r(3, Some(4.0), 0),
            r(4, Some(0.5), 5),
        ];
        rank(&mut rows, RankBy::Trend);
        let ids: Vec<i64> = rows.iter().map(|r| r.circuit_id).collect();
        assert_eq!(ids, [3, 4, 1, 2]);
        rank(&mut rows, RankBy::Alarms);
        let ids: Vec<i64> = rows.iter().map(|r| r.circuit_id).collect();
        assert_eq!(ids, [2, 4, 1, 3]);
    }

    proptest! {
        /// On any tree with every circuit measured and one leak well above the background,
        /// the leak's circuit is named.
        #[test]
        fn one_leak_on_a_fully_measured_tree_is_found(
            parents in proptest::collection::vec(0usize..1000, 1..30),
            leak_at in 0usize..31,
            background in proptest::collection::vec(0.0f64..10.0, 31),
        ) {
            // Circuit i+1's parent is one of circuits 0..=i (a tree rooted at 0).
            let n = parents.len() + 1;
            let leak = leak_at % n;
            let parent = |i: usize| (i > 0).then(|| parents[i - 1] % i);
            let own: Vec<f64> =
                (0..n).map(|i| background[i] + if i == leak { 100.0 } else { 0.0 }).collect();
            let mut measured = own.clone();
            for i in (1..n).rev() {
                let p = parent(i).expect("not the root");
                measured[p] += measured[i];
            }
            let tree: Vec<Circuit> = (0..n)
                .map(|i| c(i as i64, parent(i).map(|p| p as i64), Some(measured[i])))
                .collect();
            let t = trace(&tree, 0, 50.0).unwrap();
            prop_assert_eq!(t.suspect.map(|s| s.circuit_id), Some(leak as i64));
            prop_assert_eq!(t.evidence.len(), n);
        }
    }
}
