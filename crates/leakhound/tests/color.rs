//! Colour in text reports: on a terminal by default, never with NO_COLOR (or TERM=dumb) or
//! when piped, and `--color always|never` deciding over both. The terminal is a real
//! pseudo-terminal made by `script` (util-linux).

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");
const SGR_LEAK: &str = "\x1b[1;31mLEAK\x1b[0m: ";

/// The three snapshots of the map-cache scenario, recorded for the golden tests.
fn series() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/scenarios");
    (1..=3)
        .map(|i| {
            dir.join(format!("map-cache-s{i}.heapsnapshot.gz"))
                .display()
                .to_string()
        })
        .collect()
}

/// `leakhound -q leaks …` with `extra` flags, under a pseudo-terminal, with `env` set
/// (and NO_COLOR/TERM cleared first); its stdout as the terminal showed it.
fn on_terminal(extra: &str, env: &[(&str, &str)]) -> String {
    let cmd = format!("{BIN} -q leaks {} {extra}", series().join(" "));
    let mut c = Command::new("script");
    c.args(["-qec", &cmd, "/dev/null"])
        .env_remove("NO_COLOR")
        .env("TERM", "xterm");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("script (util-linux) runs");
    assert_eq!(
        out.status.code(),
        Some(1),
        "a leak: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn a_terminal_gets_colour_unless_no_color_says_otherwise() {
    let coloured = on_terminal("", &[]);
    assert!(coloured.starts_with(SGR_LEAK), "{coloured:?}");
    assert!(coloured.contains("\x1b[36m   fix:\x1b[0m"), "{coloured:?}");

    for (extra, env) in [
        ("", &[("NO_COLOR", "1")][..]),
        ("", &[("TERM", "dumb")][..]),
        ("--color never", &[][..]),
    ] {
        let plain = on_terminal(extra, env);
        assert!(!plain.contains('\x1b'), "{extra} {env:?}: {plain:?}");
        assert!(plain.starts_with("LEAK: "), "{plain:?}");
    }
    // The flag is the user's last word: it overrides NO_COLOR.
    assert!(on_terminal("--color always", &[("NO_COLOR", "1")]).starts_with(SGR_LEAK));
}

#[test]
fn a_pipe_gets_plain_text_unless_asked() {
    let run = |extra: &[&str]| {
        let out = Command::new(BIN)
            .args(["-q", "leaks"])
            .args(series())
            .args(extra)
            .env_remove("NO_COLOR")
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let plain = run(&[]);
    assert!(plain.starts_with("LEAK: ") && !plain.contains('\x1b'), "{plain:?}");
    let coloured = run(&["--color", "always"]);
    assert!(coloured.starts_with(SGR_LEAK));
    // Colour adds escapes only: taken out, the text is the plain report.
    let stripped = coloured
        .split('\x1b')
        .enumerate()
        .map(|(i, part)| {
            if i == 0 {
                part
            } else {
                part.split_once('m').map_or(part, |(_, rest)| rest)
            }
        })
        .collect::<String>();
    assert_eq!(stripped, plain);
    // JSON is never coloured.
    let json = run(&["--color", "always", "--json"]);
    assert!(json.trim_start().starts_with('{') && !json.contains('\x1b'));
}
