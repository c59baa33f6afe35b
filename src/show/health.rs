//! The notebook view of [`Health`]: an HTML table of the three services (the `io` layer knows
//! the servers, this module how they look in a cell).

use crate::io::health::Health;
use crate::show::html::escape;

impl Health {
    /// An HTML table (the notebook view).
    pub fn to_html(&self) -> String {
        let mut h = String::from("<table><thead><tr><th>service</th><th>address</th><th>status</th><th>latency</th><th>detail</th></tr></thead><tbody>");
        for s in &self.services {
            let status = if s.up {
                "<b style=\"color:#1a7f37\">up</b>"
            } else {
                "<b style=\"color:#cf222e\">down</b>"
            };
            h.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} ms</td><td style=\"text-align:left\">{}</td></tr>",
                s.service,
                escape(&s.address),
                status,
                s.latency.as_millis(),
                escape(&s.detail)
            ));
        }
        h.push_str("</tbody></table>");
        h
    }

    /// Rich output for evcxr: the HTML table.
    pub fn evcxr_display(&self) {
        crate::show::display_html(&self.to_html());
    }
}
