//! Charts of the AI stack's Prometheus series, in place of the Grafana its design names: the
//! panels (title, PromQL, unit), one `GET /api/v1/query_range` each (Prometheus' HTTP API,
//! <https://prometheus.io/docs/prometheus/latest/querying/api/#range-queries>), and each answer
//! drawn here as an SVG of polylines, so that the browser runs no chart library.

use std::fmt::Write as _;

use anyhow::{Context as _, Result};

/// One chart: a title, its PromQL, and the unit of its values.
pub(crate) struct Panel {
    pub(crate) title: &'static str,
    pub(crate) query: &'static str,
    pub(crate) unit: Unit,
}

#[derive(Clone, Copy)]
pub(crate) enum Unit {
    PerSecond,
    Seconds,
    Count,
    /// 0..1, shown as a percentage.
    Ratio,
}

/// The stack's panels (the seed's "API performance", "project metrics" and "system overview").
pub(crate) const PANELS: &[Panel] = &[
    Panel {
        title: "Requests per second",
        query: "sum by (job) (rate({__name__=~\"tfgrid_.+_requests_total\"}[5m]))",
        unit: Unit::PerSecond,
    },
    Panel {
        title: "p95 latency",
        query: crate::ai::monitoring::query::API_P95,
        unit: Unit::Seconds,
    },
    Panel {
        title: "Projects created per hour",
        query: "sum(increase(project_creation_success_total[1h]))",
        unit: Unit::Count,
    },
    Panel {
        title: "Creation success rate",
        query: crate::ai::monitoring::query::CREATION_SUCCESS_RATE,
        unit: Unit::Ratio,
    },
    Panel {
        title: "VM CPU busy",
        query: "1 - avg by (instance) (rate(node_cpu_seconds_total{mode=\"idle\"}[5m]))",
        unit: Unit::Ratio,
    },
    Panel {
        title: "VM memory used",
        query: "1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes",
        unit: Unit::Ratio,
    },
    Panel {
        title: "VM disk used",
        query: crate::ai::monitoring::query::DISK_USED,
        unit: Unit::Ratio,
    },
];

/// A range query's window: Unix seconds, and the step between points in seconds.
pub(crate) struct Range {
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) step: u64,
}

/// One series: its labels (`job=agent`) and its points (Unix seconds, value; NaN left out).
#[derive(Debug, PartialEq)]
pub(crate) struct Series {
    pub(crate) label: String,
    pub(crate) points: Vec<(f64, f64)>,
}

/// Prometheus did not answer at all (as opposed to refusing a query).
#[derive(Debug, thiserror::Error)]
#[error("Prometheus at {0} did not answer ({1})")]
pub(crate) struct Unreachable(String, String);

/// `GET {base}/api/v1/query_range` of `query` over `range`.
///
/// Errors: [`Unreachable`]; an answer that is not `status: success` with a `matrix` (Prometheus'
/// `error` is quoted).
pub(crate) async fn query_range(
    http: &reqwest::Client,
    base: &str,
    query: &str,
    range: &Range,
) -> Result<Vec<Series>> {
    let response = http
        .get(format!("{base}/api/v1/query_range"))
        .query(&[
            ("query", query.to_string()),
            ("start", range.start.to_string()),
            ("end", range.end.to_string()),
            ("step", range.step.to_string()),
        ])
        .send()
        .await
        .map_err(|e| Unreachable(base.to_string(), e.without_url().to_string()))?;
    let body: serde_json::Value = response
        .json()
        .await
        .context("Prometheus' answer is not JSON")?;
    parse_matrix(&body)
}

/// The series of a `query_range` answer.
pub(crate) fn parse_matrix(body: &serde_json::Value) -> Result<Vec<Series>> {
    if body["status"] != "success" {
        anyhow::bail!(
            "Prometheus refused the query: {}",
            body["error"].as_str().unwrap_or("no error given")
        );
    }
    let result = body["data"]["result"]
        .as_array()
        .context("Prometheus' answer has no data.result")?;
    Ok(result
        .iter()
        .map(|r| {
            let label = r["metric"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| *k != "__name__")
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            let points = r["values"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|p| {
                    let t = p[0].as_f64()?;
                    let v: f64 = p[1].as_str()?.parse().ok()?;
                    v.is_finite().then_some((t, v))
                })
                .collect();
            Series { label, points }
        })
        .collect())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn show(value: f64, unit: Unit) -> String {
    match unit {
        Unit::PerSecond => format!("{value:.2}/s"),
        Unit::Seconds if value < 1.0 => format!("{:.0} ms", value * 1000.0),
        Unit::Seconds => format!("{value:.2} s"),
        Unit::Count => format!("{value:.0}"),
        Unit::Ratio => format!("{:.0} %", value * 100.0),
    }
}

/// Line colours with at least 3:1 contrast on white (WCAG's for graphics).
const COLOURS: [&str; 4] = ["#1a56a6", "#b3261e", "#1b6b3a", "#6b3fa0"];

/// The series as an SVG (600×160 plot, its y axis from 0 to the largest value) with a legend;
/// "no data" when every series is empty.
pub(crate) fn svg(series: &[Series], unit: Unit, range: &Range) -> String {
    let top = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0_f64, f64::max);
    if series.iter().all(|s| s.points.is_empty()) {
        return "<p class=\"note\">No data in this hour.</p>".into();
    }
    let top = if unit_is_ratio(unit) {
        top.max(1.0)
    } else if top > 0.0 {
        top
    } else {
        1.0
    };
    let span = (range.end.saturating_sub(range.start)).max(1) as f64;
    let (w, h, left) = (600.0, 160.0, 60.0);
    let mut out = format!(
        "<svg class=\"plot\" viewBox=\"0 0 {w} {}\" role=\"img\" aria-label=\"chart\">\
         <line x1=\"{left}\" y1=\"0\" x2=\"{left}\" y2=\"{h}\" class=\"axis\"/>\
         <line x1=\"{left}\" y1=\"{h}\" x2=\"{w}\" y2=\"{h}\" class=\"axis\"/>\
         <text x=\"0\" y=\"12\">{}</text><text x=\"0\" y=\"{h}\">{}</text>",
        h + 20.0,
        escape(&show(top, unit)),
        escape(&show(0.0, unit)),
    );
    for (i, s) in series.iter().enumerate() {
        let points: Vec<String> = s
            .points
            .iter()
            .map(|(t, v)| {
                let x = left + (t - range.start as f64) / span * (w - left);
                let y = h - v / top * h;
                format!("{x:.1},{y:.1}")
            })
            .collect();
        let _ = write!(
            out,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"><title>{}</title></polyline>",
            COLOURS[i % COLOURS.len()],
            points.join(" "),
            escape(&s.label)
        );
        // A series of one point (a Prometheus just started) is a dot, not an invisible line.
        if let [point] = points.as_slice()
            && let Some((x, y)) = point.split_once(',')
        {
            let _ = write!(
                out,
                "<circle cx=\"{x}\" cy=\"{y}\" r=\"4\" fill=\"{}\"/>",
                COLOURS[i % COLOURS.len()]
            );
        }
    }
    let _ = write!(
        out,
        "<text x=\"{left}\" y=\"{}\">-1 h</text><text x=\"{}\" y=\"{}\">now</text></svg><ul class=\"legend\">",
        h + 16.0,
        w - 30.0,
        h + 16.0
    );
    for (i, s) in series.iter().enumerate() {
        let last = s.points.last().map_or("-".to_string(), |p| show(p.1, unit));
        let _ = write!(
            out,
            "<li><svg width=\"12\" height=\"12\" aria-hidden=\"true\"><rect width=\"12\" height=\"12\" fill=\"{}\"/></svg> {} <strong>{}</strong></li>",
            COLOURS[i % COLOURS.len()],
            escape(if s.label.is_empty() {
                "value"
            } else {
                &s.label
            }),
            escape(&last)
        );
    }
    out.push_str("</ul>");
    out
}

fn unit_is_ratio(unit: Unit) -> bool {
    matches!(unit, Unit::Ratio)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_matrix_becomes_series_and_an_escaped_svg() {
        let body = serde_json::json!({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"__name__": "x", "job": "<agent>"}, "values": [[100, "1"], [160, "NaN"], [220, "3"]]}
        ]}});
        let series = parse_matrix(&body).unwrap();
        assert_eq!(
            series,
            vec![Series {
                label: "job=<agent>".into(),
                points: vec![(100.0, 1.0), (220.0, 3.0)]
            }]
        );
        let svg = svg(
            &series,
            Unit::PerSecond,
            &Range {
                start: 100,
                end: 220,
                step: 60,
            },
        );
        assert!(
            svg.contains("job=&lt;agent&gt;") && !svg.contains("<agent>"),
            "{svg}"
        );
        assert!(svg.contains("points=\"60.0,106.7 600.0,0.0\""), "{svg}");
        assert!(
            svg.contains("3.00/s"),
            "the top of the axis and the last value: {svg}"
        );
    }

    #[test]
    fn a_refused_query_quotes_prometheus() {
        let body = serde_json::json!({"status": "error", "error": "parse error at char 3"});
        let err = parse_matrix(&body).unwrap_err().to_string();
        assert!(err.contains("parse error at char 3"), "{err}");
    }
}
