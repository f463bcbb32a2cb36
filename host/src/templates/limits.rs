//! Bounds on rendering: a template is code any API client can store, and it is run for every event of
//! its type, so no render may run, grow or block without limit.
//!
//! Three limits, each per render of one part (`from`, `subject`, `text`, `html`):
//! - **fuel**: minijinja counts the instructions a render executes and stops it past
//!   [`RenderLimits::max_fuel`] (a loop of loops ends there instead of running for hours);
//! - **output**: a part is rendered into a writer that refuses to grow past
//!   [`RenderLimits::max_output_bytes`] (a loop that writes a lot ends there instead of filling memory);
//! - **time**: a render runs on tokio's blocking pool, never on the async workers that answer the API,
//!   and whoever waits for it gives up after [`RenderLimits::timeout`] (whatever fuel does not catch).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::TemplateError;

/// Instructions one part may execute by default: a template looping over a few thousand items with a
/// few dozen steps each renders in well under a second within it.
pub const DEFAULT_MAX_RENDER_FUEL: u64 = 1_000_000;
/// Bytes one rendered part may have by default (1 MiB): far above any message body a mailbox accepts.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 1024 * 1024;
/// How long a render (all parts of one message) may take by default.
pub const DEFAULT_RENDER_TIMEOUT: Duration = Duration::from_secs(5);

/// The limits every render runs under (`[templates] max_render_fuel`, `max_output_bytes`,
/// `render_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderLimits {
    /// Instructions one part may execute.
    pub max_fuel: u64,
    /// Bytes one rendered part may have.
    pub max_output_bytes: usize,
    /// How long rendering a message's parts may take, waiting for a blocking thread included.
    pub timeout: Duration,
}

impl Default for RenderLimits {
    fn default() -> Self {
        RenderLimits {
            max_fuel: DEFAULT_MAX_RENDER_FUEL,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            timeout: DEFAULT_RENDER_TIMEOUT,
        }
    }
}

impl From<&crate::config::TemplatesConfig> for RenderLimits {
    fn from(config: &crate::config::TemplatesConfig) -> Self {
        RenderLimits {
            max_fuel: config.max_render_fuel,
            max_output_bytes: config.max_output_bytes,
            timeout: config.render_timeout,
        }
    }
}

impl RenderLimits {
    /// The reason a part that ran out of fuel reports.
    pub(super) fn fuel_message(&self) -> String {
        format!(
            "rendering needs more than {} steps (the limit `[templates] max_render_fuel`): a loop runs too long",
            self.max_fuel
        )
    }

    /// The reason a part that grew past the output cap reports.
    pub(super) fn output_message(&self) -> String {
        format!(
            "the rendered text is larger than {} bytes (the limit `[templates] max_output_bytes`)",
            self.max_output_bytes
        )
    }

    /// The reason a render that outlived its deadline reports.
    fn timeout_message(&self) -> String {
        format!(
            "rendering takes longer than {} ms (the limit `[templates] render_timeout`)",
            self.timeout.as_millis()
        )
    }
}

/// An in-memory writer that refuses to grow past its cap: the error stops the render at once.
#[derive(Debug)]
pub(super) struct CappedWriter {
    buffer: Vec<u8>,
    cap: usize,
    overflowed: bool,
}

impl CappedWriter {
    pub(super) fn new(cap: usize) -> Self {
        CappedWriter {
            buffer: Vec::new(),
            cap,
            overflowed: false,
        }
    }

    /// Whether a write was refused because of the cap.
    pub(super) fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// What was written. minijinja only writes whole `str`s, so the bytes are UTF-8; a lossy conversion
    /// covers the impossible case rather than a panic.
    pub(super) fn into_string(self) -> String {
        String::from_utf8(self.buffer)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

impl io::Write for CappedWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.buffer.len().saturating_add(bytes.len()) > self.cap {
            self.overflowed = true;
            return Err(io::Error::other("the output cap is reached"));
        }
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The part a render is at, shared with whoever waits for it: a render that times out is reported
/// against the part it was stuck in.
#[derive(Debug, Default)]
pub(super) struct Progress(AtomicUsize);

impl Progress {
    pub(super) fn set(&self, index: usize) {
        self.0.store(index, Ordering::Relaxed);
    }

    fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Runs `work` (a compile and render, bounded by fuel and output caps) on tokio's blocking pool and
/// waits at most `limits.timeout` for it. A render that times out keeps its blocking thread until its
/// fuel runs out, but nobody waits for it any more.
pub(super) async fn off_thread<T, F>(limits: &RenderLimits, work: F) -> Result<T, TemplateError>
where
    T: Send + 'static,
    F: FnOnce(&Progress) -> Result<T, TemplateError> + Send + 'static,
{
    let progress = Arc::new(Progress::default());
    let shared = Arc::clone(&progress);
    let task = tokio::task::spawn_blocking(move || work(&shared));
    match tokio::time::timeout(limits.timeout, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(join_error)) => Err(TemplateError {
            field: super::render::part_name(progress.get()),
            line: None,
            message: format!("rendering failed: {join_error}"),
        }),
        Err(_elapsed) => Err(TemplateError {
            field: super::render::part_name(progress.get()),
            line: None,
            message: limits.timeout_message(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use serde_json::json;

    use super::*;
    use crate::templates::{RenderEvent, TemplateCache, TemplateContent, check};

    const NESTED_LOOP: &str =
        "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";

    fn text(text: &str) -> TemplateContent {
        TemplateContent {
            subject: Some("s".to_owned()),
            text: Some(text.to_owned()),
            ..TemplateContent::default()
        }
    }

    fn event(ctx: serde_json::Value) -> RenderEvent {
        RenderEvent {
            ctx,
            ..RenderEvent::default()
        }
    }

    #[tokio::test]
    async fn a_loop_of_loops_runs_out_of_fuel_promptly() {
        let started = Instant::now();
        let error = check(&text(NESTED_LOOP), &RenderLimits::default())
            .await
            .unwrap_err();
        assert_eq!(error.field, "text");
        assert!(error.message.contains("max_render_fuel"), "{error}");
        assert!(error.message.contains("1000000"), "{error}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn output_past_the_cap_is_refused_naming_the_part() {
        let limits = RenderLimits {
            max_output_bytes: 1000,
            ..RenderLimits::default()
        };
        let content = TemplateContent {
            subject: Some("s".to_owned()),
            html: Some("{% for i in range(2000) %}<p>{% endfor %}".to_owned()),
            ..TemplateContent::default()
        };
        let error = check(&content, &limits).await.unwrap_err();
        assert_eq!(error.field, "html");
        assert!(error.message.contains("max_output_bytes"), "{error}");
        assert!(error.message.contains("1000 bytes"), "{error}");
        // Exactly at the cap is fine.
        check(&text(&"x".repeat(1000)), &limits).await.unwrap();
    }

    #[tokio::test]
    async fn the_default_output_cap_is_one_mebibyte_per_part() {
        let limits = RenderLimits::default();
        // 2 MiB in a few hundred instructions: fuel alone would not catch it.
        let big = "{% for i in range(256) %}{{ 'x' * 8192 }}{% endfor %}";
        let error = check(&text(big), &limits).await.unwrap_err();
        assert!(error.message.contains("1048576 bytes"), "{error}");
        let fits = "{% for i in range(64) %}{{ 'x' * 8192 }}{% endfor %}";
        check(&text(fits), &limits).await.unwrap();
    }

    #[tokio::test]
    async fn a_sane_template_renders_well_within_the_limits() {
        let cache = Arc::new(TemplateCache::new(10));
        let items: Vec<_> = (0..2000)
            .map(|i| json!({ "name": format!("item {i}"), "price": i }))
            .collect();
        let content = text(
            "{% for item in ctx.items %}{{ loop.index }}. {{ item.name | upper }}: {{ item.price }} EUR{% if not loop.last %}\n{% endif %}{% endfor %}",
        );
        let rendered = cache
            .render_bounded(
                "order".to_owned(),
                1,
                content,
                event(json!({ "items": items })),
            )
            .await
            .unwrap();
        assert!(
            rendered
                .text
                .unwrap()
                .ends_with("2000. ITEM 1999: 1999 EUR")
        );
    }

    #[tokio::test]
    async fn a_limit_only_some_events_hit_fails_their_render_only() {
        let cache = Arc::new(TemplateCache::new(10));
        // An empty `ctx` (the check at `PUT`) loops a little; a large `n` only fails at delivery.
        let content = text("{% for i in range(ctx.n | default(1)) %}x{% endfor %}");
        check(&content, &RenderLimits::default()).await.unwrap();
        let render = |n: i64| {
            cache.render_bounded(
                "loop".to_owned(),
                1,
                content.clone(),
                event(json!({ "n": n })),
            )
        };
        assert_eq!(render(3).await.unwrap().text.as_deref(), Some("xxx"));
        // range() itself refuses more than 100000 items; nested in one more loop it runs out of fuel.
        let nested = text(
            "{% for i in range(ctx.n | default(1)) %}{% for j in range(ctx.n | default(1)) %}x{% endfor %}{% endfor %}",
        );
        check(&nested, &RenderLimits::default()).await.unwrap();
        let error = cache
            .render_bounded(
                "nested".to_owned(),
                1,
                nested,
                event(json!({ "n": 100000 })),
            )
            .await
            .unwrap_err();
        assert_eq!(error.field, "text");
        assert!(error.message.contains("max_render_fuel"), "{error}");
        assert_eq!(render(2).await.unwrap().text.as_deref(), Some("xx"));
    }

    #[tokio::test]
    async fn a_render_past_its_deadline_is_given_up_naming_its_part() {
        // The render itself stays bounded by fuel (a test runtime waits for its blocking threads), but a
        // million instructions take far longer than a millisecond. The slow part is the first one,
        // `from`: on a loaded machine the deadline may pass before the blocking thread even starts,
        // and the part named is then the first, whatever part is slow.
        let limits = RenderLimits {
            timeout: Duration::from_millis(1),
            ..RenderLimits::default()
        };
        let started = Instant::now();
        let content = TemplateContent {
            from: Some(
                "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
                    .to_owned(),
            ),
            subject: Some("s".to_owned()),
            text: Some("t".to_owned()),
            ..TemplateContent::default()
        };
        let error = check(&content, &limits).await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(error.field, "from");
        assert!(error.message.contains("render_timeout"), "{error}");
        assert!(error.message.contains("1 ms"), "{error}");
    }

    #[test]
    fn the_capped_writer_refuses_the_write_that_crosses_the_cap() {
        use std::io::Write;
        let mut out = CappedWriter::new(4);
        out.write_all(b"abc").unwrap();
        assert!(!out.overflowed());
        assert!(out.write_all(b"de").is_err());
        assert!(out.overflowed());
        assert_eq!(out.into_string(), "abc");
    }
}
