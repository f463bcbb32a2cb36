//! Compiled template versions, kept for delivery.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use super::limits::{self, Progress, RenderLimits};
use super::render::Compiled;
use super::{RenderEvent, RenderInput, Rendered, TemplateContent, TemplateError};

/// Compiled templates by (template name, version), at most `capacity` of them (the oldest compiled is
/// dropped first). A hit takes a read lock for one lookup; compiling happens outside the lock.
///
/// Versions are immutable, but a deleted template's name can be used again and its versions then start
/// again at 1: an entry is only used while the content it was compiled from equals the content asked for
/// (a string comparison, far cheaper than compiling), otherwise it is compiled again.
pub struct TemplateCache {
    capacity: usize,
    /// What every render of a cached version runs under.
    limits: RenderLimits,
    inner: RwLock<Inner>,
    compilations: AtomicU64,
}

struct Entry {
    content: TemplateContent,
    compiled: Compiled,
}

#[derive(Default)]
struct Inner {
    /// name → version → entry; nested so that a lookup needs no owned key.
    entries: HashMap<String, HashMap<i32, Arc<Entry>>>,
    /// Insertion order, for eviction.
    order: VecDeque<(String, i32)>,
}

impl TemplateCache {
    /// A cache of at most `capacity` compiled versions (at least one), rendering under the default
    /// limits.
    pub fn new(capacity: usize) -> Self {
        Self::with_limits(capacity, RenderLimits::default())
    }

    /// A cache of at most `capacity` compiled versions (at least one), rendering under `limits`.
    pub fn with_limits(capacity: usize, limits: RenderLimits) -> Self {
        TemplateCache {
            capacity: capacity.max(1),
            limits,
            inner: RwLock::new(Inner::default()),
            compilations: AtomicU64::new(0),
        }
    }

    /// Renders version `version` of template `name`, whose parts are `content`, for `input`, on the
    /// calling thread (fuel and output capped, no deadline); compiles it the first time.
    pub fn render(
        &self,
        name: &str,
        version: i32,
        content: &TemplateContent,
        input: &RenderInput<'_>,
    ) -> Result<Rendered, TemplateError> {
        self.render_tracked(name, version, content, input, &Progress::default())
    }

    /// [`TemplateCache::render`] on tokio's blocking pool, given up after the limits' timeout: what
    /// delivery calls, so that no template can hold an async worker.
    pub async fn render_bounded(
        self: &Arc<Self>,
        name: String,
        version: i32,
        content: TemplateContent,
        event: RenderEvent,
    ) -> Result<Rendered, TemplateError> {
        let cache = Arc::clone(self);
        limits::off_thread(&self.limits, move |progress| {
            cache.render_tracked(&name, version, &content, &event.input(), progress)
        })
        .await
    }

    fn render_tracked(
        &self,
        name: &str,
        version: i32,
        content: &TemplateContent,
        input: &RenderInput<'_>,
        progress: &Progress,
    ) -> Result<Rendered, TemplateError> {
        let entry = match self.lookup(name, version, content) {
            Some(entry) => entry,
            None => self.insert(name, version, content),
        };
        entry.compiled.render(input, progress)
    }

    /// How many versions are cached.
    pub fn len(&self) -> usize {
        self.read().order.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many times a version was compiled (misses), since the cache was made.
    pub fn compilations(&self) -> u64 {
        self.compilations.load(Ordering::Relaxed)
    }

    fn lookup(&self, name: &str, version: i32, content: &TemplateContent) -> Option<Arc<Entry>> {
        let inner = self.read();
        let entry = inner.entries.get(name)?.get(&version)?;
        (entry.content == *content).then(|| Arc::clone(entry))
    }

    fn insert(&self, name: &str, version: i32, content: &TemplateContent) -> Arc<Entry> {
        let entry = Arc::new(Entry {
            content: content.clone(),
            compiled: Compiled::new(content, &self.limits),
        });
        self.compilations.fetch_add(1, Ordering::Relaxed);
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        let inner = &mut *inner;
        let versions = inner.entries.entry(name.to_owned()).or_default();
        match versions.get(&version) {
            // Another thread compiled the same content meanwhile: keep one copy.
            Some(existing) if existing.content == *content => return Arc::clone(existing),
            // Same key, other content (a deleted template's name used again): replace it in place.
            Some(_) => {
                versions.insert(version, Arc::clone(&entry));
                return entry;
            }
            None => {}
        }
        versions.insert(version, Arc::clone(&entry));
        inner.order.push_back((name.to_owned(), version));
        while inner.order.len() > self.capacity {
            let Some((old_name, old_version)) = inner.order.pop_front() else {
                break;
            };
            if let Some(versions) = inner.entries.get_mut(&old_name) {
                versions.remove(&old_version);
                if versions.is_empty() {
                    inner.entries.remove(&old_name);
                }
            }
        }
        entry
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // The map stays consistent even if a holder panicked: every change is a single insert/remove.
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for TemplateCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplateCache")
            .field("capacity", &self.capacity)
            .field("limits", &self.limits)
            .field("len", &self.len())
            .field("compilations", &self.compilations())
            .finish()
    }
}
