//! Results counted by kind (an enum, never the report word): how many files of a
//! verification were OK, MISMATCH, MISSING..., how many of a download were fetched,
//! skipped, mismatched or failed.

use std::collections::BTreeMap;

use crate::download::DlStatus;
use crate::verify::Status;

/// The kind of a verification result, without its details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VerifyKind {
    /// Every claim holds.
    Ok,
    /// A digest differs.
    Mismatch,
    /// The file is not there.
    Missing,
    /// The size differs.
    Size,
    /// Present, but no manifest lists it.
    Unlisted,
    /// Could not be read.
    Error,
}

impl VerifyKind {
    /// Every kind, in report order.
    pub const ALL: [VerifyKind; 6] = [
        VerifyKind::Ok,
        VerifyKind::Mismatch,
        VerifyKind::Missing,
        VerifyKind::Size,
        VerifyKind::Unlisted,
        VerifyKind::Error,
    ];

    /// The report word: OK, MISMATCH, MISSING, SIZE, UNLISTED, ERROR.
    pub fn word(self) -> &'static str {
        match self {
            VerifyKind::Ok => "OK",
            VerifyKind::Mismatch => "MISMATCH",
            VerifyKind::Missing => "MISSING",
            VerifyKind::Size => "SIZE",
            VerifyKind::Unlisted => "UNLISTED",
            VerifyKind::Error => "ERROR",
        }
    }
}

impl Status {
    /// The kind of this result.
    pub fn kind(&self) -> VerifyKind {
        match self {
            Status::Ok => VerifyKind::Ok,
            Status::Mismatch { .. } => VerifyKind::Mismatch,
            Status::Missing => VerifyKind::Missing,
            Status::Size { .. } => VerifyKind::Size,
            Status::Unlisted => VerifyKind::Unlisted,
            Status::Error(_) => VerifyKind::Error,
        }
    }
}

/// The kind of a download result, without its details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DownloadKind {
    /// Fetched (perhaps resumed) and verified.
    Downloaded,
    /// Already present and verified.
    Skipped,
    /// A digest or the size is wrong.
    Mismatch,
    /// Could not be fetched.
    Failed,
}

impl DlStatus {
    /// The kind of this result.
    pub fn kind(&self) -> DownloadKind {
        match self {
            DlStatus::Downloaded => DownloadKind::Downloaded,
            DlStatus::Skipped => DownloadKind::Skipped,
            DlStatus::Mismatch { .. } => DownloadKind::Mismatch,
            DlStatus::Failed(_) => DownloadKind::Failed,
        }
    }
}

/// How many results there are of each kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally<K: Ord> {
    counts: BTreeMap<K, usize>,
    total: usize,
}

impl<K: Ord + Copy> Tally<K> {
    /// Count `kinds`.
    pub fn of(kinds: impl IntoIterator<Item = K>) -> Tally<K> {
        let mut counts = BTreeMap::new();
        let mut total = 0;
        for k in kinds {
            *counts.entry(k).or_insert(0) += 1;
            total += 1;
        }
        Tally { counts, total }
    }

    /// How many results are of `kind`.
    pub fn get(&self, kind: K) -> usize {
        self.counts.get(&kind).copied().unwrap_or(0)
    }

    /// How many results there are.
    pub fn total(&self) -> usize {
        self.total
    }
}

impl Tally<VerifyKind> {
    /// How many files failed (anything but OK).
    pub fn failed(&self) -> usize {
        self.total - self.get(VerifyKind::Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_counted_by_kind() {
        let statuses = [
            Status::Ok,
            Status::Missing,
            Status::Ok,
            Status::Error("x".into()),
            Status::Size {
                expected: 1,
                actual: 2,
            },
        ];
        let t = Tally::of(statuses.iter().map(Status::kind));
        assert_eq!(t.get(VerifyKind::Ok), 2);
        assert_eq!(t.get(VerifyKind::Missing), 1);
        assert_eq!(t.get(VerifyKind::Mismatch), 0);
        assert_eq!((t.total(), t.failed()), (5, 3));
        for (s, k) in statuses.iter().zip([0, 2, 0, 5, 3]) {
            assert_eq!(s.word(), VerifyKind::ALL[k].word());
        }
        let d = Tally::of(
            [DlStatus::Downloaded, DlStatus::Failed("x".into())]
                .iter()
                .map(DlStatus::kind),
        );
        assert_eq!(d.get(DownloadKind::Failed), 1);
        assert_eq!(d.get(DownloadKind::Skipped), 0);
    }
}
