//! Who reads the mailbox: the driver thread, or an application thread waiting for events.
//!
//! Pure: no sockets, no clock; every decision takes `now`. [`Core`](super::Core) holds
//! one [`Handoff`] under its lock; the driver loop and `Node::next_event` ask it.
//!
//! ```text
//!  application thread (Node::next_event)          driver thread (its loop)
//!  ─────────────────────────────────────          ────────────────────────
//!  app_waits(deadline) ──► reader: App, in poll   plan(now): leave the mailbox's fd
//!       │  sleeps on the mailbox's fd             out of the wait; look again at
//!       │  and the event queue's bell             deadline + TIMEOUT_GRACE
//!       ▼                                          (past it: a starved thread; the
//!  app_left(now, with_event) ─► reader: App,       driver watches the fd too)
//!       │  away since now; rings the driver
//!       │  if it took an event and the driver      plan(now) within APP_GRACE of
//!       │  sleeps past 2 x APP_GRACE without       leaving: still App's; look again
//!       │  the fd                                  at left + APP_GRACE
//!       ▼
//!  back within APP_GRACE: still the reader        plan(now) later: reader: Driver;
//!                                                  it reads the mailbox at once
//!  a thread in flush/ping: release_idle() ───────► reader: Driver at once
//!  stopping: plan(now, stopping) ────────────────► the driver watches the fd too
//!  app_waits_off_mailbox() ◄── the thread waits on the event queue only
//!  closing: close() ─────────────────────────────► nobody may start polling the fd
//! ```
//!
//! Invariant: the driver's wait includes the mailbox's descriptor whenever no application
//! thread is the reader, so mail is never left unseen; while one is, the driver comes
//! back by a deadline that [`Handoff::plan`] returns.

use std::time::{Duration, Instant};

/// How long an application thread may stay out of `Node::next_event` after it took an
/// event and still be the mailbox's reader: a loop that handles each event and comes
/// back keeps it; one that stops reading hands the mailbox back to the driver after this.
/// It also spaces the doorbell rings that make the driver look: at most one per grace
/// while events flow.
pub(crate) const APP_GRACE: Duration = Duration::from_millis(100);

/// How long after an application thread's wait times out the driver looks whether it
/// came back. A thread that polls with a timeout usually does at once; looking after
/// each timeout would wake the driver as often as the thread. So a thread that leaves on
/// a timeout may keep the mailbox unread up to this long: short beside the evasive
/// timeout, and the driver wakes for every peer's beacon anyway.
pub(crate) const TIMEOUT_GRACE: Duration = Duration::from_millis(500);

/// The hand-off's state. See the module documentation.
#[derive(Debug)]
pub(crate) struct Handoff {
    /// An application thread is the mailbox's reader (it may be away, within the grace).
    app_reads: bool,
    /// That thread is inside `Node::next_event` now (it may be asleep in `poll`).
    app_in_poll: bool,
    /// When it last left `Node::next_event`.
    app_left_at: Instant,
    /// When it will leave at the latest (its timeout; None: it waits for an event).
    app_deadline: Option<Instant>,
    /// The driver's current wait includes the mailbox.
    driver_watching: bool,
    /// When the driver's current wait ends at the latest (None: only on input).
    driver_wake_at: Option<Instant>,
    /// Shutting down: nobody may start waiting on the mailbox (it is about to close).
    closing: bool,
}

/// What the driver does with the mailbox this turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The application thread stayed away: the mailbox is the driver's again, and it
    /// reads it now (mail may have come while nobody looked).
    pub read_now: bool,
    /// The driver's wait includes the mailbox's descriptor.
    pub watch: bool,
    /// When the driver must look again even without input (None: no need).
    pub look_again: Option<Instant>,
}

impl Handoff {
    pub(crate) fn new(now: Instant) -> Handoff {
        Handoff {
            app_reads: false,
            app_in_poll: false,
            app_left_at: now,
            app_deadline: None,
            driver_watching: true,
            driver_wake_at: None,
            closing: false,
        }
    }

    /// An application thread is about to sleep on the mailbox's descriptor until
    /// `deadline`: it becomes the reader. False when closing: it must not.
    pub(crate) fn app_waits(&mut self, deadline: Option<Instant>) -> bool {
        if self.closing {
            self.app_reads = false;
            return false;
        }
        self.app_reads = true;
        self.app_in_poll = true;
        self.app_deadline = deadline;
        true
    }

    /// The application thread left `Node::next_event` at `now`, with an event or not,
    /// perhaps leaving mail unread (`mail_pending`). True if the driver must be woken: the
    /// thread may be busy for long, and the driver's wait leaves the mailbox out for
    /// longer than twice the grace, so it would not notice in time.
    pub(crate) fn app_left(&mut self, now: Instant, with_event: bool, mail_pending: bool) -> bool {
        self.app_in_poll = false;
        self.app_left_at = now;
        (with_event || mail_pending)
            && self.app_reads
            && !self.driver_watching
            && self.driver_wake_at.is_none_or(|t| t > now + 2 * APP_GRACE)
    }

    /// A thread that is not waiting for events needs the mailbox read promptly (its
    /// flush or ping waits for an answer): unless a thread is in `next_event` now, the
    /// mailbox is the driver's at once. The caller rings the driver.
    pub(crate) fn release_idle(&mut self) {
        if !self.app_in_poll {
            self.app_reads = false;
        }
    }

    /// The driver plans its next wait at `now`; `stopping`: it waits for the peers'
    /// answers to its last PINGs and reads them itself.
    pub(crate) fn plan(&mut self, now: Instant, stopping: bool) -> Plan {
        let mut plan = Plan {
            read_now: false,
            watch: false,
            look_again: None,
        };
        if self.app_reads {
            if self.app_in_poll {
                // Asleep in poll: look again once it should have left (a deadline too far
                // to add is none).
                plan.look_again = self.app_deadline.and_then(|d| d.checked_add(TIMEOUT_GRACE));
            } else if self.app_left_at + APP_GRACE > now {
                plan.look_again = Some(self.app_left_at + APP_GRACE);
            } else {
                // Away past the grace: no longer reading.
                self.app_reads = false;
                plan.read_now = true;
            }
        }
        if self.app_reads && self.app_in_poll && plan.look_again.is_some_and(|t| t <= now) {
            // The thread should have left its wait long ago (it is starved or stopped):
            // watch the mailbox too rather than wake at once forever.
            plan.look_again = None;
            plan.watch = true;
        } else {
            plan.watch = !self.app_reads || stopping;
        }
        self.driver_watching = plan.watch;
        plan
    }

    /// The driver sleeps until `t` at the latest (after [`Handoff::plan`]).
    pub(crate) fn driver_sleeps_until(&mut self, t: Option<Instant>) {
        self.driver_wake_at = t;
    }

    /// The node is stopping: the application thread waits on the event queue only, and
    /// the driver reads the mailbox (see [`Handoff::plan`]). The thread is no longer the
    /// reader nor in a poll of the mailbox, so [`Handoff::close`] need not wait for it.
    pub(crate) fn app_waits_off_mailbox(&mut self) {
        self.app_reads = false;
        self.app_in_poll = false;
    }

    /// Shutting down: no thread may start polling the mailbox. True while one still is
    /// (the caller wakes it and asks again); the mailbox is the driver's from here.
    pub(crate) fn close(&mut self) -> bool {
        self.closing = true;
        let polling = self.app_reads && self.app_in_poll;
        if !polling {
            self.app_reads = false;
        }
        polling
    }

    /// Gives up waiting for a polling thread (after [`Handoff::close`] said one was).
    pub(crate) fn force_close(&mut self) {
        self.closing = true;
        self.app_reads = false;
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_driver_reads_until_an_application_thread_waits() {
        let t0 = Instant::now();
        let mut h = Handoff::new(t0);
        let p = h.plan(t0, false);
        assert_eq!(
            p,
            Plan {
                read_now: false,
                watch: true,
                look_again: None
            }
        );
    }

    #[test]
    fn a_waiting_thread_keeps_the_mailbox_and_the_driver_looks_after_its_deadline() {
        let t0 = Instant::now();
        let mut h = Handoff::new(t0);
        assert!(h.app_waits(Some(t0 + ms(100))));
        let p = h.plan(t0, false);
        assert!(!p.watch && !p.read_now);
        assert_eq!(p.look_again, Some(t0 + ms(100) + TIMEOUT_GRACE));
        // Blocked without a deadline: the driver needs no look-again for it.
        assert!(h.app_waits(None));
        assert_eq!(h.plan(t0, false).look_again, None);
    }

    #[test]
    fn a_thread_that_comes_back_within_the_grace_stays_the_reader() {
        let t0 = Instant::now();
        let mut h = Handoff::new(t0);
        h.app_waits(None);
        h.app_left(t0 + ms(10), true, false);
        let p = h.plan(t0 + ms(50), false);
        assert!(!p.watch && !p.read_now);
        assert_eq!(p.look_again, Some(t0 + ms(10) + APP_GRACE));
        h.app_waits(None);
        assert!(!h.plan(t0 + ms(300), false).watch, "back in time");
    }

    #[test]
    fn a_thread_that_stays_away_hands_the_mailbox_back_and_it_is_read_at_once() {
        let t0 = Instant::now();
        let mut h = Handoff::new(t0);
        h.app_waits(None);
        h.app_left(t0, true, false);
        let p = h.plan(t0 + APP_GRACE, false);
        assert_eq!(
            p,
            Plan {
                read_now: true,
                watch: true,
                look_again: None
            }
        );
        // And from then on the driver keeps it.
        let p = h.plan(t0 + APP_GRACE * 10, false);
        assert!(p.watch && !p.read_now);
    }

    #[test]
    fn a_starved_thread_past_its_deadline_makes_the_driver_watch_instead_of_spinning() {
        let t0 = Instant::now();
        let mut h = Handoff::new(t0);
        h.app_waits(Some(t0 + ms(10)));
        let p = h.plan(t0 + ms(10) + TIMEOUT_GRACE, false);
        assert!(p.watch);
        assert_eq!(p.look_again, None, "no look-again in the past");
    }

    #[test]
    fn leaving_with_an_event_rings_only_a_driver_that_would_not_look_in_time() {
        let t0 = Instant::now();
        let mut h = Handoff::new(t0);
        h.app_waits(None);
        h.plan(t0, false);
        h.driver_sleeps_until(None);
        assert!(
            h.app_left(t0, true, false),
            "the driver sleeps without the mailbox"
        );
        h.app_waits(None);
        h.plan(t0, false);
        h.driver_sleeps_until(Some(t0 + APP_GRACE));
        assert!(
            !h.app_left(t0, true, false),
            "it looks within the grace anyway"
        );
        h.app_waits(None);
        h.plan(t0, false);
        h.driver_sleeps_until(None);
        assert!(!h.app_left(t0, false, false), "a timeout rings nobody");
        assert!(
            h.app_left(t0, false, true),
            "mail left at the batch limit does"
        );
    }

    #[test]
    fn stopping_makes_the_driver_watch_even_while_a_thread_reads() {
        let t0 = Instant::now();
        let mut h = Handoff::new(t0);
        h.app_waits(None);
        assert!(h.plan(t0, true).watch);
    }

    #[test]
    fn release_idle_hands_back_only_a_mailbox_nobody_polls() {
        let t0 = Instant::now();
        let mut h = Handoff::new(t0);
        h.app_waits(None);
        h.release_idle();
        assert!(!h.plan(t0, false).watch, "a thread is in poll");
        h.app_left(t0, true, false);
        h.release_idle();
        let p = h.plan(t0, false);
        assert!(p.watch && !p.read_now);
    }

    #[test]
    fn closing_waits_for_a_polling_thread_and_then_no_thread_may_wait() {
        let t0 = Instant::now();
        let mut h = Handoff::new(t0);
        h.app_waits(None);
        assert!(h.close(), "a thread still polls");
        h.app_left(t0, false, false);
        assert!(!h.close());
        assert!(!h.app_waits(None), "no new wait on a closing mailbox");
        assert!(h.is_closing());
    }

    #[test]
    fn a_thread_waiting_off_the_mailbox_while_stopping_does_not_hold_up_the_close() {
        // An application thread asleep on the mailbox when the stop begins; woken, it
        // waits on the event queue alone while the driver reads the mailbox. Before,
        // it stayed counted as polling and the close gave up on it only after 5 s, which
        // delayed the port-0 beacon past short expired timeouts (lab z6).
        let t0 = Instant::now();
        let mut h = Handoff::new(t0);
        h.app_waits(None);
        h.app_waits_off_mailbox();
        let p = h.plan(t0, true);
        assert!(p.watch, "the stopping driver watches the mailbox");
        assert!(!h.close(), "nobody polls the mailbox");
        assert!(!h.app_waits(None));
    }
}
