//! Push mode's queue: the pushes the receiver has not taken yet, oldest
//! first, bounded in samples and in age; past a bound the oldest go.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::wire::TimeSeries;

/// One round's series, waiting to be sent.
#[derive(Debug)]
pub struct Batch {
    /// Its number: batches are numbered in the order they are made.
    pub id: u64,
    /// When it was made.
    pub made: Instant,
    /// Its series (one sample each).
    pub series: Vec<TimeSeries>,
}

impl Batch {
    /// Its samples.
    pub fn samples(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }
}

/// How a send ended, for [`Queue::finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The receiver took the batch.
    Taken,
    /// The receiver refused it for good.
    Refused,
    /// It failed; the batch waits for another try.
    Retry,
}

/// What became of the batch a send carried: its samples, counted once.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Settled {
    /// Samples the receiver took.
    pub sent: usize,
    /// Samples lost: refused, or dropped past a bound while being sent
    /// and then not taken.
    pub dropped: usize,
}

/// Batches waiting, oldest first.
#[derive(Debug)]
pub struct Queue {
    batches: VecDeque<Batch>,
    samples: usize,
    max_samples: usize,
    max_age: Duration,
    /// The batch being sent ([`Queue::sending`]).
    in_flight: Option<u64>,
    /// Its samples, if a bound dropped it while it was being sent: not
    /// counted as dropped until its send ends (the receiver may take it).
    dropped_in_flight: Option<usize>,
}

impl Queue {
    /// An empty queue holding at most `max_samples` samples, none older
    /// than `max_age`.
    pub fn new(max_samples: usize, max_age: Duration) -> Queue {
        Queue {
            batches: VecDeque::new(),
            samples: 0,
            max_samples,
            max_age,
            in_flight: None,
            dropped_in_flight: None,
        }
    }

    /// Applies new bounds (after a reload); returns the samples dropped.
    pub fn bound(&mut self, max_samples: usize, max_age: Duration, now: Instant) -> usize {
        self.max_samples = max_samples;
        self.max_age = max_age;
        self.trim(now)
    }

    /// Adds `batch` at the end; returns the samples dropped to stay within
    /// the bounds (the oldest first, `batch` itself if it alone is too big).
    pub fn push(&mut self, batch: Batch, now: Instant) -> usize {
        self.samples += batch.samples();
        self.batches.push_back(batch);
        self.trim(now)
    }

    /// Drops the oldest batches past either bound; returns their samples
    /// (but for the batch being sent: [`Queue::finish`] counts it).
    pub fn trim(&mut self, now: Instant) -> usize {
        let mut dropped = 0;
        while let Some(front) = self.batches.front() {
            let old = now.saturating_duration_since(front.made) > self.max_age;
            if !old && self.samples <= self.max_samples {
                break;
            }
            let Some(b) = self.pop() else { break };
            if self.in_flight == Some(b.id) {
                self.dropped_in_flight = Some(b.samples());
            } else {
                dropped += b.samples();
            }
        }
        dropped
    }

    /// The oldest batch.
    pub fn front(&self) -> Option<&Batch> {
        self.batches.front()
    }

    /// The oldest batch, marked as being sent until [`Queue::finish`].
    pub fn sending(&mut self) -> Option<&Batch> {
        self.in_flight = Some(self.batches.front()?.id);
        self.dropped_in_flight = None;
        self.batches.front()
    }

    /// Ends the send begun by [`Queue::sending`]: a batch taken or refused
    /// leaves the queue, counted sent or dropped; one to retry stays. A
    /// batch a bound dropped during the send counts as sent if the
    /// receiver took it after all, else as dropped: never both.
    pub fn finish(&mut self, end: End) -> Settled {
        let Some(id) = self.in_flight.take() else {
            return Settled::default();
        };
        let samples = match (self.dropped_in_flight.take(), end) {
            (Some(n), _) => n,
            (None, End::Retry) => return Settled::default(),
            (None, _) => match self.front() {
                Some(b) if b.id == id => self.pop().map_or(0, |b| b.samples()),
                _ => 0,
            },
        };
        match end {
            End::Taken => Settled {
                sent: samples,
                dropped: 0,
            },
            End::Refused | End::Retry => Settled {
                sent: 0,
                dropped: samples,
            },
        }
    }

    /// Removes the oldest batch.
    pub fn pop(&mut self) -> Option<Batch> {
        let b = self.batches.pop_front()?;
        self.samples -= b.samples();
        Some(b)
    }

    /// Samples waiting.
    pub fn samples(&self) -> usize {
        self.samples
    }
}

#[cfg(test)]
mod tests {
    use super::super::wire::Sample;
    use super::*;

    fn batch(made: Instant, samples: usize) -> Batch {
        let one = TimeSeries {
            labels: Vec::new(),
            samples: vec![Sample::default()],
        };
        Batch {
            id: samples as u64,
            made,
            series: vec![one; samples],
        }
    }

    #[test]
    fn the_oldest_go_first_past_the_sample_bound() {
        let t = Instant::now();
        let mut q = Queue::new(10, Duration::from_secs(3600));
        assert_eq!(q.push(batch(t, 4), t), 0);
        assert_eq!(q.push(batch(t, 4), t), 0);
        assert_eq!(q.samples(), 8);
        // 12 > 10: the first batch goes, whole.
        assert_eq!(q.push(batch(t, 4), t), 4);
        assert_eq!(q.samples(), 8);
        // A batch over the bound alone goes too, and everything before it.
        assert_eq!(q.push(batch(t, 11), t), 19);
        assert_eq!(q.samples(), 0);
        assert!(q.front().is_none());
    }

    #[test]
    fn batches_past_the_age_bound_go() {
        let t = Instant::now();
        let mut q = Queue::new(100, Duration::from_secs(60));
        q.push(batch(t, 3), t);
        q.push(
            batch(t + Duration::from_secs(30), 2),
            t + Duration::from_secs(30),
        );
        assert_eq!(q.trim(t + Duration::from_secs(60)), 0);
        assert_eq!(q.trim(t + Duration::from_secs(61)), 3);
        assert_eq!(q.samples(), 2);
        // A smaller bound after a reload applies at once.
        assert_eq!(
            q.bound(1, Duration::from_secs(60), t + Duration::from_secs(61)),
            2
        );
        assert_eq!(q.pop().map(|b| b.samples()), None);
    }

    /// Each send's batch is counted once: sent, dropped, or left to retry.
    #[test]
    fn a_send_settles_its_batch_once() {
        let t = Instant::now();
        let mut q = Queue::new(10, Duration::from_secs(60));
        q.push(batch(t, 3), t);
        q.push(batch(t, 5), t);
        // Taken: it leaves, counted sent.
        assert_eq!(q.sending().map(|b| b.id), Some(3));
        assert_eq!(
            q.finish(End::Taken),
            Settled {
                sent: 3,
                dropped: 0
            }
        );
        assert_eq!(q.samples(), 5);
        // To retry: it stays; refused: it leaves, counted dropped.
        assert_eq!(q.sending().map(|b| b.id), Some(5));
        assert_eq!(q.finish(End::Retry), Settled::default());
        assert_eq!(q.samples(), 5);
        q.sending();
        assert_eq!(
            q.finish(End::Refused),
            Settled {
                sent: 0,
                dropped: 5
            }
        );
        assert_eq!(q.samples(), 0);
        // No send begun: nothing to settle.
        assert_eq!(q.finish(End::Taken), Settled::default());
    }

    /// A batch the bound drops while it is being sent is counted by its
    /// send's end: sent if the receiver took it, dropped if not; the
    /// others the bound drops are counted at once.
    #[test]
    fn a_batch_dropped_while_sent_is_counted_by_its_send() {
        let t = Instant::now();
        for (end, settled) in [
            (
                End::Taken,
                Settled {
                    sent: 4,
                    dropped: 0,
                },
            ),
            (
                End::Retry,
                Settled {
                    sent: 0,
                    dropped: 4,
                },
            ),
            (
                End::Refused,
                Settled {
                    sent: 0,
                    dropped: 4,
                },
            ),
        ] {
            let mut q = Queue::new(10, Duration::from_secs(60));
            q.push(batch(t, 4), t);
            assert_eq!(q.sending().map(|b| b.id), Some(4));
            assert_eq!(q.push(batch(t, 6), t), 0);
            // 4 + 6 + 7 > 10: the batch in flight goes, uncounted, and
            // the next one too, counted.
            assert_eq!(q.push(batch(t, 7), t), 6);
            assert_eq!(q.samples(), 7);
            assert_eq!(q.finish(end), settled, "{end:?}");
            // The batch left in the queue is untouched.
            assert_eq!(q.front().map(|b| b.id), Some(7));
            assert_eq!(q.samples(), 7);
        }
    }
}
