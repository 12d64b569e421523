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

/// Batches waiting, oldest first.
#[derive(Debug)]
pub struct Queue {
    batches: VecDeque<Batch>,
    samples: usize,
    max_samples: usize,
    max_age: Duration,
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

    /// Drops the oldest batches past either bound; returns their samples.
    pub fn trim(&mut self, now: Instant) -> usize {
        let mut dropped = 0;
        while let Some(front) = self.batches.front() {
            let old = now.saturating_duration_since(front.made) > self.max_age;
            if !old && self.samples <= self.max_samples {
                break;
            }
            dropped += self.pop().map_or(0, |b| b.samples());
        }
        dropped
    }

    /// The oldest batch.
    pub fn front(&self) -> Option<&Batch> {
        self.batches.front()
    }

    /// Removes the oldest batch if it is batch `id` (it may have been
    /// dropped while it was being sent).
    pub fn pop_if(&mut self, id: u64) -> Option<Batch> {
        if self.front()?.id != id {
            return None;
        }
        self.pop()
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

    /// A batch sent while the queue dropped it is not taken for another.
    #[test]
    fn only_the_batch_sent_is_removed() {
        let t = Instant::now();
        let mut q = Queue::new(100, Duration::from_secs(60));
        q.push(batch(t, 3), t);
        q.push(batch(t, 5), t);
        assert!(q.pop_if(5).is_none());
        assert_eq!(q.samples(), 8);
        assert_eq!(q.pop_if(3).map(|b| b.id), Some(3));
        assert_eq!(q.samples(), 5);
    }
}
