//! One user's notices: what the page of the user an alert concerns is shown (`POST
//! /notices`, the reporter's `onNotice`), while the dashboard sees every notice in the
//! [`AlertsView`](crate::AlertsView).
//!
//! A notice is a firing alert of a rule with the `notice` action whose group has
//! `meta.user` equal to the asked user's stored id (the shipped `ui_user_errors`, grouped by
//! `meta.user`). Only that id's alerts are read, never a list; a silenced or inhibited alert
//! shows nothing (a notice on the user's page is a notification too); and the summary shows
//! the id the page sent, not the stored (re-keyed) one, which stays with the server and the
//! dashboard.

use faultline_schema::Timestamp;
use serde::Serialize;

use crate::alert_config::Severity;
use crate::eval::Evaluator;
use crate::rule::Action;

/// The group label of a rule grouped by user (`group_by = "meta.user"`).
const USER_LABEL: &str = "meta.user";

/// Whose notices to read, and for which key.
#[derive(Debug, Clone)]
pub struct UserNoticeQuery {
    /// The user's stored id (`meta.user` as the server re-keyed it): what groups hold.
    pub stored: String,
    /// The id the page sent (`u_` and 16 hex characters), shown in summaries instead.
    pub shown: String,
    /// The services the asking key may write, `None` for all: only rules whose filter names
    /// one of them, or no service, are read.
    pub services: Option<Vec<String>>,
}

/// A notice as the page of the user it concerns sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserNotice {
    /// The rule.
    pub rule: String,
    /// The rule's severity.
    pub severity: Severity,
    /// The rule's summary, with the id the page sent in place of the stored one.
    pub message: String,
    /// When it started firing.
    pub since: Option<Timestamp>,
}

/// The notices for `query` at `now`, in rule order.
pub(crate) fn user_notices(
    engine: &Evaluator,
    query: &UserNoticeQuery,
    now: Timestamp,
) -> Vec<UserNotice> {
    let stored_label = format!("{USER_LABEL}={}", query.stored);
    let shown_label = format!("{USER_LABEL}={}", query.shown);
    let mut out = Vec::new();
    for (idx, rule) in engine.rules().enumerate() {
        let services = &rule.filter.services;
        let in_scope = query.services.as_ref().is_none_or(|allowed| {
            services.is_empty() || services.iter().any(|s| allowed.contains(s))
        });
        if !in_scope || !rule.has_action(&Action::Notice) {
            continue;
        }
        for g in engine.firing_with(idx, USER_LABEL, &query.stored, now) {
            if g.silenced_by.is_some() || g.inhibited_by.is_some() {
                continue;
            }
            let group = g.group.replace(&stored_label, &shown_label);
            out.push(UserNotice {
                rule: rule.name.clone(),
                severity: rule.severity,
                message: rule.render_summary(&group, g.current.value, &g.current.detail),
                since: g.state.fired_at,
            });
        }
    }
    out
}
