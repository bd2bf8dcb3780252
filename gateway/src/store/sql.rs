//! Small helpers to build filtered queries and to keep protocol JSON in columns.

use rusqlite::types::Value;

use firegrid_protocols::codec::{self, Encoding, MAX_PAYLOAD};
use firegrid_protocols::message::Message;
use firegrid_protocols::topic::DeviceTopic;

use super::StoreError;

/// A `WHERE` clause built from optional filters, with its parameters (`?` placeholders).
#[derive(Default)]
pub(crate) struct Where {
    clauses: Vec<String>,
    pub(super) params: Vec<Value>,
}

impl Where {
    /// Adds `clause` (with one `?`) and its value.
    pub(super) fn eq(&mut self, clause: &str, value: impl Into<Value>) {
        self.clauses.push(clause.to_string());
        self.params.push(value.into());
    }

    /// Adds a clause without parameters.
    pub(super) fn raw(&mut self, clause: &str) {
        self.clauses.push(clause.to_string());
    }

    /// Adds "`column` is an area in the subtree of `area`" (the area itself included).
    pub(super) fn in_area(&mut self, column: &str, area: &str) {
        self.eq(
            &format!("{column} IN ({SUBTREE})"),
            Value::Text(area.to_string()),
        );
    }

    /// ` WHERE a AND b` or nothing.
    pub(super) fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// The ids of an area and every area below it (one `?`: the area).
pub(super) const SUBTREE: &str = "WITH RECURSIVE sub(id) AS (SELECT ? \
     UNION SELECT a.id FROM areas a JOIN sub ON a.parent_id = sub.id) SELECT id FROM sub";

/// A page size: 0 means `default`, and never more than `max`.
pub(super) fn page(limit: u32, default: u32, max: u32) -> i64 {
    i64::from(if limit == 0 { default } else { limit.min(max) })
}

/// A message in the protocol's JSON (the documented shape: readable with `sqlite3`, and stable
/// within protocol v1).
pub(super) fn protocol_json(msg: &Message) -> Result<String, StoreError> {
    let mut buf = vec![0u8; MAX_PAYLOAD];
    let n = codec::encode(msg, Encoding::Json, &mut buf)
        .map_err(|e| StoreError::Invalid(format!("cannot encode {:?}: {e}", msg.topic_kind())))?;
    buf.truncate(n);
    String::from_utf8(buf).map_err(|e| StoreError::Invalid(e.to_string()))
}

/// Reads back what [`protocol_json`] wrote.
pub(super) fn from_protocol_json(kind: DeviceTopic, json: &str) -> Result<Message, StoreError> {
    codec::decode(kind, json.as_bytes())
        .map_err(|e| StoreError::Invalid(format!("stored {kind:?} JSON does not decode: {e:?}")))
}

/// u64 → SQLite integer, refusing what does not fit.
pub(super) fn int(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::InvalidQuery(format!("{v} is out of range")))
}
