//! The load: ticket creations spread round-robin over the nodes by several concurrent
//! clients. A creation whose node does not answer (it was killed) is sent again, with the same
//! idempotency key, to a node still up; the event feed decides afterwards what was committed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::json;

use crate::api::Api;

pub struct Load {
    /// The agent's session on each node.
    nodes: Vec<Api>,
    /// Nodes found dead (no answer).
    dead: Vec<AtomicBool>,
    next: AtomicUsize,
    total: usize,
    round: u32,
    pub created: AtomicUsize,
    pub refused: AtomicUsize,
    /// Creations sent again to another node after theirs did not answer.
    pub moved: AtomicUsize,
}

impl Load {
    pub fn new(agent: &Api, bases: &[String], round: u32, total: usize) -> Arc<Self> {
        Arc::new(Self {
            nodes: bases.iter().map(|b| agent.on(b)).collect(),
            dead: bases.iter().map(|_| AtomicBool::new(false)).collect(),
            next: AtomicUsize::new(0),
            total,
            round,
            created: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
            moved: AtomicUsize::new(0),
        })
    }

    /// Runs `clients` concurrent clients until `total` creations are settled.
    pub async fn run(self: Arc<Self>, clients: usize) {
        let tasks: Vec<_> = (0..clients)
            .map(|_| tokio::spawn(self.clone().client()))
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    }

    async fn client(self: Arc<Self>) {
        loop {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            if n >= self.total {
                return;
            }
            self.create(n).await;
        }
    }

    /// One creation, on node `n mod nodes` or, when that one is dead, the next live one.
    async fn create(&self, n: usize) {
        let key = format!("mn-{}-{n}", self.round);
        let body =
            json!({"template": "mn", "fields": {"title": format!("round {} #{n}", self.round)}});
        let count = self.nodes.len();
        for offset in 0..count {
            let i = (n + offset) % count;
            if self.dead[i].load(Ordering::Relaxed) {
                continue;
            }
            match self.nodes[i]
                .post("/api/v1/tickets", &body, Some(&key))
                .await
            {
                Ok((status, _)) if (200..300).contains(&status) => {
                    self.created.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Ok((status, reply)) => {
                    eprintln!("creation {key} refused: {status} {reply}");
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(_) => {
                    self.dead[i].store(true, Ordering::Relaxed);
                    self.moved.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.refused.fetch_add(1, Ordering::Relaxed);
    }
}
