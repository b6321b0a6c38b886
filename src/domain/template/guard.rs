//! The guard language: a small declarative condition tree over field values and a few
//! engine-supplied facts. No scripting, so a guard always terminates and can be analysed.
//!
//! Semantics: every comparison on an unset field is false (so `ne` means "set and
//! different"; use `not` to accept unset values). On a multi-select value `eq` means
//! "contains" and `in` means "contains one of". Ordering compares numbers, dates and
//! datetimes; values of different kinds never compare.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::limits::MAX_GUARD_DEPTH;
use super::pointer::join;
use super::scalar::{Ordinal, is_set, matches};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Guard {
    All { all: Vec<Guard> },
    Any { any: Vec<Guard> },
    Not { not: Box<Guard> },
    Fact { fact: String },
    Compare(Comparison),
}

impl Guard {
    /// Whether the guard consults a fact (so the caller must load the facts).
    pub fn uses_facts(&self) -> bool {
        match self {
            Guard::All { all } => all.iter().any(Guard::uses_facts),
            Guard::Any { any } => any.iter().any(Guard::uses_facts),
            Guard::Not { not } => not.uses_facts(),
            Guard::Fact { .. } => true,
            Guard::Compare(_) => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub field: String,
    pub op: GuardOp,
    /// Absent for `is_set`; a list for `in`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardOp {
    Eq,
    Ne,
    In,
    Gt,
    Ge,
    Lt,
    Le,
    IsSet,
}

impl GuardOp {
    pub fn is_ordering(self) -> bool {
        matches!(self, GuardOp::Gt | GuardOp::Ge | GuardOp::Lt | GuardOp::Le)
    }

    fn symbol(self) -> &'static str {
        match self {
            GuardOp::Eq => "=",
            GuardOp::Ne => "!=",
            GuardOp::In => "in",
            GuardOp::Gt => ">",
            GuardOp::Ge => ">=",
            GuardOp::Lt => "<",
            GuardOp::Le => "<=",
            GuardOp::IsSet => "is set",
        }
    }
}

/// Facts the engine computes about a ticket beyond its field values.
pub const KNOWN_FACTS: [&str; 1] = ["all_children_closed"];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Facts {
    /// Every child ticket is in a terminal state (true when there are none).
    pub all_children_closed: bool,
}

impl Facts {
    fn get(&self, name: &str) -> Option<bool> {
        match name {
            "all_children_closed" => Some(self.all_children_closed),
            _ => None,
        }
    }
}

/// The outcome of a guard; `failed` locates the first clause that made it false.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuardResult {
    pub passed: bool,
    pub failed: Option<GuardFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuardFailure {
    /// JSON pointer of the failing clause relative to the guard (`""` is the guard itself).
    pub clause: String,
    /// What the clause requires. Never includes the ticket's actual values, which the actor
    /// may not be allowed to see.
    pub description: String,
}

pub fn evaluate_guard(guard: &Guard, values: &Map<String, Value>, facts: &Facts) -> GuardResult {
    // The common case (passing) runs without building any string; only a failure is located.
    let failed = match holds(guard, values, facts, 1) {
        Some(true) => None,
        Some(false) => Some(locate(guard, values, facts, String::new(), 1)),
        None => Some(GuardFailure {
            clause: String::new(),
            description: format!("the guard nests deeper than {MAX_GUARD_DEPTH} levels"),
        }),
    };
    GuardResult {
        passed: failed.is_none(),
        failed,
    }
}

/// Whether the guard holds; `None` when deciding it needs a clause nested beyond the limit
/// (only possible for guards built in code, the parser refuses them), which callers treat
/// as false: fail closed, even under `not`.
pub(super) fn holds(
    guard: &Guard,
    values: &Map<String, Value>,
    facts: &Facts,
    depth: usize,
) -> Option<bool> {
    if depth > MAX_GUARD_DEPTH {
        return None;
    }
    Some(match guard {
        Guard::All { all } => {
            for g in all {
                if !holds(g, values, facts, depth + 1)? {
                    return Some(false);
                }
            }
            true
        }
        Guard::Any { any } => {
            for g in any {
                if holds(g, values, facts, depth + 1)? {
                    return Some(true);
                }
            }
            false
        }
        Guard::Not { not } => !holds(not, values, facts, depth + 1)?,
        Guard::Fact { fact } => facts.get(fact).unwrap_or(false),
        Guard::Compare(c) => compare(c, values),
    })
}

fn compare(c: &Comparison, values: &Map<String, Value>) -> bool {
    let actual = values.get(&c.field).filter(|v| is_set(Some(v)));
    if c.op == GuardOp::IsSet {
        return actual.is_some();
    }
    let (Some(actual), Some(expected)) = (actual, c.value.as_ref()) else {
        return false;
    };
    match c.op {
        GuardOp::Eq => matches(actual, expected),
        GuardOp::Ne => !matches(actual, expected),
        GuardOp::In => expected
            .as_array()
            .is_some_and(|list| list.iter().any(|e| matches(actual, e))),
        GuardOp::Gt | GuardOp::Ge | GuardOp::Lt | GuardOp::Le => {
            let order = Ordinal::of(actual).zip(Ordinal::of(expected));
            let Some(order) = order.and_then(|(a, e)| a.compare(&e)) else {
                return false;
            };
            match c.op {
                GuardOp::Gt => order.is_gt(),
                GuardOp::Ge => order.is_ge(),
                GuardOp::Lt => order.is_lt(),
                _ => order.is_le(),
            }
        }
        GuardOp::IsSet => true,
    }
}

/// The first failing clause of a guard known to be false: descends into `all` (its first false
/// child); `any`, `not`, facts and comparisons fail as a whole.
fn locate(
    guard: &Guard,
    values: &Map<String, Value>,
    facts: &Facts,
    at: String,
    depth: usize,
) -> GuardFailure {
    if let Guard::All { all } = guard {
        let failing = all
            .iter()
            .enumerate()
            .find(|(_, g)| holds(g, values, facts, depth + 1) == Some(false));
        if let Some((n, child)) = failing {
            return locate(child, values, facts, join(&join(&at, "all"), n), depth + 1);
        }
    }
    GuardFailure {
        clause: at,
        description: format!("condition not met: {}", Describe(guard, 0)),
    }
}

/// Renders a guard for people, bounded in length.
struct Describe<'a>(&'a Guard, usize);

const DESCRIBE_MAX_DEPTH: usize = 4;

impl fmt::Display for Describe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Describe(guard, depth) = *self;
        if depth > DESCRIBE_MAX_DEPTH {
            return f.write_str("…");
        }
        let list = |f: &mut fmt::Formatter<'_>, word: &str, items: &[Guard]| {
            write!(f, "{word}(")?;
            for (n, g) in items.iter().take(5).enumerate() {
                if n > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{}", Describe(g, depth + 1))?;
            }
            if items.len() > 5 {
                f.write_str(", …")?;
            }
            f.write_str(")")
        };
        match guard {
            Guard::All { all } => list(f, "all", all),
            Guard::Any { any } => list(f, "any", any),
            Guard::Not { not } => write!(f, "not ({})", Describe(not, depth + 1)),
            Guard::Fact { fact } if fact == "all_children_closed" => {
                f.write_str("all child tickets are closed")
            }
            Guard::Fact { fact } => write!(f, "unknown fact {fact}"),
            Guard::Compare(c) => {
                write!(f, "{} {}", c.field, c.op.symbol())?;
                if let Some(value) = &c.value {
                    let mut text = value.to_string();
                    if text.chars().count() > 80 {
                        text = text.chars().take(80).chain(['…']).collect();
                    }
                    write!(f, " {text}")?;
                }
                Ok(())
            }
        }
    }
}

impl<'de> Deserialize<'de> for Guard {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(GuardVisitor)
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum GuardKey {
    All,
    Any,
    Not,
    Fact,
    Field,
    Op,
    Value,
}

struct GuardVisitor;

const GUARD_SHAPES: &str = "a guard is exactly one of {\"all\": [...]}, {\"any\": [...]}, \
     {\"not\": {...}}, {\"fact\": \"...\"} or {\"field\": ..., \"op\": ..., \"value\": ...}";

// Written by hand rather than `#[serde(untagged)]` so that errors inside a nested guard keep
// their path and name the offending property instead of "did not match any variant".
impl<'de> Visitor<'de> for GuardVisitor {
    type Value = Guard;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(GUARD_SHAPES)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Guard, A::Error> {
        let mut all = None;
        let mut any = None;
        let mut not = None;
        let mut fact = None;
        let mut field = None;
        let mut op = None;
        let mut value = None;
        while let Some(key) = map.next_key::<GuardKey>()? {
            match key {
                GuardKey::All => all = Some(map.next_value::<Vec<Guard>>()?),
                GuardKey::Any => any = Some(map.next_value::<Vec<Guard>>()?),
                GuardKey::Not => not = Some(Box::new(map.next_value::<Guard>()?)),
                GuardKey::Fact => fact = Some(map.next_value::<String>()?),
                GuardKey::Field => field = Some(map.next_value::<String>()?),
                GuardKey::Op => op = Some(map.next_value::<GuardOp>()?),
                GuardKey::Value => value = Some(map.next_value::<Value>()?),
            }
        }
        let comparison = field.is_some() || op.is_some() || value.is_some();
        match (all, any, not, fact, comparison) {
            (Some(all), None, None, None, false) => Ok(Guard::All { all }),
            (None, Some(any), None, None, false) => Ok(Guard::Any { any }),
            (None, None, Some(not), None, false) => Ok(Guard::Not { not }),
            (None, None, None, Some(fact), false) => Ok(Guard::Fact { fact }),
            (None, None, None, None, true) => match (field, op) {
                (Some(field), Some(op)) => Ok(Guard::Compare(Comparison { field, op, value })),
                (None, _) => Err(de::Error::missing_field("field")),
                (_, None) => Err(de::Error::missing_field("op")),
            },
            _ => Err(de::Error::custom(GUARD_SHAPES)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn guard(v: Value) -> Guard {
        serde_json::from_value(v).unwrap()
    }

    fn values(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn eval(g: Value, v: Value) -> GuardResult {
        evaluate_guard(&guard(g), &values(v), &Facts::default())
    }

    #[test]
    fn parses_every_shape_and_round_trips() {
        let src = json!({"all": [
            {"field": "impact", "op": "in", "value": ["low", "medium"]},
            {"not": {"field": "code", "op": "is_set"}},
            {"any": [{"fact": "all_children_closed"}, {"field": "n", "op": "gt", "value": 1}]}
        ]});
        let g = guard(src.clone());
        assert_eq!(serde_json::to_value(&g).unwrap(), src);
        for bad in [
            json!({}),
            json!({"all": [], "fact": "x"}),
            json!({"field": "a"}),
            json!({"op": "eq", "value": 1}),
            json!({"field": "a", "op": "like", "value": 1}),
            json!({"field": "a", "op": "eq", "extra": 1}),
            json!([]),
        ] {
            assert!(
                serde_json::from_value::<Guard>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn comparisons() {
        let v = json!({"n": 5, "d": "2024-03-01", "s": "high", "tags": ["a", "b"], "b": true, "empty": ""});
        let pass = |g: Value| eval(g, v.clone()).passed;
        assert!(pass(json!({"field": "n", "op": "eq", "value": 5.0})));
        assert!(pass(json!({"field": "n", "op": "ne", "value": 4})));
        assert!(pass(json!({"field": "n", "op": "gt", "value": 4})));
        assert!(pass(json!({"field": "n", "op": "ge", "value": 5})));
        assert!(!pass(json!({"field": "n", "op": "lt", "value": 5})));
        assert!(pass(json!({"field": "n", "op": "le", "value": 5})));
        assert!(pass(
            json!({"field": "d", "op": "lt", "value": "2024-12-01"})
        ));
        assert!(!pass(json!({"field": "d", "op": "lt", "value": 3})));
        assert!(pass(
            json!({"field": "s", "op": "in", "value": ["low", "high"]})
        ));
        assert!(!pass(json!({"field": "s", "op": "in", "value": "high"})));
        assert!(pass(json!({"field": "tags", "op": "eq", "value": "b"})));
        assert!(pass(
            json!({"field": "tags", "op": "in", "value": ["x", "a"]})
        ));
        assert!(!pass(json!({"field": "tags", "op": "ne", "value": "a"})));
        assert!(pass(json!({"field": "b", "op": "eq", "value": true})));
        assert!(pass(json!({"field": "b", "op": "is_set"})));
        assert!(!pass(json!({"field": "empty", "op": "is_set"})));
        // Unset fields fail every comparison, `ne` included; `not` accepts them.
        assert!(!pass(json!({"field": "missing", "op": "ne", "value": 1})));
        assert!(pass(
            json!({"not": {"field": "missing", "op": "eq", "value": 1}})
        ));
        assert!(!pass(json!({"field": "n", "op": "eq"})));
    }

    #[test]
    fn combinators_and_facts() {
        let v = json!({"a": 1});
        assert!(eval(json!({"all": []}), v.clone()).passed);
        assert!(!eval(json!({"any": []}), v.clone()).passed);
        assert!(!eval(json!({"fact": "all_children_closed"}), v.clone()).passed);
        assert!(!eval(json!({"fact": "no_such_fact"}), v.clone()).passed);
        let closed = Facts {
            all_children_closed: true,
        };
        let g = guard(json!({"fact": "all_children_closed"}));
        assert!(evaluate_guard(&g, &values(v), &closed).passed);
    }

    #[test]
    fn locates_the_first_failing_clause() {
        let g = json!({"all": [
            {"field": "a", "op": "eq", "value": 1},
            {"all": [{"field": "a", "op": "is_set"}, {"not": {"field": "a", "op": "is_set"}}]},
            {"field": "b", "op": "is_set"}
        ]});
        let r = eval(g, json!({"a": 1}));
        assert!(!r.passed);
        let failed = r.failed.unwrap();
        assert_eq!(failed.clause, "/all/1/all/1");
        assert_eq!(failed.description, "condition not met: not (a is set)");

        let r = eval(
            json!({"any": [{"field": "a", "op": "eq", "value": 2}, {"fact": "all_children_closed"}]}),
            json!({"a": 1}),
        );
        let failed = r.failed.unwrap();
        assert_eq!(failed.clause, "");
        assert_eq!(
            failed.description,
            "condition not met: any(a = 2, all child tickets are closed)"
        );
        let ok = eval(
            json!({"field": "a", "op": "eq", "value": 1}),
            json!({"a": 1}),
        );
        assert_eq!(
            ok,
            GuardResult {
                passed: true,
                failed: None
            }
        );
    }

    #[test]
    fn nesting_beyond_the_limit_fails_closed() {
        let mut g = Guard::Fact {
            fact: "all_children_closed".into(),
        };
        for _ in 0..MAX_GUARD_DEPTH + 2 {
            g = Guard::Not {
                not: Box::new(Guard::Not { not: Box::new(g) }),
            };
        }
        let facts = Facts {
            all_children_closed: true,
        };
        let r = evaluate_guard(&g, &Map::new(), &facts);
        assert!(!r.passed);
        assert!(r.failed.is_some());
    }
}
