//! Requests in flight, bounded as kube-apiserver's `--max-requests-inflight` and
//! `--max-mutating-requests-inflight` bound them, and long-running requests (watches, followed
//! streams) too: a request beyond its class's limit is answered 429 with `Retry-After`.
//! `system:masters` (the admin, and Adamant's own controllers in process) are never held back,
//! as kube-apiserver exempts them; health checks neither. A request holds its place until its
//! response body is done (a watch: until it ends).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Method;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How many requests of each class may be in flight at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InflightLimits {
    /// Reads (get, list, discovery, and every other GET that is not long-running).
    pub read_only: usize,
    /// Writes (create, update, patch, delete).
    pub mutating: usize,
    /// Watches and followed streams.
    pub long_running: usize,
}

impl Default for InflightLimits {
    fn default() -> InflightLimits {
        InflightLimits {
            read_only: 400,
            mutating: 200,
            long_running: 2000,
        }
    }
}

/// A request's class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    ReadOnly,
    Mutating,
    LongRunning,
}

impl Class {
    /// The class of a request by its method, path segments and query.
    pub(crate) fn of(method: &Method, segments: &[String], query: &crate::http::Query) -> Class {
        let watch_path = segments
            .iter()
            .take(4)
            .any(|s| s == "watch" || s == "proxy");
        if watch_path || query.flag("watch") || query.flag("follow") {
            return Class::LongRunning;
        }
        match *method {
            Method::GET | Method::HEAD | Method::OPTIONS => Class::ReadOnly,
            _ => Class::Mutating,
        }
    }
}

/// The places of each class.
#[derive(Debug)]
pub(crate) struct Inflight {
    read_only: Arc<Semaphore>,
    mutating: Arc<Semaphore>,
    long_running: Arc<Semaphore>,
}

impl Inflight {
    pub(crate) fn new(limits: InflightLimits) -> Inflight {
        Inflight {
            read_only: Arc::new(Semaphore::new(limits.read_only)),
            mutating: Arc::new(Semaphore::new(limits.mutating)),
            long_running: Arc::new(Semaphore::new(limits.long_running)),
        }
    }

    /// A place for a request of `class`, if one is free.
    pub(crate) fn admit(&self, class: Class) -> Option<OwnedSemaphorePermit> {
        let places = match class {
            Class::ReadOnly => &self.read_only,
            Class::Mutating => &self.mutating,
            Class::LongRunning => &self.long_running,
        };
        places.clone().try_acquire_owned().ok()
    }
}

/// A response body holding its request's place until it is done or dropped.
pub(crate) struct Holding<B> {
    body: B,
    _place: OwnedSemaphorePermit,
}

impl<B> Holding<B> {
    pub(crate) fn new(body: B, place: OwnedSemaphorePermit) -> Holding<B> {
        Holding {
            body,
            _place: place,
        }
    }
}

impl<B> hyper::body::Body for Holding<B>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_classed_by_verb_and_long_running_markers() {
        let check = |method: Method, path: &str, query: &str, expected: Class| {
            let segments = crate::http::query::segments(path);
            let query = crate::http::Query::parse(query);
            assert_eq!(
                Class::of(&method, &segments, &query),
                expected,
                "{method} {path}?{query:?}"
            );
        };
        check(Method::GET, "/api/v1/pods", "", Class::ReadOnly);
        check(Method::GET, "/version", "", Class::ReadOnly);
        check(
            Method::GET,
            "/api/v1/pods",
            "watch=true",
            Class::LongRunning,
        );
        check(Method::GET, "/api/v1/watch/pods", "", Class::LongRunning);
        check(
            Method::GET,
            "/edgenode/u/log",
            "follow=true",
            Class::LongRunning,
        );
        check(Method::POST, "/api/v1/namespaces", "", Class::Mutating);
        check(Method::PATCH, "/api/v1/namespaces/a", "", Class::Mutating);
        check(Method::DELETE, "/api/v1/namespaces/a", "", Class::Mutating);
    }

    #[test]
    fn places_are_given_back_when_the_holder_goes() {
        let inflight = Inflight::new(InflightLimits {
            read_only: 1,
            mutating: 0,
            long_running: 1,
        });
        let first = inflight.admit(Class::ReadOnly).expect("a free place");
        assert!(inflight.admit(Class::ReadOnly).is_none());
        assert!(inflight.admit(Class::Mutating).is_none(), "no place at all");
        assert!(
            inflight.admit(Class::LongRunning).is_some(),
            "classes apart"
        );
        drop(first);
        assert!(inflight.admit(Class::ReadOnly).is_some());
    }
}
