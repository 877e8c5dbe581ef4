//! Reading ahead: a log's events are parsed on a thread of their own while
//! the engine and the report work on earlier ones (parsing JSON is a large
//! part of an audit of short streams on the CPU). Chunks go through a
//! bounded channel, so memory stays bounded however far the reader could
//! run ahead; events and errors arrive in log order, as read directly.

use std::sync::mpsc;

use super::{EventSource, LogEvent};
use crate::model::Model;
use crate::Result;

/// Events per message: a channel send per event would cost more than the
/// parsing it overlaps.
const CHUNK_EVENTS: usize = 256;
/// Chunks in flight: how far the reader may run ahead.
const CHUNKS_AHEAD: usize = 8;

/// A chunk of events; `end` is set on the last one, with the reader's
/// error if it stopped on one.
struct Chunk {
    events: Vec<LogEvent>,
    end: Option<Result<()>>,
    progress: (u64, usize),
}

/// The source's events as another thread reads them.
pub struct Prefetched {
    model: Model,
    name: String,
    chunks: mpsc::Receiver<Chunk>,
    current: std::vec::IntoIter<LogEvent>,
    end: Option<Result<()>>,
    progress: (u64, usize),
}

/// Runs `f` on `source`'s events read ahead by a scoped thread. The thread
/// stops at the end of the log, at its first error, or as soon as `f`
/// returns (its receiver gone, a send fails).
pub fn read_ahead<S, T>(source: &mut S, f: impl FnOnce(&mut Prefetched) -> T) -> T
where
    S: EventSource + Send + ?Sized,
{
    let model = source.model().clone();
    let name = source.name().to_string();
    let progress = source.progress();
    std::thread::scope(|scope| {
        let (send, chunks) = mpsc::sync_channel(CHUNKS_AHEAD);
        scope.spawn(move || loop {
            let mut events = Vec::with_capacity(CHUNK_EVENTS);
            let end = loop {
                match source.next_event() {
                    Ok(Some(e)) => {
                        events.push(e);
                        if events.len() == CHUNK_EVENTS {
                            break None;
                        }
                    }
                    Ok(None) => break Some(Ok(())),
                    Err(e) => break Some(Err(e)),
                }
            };
            let last = end.is_some();
            let chunk = Chunk {
                events,
                end,
                progress: source.progress(),
            };
            if send.send(chunk).is_err() || last {
                return;
            }
        });
        let mut prefetched = Prefetched {
            model,
            name,
            chunks,
            current: Vec::new().into_iter(),
            end: None,
            progress,
        };
        let out = f(&mut prefetched);
        // the receiver goes first: a reader blocked on a full channel ends
        drop(prefetched);
        out
    })
}

impl EventSource for Prefetched {
    fn model(&self) -> &Model {
        &self.model
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn next_event(&mut self) -> Result<Option<LogEvent>> {
        loop {
            if let Some(e) = self.current.next() {
                return Ok(Some(e));
            }
            if let Some(end) = self.end.take() {
                // the end is reported once; after it the log is over
                self.end = Some(Ok(()));
                return end.map(|()| None);
            }
            match self.chunks.recv() {
                Ok(chunk) => {
                    self.current = chunk.events.into_iter();
                    self.end = chunk.end;
                    self.progress = chunk.progress;
                }
                // the reader panicked: its panic is re-raised when the scope ends
                Err(mpsc::RecvError) => return Ok(None),
            }
        }
    }

    fn progress(&self) -> (u64, usize) {
        self.progress
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::log::reader::StreamInfo;
    use crate::model::{HypothesisSpace, ObservationModel};
    use crate::Error;

    /// Streams numbered 1, 2, …; after `len` of them an error, or the end.
    struct Numbered {
        model: Model,
        len: usize,
        fail: bool,
        read: Arc<AtomicUsize>,
    }

    impl EventSource for Numbered {
        fn model(&self) -> &Model {
            &self.model
        }
        fn next_event(&mut self) -> Result<Option<LogEvent>> {
            let n = self.read.fetch_add(1, Ordering::SeqCst) + 1;
            if n > self.len {
                return if self.fail {
                    Err(Error::Setting(format!("bad event {n}")))
                } else {
                    Ok(None)
                };
            }
            Ok(Some(LogEvent::Stream(Arc::new(StreamInfo {
                id: n.to_string(),
                line: n,
                table: None,
                true_params: None,
            }))))
        }
        fn progress(&self) -> (u64, usize) {
            (self.read.load(Ordering::SeqCst) as u64, 0)
        }
    }

    fn source(len: usize, fail: bool) -> (Numbered, Arc<AtomicUsize>) {
        let read = Arc::new(AtomicUsize::new(0));
        let model = Model {
            hypotheses: HypothesisSpace::grid(2, 2).unwrap(),
            observation: ObservationModel::Bernoulli,
        };
        let s = Numbered {
            model,
            len,
            fail,
            read: read.clone(),
        };
        (s, read)
    }

    fn drain(p: &mut Prefetched) -> (Vec<usize>, Result<()>) {
        let mut lines = Vec::new();
        loop {
            match p.next_event() {
                Ok(Some(LogEvent::Stream(s))) => lines.push(s.line),
                Ok(Some(LogEvent::Step(_))) => unreachable!("streams only"),
                Ok(None) => return (lines, Ok(())),
                Err(e) => return (lines, Err(e)),
            }
        }
    }

    /// Every event in order across chunk boundaries, then the end, once
    /// and for good; an error comes after the events read before it.
    #[test]
    fn events_and_the_first_error_arrive_in_log_order() {
        for len in [0, 1, CHUNK_EVENTS - 1, CHUNK_EVENTS, 3 * CHUNK_EVENTS + 7] {
            let (mut s, _) = source(len, false);
            let (lines, end) = read_ahead(&mut s, |p| {
                let out = drain(p);
                assert!(p.next_event().unwrap().is_none(), "the end stays the end");
                assert_eq!(p.progress().0, len as u64 + 1, "progress of the last chunk");
                out
            });
            assert_eq!(lines, (1..=len).collect::<Vec<_>>());
            assert!(end.is_ok());

            let (mut s, _) = source(len, true);
            let (lines, end) = read_ahead(&mut s, drain);
            assert_eq!(lines, (1..=len).collect::<Vec<_>>());
            let message = end.unwrap_err().to_string();
            assert_eq!(message, format!("invalid setting: bad event {}", len + 1));
        }
    }

    /// A consumer that stops early (an engine error) does not wait for the
    /// whole log: the reader stops within the chunks it may have in flight.
    #[test]
    fn the_reader_stops_when_the_consumer_does() {
        let (mut s, read) = source(usize::MAX, false);
        let first = read_ahead(&mut s, drain_one);
        assert_eq!(first, 1);
        let n = read.load(Ordering::SeqCst);
        assert!(n <= (CHUNKS_AHEAD + 3) * CHUNK_EVENTS, "read {n} events");
    }

    fn drain_one(p: &mut Prefetched) -> usize {
        match p.next_event() {
            Ok(Some(LogEvent::Stream(s))) => s.line,
            _ => unreachable!("a stream first"),
        }
    }
}
