//! The report of a Frontier job: availability (or expected backorders when
//! the fleet is unknown) against investment, with the plan in force and the
//! recommended plan marked, and the frontier's points as a table.

use super::html::{Cell, Page, money, percent, table};
use super::svg::{Axis, Chart, Highlight, Line, PALETTE};
use crate::planning::frontier::{FrontierResult, FrontierRow};

/// What the chart's y axis shows.
fn y_of(row: &FrontierRow, availability: bool) -> f64 {
    if availability {
        row.availability.unwrap_or(f64::NAN)
    } else {
        row.expected_backorders
    }
}

/// Renders the report.
pub fn render(job_id: &str, result: &FrontierResult) -> String {
    let meta = format!(
        "{job_id} · {:?} · {} parts · {} machines · {} purchases traced, {} points shown",
        result.model,
        result.part_ids.len(),
        result.machines,
        result.purchases,
        result.points.len()
    );
    let mut page = Page::new(&format!("Frontier report {job_id}"), &meta);
    let availability = result.points.iter().all(|p| p.availability.is_some());
    page.heading(
        "frontier-chart",
        if availability {
            "Availability against investment"
        } else {
            "Expected backorders against investment"
        },
    );
    let marked: Vec<&FrontierRow> = result
        .in_force
        .iter()
        .chain(result.recommended.iter())
        .collect();
    let rows: Vec<&FrontierRow> = result.points.iter().chain(marked.iter().copied()).collect();
    let x = Axis::covering(
        "investment in stock",
        rows.iter().map(|r| r.investment_usd),
        true,
        money,
    );
    let y = if availability {
        Axis::covering(
            "fleet availability",
            rows.iter().map(|r| y_of(r, true)),
            false,
            |v| percent(v, 1),
        )
    } else {
        Axis::covering(
            "expected backorders",
            rows.iter().map(|r| y_of(r, false)),
            true,
            |v| format!("{v:.1}"),
        )
    };
    let mut chart = Chart::new("frontier", &format!("{:?} frontier", result.model), x, y);
    chart.line(&Line {
        name: "frontier".into(),
        points: result
            .points
            .iter()
            .map(|r| (r.investment_usd, y_of(r, availability)))
            .collect(),
        colour: PALETTE[0].into(),
        dashed: false,
    });
    if let Some(plan) = &result.in_force {
        chart.highlight(&Highlight {
            name: "plan in force".into(),
            point: (plan.investment_usd, y_of(plan, availability)),
            colour: PALETTE[3].into(),
            diamond: false,
        });
    }
    if let Some(best) = &result.recommended {
        chart.highlight(&Highlight {
            name: "recommended".into(),
            point: (best.investment_usd, y_of(best, availability)),
            colour: PALETTE[2].into(),
            diamond: true,
        });
    }
    page.raw(&chart.finish());
    page.note(&match (&result.in_force, &result.recommended) {
        (Some(plan), Some(best)) => format!(
            "The plan in force holds {} of stock; the frontier's best plan for no more money holds {} and reaches {} ({} expected backorders, against {}).",
            money(plan.investment_usd),
            money(best.investment_usd),
            best.availability.map_or("-".into(), |a| percent(a, 2)),
            format_args!("{:.2}", best.expected_backorders),
            format_args!("{:.2}", plan.expected_backorders),
        ),
        (None, Some(best)) => format!(
            "No policy holds stock of these parts; recommended: the cheapest point reaching the target availability, {} of stock.",
            money(best.investment_usd)
        ),
        _ => "No point to recommend.".into(),
    });
    page.heading("points", "Frontier points");
    let mut table_rows: Vec<Vec<Cell>> = Vec::new();
    let mut add = |label: &str, r: &FrontierRow| {
        table_rows.push(vec![
            Cell::text(label),
            Cell::number(r.investment_usd, money(r.investment_usd)),
            Cell::number(
                r.expected_backorders,
                format!("{:.3}", r.expected_backorders),
            ),
            match r.availability {
                Some(a) => Cell::number(a, percent(a, 3)),
                None => Cell::text("-"),
            },
        ]);
    };
    if let Some(plan) = &result.in_force {
        add("plan in force", plan);
    }
    if let Some(best) = &result.recommended {
        add("recommended", best);
    }
    for (i, r) in result.points.iter().enumerate() {
        add(&format!("point {i}"), r);
    }
    page.raw(&table(
        "points-table",
        &["plan", "investment", "expected backorders", "availability"],
        table_rows,
    ));
    page.finish()
}
