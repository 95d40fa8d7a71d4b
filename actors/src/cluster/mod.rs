//! Cluster: binds across pods. [`ownership`]: one owner per bind (NATS KV), the
//! reconciler; the chores of the pod that runs an operator's bind 0
//! (`smpp_connector::cluster::chores`, run by the supervisor): the expiry scans of
//! orphaned MO indexes ([`crate::inbound::mo::scan_orphans`]) and the sweep of commands
//! pinned to binds the operator does not have ([`unserved`]).

pub mod ownership;
pub mod unserved;

use std::sync::Arc;

use smpp_connector::config::Config;

use crate::inbound::InboundDeps;
use crate::nats::EventPublisher;
use crate::oms::CredentialSource;

/// What the cluster chores need.
pub struct ChoreDeps {
    pub config: Arc<Config>,
    /// The operator's current `bindCount` (read for each sweep).
    pub credentials: Arc<dyn CredentialSource>,
    /// Dead letters, and the dispatch stream through its JetStream context.
    pub publisher: EventPublisher,
    /// The orphaned MO indexes are scanned as a bind scans its own.
    pub inbound: Arc<InboundDeps>,
}

impl std::fmt::Debug for ChoreDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChoreDeps").finish_non_exhaustive()
    }
}
