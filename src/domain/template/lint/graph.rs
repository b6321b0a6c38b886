//! The state graph: every state reachable from the initial state, and a terminal state
//! reachable from every non-terminal one. Linear in states + transitions: a `"*"`
//! transition is one shared edge set, not an edge from every state.

use super::super::model::{FromStates, TemplateDefinition};
use super::{Index, Issues, shown};

pub(super) fn lint_graph(def: &TemplateDefinition, index: &Index<'_>, out: &mut Issues) {
    let n = index.states.len();
    let mut successors = vec![Vec::new(); n];
    let mut predecessors = vec![Vec::new(); n];
    let mut wildcard_targets = Vec::new();
    let mut is_wildcard_target = vec![false; n];
    for t in &def.transitions {
        let Some(&to) = index.state_pos.get(t.to.as_str()) else {
            continue;
        };
        match &t.from {
            FromStates::Any => {
                wildcard_targets.push(to);
                if let Some(flag) = is_wildcard_target.get_mut(to) {
                    *flag = true;
                }
            }
            FromStates::States(from) => {
                for key in from {
                    if let Some(&from) = index.state_pos.get(key.as_str())
                        && let (Some(succ), Some(pred)) =
                            (successors.get_mut(from), predecessors.get_mut(to))
                    {
                        succ.push(to);
                        pred.push(from);
                    }
                }
            }
        }
    }
    let nodes: Vec<usize> = (0..n).filter(|&i| index.is_canonical(i)).collect();
    let terminal = |i: usize| index.states.get(i).is_some_and(|(s, _)| s.terminal);
    let initial = |i: usize| index.states.get(i).is_some_and(|(s, _)| s.initial);

    let roots: Vec<usize> = nodes.iter().copied().filter(|&i| initial(i)).collect();
    if !roots.is_empty() {
        let mut reached = vec![false; n];
        let mut wildcards_taken = false;
        let mut queue = roots;
        for &r in &queue {
            mark(&mut reached, r);
        }
        while let Some(s) = queue.pop() {
            let mut next: Vec<usize> = successors.get(s).cloned().unwrap_or_default();
            if !wildcards_taken && !terminal(s) {
                wildcards_taken = true;
                next.extend(&wildcard_targets);
            }
            for t in next {
                if mark(&mut reached, t) {
                    queue.push(t);
                }
            }
        }
        for &i in &nodes {
            if !reached.get(i).copied().unwrap_or(true)
                && let Some((state, at)) = index.states.get(i)
            {
                out.error(
                    "unreachable_state",
                    at,
                    format!(
                        "state {} cannot be reached from the initial state",
                        shown(&state.key)
                    ),
                );
            }
        }
    }

    let ends: Vec<usize> = nodes.iter().copied().filter(|&i| terminal(i)).collect();
    if !ends.is_empty() {
        let mut finishing = vec![false; n];
        let mut wildcards_taken = false;
        let mut queue = ends;
        for &e in &queue {
            mark(&mut finishing, e);
        }
        while let Some(s) = queue.pop() {
            let mut previous: Vec<usize> = predecessors.get(s).cloned().unwrap_or_default();
            // Reaching the target of a "*" transition means every non-terminal state can
            // finish through it.
            if !wildcards_taken && is_wildcard_target.get(s).copied().unwrap_or(false) {
                wildcards_taken = true;
                previous.extend(nodes.iter().copied().filter(|&i| !terminal(i)));
            }
            for p in previous {
                if mark(&mut finishing, p) {
                    queue.push(p);
                }
            }
        }
        for &i in &nodes {
            if !terminal(i)
                && !finishing.get(i).copied().unwrap_or(true)
                && let Some((state, at)) = index.states.get(i)
            {
                out.error(
                    "no_path_to_terminal",
                    at,
                    format!(
                        "no sequence of transitions leads from {} to a terminal state",
                        shown(&state.key)
                    ),
                );
            }
        }
    }
}

/// Marks `i`; true when it was not marked before.
fn mark(flags: &mut [bool], i: usize) -> bool {
    match flags.get_mut(i) {
        Some(flag) if !*flag => {
            *flag = true;
            true
        }
        _ => false,
    }
}
