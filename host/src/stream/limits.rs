//! Concurrent subscriptions per token and per org, counted on this replica.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Why a subscription was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("this token already holds {0} subscriptions, the most one token may hold")]
    Token(usize),
    #[error("this org already holds {0} subscriptions, the most one org may hold")]
    Org(usize),
}

/// Open subscriptions by key (`token:<id>`, `org:<id>`). Cheap to clone.
#[derive(Clone)]
pub struct Limits {
    per_token: usize,
    per_org: usize,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// Held while a subscription is open; dropping it frees its places.
pub struct Place {
    keys: [String; 2],
    open: Arc<Mutex<HashMap<String, usize>>>,
}

impl Limits {
    pub fn new(per_token: usize, per_org: usize) -> Self {
        Limits { per_token, per_org, open: Arc::default() }
    }

    /// Takes a place for one more subscription of `token` in `org`, if both have room.
    pub fn admit(&self, token: &str, org: &str) -> Result<Place, Refused> {
        let keys = [format!("token:{token}"), format!("org:{org}")];
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let held = |key: &str| open.get(key).copied().unwrap_or(0);
        if held(&keys[0]) >= self.per_token {
            return Err(Refused::Token(self.per_token));
        }
        if held(&keys[1]) >= self.per_org {
            return Err(Refused::Org(self.per_org));
        }
        for key in &keys {
            *open.entry(key.clone()).or_insert(0) += 1;
        }
        Ok(Place { keys, open: self.open.clone() })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for key in &self.keys {
            if let Some(count) = open.get_mut(key) {
                *count -= 1;
                if *count == 0 {
                    open.remove(key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Limits, Refused};

    #[test]
    fn places_are_counted_per_token_and_org_and_freed_on_drop() {
        let limits = Limits::new(2, 3);
        let first = limits.admit("t1", "o").unwrap();
        let _second = limits.admit("t1", "o").unwrap();
        assert!(matches!(limits.admit("t1", "o"), Err(Refused::Token(2))));
        let _third = limits.admit("t2", "o").unwrap();
        assert!(matches!(limits.admit("t3", "o"), Err(Refused::Org(3))));
        assert!(limits.admit("t3", "other").is_ok());
        drop(first);
        assert!(limits.admit("t1", "o").is_ok());
    }
}
