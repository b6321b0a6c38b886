//! Diagrams of a template's state machine: Mermaid `stateDiagram-v2` (stages as composite
//! states) and Graphviz DOT (stages as clusters). Transition labels are the transition names.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::template::{FromStates, TemplateDefinition};

crate::domain::closed_set::closed_set! {
    /// Which diagram language.
    pub enum DiagramFormat {
        /// Mermaid `stateDiagram-v2`, stages as composite states.
        Mermaid = "mermaid",
        /// Graphviz DOT, stages as clusters.
        Dot = "dot",
        /// An SVG picture, laid out in-process (stages are not drawn).
        Svg = "svg",
    }
}

impl DiagramFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Mermaid => "text/vnd.mermaid; charset=utf-8",
            Self::Dot => "text/vnd.graphviz; charset=utf-8",
            Self::Svg => "image/svg+xml",
        }
    }
}

crate::domain::closed_set::closed_set! {
    /// Which language a label is drawn in.
    pub enum Language {
        Ja = "ja",
        En = "en",
    }
}

/// Live figures drawn on a state of an SVG diagram.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateFigures {
    /// Tickets in the state now.
    pub count: usize,
    /// The 90th percentile of recent stays in the state, in seconds.
    pub p90_seconds: Option<i64>,
}

pub fn render(
    def: &TemplateDefinition,
    format: DiagramFormat,
    language: Language,
    overlay: Option<&HashMap<String, StateFigures>>,
) -> String {
    match format {
        DiagramFormat::Mermaid => mermaid(def, language),
        DiagramFormat::Dot => dot(def, language),
        DiagramFormat::Svg => svg(def, language, overlay),
    }
}

/// A duration as people read it: `45m`, `3.5h`, `2.0d`.
fn short_duration(seconds: i64) -> String {
    #[expect(
        clippy::cast_precision_loss,
        reason = "durations far below 2^52 seconds"
    )]
    let s = seconds as f64;
    if seconds < 3_600 {
        format!("{}m", (seconds + 59) / 60)
    } else if seconds < 86_400 {
        format!("{:.1}h", s / 3_600.0)
    } else {
        format!("{:.1}d", s / 86_400.0)
    }
}

/// The state machine as an SVG picture (layout-rs): one box per state (terminal states with
/// a double border is not available there, so `■` marks them), one arrow per transition
/// edge, and with `overlay` each state's ticket count and p90 stay.
pub fn svg(
    def: &TemplateDefinition,
    language: Language,
    overlay: Option<&HashMap<String, StateFigures>>,
) -> String {
    use layout::backends::svg::SVGWriter;
    use layout::core::base::Orientation;
    use layout::core::geometry::Point;
    use layout::core::style::StyleAttr;
    use layout::std_shapes::shapes::{Arrow, Element, ShapeKind};
    use layout::topo::layout::VisualGraph;

    let mut graph = VisualGraph::new(Orientation::TopToBottom);
    let mut nodes = HashMap::new();
    for (_, state) in def.states() {
        let mut text = label(&state.label, language).to_owned();
        if state.terminal {
            text.push_str(" ■");
        }
        if let Some(figures) = overlay.map(|o| o.get(&state.key).copied().unwrap_or_default()) {
            let p90 = figures
                .p90_seconds
                .map_or_else(|| "–".to_owned(), short_duration);
            let _ = write!(text, "\n{} · p90 {p90}", figures.count);
        }
        // Wide characters take about twice the room of narrow ones.
        let width = text
            .lines()
            .map(|line| {
                line.chars()
                    .map(|c| if c.is_ascii() { 8.0 } else { 15.0 })
                    .sum::<f64>()
            })
            .fold(60.0, f64::max)
            + 24.0;
        let height = if overlay.is_some() { 56.0 } else { 36.0 };
        let element = Element::create(
            ShapeKind::new_box(&text),
            StyleAttr::simple(),
            Orientation::LeftToRight,
            Point::new(width, height),
        );
        nodes.insert(state.key.clone(), graph.add_node(element));
    }
    for (from, to, text) in edges(def, language) {
        if let (Some(a), Some(b)) = (nodes.get(&from), nodes.get(&to)) {
            // A transition back into its own state is drawn as its name on no arrow: the
            // layout has no loops.
            if a != b {
                graph.add_edge(Arrow::simple(&text), *a, *b);
            }
        }
    }
    let mut out = SVGWriter::new();
    graph.do_it(false, false, false, &mut out);
    out.finalize()
}

fn label(label: &super::template::Label, language: Language) -> &str {
    match language {
        Language::Ja => &label.ja,
        Language::En => &label.en,
    }
}

/// Every (from, to, label) edge, with `"*"` expanded to the non-terminal states.
fn edges(def: &TemplateDefinition, language: Language) -> Vec<(String, String, String)> {
    let mut edges = Vec::new();
    for transition in &def.transitions {
        let from: Vec<String> = match &transition.from {
            FromStates::States(states) => states.clone(),
            FromStates::Any => def
                .states()
                .filter(|(_, s)| !s.terminal)
                .map(|(_, s)| s.key.clone())
                .collect(),
        };
        for state in from {
            edges.push((
                state,
                transition.to.clone(),
                label(&transition.label, language).to_owned(),
            ));
        }
    }
    edges
}

/// Mermaid text may not contain the characters that delimit its syntax.
fn mermaid_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' => '\'',
            ':' | ';' | '{' | '}' | '\n' | '\r' | '#' => ' ',
            other => other,
        })
        .collect()
}

/// Keys of a linted definition are already `[a-z][a-z0-9_]*`; drafts may hold anything.
fn mermaid_id(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub fn mermaid(def: &TemplateDefinition, language: Language) -> String {
    let mut out = String::from("stateDiagram-v2\n");
    for stage in &def.stages {
        let _ = writeln!(
            out,
            "    state \"{}\" as stage_{} {{",
            mermaid_text(label(&stage.label, language)),
            mermaid_id(&stage.key)
        );
        for state in &stage.states {
            let _ = writeln!(
                out,
                "        state \"{}\" as {}",
                mermaid_text(label(&state.label, language)),
                mermaid_id(&state.key)
            );
        }
        let _ = writeln!(out, "    }}");
    }
    for (_, state) in def.states().filter(|(_, s)| s.initial) {
        let _ = writeln!(out, "    [*] --> {}", mermaid_id(&state.key));
    }
    for (from, to, text) in edges(def, language) {
        let _ = writeln!(
            out,
            "    {} --> {} : {}",
            mermaid_id(&from),
            mermaid_id(&to),
            mermaid_text(&text)
        );
    }
    for (_, state) in def.states().filter(|(_, s)| s.terminal) {
        let _ = writeln!(out, "    {} --> [*]", mermaid_id(&state.key));
    }
    out
}

fn dot_text(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', " ")
}

pub fn dot(def: &TemplateDefinition, language: Language) -> String {
    let mut out = String::from(
        "digraph template {\n    rankdir=LR;\n    node [shape=box, style=rounded, fontname=\"sans-serif\"];\n    edge [fontname=\"sans-serif\", fontsize=10];\n",
    );
    let _ = writeln!(
        out,
        "    label=\"{}\";",
        dot_text(label(&def.name, language))
    );
    for stage in &def.stages {
        let _ = writeln!(out, "    subgraph \"cluster_{}\" {{", dot_text(&stage.key));
        let _ = writeln!(
            out,
            "        label=\"{}\";",
            dot_text(label(&stage.label, language))
        );
        for state in &stage.states {
            let peripheries = if state.terminal {
                ", peripheries=2"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "        \"{}\" [label=\"{}\"{peripheries}];",
                dot_text(&state.key),
                dot_text(label(&state.label, language))
            );
        }
        let _ = writeln!(out, "    }}");
    }
    for (_, state) in def.states().filter(|(_, s)| s.initial) {
        let _ = writeln!(
            out,
            "    \"__start\" [shape=point, label=\"\"];\n    \"__start\" -> \"{}\";",
            dot_text(&state.key)
        );
    }
    for (from, to, text) in edges(def, language) {
        let _ = writeln!(
            out,
            "    \"{}\" -> \"{}\" [label=\"{}\"];",
            dot_text(&from),
            dot_text(&to),
            dot_text(&text)
        );
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_short() {
        assert_eq!(short_duration(60), "1m");
        assert_eq!(short_duration(3_599), "60m");
        assert_eq!(short_duration(5_400), "1.5h");
        assert_eq!(short_duration(172_800), "2.0d");
    }
}
