//! Notebook output: tables, charts and reports, as rich output in Jupyter and as text elsewhere.
//!
//! evcxr shows a value richly when its type has a method `evcxr_display(&self)` that prints
//! `EVCXR_BEGIN_CONTENT <mime>` … `EVCXR_END_CONTENT`. Rich output is sent once, when the cell
//! ends, and only the last rich block of a cell shows: a cell that wants a table and a chart
//! composes them into one [`Report`]. Plain `println!` lines stream live, which is what the
//! [`live`] loops use while they run; a [`dashboard`] is a live page served by the kernel and
//! shown as an iframe, for watching a running query.

pub mod batch;
pub mod chart;
pub mod dashboard;
pub mod explore;
pub mod frame;
pub mod health;
pub mod html;
pub mod live;
pub mod report;
pub mod stream;
pub mod table;

pub use chart::Chart;
pub use dashboard::{query_dashboard, Dashboard, DashboardHandle};
pub use frame::FrameView;
pub use report::Report;
pub use table::Table;

/// Prints a rich block of the given MIME type the way evcxr expects it. The content's own lines
/// go through [`crate::untrusted::text`] (a second guard: values inside are escaped already), so
/// nothing in it can close the block early or open another.
pub fn display_mime(mime: &str, content: &str) {
    let content = crate::untrusted::text(content);
    println!("EVCXR_BEGIN_CONTENT {mime}\n{content}\nEVCXR_END_CONTENT");
}

/// Prints an HTML block for evcxr.
pub fn display_html(html: &str) {
    display_mime("text/html", html);
}
