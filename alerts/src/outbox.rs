//! Notifications being delivered: each to every channel of its rule, one at a time per
//! channel and alert (a resolve never overtakes its trigger), and known as delivered once
//! every channel finished.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use tokio::task::{JoinError, JoinSet};

use crate::alert_config::NotifyEvent;
use crate::notify::{Channel, Context, Notification};
use crate::store::Delivery;

/// The alert a notification is about: a rule's group and the event announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Delivered {
    pub(crate) rule: String,
    pub(crate) group: String,
    pub(crate) event: NotifyEvent,
}

/// A notification some of whose channels have not finished yet.
struct Pending {
    alert: Delivered,
    channels_left: usize,
}

/// Deliveries to one channel about one alert go out in order, one at a time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Lane {
    channel: String,
    rule: String,
    group: String,
}

impl Lane {
    fn of(d: &Delivery) -> Lane {
        Lane {
            channel: d.channel.clone(),
            rule: d.rule.clone(),
            group: d.group.clone(),
        }
    }
}

/// One notification to one channel.
struct Job {
    id: u64,
    channel: Arc<Channel>,
    notification: Arc<Notification>,
}

/// What a delivery task returns: the notification's id and the outcome.
pub(crate) type Finished = Result<(u64, Delivery), JoinError>;

/// The deliveries in flight and those waiting for an earlier one in their lane.
#[derive(Default)]
pub(crate) struct Outbox {
    pending: HashMap<u64, Pending>,
    waiting: HashMap<Lane, VecDeque<Job>>,
    in_flight: JoinSet<(u64, Delivery)>,
    next_id: u64,
}

impl Outbox {
    /// Sends `n` to `channels` (at least one): at once where its lane is free, else after
    /// the deliveries ahead of it.
    pub(crate) fn send(&mut self, n: Notification, channels: Vec<Arc<Channel>>, ctx: &Context) {
        self.next_id += 1;
        let id = self.next_id;
        self.pending.insert(
            id,
            Pending {
                alert: Delivered {
                    rule: n.rule.clone(),
                    group: n.group.clone(),
                    event: n.event,
                },
                channels_left: channels.len(),
            },
        );
        let n = Arc::new(n);
        for channel in channels {
            let lane = Lane {
                channel: channel.name.clone(),
                rule: n.rule.clone(),
                group: n.group.clone(),
            };
            let job = Job {
                id,
                channel,
                notification: Arc::clone(&n),
            };
            match self.waiting.get_mut(&lane) {
                Some(queue) => queue.push_back(job),
                None => {
                    self.waiting.insert(lane, VecDeque::new());
                    self.start(job, ctx);
                }
            }
        }
    }

    fn start(&mut self, job: Job, ctx: &Context) {
        let ctx = ctx.clone();
        self.in_flight.spawn(async move {
            let d = job.channel.deliver(&ctx, &job.notification).await;
            (job.id, d)
        });
    }

    /// The next delivery to finish; `None` when none is in flight.
    pub(crate) async fn next_finished(&mut self) -> Option<Finished> {
        self.in_flight.join_next().await
    }

    /// Deliveries in flight.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// A delivery of notification `id` finished as `d`: starts the next one in its lane, and
    /// returns the alert once every channel of that notification has finished.
    pub(crate) fn finished(&mut self, id: u64, d: &Delivery, ctx: &Context) -> Option<Delivered> {
        let lane = Lane::of(d);
        match self.waiting.get_mut(&lane).and_then(VecDeque::pop_front) {
            Some(next) => self.start(next, ctx),
            None => {
                self.waiting.remove(&lane);
            }
        }
        let pending = self.pending.get_mut(&id)?;
        pending.channels_left -= 1;
        if pending.channels_left > 0 {
            return None;
        }
        self.pending.remove(&id).map(|p| p.alert)
    }
}
