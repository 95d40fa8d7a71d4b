//! The identity of a bind: `OperatorId`, `Direction`, `Lane` and `BindKey`, used by every layer (configuration, ownership, failover, the bind itself).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// An operator id: `[A-Za-z0-9_-]{1,64}` (UUIDs and short codes like `awcc`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OperatorId(Arc<str>);

impl OperatorId {
    /// Validate an operator id.
    pub fn try_new(raw: &str) -> Result<Self, InvalidOperatorId> {
        let ok = (1..=64).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(OperatorId(Arc::from(raw)))
        } else {
            Err(InvalidOperatorId { length: raw.len() })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OperatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for OperatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// An operator id that is not `[A-Za-z0-9_-]{1,64}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("operator id must match [A-Za-z0-9_-]{{1,64}} (got {length} characters)")]
pub struct InvalidOperatorId {
    pub length: usize,
}

/// The bind direction of a deployment (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    Trx,
    Tx,
    Rx,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Trx => "trx",
            Direction::Tx => "tx",
            Direction::Rx => "rx",
        }
    }

    /// True when binds of this direction send submit_sm.
    pub fn submits(self) -> bool {
        matches!(self, Direction::Trx | Direction::Tx)
    }
}

impl FromStr for Direction {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "trx" => Ok(Direction::Trx),
            "tx" => Ok(Direction::Tx),
            "rx" => Ok(Direction::Rx),
            _ => Err(()),
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Priority lanes, served strictly P0 > P1 > P2 > P3 (US-SC-018).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lane {
    P0,
    P1,
    P2,
    P3,
}

impl Lane {
    pub const ALL: [Lane; 4] = [Lane::P0, Lane::P1, Lane::P2, Lane::P3];

    pub fn as_str(self) -> &'static str {
        match self {
            Lane::P0 => "P0",
            Lane::P1 => "P1",
            Lane::P2 => "P2",
            Lane::P3 => "P3",
        }
    }

    /// Lower-case form used in subjects and consumer names.
    pub fn subject_token(self) -> &'static str {
        match self {
            Lane::P0 => "p0",
            Lane::P1 => "p1",
            Lane::P2 => "p2",
            Lane::P3 => "p3",
        }
    }
}

impl FromStr for Lane {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim().to_ascii_uppercase().as_str() {
            "P0" => Ok(Lane::P0),
            "P1" => Ok(Lane::P1),
            "P2" => Ok(Lane::P2),
            "P3" => Ok(Lane::P3),
            _ => Err(()),
        }
    }
}

/// The identity of one bind: used for actors, spans, metric labels, logs and keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BindKey {
    pub operator_id: OperatorId,
    pub direction: Direction,
    pub bind_id: u16,
}

impl BindKey {
    pub fn new(operator_id: OperatorId, direction: Direction, bind_id: u16) -> Self {
        BindKey {
            operator_id,
            direction,
            bind_id,
        }
    }
}

impl fmt::Display for BindKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.operator_id, self.direction, self.bind_id
        )
    }
}
