//! When the driver looks at backlogged links again without being woken: soon while they
//! move, backing off while they do not. Pure: it takes `now`.

use std::time::{Duration, Instant};

/// The first and the longest interval between looks.
const FIRST: Duration = Duration::from_millis(super::ROOM_WAIT_MS as u64);
const LONGEST: Duration = Duration::from_secs(1);

/// The look-again schedule for the backlogs the driver moves itself. A link's descriptor
/// says only "look", and another thread may have looked first, so the driver also looks
/// again on a timer; that timer doubles, up to [`LONGEST`], while the backlogs do not
/// shrink (a peer that stopped reading but still beacons can take twice the expired
/// timeout to be given up on, and the driver should not wake every 10 ms meanwhile).
#[derive(Debug)]
pub(crate) struct Retry {
    every: Duration,
    /// Messages in the backlogs at the last look.
    seen: usize,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            every: FIRST,
            seen: 0,
        }
    }
}

impl Retry {
    /// The driver looked at `now`: `watched` backlogs are its own to move, holding
    /// `total` messages together. When to look again (None: no backlog to look after).
    pub(crate) fn next(&mut self, now: Instant, watched: bool, total: usize) -> Option<Instant> {
        if !watched || total < self.seen {
            self.every = FIRST;
        } else {
            self.every = (self.every * 2).min(LONGEST);
        }
        self.seen = total;
        watched.then(|| now + self.every)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_while_nothing_moves_and_starts_over_when_it_does() {
        let t = Instant::now();
        let mut r = Retry::default();
        assert_eq!(r.next(t, false, 0), None);
        let gaps: Vec<Duration> = (0..9).map(|_| r.next(t, true, 500).unwrap() - t).collect();
        assert_eq!(gaps[0], FIRST * 2);
        assert!(gaps.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(*gaps.last().unwrap(), LONGEST);
        // The backlogs shrank: look again soon.
        assert_eq!(r.next(t, true, 499).unwrap() - t, FIRST);
        // None left to look after: the next backlog starts from the shortest.
        r.next(t, false, 0);
        assert_eq!(r.next(t, true, 0).unwrap() - t, FIRST * 2);
    }
}
