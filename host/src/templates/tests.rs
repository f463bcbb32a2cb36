use std::sync::Arc;

use serde_json::json;

use super::*;

fn email_content(subject: &str, text: &str, html: &str) -> TemplateContent {
    TemplateContent {
        from: Some("shop@example.com".to_owned()),
        subject: Some(subject.to_owned()),
        text: Some(text.to_owned()),
        html: Some(html.to_owned()),
    }
}

fn input(ctx: &serde_json::Value) -> RenderInput<'_> {
    RenderInput {
        ctx,
        email: Some("ann@example.com"),
        mobile_phone: None,
        language: Some("fr"),
        external_id: Some("c-42"),
    }
}

/// [`super::check`] on this thread, under the default limits.
fn check(content: &TemplateContent) -> Result<(), TemplateError> {
    super::check_now(
        content,
        &RenderLimits::default(),
        &limits::Progress::default(),
    )
}

fn render(content: &TemplateContent, ctx: &serde_json::Value) -> Result<Rendered, TemplateError> {
    TemplateCache::new(10).render("t", 1, content, &input(ctx))
}

/// Asserts how many compilations `cache` has made and how many templates it holds.
fn assert_cached(cache: &TemplateCache, compilations: u64, len: usize) {
    assert_eq!(cache.compilations(), compilations, "compilations");
    assert_eq!(cache.len(), len, "cached templates");
}

#[test]
fn cache_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<TemplateCache>();
    assert_send_sync::<TemplateError>();
}

#[test]
fn html_is_escaped_but_text_subject_and_from_are_not() {
    let ctx = json!({ "name": "<b>Tom & Jerry</b>", "sender": "\"Shop\" <a@b.c>" });
    let content = TemplateContent {
        from: Some("{{ ctx.sender }}".to_owned()),
        subject: Some("Hi {{ ctx.name }}".to_owned()),
        text: Some("Dear {{ ctx.name }}".to_owned()),
        html: Some("<p>Dear {{ ctx.name }}</p>{{ '<i>' | safe }}".to_owned()),
    };
    let rendered = render(&content, &ctx).unwrap();
    assert_eq!(rendered.from.as_deref(), Some("\"Shop\" <a@b.c>"));
    assert_eq!(rendered.subject.as_deref(), Some("Hi <b>Tom & Jerry</b>"));
    assert_eq!(rendered.text.as_deref(), Some("Dear <b>Tom & Jerry</b>"));
    assert_eq!(
        rendered.html.as_deref(),
        Some("<p>Dear &lt;b&gt;Tom &amp; Jerry&lt;&#x2f;b&gt;</p><i>")
    );
}

#[test]
fn event_variables_are_available() {
    let ctx = json!({ "n": 3 });
    let content = TemplateContent {
        text: Some("{{ email }}|{{ language }}|{{ externalId }}|{{ ctx.n + 1 }}".to_owned()),
        ..Default::default()
    };
    let rendered = render(&content, &ctx).unwrap();
    assert_eq!(rendered.text.as_deref(), Some("ann@example.com|fr|c-42|4"));
    assert_eq!(rendered.from, None);
    assert_eq!(rendered.subject, None);
    assert_eq!(rendered.html, None);

    let sms = RenderInput {
        ctx: &ctx,
        email: None,
        mobile_phone: Some("+33 6 12 34 56 78"),
        language: None,
        external_id: None,
    };
    let content = TemplateContent {
        text: Some("to {{ mobilePhone }}".to_owned()),
        ..Default::default()
    };
    let rendered = TemplateCache::new(1)
        .render("sms", 1, &content, &sms)
        .unwrap();
    assert_eq!(rendered.text.as_deref(), Some("to +33 6 12 34 56 78"));
}

#[test]
fn undefined_and_null_render_empty() {
    let ctx = json!({ "nothing": null, "address": {} });
    let content = email_content(
        "[{{ ctx.missing }}][{{ mobilePhone }}][{{ ctx.nothing }}]",
        "[{{ ctx.address.city }}][{{ ctx.a.b.c }}][{{ unknown }}]",
        "{% for item in ctx.items %}x{% endfor %}[{{ ctx.missing | upper }}]",
    );
    let rendered = render(&content, &ctx).unwrap();
    assert_eq!(rendered.subject.as_deref(), Some("[][][]"));
    assert_eq!(rendered.text.as_deref(), Some("[][][]"));
    assert_eq!(rendered.html.as_deref(), Some("[]"));
}

#[test]
fn trailing_newline_is_kept() {
    let content = TemplateContent {
        text: Some("Hello\n".to_owned()),
        ..Default::default()
    };
    assert_eq!(
        render(&content, &json!({})).unwrap().text.as_deref(),
        Some("Hello\n")
    );
}

#[test]
fn check_accepts_templates_that_render_against_an_empty_event() {
    let content = email_content(
        "Order {{ ctx.order.id }}",
        "{% if ctx.vip %}VIP{% endif %}{% for line in ctx.lines %}{{ line.name }}{% endfor %}",
        "<p>{{ ctx.firstName | default('customer') }}</p>",
    );
    check(&content).unwrap();
    check(&TemplateContent::default()).unwrap();
}

#[test]
fn syntax_error_reports_field_and_line() {
    let content = email_content(
        "Hello",
        "line 1\nline 2\n{% if ctx.vip %}\nVIP",
        "<p>fine</p>",
    );
    let error = check(&content).unwrap_err();
    assert_eq!(error.field, "text");
    // minijinja reports an unclosed block at the line where the input ends it.
    assert_eq!(error.line, Some(3), "{error}");
    assert!(error.message.contains("unexpected end of input"), "{error}");
    assert_eq!(
        error.to_string(),
        format!("text: line 3: {}", error.message)
    );
    assert_eq!(error.detail(), format!("line 3: {}", error.message));

    let error = check(&email_content("{{ ctx.a", "t", "h")).unwrap_err();
    assert_eq!(error.field, "subject");
    assert_eq!(error.line, Some(1));

    let content = TemplateContent {
        from: Some("{% endif %}".to_owned()),
        ..Default::default()
    };
    assert_eq!(check(&content).unwrap_err().field, "from");

    let error = check(&email_content("s", "t", "<p>\n{{ }}</p>")).unwrap_err();
    assert_eq!((error.field, error.line), ("html", Some(2)), "{error}");
}

#[test]
fn runtime_errors_are_reported() {
    let error = check(&email_content("s", "t", "<p>\n\n{{ ctx.name | nope }}</p>")).unwrap_err();
    assert_eq!(error.field, "html");
    assert_eq!(error.line, Some(3), "{error}");
    assert!(error.message.contains("unknown filter"), "{error}");
    assert!(error.message.contains("nope"), "{error}");

    let error = check(&email_content("{{ 1 // 0 }}", "t", "h")).unwrap_err();
    assert_eq!(error.field, "subject");
    assert_eq!(error.line, Some(1));
    assert!(!error.message.is_empty(), "{error}");

    let error = check(&email_content("s", "{{ ctx.name }}\n{{ 1 + [] }}", "h")).unwrap_err();
    assert_eq!((error.field, error.line), ("text", Some(2)), "{error}");
}

#[test]
fn an_error_only_some_events_trigger_is_reported_by_render() {
    let content = TemplateContent {
        text: Some("{{ 10 // ctx.n }}".to_owned()),
        ..Default::default()
    };
    let cache = TemplateCache::new(10);
    let ok = cache
        .render("div", 1, &content, &input(&json!({ "n": 5 })))
        .unwrap();
    assert_eq!(ok.text.as_deref(), Some("2"));
    let error = cache
        .render("div", 1, &content, &input(&json!({ "n": 0 })))
        .unwrap_err();
    assert_eq!(error.field, "text");
    assert_eq!(cache.compilations(), 1);
}

#[test]
fn cache_compiles_each_version_once() {
    let cache = TemplateCache::new(10);
    let content = email_content(
        "Hi {{ ctx.name }}",
        "Dear {{ ctx.name }}",
        "<p>{{ ctx.name }}</p>",
    );
    let ctx = json!({ "name": "Ann" });
    let first = cache.render("welcome", 1, &content, &input(&ctx)).unwrap();
    let second = cache.render("welcome", 1, &content, &input(&ctx)).unwrap();
    assert_eq!(first, second);
    assert_eq!(first.subject.as_deref(), Some("Hi Ann"));
    assert_cached(&cache, 1, 1);

    // Another version, another template: compiled once each.
    let v2 = email_content("Hello {{ ctx.name }}", "t", "h");
    let rendered = cache.render("welcome", 2, &v2, &input(&ctx)).unwrap();
    assert_eq!(rendered.subject.as_deref(), Some("Hello Ann"));
    cache.render("other", 1, &content, &input(&ctx)).unwrap();
    cache.render("welcome", 2, &v2, &input(&ctx)).unwrap();
    cache.render("welcome", 1, &content, &input(&ctx)).unwrap();
    assert_cached(&cache, 3, 3);
}

#[test]
fn a_broken_version_is_compiled_once_too() {
    let cache = TemplateCache::new(10);
    let content = email_content("{% if %}", "t", "h");
    let refusal = || {
        cache
            .render("bad", 1, &content, &input(&json!({})))
            .unwrap_err()
    };
    let (first, second) = (refusal(), refusal());
    assert_eq!(first, second);
    assert_eq!(first.field, "subject");
    assert_eq!(cache.compilations(), 1);
}

#[test]
fn reused_name_and_version_with_other_content_is_compiled_again() {
    let cache = TemplateCache::new(10);
    let ctx = json!({});
    let old = email_content("old", "t", "h");
    let new = email_content("new", "t", "h");
    let subject = |content| cache.render("t", 1, content, &input(&ctx)).unwrap().subject;
    assert_eq!(subject(&old).as_deref(), Some("old"));
    assert_eq!(subject(&new).as_deref(), Some("new"));
    assert_eq!(subject(&new).as_deref(), Some("new"));
    assert_cached(&cache, 2, 1);
}

#[test]
fn cache_is_bounded() {
    let cache = TemplateCache::new(3);
    let content = email_content("s", "t", "h");
    let ctx = json!({});
    for version in 1..=5 {
        cache.render("t", version, &content, &input(&ctx)).unwrap();
    }
    assert_cached(&cache, 5, 3);
    // The newest are kept, the oldest were dropped.
    cache.render("t", 5, &content, &input(&ctx)).unwrap();
    assert_eq!(cache.compilations(), 5);
    cache.render("t", 1, &content, &input(&ctx)).unwrap();
    assert_cached(&cache, 6, 3);
}

#[test]
fn cache_is_shared_between_threads() {
    let cache = Arc::new(TemplateCache::new(100));
    let content = email_content("Hi {{ ctx.n }}", "t", "h");
    let threads: Vec<_> = (0..4)
        .map(|n| {
            let cache = Arc::clone(&cache);
            let content = content.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let ctx = json!({ "n": n * 100 + i });
                    let rendered = cache.render("t", 1, &content, &input(&ctx)).unwrap();
                    assert_eq!(rendered.subject, Some(format!("Hi {}", n * 100 + i)));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(cache.len(), 1);
    assert!(cache.compilations() <= 4);
}

#[test]
fn adobe_placeholders_render_as_their_jinja_equivalents() {
    let ctx = json!({ "firstName": "<b>Ann</b>", "cart": { "total": "12" } });
    let adobe = email_content(
        "Hi <%= rtEvent.ctx.firstName %>",
        "To <%= rtEvent.email %>: <%= batchEvent.ctx.cart.total %> (<%= rtEvent.ctx.missing %>)",
        "<p><%= rtEvent.ctx.@firstName %></p>",
    );
    let jinja = email_content(
        "Hi {{ ctx.firstName }}",
        "To {{ email }}: {{ ctx.cart.total }} ({{ ctx.missing }})",
        "<p>{{ ctx.firstName }}</p>",
    );
    let rendered = render(&adobe, &ctx).unwrap();
    assert_eq!(rendered, render(&jinja, &ctx).unwrap());
    assert_eq!(
        rendered.html.as_deref(),
        Some("<p>&lt;b&gt;Ann&lt;&#x2f;b&gt;</p>")
    );
    let code = email_content("s", "t", "<p>\n<% if (rtEvent.ctx.vip) { %>VIP<% } %></p>");
    let error = check(&code).unwrap_err();
    assert_eq!((error.field, error.line), ("html", Some(2)));
}
