//! The console's charts, drawn on the server as SVG polylines and bars: the monitoring page's from
//! [`Monitor::history`] (the figures the indicators use), the reports' from their period buckets
//! ([`period_chart`]). No chart script, nothing for the CSP to allow.
//!
//! [`Monitor::history`]: crate::monitoring::Monitor::history

use chrono::{DateTime, Utc};
use mc_plugin_api::Queue;
use serde::Serialize;

use super::view::number;
use crate::monitoring::{QueueSample, Sample};

/// The plot area inside the SVG's `viewBox="0 0 WIDTH HEIGHT"`.
const WIDTH: f64 = 360.0;
const HEIGHT: f64 = 140.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 352.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 118.0;

/// Which span the charts cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    Hour,
    Day,
}

impl Range {
    pub fn from_name(name: Option<&str>) -> Range {
        match name {
            Some("day") => Range::Day,
            _ => Range::Hour,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Range::Hour => "hour",
            Range::Day => "day",
        }
    }

    /// Minutes of history, and minutes per plotted point (a day is drawn in 5-minute buckets).
    const fn minutes(self) -> (usize, usize) {
        match self {
            Range::Hour => (60, 1),
            Range::Day => (24 * 60, 5),
        }
    }
}

/// One line of a chart.
#[derive(Serialize)]
pub struct Series {
    pub name: &'static str,
    /// CSS class giving its colour.
    pub class: &'static str,
    /// `x,y x,y …` in the viewBox.
    pub points: String,
    /// The points again, as dots (a lone minute shows too); empty for bar charts.
    pub dots: Vec<(String, String)>,
    /// `(x, y, width, height)` of each bar, for counts; empty for line charts.
    pub bars: Vec<(String, String, String, String)>,
    /// The last value, as shown in the legend of a line chart.
    pub last: String,
    /// For counts (bar charts): the sum over the range shown, which the legend shows instead (a last
    /// minute that has just begun would say little).
    pub total: Option<String>,
}

/// What the legend of a count says its sum covers.
const RANGE: &str = "in range";
/// The same, on a report's chart.
const PERIOD: &str = "in period";

/// One chart.
#[derive(Serialize)]
pub struct Chart {
    pub id: &'static str,
    pub title: &'static str,
    pub unit: &'static str,
    pub series: Vec<Series>,
    /// The top of the y axis.
    pub y_max: String,
    /// First and last time on the x axis (`HH:MM` UTC).
    pub x_from: String,
    pub x_to: String,
    pub empty: bool,
    /// What a count's legend says its sum covers (`in range`, `in period`).
    pub total_of: &'static str,
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
}

/// One plotted point: its time and the samples it combines (absent minutes leave a gap in averages).
struct Bucket<T> {
    at: DateTime<Utc>,
    sample: Vec<T>,
}

/// What a chart plots for one sample.
type Pick = fn(&Sample) -> Option<f64>;

/// How a bucket's samples combine: counts add up (and are drawn as bars), sizes take the largest,
/// times average (both drawn as lines).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Combine {
    Sum,
    Max,
    Mean,
}

fn combine(values: impl Iterator<Item = Option<f64>>, how: Combine) -> Option<f64> {
    let present: Vec<f64> = values.flatten().collect();
    if present.is_empty() {
        return None;
    }
    Some(match how {
        Combine::Sum => present.iter().sum(),
        Combine::Max => present.iter().copied().fold(f64::MIN, f64::max),
        Combine::Mean => present.iter().sum::<f64>() / present.len() as f64,
    })
}

fn buckets(samples: Vec<Sample>, per_point: usize) -> Vec<Bucket<Sample>> {
    let mut out: Vec<Bucket<Sample>> = Vec::new();
    let step = i64::try_from(per_point * 60).unwrap_or(60);
    for sample in samples {
        let start = sample.minute.timestamp().div_euclid(step) * step;
        let at = DateTime::from_timestamp(start, 0).unwrap_or(sample.minute);
        match out.last_mut() {
            Some(last) if last.at == at => last.sample.push(sample),
            _ => out.push(Bucket {
                at,
                sample: vec![sample],
            }),
        }
    }
    out
}

fn queue_pick(queue: Queue, f: fn(&QueueSample) -> Option<f64>) -> impl Fn(&Sample) -> Option<f64> {
    move |s: &Sample| f(s.queue(queue))
}

/// Every chart of the page, for `range`, from the monitor's per-minute history (oldest first).
pub fn charts(history: Vec<Sample>, range: Range) -> Vec<Chart> {
    let (minutes, per_point) = range.minutes();
    let skip = history.len().saturating_sub(minutes);
    let buckets = buckets(history.into_iter().skip(skip).collect(), per_point);
    let slots = minutes / per_point;
    let step = i64::try_from(per_point * 60).unwrap_or(60);
    let axis = Axis {
        slots,
        step,
        end: None,
        label: "%H:%M",
        total_of: RANGE,
    };
    let per_queue = |id, title, unit, how, f: fn(&QueueSample) -> Option<f64>| {
        let rt = queue_pick(Queue::Realtime, f);
        let batch = queue_pick(Queue::Batch, f);
        chart(
            &buckets,
            axis,
            id,
            title,
            unit,
            how,
            vec![
                (
                    "real-time",
                    "s-realtime",
                    &rt as &dyn Fn(&Sample) -> Option<f64>,
                ),
                ("batch", "s-batch", &batch),
            ],
        )
    };
    let events_in: Pick = |s| Some(s.events_in as f64);
    vec![
        chart(
            &buckets,
            axis,
            "events_in",
            "Events in",
            "events / min",
            Combine::Sum,
            vec![("both queues", "s-in", &events_in)],
        ),
        per_queue("sent", "Messages out", "sent / min", Combine::Sum, |q| {
            Some(q.sent as f64)
        }),
        per_queue("errors", "Errors", "not sent / min", Combine::Sum, |q| {
            Some(q.errors as f64)
        }),
        per_queue(
            "queue_size",
            "Queue size",
            "pending events",
            Combine::Max,
            |q| Some(q.queue_size as f64),
        ),
        per_queue(
            "queue_time",
            "Queue time",
            "s, push → linked",
            Combine::Mean,
            |q| q.avg_queue_time,
        ),
        per_queue(
            "delivery_time",
            "Delivery time",
            "s, linked → accepted",
            Combine::Mean,
            |q| q.avg_delivery_time,
        ),
        per_queue(
            "processing_time",
            "Processing time",
            "s, push → accepted",
            Combine::Mean,
            |q| q.avg_processing_time,
        ),
    ]
}

/// One line of a chart to draw: its name, CSS class, and what it plots of a sample.
type Line<'a, T> = (&'static str, &'static str, &'a dyn Fn(&T) -> Option<f64>);

/// What a report chart plots of one bucket's values: the value of series `k`.
type PeriodPick = Box<dyn Fn(&Vec<Option<f64>>) -> Option<f64>>;

/// The x axis: `slots` points `step` seconds apart, ending at `end` (by default the newest sample),
/// labelled with the `strftime` format `label`.
#[derive(Clone, Copy)]
struct Axis {
    slots: usize,
    step: i64,
    end: Option<DateTime<Utc>>,
    label: &'static str,
    total_of: &'static str,
}

/// How a report chart draws its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drawn {
    /// Counts, as bars; the legend sums the period.
    Bars,
    /// Averages or sizes, as lines; the legend shows the last value.
    Lines,
}

/// What a report chart shows: its id, title and unit, the series (name and CSS class), and per
/// period bucket its start and one value per series.
pub struct PeriodSeries {
    pub id: &'static str,
    pub title: &'static str,
    pub unit: &'static str,
    pub drawn: Drawn,
    pub lines: Vec<(&'static str, &'static str)>,
    pub points: Vec<(DateTime<Utc>, Vec<Option<f64>>)>,
}

/// A report's chart over the buckets from `first` to `last` (bucket starts, `step` seconds apart),
/// with the x axis labelled by `label` (`%H:%M`, `%m-%d`).
pub fn period_chart(
    series: PeriodSeries,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
    step: i64,
    label: &'static str,
) -> Chart {
    let step = step.max(1);
    let slots = usize::try_from((last - first).num_seconds().div_euclid(step) + 1).unwrap_or(1);
    let buckets: Vec<Bucket<Vec<Option<f64>>>> = series
        .points
        .into_iter()
        .map(|(at, values)| Bucket {
            at,
            sample: vec![values],
        })
        .collect();
    let picks: Vec<PeriodPick> = (0..series.lines.len())
        .map(|k| {
            Box::new(move |values: &Vec<Option<f64>>| values.get(k).copied().flatten())
                as PeriodPick
        })
        .collect();
    let lines: Vec<Line<'_, Vec<Option<f64>>>> = series
        .lines
        .iter()
        .zip(&picks)
        .map(|(&(name, class), pick)| (name, class, pick.as_ref()))
        .collect();
    let how = match series.drawn {
        Drawn::Bars => Combine::Sum,
        Drawn::Lines => Combine::Mean,
    };
    let axis = Axis {
        slots: slots.max(1),
        step,
        end: Some(last),
        label,
        total_of: PERIOD,
    };
    chart(
        &buckets,
        axis,
        series.id,
        series.title,
        series.unit,
        how,
        lines,
    )
}

fn chart<T>(
    buckets: &[Bucket<T>],
    axis: Axis,
    id: &'static str,
    title: &'static str,
    unit: &'static str,
    how: Combine,
    lines: Vec<Line<'_, T>>,
) -> Chart {
    let values: Vec<Vec<Option<f64>>> = lines
        .iter()
        .map(|(_, _, pick)| {
            buckets
                .iter()
                .map(|b| combine(b.sample.iter().map(pick), how))
                .collect()
        })
        .collect();
    let max = values
        .iter()
        .flatten()
        .flatten()
        .copied()
        .fold(0.0_f64, f64::max);
    let y_max = nice_ceiling(max);
    let to = axis
        .end
        .unwrap_or_else(|| buckets.last().map_or_else(Utc::now, |b| b.at));
    let slots = axis.slots.max(1);
    let from = to - chrono::Duration::seconds(axis.step * (slots as i64 - 1));
    let slot_width = (RIGHT - LEFT) / slots as f64;
    // The slot of a time: 0 for `from`, `slots - 1` for the newest sample.
    let slot = |at: DateTime<Utc>| (at - from).num_seconds().div_euclid(axis.step.max(1));
    let in_range = |at: DateTime<Utc>| (0..slots as i64).contains(&slot(at));
    let x = |at: DateTime<Utc>| LEFT + (slot(at) as f64 + 0.5) * slot_width;
    let y = |v: f64| BOTTOM - (BOTTOM - TOP) * (v / y_max);
    let coordinate = |v: f64| format!("{v:.1}");
    let bars = how == Combine::Sum;
    let count = lines.len().max(1) as f64;
    let series = lines
        .iter()
        .zip(&values)
        .enumerate()
        .map(|(k, ((name, class, _), values))| {
            let present: Vec<(DateTime<Utc>, f64)> = buckets
                .iter()
                .zip(values)
                .filter(|(b, _)| in_range(b.at))
                .filter_map(|(b, v)| v.map(|v| (b.at, v)))
                .collect();
            let points: Vec<(f64, f64)> = present.iter().map(|&(at, v)| (x(at), y(v))).collect();
            let bar_width = (slot_width / count * 0.8).max(0.5);
            Series {
                name,
                class,
                points: if bars {
                    String::new()
                } else {
                    points
                        .iter()
                        .map(|(px, py)| format!("{px:.1},{py:.1}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                },
                dots: if bars || points.len() > 90 {
                    Vec::new()
                } else {
                    points
                        .iter()
                        .map(|&(px, py)| (coordinate(px), coordinate(py)))
                        .collect()
                },
                bars: if bars {
                    present
                        .iter()
                        .filter(|(_, v)| *v > 0.0)
                        .map(|&(at, v)| {
                            let left =
                                LEFT + slot(at) as f64 * slot_width + k as f64 * slot_width / count;
                            (
                                coordinate(left),
                                coordinate(y(v)),
                                format!("{bar_width:.2}"),
                                coordinate(BOTTOM - y(v)),
                            )
                        })
                        .collect()
                } else {
                    Vec::new()
                },
                last: values
                    .iter()
                    .rev()
                    .flatten()
                    .next()
                    .map_or_else(|| "—".to_owned(), |v| number(*v)),
                total: bars.then(|| number(present.iter().map(|(_, v)| v).sum())),
            }
        })
        .collect();
    Chart {
        id,
        title,
        unit,
        series,
        y_max: number(y_max),
        x_from: from.format(axis.label).to_string(),
        x_to: to.format(axis.label).to_string(),
        empty: buckets.is_empty(),
        total_of: axis.total_of,
        width: WIDTH,
        height: HEIGHT,
        left: LEFT,
        right: RIGHT,
        top: TOP,
        bottom: BOTTOM,
    }
}

/// The smallest 1, 2 or 5 × 10ⁿ at or above `max` (1 for an all-zero chart), so the axis reads well.
fn nice_ceiling(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&c| c >= max)
        .unwrap_or(10.0 * magnitude)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(minute: i64, pending: u64, sent: u64) -> Sample {
        Sample {
            minute: DateTime::from_timestamp(minute * 60, 0).unwrap(),
            events_in: sent,
            realtime: QueueSample {
                sent,
                ..Default::default()
            },
            batch: QueueSample {
                queue_size: pending,
                avg_queue_time: Some(2.0),
                ..Default::default()
            },
        }
    }

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.0), 5.0);
        assert_eq!(nice_ceiling(500.0), 500.0);
        assert_eq!(nice_ceiling(501.0), 1000.0);
        assert_eq!(nice_ceiling(0.3), 0.5);
    }

    #[test]
    fn charts_plot_the_history() {
        let history: Vec<Sample> = (0..10)
            .map(|m| sample(1000 + m, 50 * m as u64, 2))
            .collect();
        let charts = charts(history, Range::Hour);
        assert_eq!(charts.len(), 7);
        let size = charts.iter().find(|c| c.id == "queue_size").unwrap();
        assert_eq!(size.y_max, "500");
        let batch = &size.series[1];
        assert_eq!(batch.points.split(' ').count(), 10);
        assert_eq!(batch.last, "450");
        // Ten minutes at the right end of an hour: the first at slot 50 of 60.
        let slot = (352.0 - 44.0) / 60.0;
        let first_x = format!("{:.1},118.0", 44.0 + 50.5 * slot);
        assert!(batch.points.starts_with(&first_x), "{}", batch.points);
        let sent = charts.iter().find(|c| c.id == "sent").unwrap();
        assert_eq!(sent.series[0].bars.len(), 10, "counts are bars");
        assert!(sent.series[0].points.is_empty());
        let delivery = charts.iter().find(|c| c.id == "delivery_time").unwrap();
        assert!(delivery.series[0].points.is_empty(), "no value, no point");
        assert!(!size.empty);
        assert!(super::charts(Vec::new(), Range::Day)[0].empty);
    }

    #[test]
    fn a_day_is_drawn_in_five_minute_buckets() {
        let history: Vec<Sample> = (0..60).map(|m| sample(1200 + m, m as u64, 1)).collect();
        let charts = charts(history, Range::Day);
        let sent = charts.iter().find(|c| c.id == "sent").unwrap();
        assert_eq!(sent.series[0].bars.len(), 12);
        assert_eq!(sent.series[0].last, "5", "sums per bucket");
        assert_eq!(
            sent.series[0].total.as_deref(),
            Some("60"),
            "the legend of a count sums the range"
        );
        let size = charts.iter().find(|c| c.id == "queue_size").unwrap();
        assert_eq!(size.series[1].last, "59", "largest per bucket");
        assert_eq!(size.series[1].total, None);
    }
}
