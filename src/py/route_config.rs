//! `RouteConfig`: a route's cache settings, given by keyword, checked once, then read by
//! `RouteCache(store, fallback, config)`. The store (the process's one `MemoryStore`) and the key
//! fallback (the encoder of values the key cannot take as they are) are what a route works
//! with, not how it is set up, so they stay beside the configuration rather than in it.

use pyo3::prelude::*;

use super::errors::config_error;
use crate::core::query::QueryKey;
use crate::http::storable::DEFAULT_STATUSES;

/// Where a route's entries live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// The in-process store only (the default).
    Memory,
    /// A remote backend. The in-process store only holds each new entry for the coalescing
    /// window, so that the requests coalesced behind a miss are answered from it; lookups
    /// never read it, so every process sees an invalidation at once.
    Remote,
    /// A remote backend behind an in-process tier: hits on the local copy, kept at most
    /// `local_ttl` seconds (the staleness bound when a coherence message is lost).
    Layered,
}

impl Tier {
    /// The tier a name gives, or a configuration error naming the choices.
    pub(super) fn parse(py: Python<'_>, name: &str) -> PyResult<Tier> {
        match name {
            "memory" => Ok(Tier::Memory),
            "remote" => Ok(Tier::Remote),
            "two-tier" => Ok(Tier::Layered),
            _ => Err(config_error(
                py,
                format!("tier must be memory, remote or two-tier, got {name:?}"),
            )),
        }
    }

    /// `local_ttl` as used: at least 0, and 0 (no local copies) when not finite.
    pub(super) fn local_ttl(seconds: f64) -> f64 {
        if seconds.is_finite() {
            seconds.max(0.0)
        } else {
            0.0
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Tier::Memory => "memory",
            Tier::Remote => "remote",
            Tier::Layered => "two-tier",
        }
    }
}

/// A route's cache settings (see the stub, `_core.pyi`, for each one).
#[pyclass(frozen, module = "oxicache._core")]
pub struct RouteConfig {
    /// The namespace label of the route's entries.
    #[pyo3(get)]
    pub namespace: String,
    /// The route label of its entries.
    #[pyo3(get)]
    pub route: String,
    /// Freshness lifetime in seconds: positive and finite.
    #[pyo3(get)]
    pub ttl: f64,
    /// Application-wide key prefix (`configure(prefix=...)`), so two apps sharing a store
    /// never read each other's entries.
    #[pyo3(get)]
    pub prefix: String,
    /// Seconds a stale entry may answer while one refresh runs (RFC 5861 §3); at least 0.
    #[pyo3(get)]
    pub stale_while_revalidate: f64,
    /// Seconds a stale entry may answer when the handler fails (RFC 5861 §4); at least 0.
    #[pyo3(get)]
    pub stale_if_error: f64,
    /// Request headers the key includes (and the response's Vary names).
    #[pyo3(get)]
    pub vary: Vec<String>,
    /// Statuses that may be stored.
    #[pyo3(get)]
    pub statuses: Vec<u16>,
    /// Directives added to the outgoing Cache-Control.
    #[pyo3(get)]
    pub cache_control: String,
    /// The route keys per user.
    #[pyo3(get)]
    pub per_user: bool,
    /// The route's responses are public (shared even for credentialed requests).
    #[pyo3(get)]
    pub public: bool,
    /// The route's answers must not be stored by shared caches downstream.
    #[pyo3(get)]
    pub private: bool,
    /// Generated ETags are weak (RFC 9110 §8.8.3).
    #[pyo3(get)]
    pub weak_etag: bool,
    /// Clients may force recomputation with `no-cache` (RFC 9111 §5.2.1.4).
    #[pyo3(get)]
    pub honor_no_cache: bool,
    /// The request's path and query are part of the key (False with a `key_builder`).
    #[pyo3(get)]
    pub url_in_key: bool,
    /// The name of the HIT/MISS label field.
    #[pyo3(get)]
    pub header_name: String,
    /// Where the entries live.
    pub(super) tier: Tier,
    /// Two tiers: the longest an entry from the backend stays in memory; at least 0.
    #[pyo3(get)]
    pub local_ttl: f64,
    /// Envelopes longer than this are zstd-compressed for the backend.
    #[pyo3(get)]
    pub compress_threshold: usize,
    /// Seconds before expiry in which a hit may refresh the entry (`core::refresh`); 0: never.
    #[pyo3(get)]
    pub refresh_ahead: f64,
    /// Stored responses carry `Expires` (RFC 9111 §5.3), the time their freshness ends.
    #[pyo3(get)]
    pub expires: bool,
    /// How the key holds the query string (`core::query`).
    pub(super) query: QueryKey,
}

#[pymethods]
impl RouteConfig {
    #[new]
    #[pyo3(signature = (*, namespace, route, ttl, prefix = String::new(), stale_while_revalidate = 0.0,
        stale_if_error = 0.0, vary = Vec::new(), statuses = DEFAULT_STATUSES.to_vec(),
        cache_control = String::new(), per_user = false, public = false, private = false, weak_etag = true,
        honor_no_cache = true, url_in_key = true, header_name = "x-cache".to_string(),
        tier = "memory", local_ttl = 5.0, compress_threshold = 1024, refresh_ahead = 0.0,
        expires = false, query_key = "raw", query_names = Vec::new()))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        namespace: String,
        route: String,
        ttl: f64,
        prefix: String,
        stale_while_revalidate: f64,
        stale_if_error: f64,
        vary: Vec<String>,
        statuses: Vec<u16>,
        cache_control: String,
        per_user: bool,
        public: bool,
        private: bool,
        weak_etag: bool,
        honor_no_cache: bool,
        url_in_key: bool,
        header_name: String,
        tier: &str,
        local_ttl: f64,
        compress_threshold: usize,
        refresh_ahead: f64,
        expires: bool,
        query_key: &str,
        query_names: Vec<String>,
    ) -> PyResult<Self> {
        let query = match query_key {
            "raw" => QueryKey::Raw,
            "sorted" => QueryKey::Sorted,
            "declared" => {
                QueryKey::Declared(query_names.into_iter().map(String::into_bytes).collect())
            }
            other => {
                return Err(config_error(
                    py,
                    format!("query_key must be raw, sorted or declared, got {other:?}"),
                ))
            }
        };
        if !(refresh_ahead.is_finite() && refresh_ahead >= 0.0) {
            return Err(config_error(
                py,
                format!("refresh_ahead must be 0 or more seconds, got {refresh_ahead}"),
            ));
        }
        let tier = Tier::parse(py, tier)?;
        if !(ttl.is_finite() && ttl > 0.0) {
            return Err(config_error(
                py,
                format!("ttl must be a positive number of seconds, got {ttl}"),
            ));
        }
        Ok(RouteConfig {
            namespace,
            route,
            ttl,
            prefix,
            stale_while_revalidate: stale_while_revalidate.max(0.0),
            stale_if_error: stale_if_error.max(0.0),
            vary,
            statuses,
            cache_control,
            per_user,
            public,
            private,
            weak_etag,
            honor_no_cache,
            url_in_key,
            header_name,
            tier,
            local_ttl: Tier::local_ttl(local_ttl),
            compress_threshold,
            refresh_ahead,
            expires,
            query,
        })
    }

    /// Where the route's entries live: `memory`, `remote` or `two-tier`.
    #[getter]
    fn tier(&self) -> &'static str {
        self.tier.name()
    }

    /// How the key holds the query string: `raw`, `sorted` or `declared`.
    #[getter]
    fn query_key(&self) -> &'static str {
        match self.query {
            QueryKey::Raw => "raw",
            QueryKey::Sorted => "sorted",
            QueryKey::Declared(_) => "declared",
        }
    }

    /// With `query_key="declared"`: the names of the query parameters the key holds.
    #[getter]
    fn query_names(&self) -> Vec<String> {
        match &self.query {
            QueryKey::Declared(names) => names
                .iter()
                .map(|n| String::from_utf8_lossy(n).into_owned())
                .collect(),
            _ => Vec::new(),
        }
    }
}
