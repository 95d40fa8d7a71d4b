//! The usual stage of a test: one operator (a fresh id) at its own simulator, with its own
//! NATS, an OMS stub serving its credentials and the service bound to it.
//!
//! ```ignore
//! let s = Stage::builder("flow_window")
//!     .sim(json!({"receipts": false}))    // simulator behaviour (default `{}`)
//!     .credentials(json!({"window": 10})) // over the default credentials (default none)
//!     .env(&[("DRAIN_MIN_MS", "1500")])   // the service's environment (default none)
//!     .bound(2)                           // binds to wait for (default 1; 0: don't wait)
//!     .start()
//!     .await;
//! s.nats.send_command(&s.op, "93700000001", "hello").await;
//! ```
//!
//! A test that must watch NATS before anything starts (health events of the first bind)
//! starts it itself and hands it over with [`StageBuilder::nats`].

use serde_json::{Value, json};

use super::sim::credentials;
use super::{Nats, Oms, Service, Sim, unique};

/// One operator's running stack; each part is killed on drop.
pub struct Stage {
    pub op: String,
    pub nats: Nats,
    pub sim: Sim,
    pub oms: Oms,
    pub service: Service,
}

impl Stage {
    /// A stage named `test` (the name of its logs and scratch directories).
    pub fn builder(test: &str) -> StageBuilder {
        StageBuilder {
            test: test.to_owned(),
            nats: None,
            sim: json!({}),
            credentials: json!({}),
            env: Vec::new(),
            bound: 1,
        }
    }

    /// Another service for this operator on the same NATS and OMS, named `name` (its log
    /// and `POD_NAME`), with `env`; its binds are not waited for.
    pub async fn pod(&self, name: &str, env: &[(&str, &str)]) -> Service {
        Service::start(name, &self.nats, &self.oms, &self.op, env).await
    }
}

/// What [`Stage::builder`] starts.
pub struct StageBuilder {
    test: String,
    nats: Option<Nats>,
    sim: Value,
    credentials: Value,
    env: Vec<(String, String)>,
    bound: usize,
}

impl StageBuilder {
    /// Use this NATS (started by the test: subscribed already, configured, secured…)
    /// instead of starting one.
    pub fn nats(mut self, nats: Nats) -> Self {
        self.nats = Some(nats);
        self
    }

    /// The simulator's initial behaviour (a partial JSON object).
    pub fn sim(mut self, behaviour: Value) -> Self {
        self.sim = behaviour;
        self
    }

    /// Fields of the operator's credentials in OMS that differ from
    /// [`credentials`]' defaults.
    pub fn credentials(mut self, extra: Value) -> Self {
        self.credentials = extra;
        self
    }

    /// Environment of the service, over the fast timers (added to any given before).
    pub fn env(mut self, env: &[(&str, &str)]) -> Self {
        self.env
            .extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        self
    }

    /// Wait until at least `binds` binds are BOUND (0: return once the service listens).
    pub fn bound(mut self, binds: usize) -> Self {
        self.bound = binds;
        self
    }

    /// Start NATS (unless given), the simulator, the OMS stub and the service, in that
    /// order, and wait for the binds.
    pub async fn start(self) -> Stage {
        let test = self.test.as_str();
        let op = format!("op{}", unique());
        let nats = match self.nats {
            Some(nats) => nats,
            None => Nats::start(test).await,
        };
        let sim = Sim::start(test, self.sim);
        let oms = Oms::start(test, credentials(&op, sim.smpp_port, self.credentials));
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let service = Service::start(test, &nats, &oms, &op, &env).await;
        if self.bound > 0 {
            service.wait_bound(self.bound).await;
        }
        Stage {
            op,
            nats,
            sim,
            oms,
            service,
        }
    }
}
