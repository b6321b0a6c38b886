//! `overlapping_guards`: two guarded transitions leaving the same state whose guards can
//! hold at once, so which one fires depends on who clicks first.
//!
//! Only guards that are conjunctions (`all`, nested `all`s or a single clause) of field
//! comparisons, `not is_set` and facts are analysed; any other guard never produces a
//! warning. Two analysable guards overlap unless some field (or fact) is provably
//! constrained to disjoint values by the two together: `eq a` / `eq b`, disjoint `in` sets,
//! disjoint ranges, `is_set` (which every comparison implies) against `not is_set`.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::super::guard::{Guard, GuardOp};
use super::super::limits::{MAX_GUARD_DEPTH, MAX_OVERLAP_PAIRS};
use super::super::model::{FieldType, FromStates, TemplateDefinition};
use super::super::pointer::join;
use super::super::scalar::{Ordinal, parse_datetime, scalar_eq};
use super::{Index, Issues, shown};

enum Literal<'a> {
    /// `is_set` (true) or `not is_set` (false).
    Set(bool),
    Compare(GuardOp, &'a Value),
}

#[derive(Default)]
struct Conjunction<'a> {
    fields: BTreeMap<&'a str, Vec<Literal<'a>>>,
    facts: BTreeMap<&'a str, Vec<bool>>,
}

fn conjunction(guard: &Guard) -> Option<Conjunction<'_>> {
    let mut conj = Conjunction::default();
    collect(guard, &mut conj, 1).then_some(conj)
}

fn collect<'a>(guard: &'a Guard, conj: &mut Conjunction<'a>, depth: usize) -> bool {
    if depth > MAX_GUARD_DEPTH {
        return false;
    }
    match guard {
        Guard::All { all } => all.iter().all(|g| collect(g, conj, depth + 1)),
        Guard::Compare(c) => {
            let literal = match (c.op, &c.value) {
                (GuardOp::IsSet, _) => Literal::Set(true),
                (op, Some(value)) => Literal::Compare(op, value),
                (_, None) => return false,
            };
            conj.fields
                .entry(c.field.as_str())
                .or_default()
                .push(literal);
            true
        }
        Guard::Fact { fact } => {
            conj.facts.entry(fact.as_str()).or_default().push(true);
            true
        }
        Guard::Not { not } => match not.as_ref() {
            Guard::Compare(c) if c.op == GuardOp::IsSet => {
                let literals = conj.fields.entry(c.field.as_str()).or_default();
                literals.push(Literal::Set(false));
                true
            }
            Guard::Fact { fact } => {
                conj.facts.entry(fact.as_str()).or_default().push(false);
                true
            }
            _ => false,
        },
        Guard::Any { .. } => false,
    }
}

/// Whether no ticket can satisfy both conjunctions.
fn disjoint(a: &Conjunction<'_>, b: &Conjunction<'_>, index: &Index<'_>) -> bool {
    let fields = a.fields.iter().any(|(field, la)| {
        b.fields.get(field).is_some_and(|lb| {
            let kind = index.fields.get(field).map(|f| f.kind);
            kind.is_some_and(|kind| unsatisfiable(kind, la.iter().chain(lb)))
        })
    });
    let facts = a.facts.iter().any(|(fact, va)| {
        b.facts.get(fact).is_some_and(|vb| {
            let both: Vec<bool> = va.iter().chain(vb).copied().collect();
            both.contains(&true) && both.contains(&false)
        })
    });
    fields || facts
}

/// A value's identity for set intersection: `1` and `1.0` are one value, and so are two
/// timestamps of the same instant.
fn canonical(kind: FieldType, value: &Value) -> Option<String> {
    match value {
        Value::String(s) if kind == FieldType::Datetime => parse_datetime(s)
            .map(|d| format!("t{}.{:09}", d.timestamp(), d.timestamp_subsec_nanos())),
        Value::String(s) => Some(format!("s{s}")),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Some(format!("i{i}")),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                Some(format!("i{}", f as i64))
            }
            (None, Some(f)) => Some(format!("f{f}")),
            (None, None) => None,
        },
        Value::Bool(b) => Some(format!("b{b}")),
        _ => None,
    }
}

/// A one-sided bound: the value and whether it is included.
type Limit = (Ordinal, bool);

/// Keeps the tighter of two bounds; `greater` picks the direction (lower bounds keep the
/// greater value). Incomparable bounds keep the first, which can only miss a disjointness.
fn tighter(current: Option<Limit>, new: Limit, greater: bool) -> Option<Limit> {
    let Some(cur) = current else { return Some(new) };
    match new.0.compare(&cur.0) {
        Some(o) if o.is_eq() => Some((cur.0, cur.1 && new.1)),
        Some(o) if o.is_gt() == greater => Some(new),
        _ => Some(cur),
    }
}

fn within(value: &Value, lower: Option<Limit>, upper: Option<Limit>) -> bool {
    if lower.is_none() && upper.is_none() {
        return true;
    }
    // With a range in force, a value without an order fails the comparison (as in the
    // evaluator), so it cannot satisfy the conjunction.
    let Some(v) = Ordinal::of(value) else {
        return false;
    };
    let above = lower.is_none_or(|(lo, inclusive)| {
        v.compare(&lo)
            .is_none_or(|o| o.is_gt() || (inclusive && o.is_eq()))
    });
    let below = upper.is_none_or(|(hi, inclusive)| {
        v.compare(&hi)
            .is_none_or(|o| o.is_lt() || (inclusive && o.is_eq()))
    });
    above && below
}

fn unsatisfiable<'a>(kind: FieldType, literals: impl Iterator<Item = &'a Literal<'a>>) -> bool {
    let mut set = false;
    let mut unset = false;
    let mut allowed: Option<BTreeMap<String, &Value>> = None;
    let mut excluded = Vec::new();
    let mut lower = None;
    let mut upper = None;
    for literal in literals {
        let (op, value) = match literal {
            Literal::Set(true) => {
                set = true;
                continue;
            }
            Literal::Set(false) => {
                unset = true;
                continue;
            }
            Literal::Compare(op, value) => (*op, *value),
        };
        // Every comparison is false on an unset field.
        set = true;
        if kind == FieldType::MultiSelect {
            // `eq` means "contains" there: several `eq`s can all hold.
            continue;
        }
        let candidates: Vec<&Value> = match op {
            GuardOp::Eq => vec![value],
            GuardOp::In => match value.as_array() {
                Some(list) => list.iter().collect(),
                None => continue,
            },
            GuardOp::Ne => {
                excluded.push(value);
                continue;
            }
            GuardOp::Gt | GuardOp::Ge => {
                if let Some(o) = Ordinal::of(value) {
                    lower = tighter(lower, (o, op == GuardOp::Ge), true);
                }
                continue;
            }
            GuardOp::Lt | GuardOp::Le => {
                if let Some(o) = Ordinal::of(value) {
                    upper = tighter(upper, (o, op == GuardOp::Le), false);
                }
                continue;
            }
            GuardOp::IsSet => continue,
        };
        let keyed: BTreeMap<String, &Value> = candidates
            .into_iter()
            .filter_map(|v| canonical(kind, v).map(|k| (k, v)))
            .collect();
        allowed = Some(match allowed {
            None => keyed,
            Some(prev) => prev
                .into_iter()
                .filter(|(k, _)| keyed.contains_key(k))
                .collect(),
        });
    }
    if set && unset {
        return true;
    }
    if kind == FieldType::MultiSelect {
        return false;
    }
    if let Some(allowed) = allowed {
        return !allowed
            .values()
            .any(|v| !excluded.iter().any(|x| scalar_eq(v, x)) && within(v, lower, upper));
    }
    match (lower, upper) {
        (Some((lo, lo_in)), Some((hi, hi_in))) => match lo.compare(&hi) {
            Some(o) if o.is_gt() => true,
            Some(o) if o.is_eq() => !(lo_in && hi_in),
            _ => false,
        },
        _ => false,
    }
}

/// Pairs already compared, and how many more may be.
struct Pairs {
    checked: HashSet<(usize, usize)>,
    budget: usize,
}

pub(super) fn lint_overlaps(def: &TemplateDefinition, index: &Index<'_>, out: &mut Issues) {
    let conjunctions: Vec<Option<Conjunction<'_>>> = def
        .transitions
        .iter()
        .map(|t| t.guard.as_ref().and_then(conjunction))
        .collect();
    let mut by_state = vec![Vec::new(); index.states.len()];
    let mut wildcard = Vec::new();
    for (i, t) in def.transitions.iter().enumerate() {
        if conjunctions.get(i).is_none_or(Option::is_none) {
            continue;
        }
        match &t.from {
            FromStates::Any => wildcard.push(i),
            FromStates::States(from) => {
                for key in from {
                    if let Some(list) = index
                        .state_pos
                        .get(key.as_str())
                        .and_then(|&p| by_state.get_mut(p))
                        && list.last() != Some(&i)
                    {
                        list.push(i);
                    }
                }
            }
        }
    }
    let mut pairs = Pairs {
        checked: HashSet::new(),
        budget: MAX_OVERLAP_PAIRS,
    };
    let mut compare = |a: usize, b: usize, state: &str, out: &mut Issues| -> bool {
        if pairs.budget == 0 {
            return false;
        }
        pairs.budget -= 1;
        let (a, b) = (a.min(b), a.max(b));
        if a == b || !pairs.checked.insert((a, b)) {
            return true;
        }
        let (Some(Some(ca)), Some(Some(cb))) = (conjunctions.get(a), conjunctions.get(b)) else {
            return true;
        };
        if !disjoint(ca, cb, index)
            && let (Some(ta), Some(tb)) = (def.transitions.get(a), def.transitions.get(b))
        {
            out.warn(
                "overlapping_guards",
                join(&join("/transitions", b), "guard"),
                format!(
                    "the guards of {} and {} can both hold for a ticket in {state}",
                    shown(&ta.key),
                    shown(&tb.key)
                ),
            );
        }
        true
    };
    let mut complete = true;
    let any_open = (0..index.states.len())
        .any(|i| index.is_canonical(i) && index.states.get(i).is_some_and(|(s, _)| !s.terminal));
    if any_open {
        'wild: for (x, &a) in wildcard.iter().enumerate() {
            for &b in wildcard.iter().skip(x + 1) {
                if !compare(a, b, "any non-terminal state", out) {
                    complete = false;
                    break 'wild;
                }
            }
        }
    }
    'states: for (p, list) in by_state.iter().enumerate() {
        let Some((state, _)) = index.states.get(p) else {
            continue;
        };
        if !index.is_canonical(p) {
            continue;
        }
        let label = format!("state {}", shown(&state.key));
        for (x, &a) in list.iter().enumerate() {
            let partners = list.iter().skip(x + 1);
            let wild = wildcard.iter().filter(|_| !state.terminal);
            for &b in partners.chain(wild) {
                if !compare(a, b, &label, out) {
                    complete = false;
                    break 'states;
                }
            }
        }
    }
    if !complete {
        out.warn(
            "overlap_check_incomplete",
            "/transitions",
            format!(
                "more than {MAX_OVERLAP_PAIRS} pairs of guarded transitions; the overlap \
                 check stopped early"
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn unsat(kind: FieldType, guards: &[Value]) -> bool {
        let parsed: Vec<Guard> = guards
            .iter()
            .map(|g| serde_json::from_value(g.clone()).unwrap())
            .collect();
        let conj: Vec<Conjunction<'_>> = parsed.iter().map(|g| conjunction(g).unwrap()).collect();
        let lits = conj
            .iter()
            .flat_map(|c| c.fields.get("f").into_iter().flatten());
        unsatisfiable(kind, lits)
    }

    fn cmp(op: &str, value: Value) -> Value {
        json!({"field": "f", "op": op, "value": value})
    }

    #[test]
    fn proves_disjointness() {
        use FieldType::*;
        assert!(unsat(
            Select,
            &[cmp("eq", json!("a")), cmp("eq", json!("b"))]
        ));
        assert!(!unsat(
            Select,
            &[cmp("eq", json!("a")), cmp("in", json!(["a", "b"]))]
        ));
        assert!(unsat(
            Select,
            &[cmp("in", json!(["a", "b"])), cmp("in", json!(["c"]))]
        ));
        assert!(unsat(
            Select,
            &[cmp("eq", json!("a")), cmp("ne", json!("a"))]
        ));
        assert!(unsat(Integer, &[cmp("gt", json!(5)), cmp("le", json!(5))]));
        assert!(!unsat(Integer, &[cmp("ge", json!(5)), cmp("le", json!(5))]));
        assert!(unsat(Integer, &[cmp("ge", json!(5)), cmp("lt", json!(5))]));
        assert!(unsat(
            Decimal,
            &[cmp("eq", json!(1)), cmp("gt", json!(1.5))]
        ));
        assert!(!unsat(
            Decimal,
            &[cmp("eq", json!(2)), cmp("gt", json!(1.5))]
        ));
        assert!(unsat(
            Integer,
            &[cmp("eq", json!(1)), cmp("eq", json!(2.0))]
        ));
        assert!(!unsat(
            Integer,
            &[cmp("eq", json!(1)), cmp("eq", json!(1.0))]
        ));
        assert!(unsat(
            Date,
            &[
                cmp("lt", json!("2024-01-01")),
                cmp("gt", json!("2024-06-01"))
            ]
        ));
        assert!(!unsat(
            Datetime,
            &[
                cmp("eq", json!("2024-01-01T09:00:00+09:00")),
                cmp("eq", json!("2024-01-01T00:00:00Z"))
            ]
        ));
        let is_set = json!({"field": "f", "op": "is_set"});
        let not_set = json!({"not": {"field": "f", "op": "is_set"}});
        assert!(unsat(Text, &[is_set.clone(), not_set.clone()]));
        assert!(unsat(Text, &[cmp("eq", json!("x")), not_set.clone()]));
        assert!(!unsat(Text, &[is_set, cmp("eq", json!("x"))]));
        // Multi-select `eq` means "contains": both can hold.
        assert!(!unsat(
            MultiSelect,
            &[cmp("eq", json!("a")), cmp("eq", json!("b"))]
        ));
        assert!(unsat(MultiSelect, &[cmp("eq", json!("a")), not_set]));
    }

    #[test]
    fn only_conjunctions_are_analysed() {
        let g: Guard =
            serde_json::from_value(json!({"any": [{"fact": "all_children_closed"}]})).unwrap();
        assert!(conjunction(&g).is_none());
        let g: Guard =
            serde_json::from_value(json!({"not": {"field": "f", "op": "eq", "value": 1}})).unwrap();
        assert!(conjunction(&g).is_none());
        let g: Guard = serde_json::from_value(
            json!({"all": [{"all": [{"fact": "all_children_closed"}]}, {"not": {"fact": "x"}}]}),
        )
        .unwrap();
        assert!(conjunction(&g).is_some());
    }
}
