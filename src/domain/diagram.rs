//! Diagrams of a template's state machine: Mermaid `stateDiagram-v2` (stages as composite
//! states) and Graphviz DOT (stages as clusters). Transition labels are the transition names.

use std::fmt::Write as _;

use super::template::{FromStates, TemplateDefinition};

crate::domain::closed_set::closed_set! {
    /// Which diagram language.
    pub enum DiagramFormat {
        /// Mermaid `stateDiagram-v2`, stages as composite states.
        Mermaid = "mermaid",
        /// Graphviz DOT, stages as clusters.
        Dot = "dot",
    }
}

impl DiagramFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Mermaid => "text/vnd.mermaid; charset=utf-8",
            Self::Dot => "text/vnd.graphviz; charset=utf-8",
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

pub fn render(def: &TemplateDefinition, format: DiagramFormat, language: Language) -> String {
    match format {
        DiagramFormat::Mermaid => mermaid(def, language),
        DiagramFormat::Dot => dot(def, language),
    }
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
