//! The control instance's reports in a real browser (headless Chromium over WebDriver) against real
//! processes: two execution instances delivering to the real SMTP test server (which refuses
//! `reject…` addresses), a control instance archiving both with the real `archiving` plugin. The
//! scenario's numbers are known — per instance, `ORDER` events of which some are refused, some
//! scheduled past the next minute (the queue holds them when it ends), `RESET` events that no template
//! takes — and each report must show them: *service level* (incoming, sent,
//! errors, error rate, per instance and filtered to one), *history of events* (per type, each final
//! status), *processing time* (the averages and the queue's size, computed here from the archived
//! timeline). Each report's CSV export, fetched by the browser with its session, has the page's cells
//! exactly. A bad filter is refused naming its field; an execution instance has no reports. The
//! control instance runs on SQLite, and on PostgreSQL in the `postgres` variant. Screenshots under
//! `<target>/console-screenshots/`.

use std::time::Duration;

use message_center_tests::console::*;
use message_center_tests::*;
use serde_json::{Value, json};

/// How long events may take to be final and archived on a busy machine.
const TIMEOUT: Duration = Duration::from_secs(90);

/// What one execution instance receives: `ORDER` events (the first `refused` to refused addresses),
/// `scheduled` more `ORDER` events scheduled a few seconds past the next minute (so the queue holds
/// them when a minute ends) and `RESET` events (no template: `not_taken_into_account`).
struct Traffic {
    name: &'static str,
    id: u8,
    orders: usize,
    refused: usize,
    scheduled: usize,
    resets: usize,
}

const TRAFFIC: [Traffic; 2] = [
    Traffic {
        name: "exec-1",
        id: 1,
        orders: 4,
        refused: 1,
        scheduled: 2,
        resets: 2,
    },
    Traffic {
        name: "exec-2",
        id: 2,
        orders: 3,
        refused: 1,
        scheduled: 0,
        resets: 1,
    },
];

impl Traffic {
    fn events(&self) -> usize {
        self.orders + self.scheduled + self.resets
    }
    fn sent(&self) -> usize {
        self.orders + self.scheduled - self.refused
    }
    fn errors(&self) -> usize {
        self.events() - self.sent()
    }
}

/// A report's table as the page shows it: the `data-col` keys, the rows, the totals.
#[derive(Debug, PartialEq)]
struct ReportTable {
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
    total: Vec<String>,
}

impl ReportTable {
    /// The total of column `key`.
    fn total(&self, key: &str) -> &str {
        let at = self
            .columns
            .iter()
            .position(|c| c == key)
            .unwrap_or_else(|| panic!("no column {key} in {:?}", self.columns));
        &self.total[at]
    }

    /// The sum of column `key` over the rows whose column `by` is `value`.
    fn sum_where(&self, key: &str, by: &str, value: &str) -> u64 {
        let at = |k: &str| self.columns.iter().position(|c| c == k).expect("column");
        let (key, by) = (at(key), at(by));
        self.rows
            .iter()
            .filter(|r| r[by] == value)
            .map(|r| r[key].parse::<u64>().expect("a count"))
            .sum()
    }

    /// Parses the CSV export (header of keys, rows, totals last; the scenario's cells need no quotes).
    fn from_csv(text: &str) -> ReportTable {
        let mut lines: Vec<Vec<String>> = text
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .map(|l| l.split(',').map(str::to_owned).collect())
            .collect();
        assert!(lines.len() >= 2, "{text}");
        let total = lines.pop().expect("totals");
        let columns = lines.remove(0);
        ReportTable {
            columns,
            rows: lines,
            total,
        }
    }
}

/// Reads the report table of the page.
async fn page_table(browser: &Browser) -> ReportTable {
    let value = browser
        .script(
            "var cells = function (tr) { return Array.from(tr.cells).map(function (td) { return td.innerText.trim(); }); };\
             return { columns: Array.from(document.querySelectorAll('#report-total td')).map(function (td) { return td.dataset.col; }),\
                      rows: Array.from(document.querySelectorAll('#report-table tbody tr.report-row')).map(cells),\
                      total: cells(document.querySelector('#report-total')) };",
        )
        .await;
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap_or_else(|| panic!("not a list: {v}"))
            .iter()
            .map(|s| s.as_str().unwrap_or_default().to_owned())
            .collect()
    };
    ReportTable {
        columns: strings(&value["columns"]),
        rows: value["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(strings)
            .collect(),
        total: strings(&value["total"]),
    }
}

/// Opens `report` with `query`, checks that its CSV export (the page's own link) has the page's cells,
/// and returns the table.
async fn open_report(
    browser: &Browser,
    control: &TestServer,
    report: &str,
    query: &str,
) -> ReportTable {
    browser
        .goto(&url(control, &format!("/console/reports/{report}?{query}")))
        .await;
    browser
        .wait_for_css("#report-table", secs(15), "the report table")
        .await;
    let table = page_table(browser).await;
    let href = browser.attr("#csv-link", "href").await.expect("CSV link");
    assert!(
        href.contains(&format!("/console/reports/{report}/csv?")),
        "{href}"
    );
    let answer = fetch_from_page(browser, &href).await;
    assert_eq!(answer["status"], 200, "{answer}");
    assert_eq!(answer["contentType"], "text/csv; charset=utf-8", "{answer}");
    let disposition = answer["disposition"].as_str().unwrap_or_default();
    assert!(
        disposition.starts_with(&format!("attachment; filename=\"{report}-"))
            && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    let csv = ReportTable::from_csv(answer["text"].as_str().expect("CSV text"));
    assert_eq!(csv, table, "the CSV export has the page's cells");
    table
}

/// A figure of the page (`—` is none).
fn figure(text: &str) -> Option<f64> {
    (text != "—").then(|| {
        text.parse()
            .unwrap_or_else(|_| panic!("`{text}` is not a figure"))
    })
}

#[track_caller]
fn assert_close(shown: &str, expected: f64, what: &str) {
    let shown = figure(shown).unwrap_or_else(|| panic!("{what}: no figure"));
    assert!(
        (shown - expected).abs() <= 0.011,
        "{what}: the page shows {shown}, the archive says {expected}"
    );
}

/// Every archived event, from the control instance's archive API.
async fn archived(control: &TestServer) -> Vec<Value> {
    let (status, body) = control.get_json("/api/v1/archive/events?limit=1000").await;
    assert_eq!(status, 200, "{}", pretty(&body));
    body["events"].as_array().expect("events").clone()
}

/// The averages and queue sizes the processing-time report must show, from the archived timeline:
/// `(avg queue, avg sending, avg processing)` seconds and the queue's size at the end of every minute
/// of `[from, to)` (max, min, average).
fn expected_times(events: &[Value], from: i64, to: i64) -> ([f64; 3], (u64, u64, f64)) {
    let ms = |e: &Value, key: &str| e[key].as_str().map(rfc3339_millis);
    let mut sums = [0.0; 3];
    let (mut linked, mut accepted) = (0u32, 0u32);
    for e in events {
        let created = ms(e, "createdAt").expect("createdAt");
        if let Some(l) = ms(e, "linkedAt") {
            sums[0] += (l - created) as f64 / 1000.0;
            linked += 1;
            if let Some(a) = ms(e, "acceptedAt") {
                sums[1] += (a - l) as f64 / 1000.0;
                sums[2] += (a - created) as f64 / 1000.0;
                accepted += 1;
            }
        }
    }
    assert!(linked > 0 && accepted > 0, "the archive has the timeline");
    let averages = [
        sums[0] / f64::from(linked),
        sums[1] / f64::from(accepted),
        sums[2] / f64::from(accepted),
    ];
    let mut samples = Vec::new();
    for minute in from.div_euclid(60_000)..=(to - 1).div_euclid(60_000) {
        let at = ((minute + 1) * 60_000).min(to);
        let waiting = events
            .iter()
            .filter(|e| {
                let created = ms(e, "createdAt").expect("createdAt");
                let left = ms(e, "linkedAt")
                    .or_else(|| ms(e, "finishedAt"))
                    .expect("left the queue");
                created < at && left >= at
            })
            .count() as u64;
        samples.push(waiting);
    }
    let max = samples.iter().copied().max().unwrap_or(0);
    let min = samples.iter().copied().min().unwrap_or(0);
    let average = samples.iter().sum::<u64>() as f64 / samples.len().max(1) as f64;
    (averages, (max, min, average))
}

async fn reports_show_the_scenario(control_database: Option<&PostgresDatabase>) {
    let smtp = SmtpServer::start();
    let executions: Vec<TestServer> = TRAFFIC
        .iter()
        .map(|t| {
            TestServer::start(
                console_options(PluginDir::new())
                    .instance_id(t.id)
                    .processing_workflows()
                    .email_channel(smtp.port()),
            )
        })
        .collect();
    let plugins = PluginDir::new();
    plugins.add("archiving");
    let mut options = console_options(plugins)
        .role("control")
        .instance_id(100)
        .workflows("[workflows.archiving]\ninterval = \"200ms\"")
        .extra_toml(&format!(
            "[[execution_instances]]\nname = \"exec-1\"\nurl = \"http://{}\"\n\n\
             [[execution_instances]]\nname = \"exec-2\"\nurl = \"http://{}\"\n",
            executions[0].api_addr(),
            executions[1].api_addr()
        ));
    if let Some(database) = control_database {
        options = options.database_url(database.url());
    }
    let control = TestServer::start(options);
    // The period starts a whole second before the first push (the form's times are to the second).
    let from = rfc3339_ago(secs(2))
        .split('.')
        .next()
        .expect("time")
        .to_owned()
        + "Z";

    // ---- the scenario ----
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    // The next minute's end, unless it is too near to push the events before it.
    let mut next_minute = (now_ms / 60_000 + 1) * 60_000;
    if next_minute - now_ms < 10_000 {
        next_minute += 60_000;
    }
    let scheduled = rfc3339(std::time::UNIX_EPOCH + Duration::from_millis(next_minute + 3_000));
    let mut ids = Vec::new();
    for (traffic, server) in TRAFFIC.iter().zip(&executions) {
        server
            .put_template(
                "order",
                &json!({
                    "eventType": "ORDER",
                    "channel": "email",
                    "from": "Shop <shop@example.com>",
                    "subject": "Order {{ ctx.n }}",
                    "text": "Hello {{ ctx.n }}",
                }),
            )
            .await;
        for n in 0..traffic.orders {
            let email = if n < traffic.refused {
                format!("reject-{}-{n}@example.com", traffic.name)
            } else {
                format!("{}-{n}@example.com", traffic.name)
            };
            let event = json!({ "type": "ORDER", "email": email, "ctx": { "n": n } });
            let (status, answer) = server.post_json("/api/v1/events", &event, &[]).await;
            assert_eq!(status, 201, "{}", pretty(&answer));
            ids.push((server, answer["id"].as_str().expect("id").to_owned()));
        }
        for n in 0..traffic.scheduled {
            let event = json!({ "type": "ORDER", "email": format!("later-{n}@example.com"), "scheduled": scheduled });
            let (status, answer) = server.post_json("/api/v1/events", &event, &[]).await;
            assert_eq!(status, 201, "{}", pretty(&answer));
            ids.push((server, answer["id"].as_str().expect("id").to_owned()));
        }
        for n in 0..traffic.resets {
            let event = json!({ "type": "RESET", "email": format!("reset-{n}@example.com") });
            let (status, answer) = server.post_json("/api/v1/events", &event, &[]).await;
            assert_eq!(status, 201, "{}", pretty(&answer));
            ids.push((server, answer["id"].as_str().expect("id").to_owned()));
        }
    }
    for (server, id) in &ids {
        server.wait_final(id, TIMEOUT).await;
    }
    let total_events: usize = TRAFFIC.iter().map(Traffic::events).sum();
    let events = poll_until(TIMEOUT, "every event archived", async || {
        let events = archived(&control).await;
        if events.len() == total_events {
            Ok(events)
        } else {
            Err(format!("{} of {total_events} archived", events.len()))
        }
    })
    .await;
    // The period ends once everything is archived, a second later (to the second, in the past).
    tokio::time::sleep(millis(1100)).await;
    let to = rfc3339_ago(secs(0))
        .split('.')
        .next()
        .expect("time")
        .to_owned()
        + "Z";
    let period = format!("from={from}&to={to}");

    // ---- service level, as a viewer ----
    let browser = Browser::start().await;
    sign_in(&browser, &control, VIEWER).await;
    assert_signed_in_as(&browser, "vera").await;
    browser
        .click_to_load("nav a[href='/console/reports']")
        .await;
    assert_eq!(browser.path().await, "/console/reports/service-level");
    let table = open_report(&browser, &control, "service-level", &period).await;
    let total_sent: usize = TRAFFIC.iter().map(Traffic::sent).sum();
    let total_errors: usize = TRAFFIC.iter().map(Traffic::errors).sum();
    assert_eq!(
        table.total("incoming"),
        total_events.to_string(),
        "{table:?}"
    );
    assert_eq!(table.total("sent"), total_sent.to_string(), "{table:?}");
    assert_eq!(table.total("errors"), total_errors.to_string(), "{table:?}");
    assert_close(
        table.total("error_rate"),
        total_errors as f64 * 100.0 / total_events as f64,
        "error rate",
    );
    for traffic in &TRAFFIC {
        let sum = |key| table.sum_where(key, "instance", traffic.name);
        assert_eq!(sum("incoming"), traffic.events() as u64, "{table:?}");
        assert_eq!(sum("sent"), traffic.sent() as u64, "{table:?}");
        assert_eq!(sum("errors"), traffic.errors() as u64, "{table:?}");
    }
    let sending = figure(table.total("avg_sending_time")).expect("a sending time");
    assert!(sending >= 0.0, "{table:?}");
    assert!(browser.has("figure[data-chart='volumes'] rect.bar").await);
    browser.full_page_screenshot("reports_service_level").await;

    // The default period, the last 24 hours by the hour: the same totals, the chart spans the day.
    let table = open_report(&browser, &control, "service-level", "").await;
    assert_eq!(
        table.total("incoming"),
        total_events.to_string(),
        "{table:?}"
    );
    assert_eq!(table.total("sent"), total_sent.to_string(), "{table:?}");
    let from_shown = browser
        .script("return document.querySelector('#from').value")
        .await;
    let to_shown = browser
        .script("return document.querySelector('#to').value")
        .await;
    let span = rfc3339_millis(to_shown.as_str().expect("to"))
        - rfc3339_millis(from_shown.as_str().expect("from"));
    assert_eq!(span, 24 * 3_600_000, "{from_shown} to {to_shown}");
    browser
        .full_page_screenshot("reports_service_level_last_day")
        .await;

    // Filtered to one instance: its numbers alone, in the form and in the CSV.
    let exec_2 = &TRAFFIC[1];
    let table = open_report(
        &browser,
        &control,
        "service-level",
        &format!("{period}&instance=exec-2&channel=email"),
    )
    .await;
    assert_eq!(
        table.total("incoming"),
        exec_2.events().to_string(),
        "{table:?}"
    );
    assert_eq!(table.total("sent"), exec_2.sent().to_string(), "{table:?}");
    assert_close(
        table.total("error_rate"),
        exec_2.errors() as f64 * 100.0 / exec_2.events() as f64,
        "exec-2 error rate",
    );
    assert_eq!(
        browser
            .script("return document.querySelector('#instance').value")
            .await,
        "exec-2"
    );

    // ---- history of events ----
    let table = open_report(&browser, &control, "history", &period).await;
    let orders: usize = TRAFFIC.iter().map(|t| t.orders + t.scheduled).sum();
    let refused: usize = TRAFFIC.iter().map(|t| t.refused).sum();
    let resets: usize = TRAFFIC.iter().map(|t| t.resets).sum();
    assert_eq!(table.total("events"), total_events.to_string(), "{table:?}");
    assert_eq!(table.total("sent"), total_sent.to_string(), "{table:?}");
    assert_eq!(table.sum_where("events", "type", "ORDER"), orders as u64);
    assert_eq!(
        table.sum_where("sent", "type", "ORDER"),
        (orders - refused) as u64
    );
    assert_eq!(
        table.sum_where("delivery_failed", "type", "ORDER"),
        refused as u64
    );
    assert_eq!(table.sum_where("events", "type", "RESET"), resets as u64);
    assert_eq!(
        table.sum_where("not_taken_into_account", "type", "RESET"),
        resets as u64
    );
    assert_eq!(table.total("ignored"), "0");
    assert_eq!(table.total("expired"), "0");
    browser.full_page_screenshot("reports_history").await;
    let table = open_report(
        &browser,
        &control,
        "history",
        &format!("{period}&type=RESET"),
    )
    .await;
    assert_eq!(table.total("events"), resets.to_string(), "{table:?}");
    assert_eq!(table.total("sent"), "0", "{table:?}");

    // ---- processing time, by the day (one bucket, so its averages are the period's) ----
    let table = open_report(
        &browser,
        &control,
        "processing-time",
        &format!("{period}&granularity=day"),
    )
    .await;
    assert_eq!(table.total("events"), total_events.to_string(), "{table:?}");
    let millis_of = |t: &str| rfc3339_millis(t);
    let (averages, (max, min, average)) = expected_times(&events, millis_of(&from), millis_of(&to));
    assert_close(table.total("avg_queue_time"), averages[0], "time in queue");
    assert_close(table.total("avg_sending_time"), averages[1], "sending time");
    assert_close(
        table.total("avg_processing_time"),
        averages[2],
        "processing time",
    );
    assert_eq!(table.total("queued_max"), max.to_string(), "{table:?}");
    let waiting: usize = TRAFFIC.iter().map(|t| t.scheduled).sum();
    assert!(
        max >= waiting as u64,
        "the scheduled events were queued when the minute ended: {table:?}"
    );
    assert_eq!(table.total("queued_min"), min.to_string(), "{table:?}");
    assert_close(
        table.total("queued_avg"),
        average,
        "queued events on average",
    );
    browser
        .full_page_screenshot("reports_processing_time")
        .await;

    // ---- a bad filter names its field; the export refuses it too ----
    browser
        .goto(&url(
            &control,
            &format!("/console/reports/history?{period}&granularity=week"),
        ))
        .await;
    let error = browser.text("#report-error").await;
    assert!(error.starts_with("granularity:"), "{error}");
    browser.screenshot("reports_bad_filter").await;
    let answer = fetch_from_page(&browser, "/console/reports/history/csv?granularity=week").await;
    assert_eq!(answer["status"], 400, "{answer}");

    // ---- an execution instance has no reports ----
    sign_in(&browser, &executions[0], VIEWER).await;
    assert_signed_in_as(&browser, "vera").await;
    assert!(!browser.has("nav a[href='/console/reports']").await);
    browser
        .goto(&url(&executions[0], "/console/reports/service-level"))
        .await;
    assert!(browser.has("#not-control").await);
    browser.screenshot("reports_on_an_execution_instance").await;
    let answer = fetch_from_page(&browser, "/console/reports/service-level/csv").await;
    assert_eq!(answer["status"], 404, "{answer}");
    browser.close().await;
}

#[tokio::test]
async fn sqlite_reports_show_the_scenario_and_export_it() {
    reports_show_the_scenario(None).await;
}

#[tokio::test]
async fn postgres_reports_show_the_scenario_and_export_it() {
    let database = PostgresDatabase::create();
    reports_show_the_scenario(Some(&database)).await;
}
