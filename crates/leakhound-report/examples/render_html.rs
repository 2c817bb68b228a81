//! Renders a hunt JSON document as the HTML report:
//! `cargo run -p leakhound-report --example render_html -- hunt.json report.html`.

use std::fs::File;
use std::io::BufReader;

use leakhound_report::html::write_html;
use leakhound_report::hunt::HuntJson;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(input), Some(output)) = (args.next(), args.next()) else {
        return Err("usage: render_html HUNT.json OUT.html".into());
    };
    let report: HuntJson = serde_json::from_reader(BufReader::new(File::open(&input)?))?;
    let mut out = File::create(&output)?;
    write_html(&report, &mut out)?;
    Ok(())
}
