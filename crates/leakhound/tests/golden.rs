//! Recorded outputs stay byte-identical: every case in `tests/golden/cases.txt` (`summary`,
//! `diff`, `leaks`, `retainers`, `stats` on the parity corpus and on snapshots of three
//! leak-scenario servers kept in `tests/golden/scenarios`) is run again and its stdout and
//! exit code compared with `tests/golden/out/NAME.out.gz`, byte for byte.
//!
//! These are what refactors must not change. A change of output on purpose is re-recorded
//! with `bash tests/golden/record.sh` (release build) in the same commit, which says why.
//! Each case also runs with one and with four worker threads (`--threads`): results must
//! not depend on how many threads computed them.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden")
}

/// `(name, args)` of every case.
fn cases() -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(golden_dir().join("cases.txt")).expect("tests/golden/cases.txt");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (name, args) = l.split_once('\t').expect("NAME<TAB>ARGS");
            (name.to_owned(), args.split_whitespace().map(str::to_owned).collect())
        })
        .collect()
}

fn recorded(name: &str) -> String {
    let path = golden_dir().join("out").join(format!("{name}.out.gz"));
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut text = String::new();
    flate2::read::GzDecoder::new(&raw[..])
        .read_to_string(&mut text)
        .expect("gunzip");
    text
}

/// What `record.sh` stores: stdout (without its last newline, as the shell's `$(…)` keeps
/// it), a newline, `exit N`.
fn run_case(args: &[String], threads: Option<usize>) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leakhound"));
    // Recorded outputs do not depend on whether the snapshots' source files exist here.
    cmd.env("LEAKHOUND_NO_LINT", "1");
    cmd.current_dir(golden_dir()).arg("--quiet");
    if let Some(n) = threads {
        cmd.env("LEAKHOUND_THREADS", n.to_string());
    }
    let out = cmd.args(args).output().expect("run leakhound");
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 stdout");
    format!(
        "{}\nexit {}\n",
        stdout.trim_end_matches('\n'),
        out.status.code().unwrap_or(-1)
    )
}

fn first_difference(a: &str, b: &str) -> String {
    let line = a
        .lines()
        .zip(b.lines())
        .position(|(x, y)| x != y)
        .unwrap_or_else(|| a.lines().count().min(b.lines().count()));
    format!(
        "first difference at line {}:\n  recorded: {:?}\n  now:      {:?}",
        line + 1,
        a.lines().nth(line).unwrap_or("<end>"),
        b.lines().nth(line).unwrap_or("<end>")
    )
}

fn check_all(threads: Option<usize>) {
    let cases = cases();
    assert!(cases.len() >= 40, "only {} cases in cases.txt", cases.len());
    let mut failures = Vec::new();
    for (name, args) in &cases {
        let want = recorded(name);
        let got = run_case(args, threads);
        if want != got {
            failures.push(format!(
                "{name} ({threads:?} threads): {}",
                first_difference(&want, &got)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} recorded outputs changed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn recorded_outputs_are_unchanged() {
    check_all(None);
}

#[test]
fn recorded_outputs_do_not_depend_on_the_thread_count() {
    check_all(Some(1));
    check_all(Some(4));
}
