//! RFC 4028 session timers on the caller's leg: carriers and SBCs ask for them (`Supported:
//! timer` or `Require: timer`, `Session-Expires`) to find and clear calls whose other end
//! vanished. We take the interval asked for (or answer 422 below our Min-SE), let the caller
//! refresh when it can (`refresher=uac`), or refresh ourselves with a re-INVITE at half the
//! interval, and end a call whose refresher went silent before the session expires (§10: at
//! the interval less min(32 s, a third of it)). Our refreshes reuse the resumed-call
//! re-INVITE path (its ACK, its 481/408 handling).
//!
//! Agent legs do not negotiate timers: our INVITEs to agents do not offer `timer`, so an
//! agent's phone runs none towards us, and the agent side is watched by qualify and RTP timeout.

use super::manager::CallManager;
use super::phase::Wake;
use super::Leg;
use crate::acd::CallId;
use crate::events::Side;
use crate::sip::header::HeaderName;
use crate::sip::msg::{Headers, Request, Response};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Our Min-SE: the RFC 4028 floor (§4), below which refreshes would only cost messages.
pub(super) const MIN_SE: u32 = 90;

/// A leg's negotiated session timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SessionTimer {
    /// Session-Expires, seconds.
    pub interval: u32,
    /// We refresh (else the caller does, and we only watch).
    pub we_refresh: bool,
    /// The caller said it does `timer` (our 2xx then says `Require: timer`).
    pub peer_supports: bool,
    /// The last refresh (or the answer that started the session).
    pub since: Instant,
    /// A refresh of ours is out, not answered yet.
    pub pending: bool,
    /// Our refresh was refused (not 422): try again then.
    pub retry_at: Option<Instant>,
}

impl SessionTimer {
    /// When we send our refresh (half the interval, §7.4), if we are the refresher.
    pub fn refresh_at(&self) -> Option<Instant> {
        self.we_refresh
            .then(|| self.since + Duration::from_secs(u64::from(self.interval / 2)))
    }

    /// When a session the caller should have refreshed is over (§10).
    pub fn expires_at(&self) -> Instant {
        let margin = (self.interval / 3).min(32);
        self.since + Duration::from_secs(u64::from(self.interval - margin))
    }

    /// The next moment the timer needs attention: our refresh (or its retry), or the end of
    /// a session nobody refreshed (ours unanswered, or the caller's not come).
    pub fn due(&self) -> Instant {
        match (self.we_refresh && !self.pending, self.retry_at) {
            (true, Some(at)) => at,
            (true, None) => self.refresh_at().unwrap_or_else(|| self.expires_at()),
            (false, _) => self.expires_at(),
        }
    }

    /// The timer a request asked for, starting `now` (none when it asked for none).
    pub fn of(asked: Asked, now: Instant) -> Option<SessionTimer> {
        match asked {
            Asked::Timer {
                interval,
                we_refresh,
                peer_supports,
            } => Some(SessionTimer {
                interval,
                we_refresh,
                peer_supports,
                since: now,
                pending: false,
                retry_at: None,
            }),
            Asked::Nothing | Asked::TooBrief => None,
        }
    }

    /// `Session-Expires` as we write it; `we_are_uac`: in a request we send (where `uac`
    /// names us), else in our response to the caller's request.
    pub fn header(&self, we_are_uac: bool) -> String {
        let who = if self.we_refresh == we_are_uac {
            "uac"
        } else {
            "uas"
        };
        format!("{};refresher={who}", self.interval)
    }

    /// Adds what our 2xx to the caller's INVITE or UPDATE says about the timer.
    pub fn answer_headers(&self, headers: &mut Headers) {
        headers.push(HeaderName::SessionExpires, self.header(false));
        if self.peer_supports {
            headers.push(HeaderName::Require, "timer");
        }
    }
}

/// What a request from the caller asked about session timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Asked {
    /// No Session-Expires: no timer on this session (§9).
    Nothing,
    /// Below our Min-SE: 422 with ours.
    TooBrief,
    Timer {
        interval: u32,
        we_refresh: bool,
        peer_supports: bool,
    },
}

/// The extension tokens of `name` headers (`Supported`, `Require`) include `tag`.
pub(super) fn lists(req_headers: &Headers, name: &HeaderName, tag: &str) -> bool {
    req_headers
        .get_all(name)
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(tag))
}

/// `Session-Expires: 1800;refresher=uac` → (1800, Some("uac")).
fn session_expires(headers: &Headers) -> Option<(u32, Option<String>)> {
    let v = headers.get(&HeaderName::SessionExpires)?;
    let mut parts = v.split(';');
    let secs = parts.next()?.trim().parse().ok()?;
    let refresher = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("refresher")
            .then(|| v.trim().to_ascii_lowercase())
    });
    Some((secs, refresher))
}

/// Reads the caller's INVITE, re-INVITE or UPDATE (§9). An unreadable Session-Expires counts
/// as none. The caller's choice of refresher stands; with none, a caller that does `timer`
/// refreshes (it knows best when it is alive), else we do.
pub(super) fn asked(req: &Request) -> Asked {
    let Some((interval, refresher)) = session_expires(&req.headers) else {
        return Asked::Nothing;
    };
    if interval < MIN_SE {
        return Asked::TooBrief;
    }
    let peer_supports = lists(&req.headers, &HeaderName::Supported, "timer")
        || lists(&req.headers, &HeaderName::Require, "timer");
    let we_refresh = match refresher.as_deref() {
        Some("uas") => true,
        Some("uac") if peer_supports => false,
        _ => !peer_supports,
    };
    Asked::Timer {
        interval,
        we_refresh,
        peer_supports,
    }
}

/// The 422 for a Session-Expires below our Min-SE (§9).
pub(super) fn too_brief(req: &Request, tag: Option<&str>) -> Response {
    let mut r = Response::to(req, 422, tag);
    r.headers.push(HeaderName::MinSe, MIN_SE.to_string());
    r
}

impl CallManager {
    /// Our 2xx to the caller's INVITE goes out now (early media answered late): the session
    /// starts; adds its headers to `headers`.
    pub(super) fn session_start(&mut self, now: Instant, call: CallId, headers: &mut Headers) {
        let Some(t) = self
            .calls
            .get_mut(&call)
            .and_then(|c| c.caller.session.as_mut())
        else {
            return;
        };
        t.since = now;
        t.answer_headers(headers);
        let due = t.due();
        self.timers.arm(due, Wake::Session(call));
    }

    /// The caller's refresh in the dialog (re-INVITE or UPDATE) set the timer to `asked`,
    /// from `now` (none if it asked for none, §9); arms its wake-up.
    pub(super) fn session_set(&mut self, now: Instant, call: CallId, asked: Asked) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.caller.session = SessionTimer::of(asked, now);
        if let Some(t) = c.caller.session {
            self.timers.arm(t.due(), Wake::Session(call));
        }
    }

    /// A refresh of ours was answered 2xx: the answer may have changed the interval or who
    /// refreshes (a 2xx without Session-Expires leaves us refreshing, §7.4).
    pub(super) fn session_refreshed(&mut self, now: Instant, call: CallId, resp: &Response) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(mut t) = c.caller.session else {
            return;
        };
        if let Some((interval, refresher)) = session_expires(&resp.headers) {
            t.interval = interval.max(MIN_SE);
            // In our request `uac` is us.
            t.we_refresh = refresher.as_deref() != Some("uas");
        }
        t.since = now;
        t.pending = false;
        t.retry_at = None;
        c.caller.session = Some(t);
        self.timers.arm(t.due(), Wake::Session(call));
    }

    /// Our refresh was refused: with 422 we go again at the caller's Min-SE (§7.4); other
    /// refusals (a glare 491, a 500) are tried again a little later, while the session lasts.
    pub(super) fn session_refused(&mut self, now: Instant, call: CallId, resp: &Response) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(mut t) = c.caller.session else {
            return;
        };
        t.pending = false;
        if resp.code == 422 {
            let min = resp
                .headers
                .get(&HeaderName::MinSe)
                .and_then(|v| v.split(';').next()?.trim().parse::<u32>().ok())
                .unwrap_or(t.interval);
            t.interval = t.interval.max(min);
            c.caller.session = Some(t);
            return self.session_refresh(now, call);
        }
        let retry = now + Duration::from_secs(u64::from((t.interval / 3).min(32) / 2).max(2));
        t.retry_at = Some(retry.min(t.expires_at()));
        c.caller.session = Some(t);
        self.timers.arm(t.due(), Wake::Session(call));
    }

    /// The session timer of `call` woke up: refresh, or end a session nobody refreshed.
    pub(super) fn session_due(&mut self, now: Instant, call: CallId) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let Some(t) = c.caller.session else {
            return;
        };
        if t.due() > now {
            return; // an older wake-up: the session was refreshed since
        }
        if t.we_refresh && !t.pending {
            return self.session_refresh(now, call);
        }
        {
            let _g = c.span.enter();
            let why = if t.we_refresh {
                "our refresh was not answered"
            } else {
                "the caller did not refresh it"
            };
            warn!(interval = t.interval, why, "session expired");
        }
        self.end_call(now, call, Side::System, 408);
    }

    /// Sends our refresh: a re-INVITE with our SDP unchanged (same o= version, RFC 3264 §8).
    fn session_refresh(&mut self, now: Instant, call: CallId) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let Some(t) = c.caller.session else {
            return;
        };
        {
            let _g = c.span.enter();
            info!(interval = t.interval, "refreshing the session");
        }
        let body = c.caller.sdp.clone();
        let mut headers = Headers::default();
        headers.push(HeaderName::SessionExpires, t.header(true));
        headers.push(HeaderName::MinSe, MIN_SE.to_string());
        headers.push(
            HeaderName::Supported,
            crate::sip::endpoint::SUPPORTED.join(", "),
        );
        let Some(s) = self
            .calls
            .get_mut(&call)
            .and_then(|c| c.caller.session.as_mut())
        else {
            return;
        };
        // Not sent again until this one is answered; until then the session's end bounds it.
        s.pending = true;
        s.retry_at = None;
        let due = s.due();
        self.timers.arm(due, Wake::Session(call));
        self.send_reinvite(now, call, Leg::Caller, body, headers, true);
    }
}

#[cfg(test)]
#[path = "session_timer_tests.rs"]
mod tests;
