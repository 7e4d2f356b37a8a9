//! The state machine of one alert (a rule and one of its groups):
//!
//! ```text
//!            condition true                held for `for`
//!   ┌────┐ ─────────────────▶ ┌─────────┐ ───────────────▶ ┌────────┐ ──┐ every repeat_interval:
//!   │ ok │                    │ pending │                  │ firing │ ◀─┘ a reminder
//!   └────┘ ◀───────────────── └─────────┘                  └────────┘
//!     ▲      condition false                                  │ condition false (or reset)
//!     │                                                       ▼
//!     │          after RESOLVED_KEEP                    ┌──────────┐
//!     └──────────────────────────────────────────────── │ resolved │ ── condition true: pending
//!                                                       └──────────┘    (or firing if for = 0)
//! ```
//!
//! `for = 0` goes from ok (or resolved) straight to firing. Exactly one notification is
//! sent per firing, however many records keep matching, plus reminders and one resolve.
//! Every transition is persisted before its notification leaves (`owed` lists
//! notifications decided but not yet delivered, so a restart sends them instead of losing
//! them, and never sends one twice once it is delivered).

use faultline_schema::Timestamp;
use serde::{Deserialize, Serialize};

use crate::alert_config::NotifyEvent;

/// How long a resolved alert stays visible as `resolved` before it is forgotten.
pub(crate) const RESOLVED_KEEP_MS: i64 = 3_600_000;

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    /// The condition does not hold.
    #[default]
    Ok,
    /// It was resolved recently (kept for display for an hour).
    Resolved,
    /// The condition holds, for less than the rule's `for`.
    Pending,
    /// The condition held for `for`: notified.
    Firing,
}

impl AlertStatus {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Ok => "ok",
            AlertStatus::Resolved => "resolved",
            AlertStatus::Pending => "pending",
            AlertStatus::Firing => "firing",
        }
    }
}

/// The persisted state of one alert (a rule and one group).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    /// Where it is.
    pub status: AlertStatus,
    /// When the condition last became true (the start of pending, or of firing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_since: Option<Timestamp>,
    /// When it last started firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired_at: Option<Timestamp>,
    /// When it last resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Timestamp>,
    /// When the last firing notification or reminder was decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sent_at: Option<Timestamp>,
    /// Firing notifications and reminders decided in this firing.
    #[serde(default)]
    pub sent: u32,
    /// The condition's value at the last transition (records, cycles, failures, seconds).
    #[serde(default)]
    pub value: u64,
    /// The condition in words at the last transition.
    #[serde(default)]
    pub detail: String,
    /// Notifications decided but not yet delivered (sent again after a restart).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owed: Vec<NotifyEvent>,
    /// The notification held back while the alert was silenced or inhibited: the one that
    /// still matters (see `AlertState::hold`), sent once it no longer is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<NotifyEvent>,
    /// Why it resolved, when not by its condition (`reset`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve_reason: Option<String>,
    /// When it last changed.
    pub updated_at: Timestamp,
}

impl AlertState {
    /// A fresh alert in `ok`.
    pub(crate) fn new(now: Timestamp) -> AlertState {
        AlertState {
            status: AlertStatus::Ok,
            active_since: None,
            fired_at: None,
            resolved_at: None,
            last_sent_at: None,
            sent: 0,
            value: 0,
            detail: String::new(),
            owed: Vec::new(),
            held: None,
            resolve_reason: None,
            updated_at: now,
        }
    }
}

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// ok or resolved → pending.
    Pending,
    /// pending back to ok without firing.
    Cleared,
    /// → firing: notify.
    Firing,
    /// Still firing after `repeat_interval`: remind.
    Repeat,
    /// firing → resolved: notify.
    Resolved,
    /// resolved → ok, after [`RESOLVED_KEEP_MS`].
    Forgotten,
}

impl Transition {
    /// The notification it sends, if any.
    pub(crate) fn event(self) -> Option<NotifyEvent> {
        match self {
            Transition::Firing => Some(NotifyEvent::Firing),
            Transition::Repeat => Some(NotifyEvent::Repeat),
            Transition::Resolved => Some(NotifyEvent::Resolved),
            _ => None,
        }
    }
}

fn elapsed(now: Timestamp, since: Option<Timestamp>) -> i64 {
    since.map_or(i64::MAX, |s| now.unix_millis() - s.unix_millis())
}

impl AlertState {
    /// Moves the machine for the condition (`active`, its `value`) at `now`. `for_ms`: how
    /// long the condition must hold; `repeat_ms`: the reminder interval (`None`: no
    /// reminders). On a transition the caller sets [`AlertState::detail`].
    pub(crate) fn step(
        &mut self,
        active: bool,
        value: u64,
        now: Timestamp,
        for_ms: i64,
        repeat_ms: Option<i64>,
    ) -> Option<Transition> {
        let t = match (self.status, active) {
            (AlertStatus::Ok | AlertStatus::Resolved, true) => {
                self.active_since = Some(now);
                if for_ms <= 0 {
                    self.fire(now);
                    Transition::Firing
                } else {
                    self.status = AlertStatus::Pending;
                    Transition::Pending
                }
            }
            (AlertStatus::Pending, true) => {
                if elapsed(now, self.active_since) >= for_ms {
                    self.fire(now);
                    Transition::Firing
                } else {
                    return None;
                }
            }
            (AlertStatus::Pending, false) => {
                self.status = AlertStatus::Ok;
                self.active_since = None;
                Transition::Cleared
            }
            (AlertStatus::Firing, true) => match repeat_ms {
                Some(r) if elapsed(now, self.last_sent_at) >= r => {
                    self.last_sent_at = Some(now);
                    self.sent += 1;
                    Transition::Repeat
                }
                _ => return None,
            },
            (AlertStatus::Firing, false) => {
                self.status = AlertStatus::Resolved;
                self.resolved_at = Some(now);
                self.active_since = None;
                self.resolve_reason = None;
                Transition::Resolved
            }
            (AlertStatus::Resolved, false) => {
                if elapsed(now, self.resolved_at) >= RESOLVED_KEEP_MS {
                    self.status = AlertStatus::Ok;
                    Transition::Forgotten
                } else {
                    return None;
                }
            }
            (AlertStatus::Ok, false) => return None,
        };
        self.value = value;
        self.updated_at = now;
        if let Some(event) = t.event() {
            self.owed.push(event);
        }
        Some(t)
    }

    /// A manual reset: a firing alert resolves (and says so); anything else returns to ok.
    pub(crate) fn reset(&mut self, now: Timestamp) -> Option<Transition> {
        self.updated_at = now;
        self.active_since = None;
        if self.status == AlertStatus::Firing {
            self.status = AlertStatus::Resolved;
            self.resolved_at = Some(now);
            self.resolve_reason = Some("reset".into());
            self.owed.push(NotifyEvent::Resolved);
            return Some(Transition::Resolved);
        }
        self.status = AlertStatus::Ok;
        None
    }

    fn fire(&mut self, now: Timestamp) {
        self.status = AlertStatus::Firing;
        self.fired_at = Some(now);
        self.resolved_at = None;
        self.resolve_reason = None;
        self.last_sent_at = Some(now);
        self.sent = 1;
    }

    /// `event` was just decided while the alert is muted: it is not owed, and what receivers
    /// should hear once the alert is no longer muted is kept instead. A firing held and then
    /// resolved cancel out (receivers never heard of it); a reminder after a held firing is
    /// still that firing; a resolve after a firing receivers heard of is held as a resolve.
    pub(crate) fn hold(&mut self, event: NotifyEvent) {
        if let Some(i) = self.owed.iter().rposition(|e| *e == event) {
            self.owed.remove(i);
        }
        self.held = match (self.held, event) {
            (Some(NotifyEvent::Firing), NotifyEvent::Repeat) => Some(NotifyEvent::Firing),
            (Some(NotifyEvent::Firing), NotifyEvent::Resolved) => None,
            (_, e) => Some(e),
        };
    }

    /// `event` was just decided (and is owed) while the alert is not muted: if something was
    /// held, the two become the one notification that matters (a reminder after a held
    /// firing is that firing; a resolve after a held firing is nothing), owed instead.
    pub(crate) fn merge_held(&mut self, event: NotifyEvent) -> Option<NotifyEvent> {
        let Some(held) = self.held.take() else {
            return Some(event);
        };
        let out = match (held, event) {
            (NotifyEvent::Firing, NotifyEvent::Repeat) => Some(NotifyEvent::Firing),
            (NotifyEvent::Firing, NotifyEvent::Resolved) => None,
            (_, e) => Some(e),
        };
        if let Some(i) = self.owed.iter().rposition(|e| *e == event) {
            self.owed.remove(i);
        }
        self.owed.extend(out);
        out
    }

    /// The alert is no longer muted: the one notification owed for what was held, if any
    /// still matters now (a held firing or reminder while it still fires, a held resolve
    /// while it does not). Reminders count again from `now`.
    pub(crate) fn release(&mut self, now: Timestamp) -> Option<NotifyEvent> {
        let held = self.held.take()?;
        let firing = self.status == AlertStatus::Firing;
        let event = match held {
            NotifyEvent::Firing | NotifyEvent::Repeat if firing => {
                self.last_sent_at = Some(now);
                held
            }
            NotifyEvent::Resolved if !firing => held,
            _ => return None,
        };
        self.owed.push(event);
        Some(event)
    }

    /// Marks `event` delivered (on every channel); `true` if it was owed.
    pub(crate) fn delivered(&mut self, event: NotifyEvent) -> bool {
        match self.owed.iter().position(|e| *e == event) {
            Some(i) => {
                self.owed.remove(i);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_unix_millis(s * 1000)
    }

    #[test]
    fn for_zero_fires_at_once_and_resolves_once() {
        let mut a = AlertState::new(at(0));
        assert_eq!(a.step(true, 1, at(1), 0, None), Some(Transition::Firing));
        for s in 2..10 {
            assert_eq!(a.step(true, 1, at(s), 0, None), None, "dedup at {s}");
        }
        assert_eq!(
            a.step(false, 0, at(10), 0, None),
            Some(Transition::Resolved)
        );
        assert_eq!(a.step(false, 0, at(11), 0, None), None);
        assert_eq!(a.owed, [NotifyEvent::Firing, NotifyEvent::Resolved]);
        assert_eq!((a.fired_at, a.resolved_at), (Some(at(1)), Some(at(10))));
    }

    #[test]
    fn for_holds_in_pending_and_a_blip_does_not_fire() {
        let mut a = AlertState::new(at(0));
        assert_eq!(
            a.step(true, 1, at(0), 30_000, None),
            Some(Transition::Pending)
        );
        assert_eq!(a.step(true, 1, at(29), 30_000, None), None);
        assert_eq!(
            a.step(false, 0, at(29), 30_000, None),
            Some(Transition::Cleared)
        );
        assert_eq!(a.status, AlertStatus::Ok);
        assert_eq!(
            a.step(true, 1, at(40), 30_000, None),
            Some(Transition::Pending)
        );
        assert_eq!(a.step(true, 1, at(69), 30_000, None), None);
        assert_eq!(
            a.step(true, 1, at(70), 30_000, None),
            Some(Transition::Firing)
        );
        assert!(a.owed == [NotifyEvent::Firing]);
    }

    #[test]
    fn reminders_every_repeat_interval_while_firing() {
        let mut a = AlertState::new(at(0));
        a.step(true, 1, at(0), 0, Some(60_000));
        assert_eq!(a.step(true, 1, at(59), 0, Some(60_000)), None);
        assert_eq!(
            a.step(true, 1, at(60), 0, Some(60_000)),
            Some(Transition::Repeat)
        );
        assert_eq!(a.step(true, 1, at(119), 0, Some(60_000)), None);
        assert_eq!(
            a.step(true, 1, at(120), 0, Some(60_000)),
            Some(Transition::Repeat)
        );
        assert_eq!(a.sent, 3);
    }

    #[test]
    fn resolved_refires_and_is_forgotten_after_an_hour() {
        let mut a = AlertState::new(at(0));
        a.step(true, 1, at(0), 0, None);
        a.step(false, 0, at(5), 0, None);
        assert_eq!(a.step(true, 1, at(6), 0, None), Some(Transition::Firing));
        a.step(false, 0, at(7), 0, None);
        assert_eq!(a.step(false, 0, at(7 + 3599), 0, None), None);
        assert_eq!(
            a.step(false, 0, at(7 + 3600), 0, None),
            Some(Transition::Forgotten)
        );
        assert_eq!(a.status, AlertStatus::Ok);
    }

    #[test]
    fn reset_resolves_a_firing_alert_with_a_reason() {
        let mut a = AlertState::new(at(0));
        a.step(true, 1, at(0), 0, None);
        assert!(a.delivered(NotifyEvent::Firing));
        assert!(!a.delivered(NotifyEvent::Firing), "delivered once");
        assert_eq!(a.reset(at(3)), Some(Transition::Resolved));
        assert_eq!(a.resolve_reason.as_deref(), Some("reset"));
        assert_eq!(a.owed, [NotifyEvent::Resolved]);
        let mut p = AlertState::new(at(0));
        p.step(true, 1, at(0), 10_000, None);
        assert_eq!(p.reset(at(1)), None, "pending just clears");
        assert_eq!(p.status, AlertStatus::Ok);
    }

    #[test]
    fn held_notifications_collapse_into_the_one_that_matters() {
        // Fired while muted, reminded, still firing: one firing when released.
        let mut a = AlertState::new(at(0));
        a.step(true, 1, at(0), 0, Some(10_000));
        a.hold(NotifyEvent::Firing);
        a.step(true, 1, at(10), 0, Some(10_000));
        a.hold(NotifyEvent::Repeat);
        assert!(a.owed.is_empty());
        assert_eq!(a.release(at(20)), Some(NotifyEvent::Firing));
        assert_eq!(a.owed, [NotifyEvent::Firing]);
        assert_eq!(a.release(at(20)), None, "once");
        // Fired and resolved while muted: nothing.
        let mut b = AlertState::new(at(0));
        b.step(true, 1, at(0), 0, None);
        b.hold(NotifyEvent::Firing);
        b.step(false, 0, at(5), 0, None);
        b.hold(NotifyEvent::Resolved);
        assert_eq!(b.release(at(20)), None);
        assert!(b.owed.is_empty());
        // Heard of, then resolved while muted: the resolve.
        let mut c = AlertState::new(at(0));
        c.step(true, 1, at(0), 0, None);
        c.delivered(NotifyEvent::Firing);
        c.step(false, 0, at(5), 0, None);
        c.hold(NotifyEvent::Resolved);
        assert_eq!(c.release(at(20)), Some(NotifyEvent::Resolved));
    }
}
