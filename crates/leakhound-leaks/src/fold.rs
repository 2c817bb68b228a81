//! Folding the long repetitive stretches of a retainer trace (a linked list, a chain of
//! closure contexts, a timer list thousands deep) into one step that says how many links
//! it stands for (`1,998 more `previous` links`), so the trace a person reads is the
//! start of the chain, one line for the rest, and its end.

use crate::model::TraceStep;

/// The longest period of steps folded.
const MAX_PERIOD: usize = 6;

/// Runs of at least this many whole periods are folded.
const MIN_REPEATS: usize = 4;

/// The step's edge and node class: what must repeat.
fn signature(t: &TraceStep) -> (&str, &str) {
    (t.edge.as_str(), t.class_name.as_str())
}

/// Whether the `p` steps from `a` and from `b` have the same signatures.
fn same_period(trace: &[TraceStep], a: usize, b: usize, p: usize) -> bool {
    b + p <= trace.len() && (0..p).all(|k| signature(&trace[a + k]) == signature(&trace[b + k]))
}

/// The edge a reader knows the chain by: a closure variable (`->previous`), else a
/// property (`.next`), else the first edge of the period; without its notation.
fn link_name(period: &[TraceStep]) -> String {
    let pick = period
        .iter()
        .find(|t| t.edge.starts_with("->"))
        .or_else(|| period.iter().find(|t| t.edge.starts_with('.')))
        .or_else(|| period.first());
    let edge = pick.map(|t| t.edge.as_str()).unwrap_or_default();
    edge.trim_start_matches("->")
        .trim_start_matches('.')
        .trim_start_matches('{')
        .trim_end_matches('}')
        .to_owned()
}

/// `n` with a comma every three digits.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The trace with every run of at least [`MIN_REPEATS`] whole periods (1 to
/// [`MAX_PERIOD`] steps, by edge and class) kept as its first and last periods around
/// one step (id 0, edge `…`) whose name says how many links it stands for. A run that
/// contains the holder is not folded.
pub(crate) fn fold_repeats(trace: Vec<TraceStep>) -> Vec<TraceStep> {
    let mut out: Vec<TraceStep> = Vec::with_capacity(trace.len());
    let mut i = 0;
    while i < trace.len() {
        let mut folded = false;
        for p in 1..=MAX_PERIOD {
            let mut r = 1;
            while same_period(&trace, i, i + r * p, p) {
                r += 1;
            }
            if r >= MIN_REPEATS && !trace[i + p..i + (r - 1) * p].iter().any(|t| t.is_holder) {
                out.extend_from_slice(&trace[i..i + p]);
                let hidden = r - 2;
                out.push(TraceStep {
                    edge: "…".into(),
                    edge_type: String::new(),
                    node_name: format!("{} more `{}` links", thousands(hidden), link_name(&trace[i..i + p])),
                    class_name: String::new(),
                    node_type: String::new(),
                    id: 0,
                    self_size_bytes: 0,
                    retained_size_bytes: 0,
                    is_holder: false,
                    is_leaked: false,
                });
                out.extend_from_slice(&trace[i + (r - 1) * p..i + r * p]);
                i += r * p;
                folded = true;
                break;
            }
        }
        if !folded {
            out.push(trace[i].clone());
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(edge: &str, class: &str) -> TraceStep {
        TraceStep {
            edge: edge.into(),
            edge_type: String::new(),
            node_name: class.into(),
            class_name: class.into(),
            node_type: String::new(),
            id: 1,
            self_size_bytes: 0,
            retained_size_bytes: 0,
            is_holder: false,
            is_leaked: false,
        }
    }

    #[test]
    fn a_chain_of_closure_contexts_folds_to_its_ends_and_a_count() {
        let mut trace = vec![step("", "(root)"), step(".current", "Thing")];
        for _ in 0..2000 {
            trace.push(step(".render", "Function"));
            trace.push(step("{context}", "system / Context"));
            trace.push(step("->previous", "Thing"));
        }
        let folded = fold_repeats(trace);
        // root, .current, one period, the fold, the last period.
        assert_eq!(folded.len(), 2 + 3 + 1 + 3, "{folded:#?}");
        assert_eq!(folded[5].node_name, "1,998 more `previous` links");
        assert_eq!(folded[5].id, 0);
    }

    #[test]
    fn a_linked_list_folds_and_a_short_or_held_run_does_not() {
        let mut trace = vec![step("", "(root)")];
        trace.extend((0..300).map(|_| step("._idleNext", "Timeout")));
        let folded = fold_repeats(trace.clone());
        assert_eq!(folded.len(), 4);
        assert_eq!(folded[2].node_name, "298 more `_idleNext` links");
        // Three repeats stay as they are.
        let short: Vec<TraceStep> = trace[..4].to_vec();
        assert_eq!(fold_repeats(short.clone()).len(), short.len());
        // The holder is never folded away.
        trace[150].is_holder = true;
        assert!(fold_repeats(trace).iter().any(|t| t.is_holder));
    }
}
