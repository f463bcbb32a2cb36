//! Per recipient domain limits (`[channels.email.domains."<domain>"]`, Adobe's MX rules): at most
//! `max_connections` messages to the domain in flight at once, and `max_per_minute` leaving evenly spaced,
//! one every 60 s / n. A message over a limit is not failed and uses no retry: the engine hands its claim
//! back with a later `next_attempt_at` (its reserved slot), and the other domains' messages go on.
//!
//! The limits hold per process: two instances sending to the same domain each keep their own pace.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;

use crate::config::DomainLimits;

/// Messages to one connection-limited domain a delivery round may take per allowed connection; the
/// rest wait for [`CONNECTION_RECHECK`].
const PER_CONNECTION_IN_ROUND: usize = 8;
/// When a message held back by the connection limit is due again.
const CONNECTION_RECHECK: Duration = Duration::from_secs(1);
/// A reserved slot this close is taken now (the engine's rounds are not exact to the millisecond).
const SLOT_TOLERANCE: Duration = Duration::from_millis(20);
/// Reservations this far in the past are forgotten (their entry went elsewhere).
const RESERVATION_TTL: Duration = Duration::from_secs(600);

/// What to do with one claimed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Send,
    /// Hand it back, due at this time.
    WaitUntil(DateTime<Utc>),
}

struct Pace {
    interval: chrono::Duration,
    /// The next free slot.
    next: DateTime<Utc>,
    /// Slots given to messages sent back to wait, by delivery-log id.
    reserved: HashMap<i64, DateTime<Utc>>,
}

struct Domain {
    connections: Option<(Arc<Semaphore>, usize)>,
    pace: Option<Mutex<Pace>>,
}

/// The limits of every configured domain.
#[derive(Default)]
pub struct Throttle {
    domains: HashMap<String, Domain>,
}

impl Throttle {
    pub fn new(limits: &std::collections::BTreeMap<String, DomainLimits>) -> Self {
        let domains = limits
            .iter()
            .map(|(name, limits)| {
                let connections = limits
                    .max_connections
                    .map(|n| (Arc::new(Semaphore::new(n as usize)), n as usize));
                let pace = limits.max_per_minute.map(|n| {
                    Mutex::new(Pace {
                        interval: chrono::Duration::milliseconds(60_000 / i64::from(n.max(1))),
                        next: DateTime::<Utc>::MIN_UTC,
                        reserved: HashMap::new(),
                    })
                });
                (
                    name.trim().to_ascii_lowercase(),
                    Domain { connections, pace },
                )
            })
            .collect();
        Throttle { domains }
    }

    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    /// The domain's connection limit, to hold while sending.
    pub fn connections(&self, address: &str) -> Option<Arc<Semaphore>> {
        self.domain(address)
            .and_then(|d| d.connections.as_ref())
            .map(|(semaphore, _)| Arc::clone(semaphore))
    }

    fn domain(&self, address: &str) -> Option<&Domain> {
        let (_, domain) = address.rsplit_once('@')?;
        self.domains.get(&domain.to_ascii_lowercase())
    }

    /// Decides, for the messages of one round (delivery-log id and recipient, in claim order), which go
    /// now and which wait until when.
    pub fn admit(&self, messages: &[(i64, &str)]) -> Vec<Admission> {
        let now = Utc::now();
        let mut in_round: HashMap<*const Domain, usize> = HashMap::new();
        messages
            .iter()
            .map(|(id, address)| {
                let Some(domain) = self.domain(address) else {
                    return Admission::Send;
                };
                if let Some((_, max)) = &domain.connections {
                    let taken = in_round.entry(domain as *const Domain).or_default();
                    if *taken >= max * PER_CONNECTION_IN_ROUND {
                        return Admission::WaitUntil(now + to_chrono(CONNECTION_RECHECK));
                    }
                    *taken += 1;
                }
                match &domain.pace {
                    Some(pace) => pace
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .admit(*id, now),
                    None => Admission::Send,
                }
            })
            .collect()
    }
}

impl Pace {
    fn admit(&mut self, id: i64, now: DateTime<Utc>) -> Admission {
        let tolerance = to_chrono(SLOT_TOLERANCE);
        let slot = match self.reserved.remove(&id) {
            Some(slot) => slot,
            None => {
                let slot = self.next.max(now);
                self.next = slot + self.interval;
                slot
            }
        };
        if slot <= now + tolerance {
            return Admission::Send;
        }
        let forget_before = now - to_chrono(RESERVATION_TTL);
        self.reserved.retain(|_, at| *at > forget_before);
        self.reserved.insert(id, slot);
        Admission::WaitUntil(slot)
    }
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(max_connections: Option<u32>, max_per_minute: Option<u32>) -> Throttle {
        let mut limits = std::collections::BTreeMap::new();
        limits.insert(
            "Slow.Example".to_owned(),
            DomainLimits {
                max_connections,
                max_per_minute,
            },
        );
        Throttle::new(&limits)
    }

    #[test]
    fn paced_messages_get_evenly_spaced_slots_and_keep_them() {
        let t = throttle(None, Some(60));
        let round: Vec<(i64, &str)> = vec![
            (1, "a@slow.example"),
            (2, "b@other.example"),
            (3, "c@SLOW.example"),
            (4, "d@slow.example"),
        ];
        let first = t.admit(&round);
        assert_eq!(first[0], Admission::Send);
        assert_eq!(first[1], Admission::Send, "other domains are not limited");
        let (Admission::WaitUntil(s3), Admission::WaitUntil(s4)) = (first[2], first[3]) else {
            panic!("over the pace: {first:?}");
        };
        assert!(
            (s4 - s3 - chrono::Duration::seconds(1))
                .num_milliseconds()
                .abs()
                < 5
        );
        // Coming back before its slot, a message keeps it (it is not pushed to the end).
        assert_eq!(
            t.admit(&[(3, "c@slow.example")]),
            vec![Admission::WaitUntil(s3)]
        );
        // A new message queues after the reserved ones.
        let Admission::WaitUntil(s5) = t.admit(&[(5, "e@slow.example")])[0] else {
            panic!("paced");
        };
        assert!(s5 > s4);
    }

    #[test]
    fn a_round_takes_a_bounded_number_per_connection() {
        let t = throttle(Some(1), None);
        let addresses: Vec<(i64, &str)> = (0..20).map(|i| (i, "x@slow.example")).collect();
        let admitted = t.admit(&addresses);
        let sent = admitted.iter().filter(|a| **a == Admission::Send).count();
        assert_eq!(sent, PER_CONNECTION_IN_ROUND);
        assert!(t.connections("x@slow.example").is_some());
        assert!(t.connections("x@fast.example").is_none());
    }
}
