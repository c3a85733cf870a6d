//! Reads the `[[apps]]` of the configuration and checks them: the relay core keeps the tables
//! unread (so it does not depend on this module), and start-up reads them here. A table that
//! does not read names its key as every configuration error does; [`validate`] then checks
//! what reading cannot.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use super::app::{AppDefinition, NodeKind};
use super::app_checks::{check_app_id, check_inputs, check_template_tags};
use super::error::{AppError, AppProblem};
use crate::config::ConfigError;

/// The part of the configuration this module reads; the rest is the core's.
#[derive(Deserialize)]
struct AppsSection {
    #[serde(default)]
    apps: Vec<AppDefinition>,
}

/// The apps of the configuration `text` (the TOML the [`crate::config::Config`] was read
/// from), read and validated.
pub fn load(text: &str) -> Result<Vec<AppDefinition>, ConfigError> {
    let section: AppsSection = toml::from_str(text).map_err(|e| {
        let mut error = ConfigError::of_toml(text, &e);
        if let Some(key) = super::node_keys::field_at_fault(text, &error.key) {
            error.key = key;
        }
        error
    })?;
    validate(&section.apps).map_err(|e| ConfigError {
        key: e.key,
        problem: e.problem.to_string(),
        context: None,
    })?;
    Ok(section.apps)
}

/// Checks every app: unique ids of the allowed characters, unique keys, inputs that a run
/// can use ([`check_inputs`]), one start node, at least one end, edges between known nodes,
/// if-else edges labelled, no cycles, templates that compile and need no loader, selectors
/// that name a node. The error's key names the app and the node.
pub fn validate(apps: &[AppDefinition]) -> Result<(), AppError> {
    let mut app_ids = HashSet::new();
    let mut keys = HashSet::new();
    for app in apps {
        let at = |problem: AppProblem| AppError { key: format!("apps.{}", app.id), problem };
        if app.id.is_empty() || !app_ids.insert(app.id.as_str()) {
            return Err(AppError {
                key: "apps".into(),
                problem: AppProblem::AppId(app.id.clone()),
            });
        }
        check_app_id(&app.id)?;
        if app.api_keys.is_empty() {
            return Err(at(AppProblem::NoApiKey));
        }
        for key in &app.api_keys {
            if !key.starts_with("app-") || key.len() < 16 {
                return Err(at(AppProblem::ApiKeyForm));
            }
            if !keys.insert(key.as_str()) {
                return Err(at(AppProblem::ApiKeyShared));
            }
        }
        check_inputs(app)?;
        match &app.upstream {
            Some(upstream) => {
                if !app.nodes.is_empty() || !app.edges.is_empty() {
                    return Err(at(AppProblem::UpstreamAndGraph));
                }
                if url::Url::parse(&upstream.base_url).is_err() {
                    return Err(at(AppProblem::UpstreamUrl(upstream.base_url.clone())));
                }
            }
            None => validate_graph(app)?,
        }
    }
    Ok(())
}

fn validate_graph(app: &AppDefinition) -> Result<(), AppError> {
    let at = |key: String, problem: AppProblem| AppError { key, problem };
    let whole = |problem| at(format!("apps.{}", app.id), problem);
    let node_key = |node: &str| format!("apps.{}.nodes.{node}", app.id);
    let edges_key = format!("apps.{}.edges", app.id);
    let mut ids = HashMap::new();
    for node in &app.nodes {
        if ids.insert(node.id.as_str(), node).is_some() || node.id == "sys" {
            return Err(at(node_key(&node.id), AppProblem::NodeId));
        }
    }
    let starts: Vec<_> =
        app.nodes.iter().filter(|n| matches!(n.kind, NodeKind::Start {})).collect();
    if starts.len() != 1 {
        return Err(whole(AppProblem::StartNodes(starts.len())));
    }
    if !app.nodes.iter().any(|n| matches!(n.kind, NodeKind::End { .. })) {
        return Err(whole(AppProblem::NoEnd));
    }
    for edge in &app.edges {
        for end in [&edge.source, &edge.target] {
            if !ids.contains_key(end.as_str()) {
                let problem = AppProblem::EdgeToUnknownNode {
                    from: edge.source.clone(),
                    to: edge.target.clone(),
                    unknown: end.clone(),
                };
                return Err(at(edges_key, problem));
            }
        }
        let from_if =
            ids.get(edge.source.as_str()).is_some_and(|n| matches!(n.kind, NodeKind::IfElse(_)));
        let handle = edge.source_handle.as_deref();
        if from_if && !matches!(handle, Some("true" | "false")) {
            return Err(at(edges_key, AppProblem::UnlabelledBranch(edge.source.clone())));
        }
    }
    for node in &app.nodes {
        let field_key = |field: &str| format!("{}.{field}", node_key(&node.id));
        let check = |field: &str, selector: &[String]| match selector.first().map(String::as_str) {
            Some("sys") if selector.len() == 2 => Ok(()),
            Some(id) if selector.len() >= 2 && ids.contains_key(id) => Ok(()),
            _ => Err(at(field_key(field), AppProblem::UnknownSelector(selector.to_vec()))),
        };
        match &node.kind {
            NodeKind::TemplateTransform { template, variables } => {
                variables.iter().try_for_each(|b| check("variables", &b.value_selector))?;
                minijinja::Environment::new()
                    .template_from_str(template)
                    .map_err(|e| at(field_key("template"), AppProblem::Template(e.to_string())))?;
                check_template_tags(template).map_err(|e| at(field_key("template"), e))?;
            }
            NodeKind::End { outputs } => {
                outputs.iter().try_for_each(|b| check("outputs", &b.value_selector))?
            }
            NodeKind::IfElse(c) => {
                c.conditions.iter().try_for_each(|c| check("conditions", &c.variable_selector))?;
                c.validate().map_err(|e| at(field_key(e.field()), e.into()))?
            }
            NodeKind::HttpRequest(h) => {
                h.validate().map_err(|e| at(field_key(e.field()), e.into()))?
            }
            NodeKind::Llm(l) => l.validate().map_err(|e| at(field_key(e.field()), e.into()))?,
            NodeKind::Start {} => {}
        }
    }
    if let Some(node) = super::graph::cycle_node(app) {
        return Err(at(node_key(node), AppProblem::Cycle(node.to_string())));
    }
    let start = starts[0].id.as_str();
    let reachable = super::graph::reachable(app, start);
    if !app
        .nodes
        .iter()
        .any(|n| matches!(n.kind, NodeKind::End { .. }) && reachable.contains(n.id.as_str()))
    {
        return Err(whole(AppProblem::EndUnreachable(start.to_string())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An app `a`: start → `mid` (the node `mid`, given as TOML lines) → end.
    fn app(mid: &str) -> String {
        format!(
            "[[apps]]\nid = \"a\"\napi_keys = [\"app-a-key-0123456789\"]\n\
             [[apps.nodes]]\nid = \"start\"\ntype = \"start\"\n\
             [[apps.nodes]]\nid = \"mid\"\n{mid}\n\
             [[apps.nodes]]\nid = \"end\"\ntype = \"end\"\noutputs = []\n\
             [[apps.edges]]\nsource = \"start\"\ntarget = \"mid\"\n\
             [[apps.edges]]\nsource = \"mid\"\nsource_handle = \"true\"\ntarget = \"end\"\n\
             [[apps.edges]]\nsource = \"mid\"\nsource_handle = \"false\"\ntarget = \"end\"\n"
        )
    }

    fn key_of(text: &str) -> String {
        load(text).expect_err(text).key
    }

    #[test]
    fn the_example_apps_load() {
        assert_eq!(load(crate::config::EXAMPLE).expect("example").len(), 2);
        assert!(load("").expect("no apps").is_empty());
    }

    /// A misspelt setting of any node kind is refused, naming it (`output` for `outputs` was
    /// silently ignored, leaving the default).
    #[test]
    fn an_unknown_node_setting_is_refused_naming_it() {
        let cases = [
            ("type = \"end\"\noutput = []", "apps[0].nodes[1].output"),
            ("type = \"start\"\ninputs = []", "apps[0].nodes[1].inputs"),
            (
                "type = \"template-transform\"\ntemplate = \"x\"\nvariable = []",
                "apps[0].nodes[1].variable",
            ),
            (
                "type = \"http-request\"\nurl = \"http://x.example\"\nheader = {}",
                "apps[0].nodes[1].header",
            ),
        ];
        for (mid, key) in cases {
            let e = load(&app(mid)).expect_err(mid);
            assert_eq!(e.key, key, "{mid}: {e}");
        }
    }

    /// Type errors inside an app name the field from the parser's position.
    #[test]
    fn a_wrong_app_or_node_field_is_named_by_its_key() {
        assert_eq!(key_of("[[apps]]\nid = \"a\"\nname = 7\n"), "apps[0].name");
        assert_eq!(
            key_of(&app("type = \"template-transform\"\ntemplate = 5")),
            "apps[0].nodes[1].template"
        );
        assert_eq!(key_of(&app("type = \"lm\"")), "apps[0].nodes[1].type");
    }

    /// An app `id` (id line given) with the `inputs` TOML lines and one template node.
    fn app_with(id_line: &str, inputs: &str, template: &str) -> String {
        format!(
            "[[apps]]\n{id_line}\napi_keys = [\"app-a-key-0123456789\"]\n{inputs}\n\
             [[apps.nodes]]\nid = \"start\"\ntype = \"start\"\n\
             [[apps.nodes]]\nid = \"t\"\ntype = \"template-transform\"\ntemplate = {template:?}\n\
             [[apps.nodes]]\nid = \"end\"\ntype = \"end\"\noutputs = []\n\
             [[apps.edges]]\nsource = \"start\"\ntarget = \"t\"\n\
             [[apps.edges]]\nsource = \"t\"\ntarget = \"end\"\n"
        )
    }

    /// Definitions that read and compiled, yet fail every run that uses them (or cannot be
    /// addressed), are refused at load, naming the app and the field.
    #[test]
    fn inputs_ids_and_templates_that_cannot_work_are_refused_at_load() {
        let input = |lines: &str| format!("[[apps.inputs]]\n{lines}\n");
        let text = |v: &str| input(&format!("type = \"text-input\"\nvariable = \"{v}\""));
        let id = "id = \"a\"";
        let cases = [
            (
                app_with(id, &input("type = \"select\"\nvariable = \"tone\"\noptions = [\"x\"]\ndefault = \"y\""), "x"),
                "apps.a.inputs.tone.default",
            ),
            (app_with(id, &(text("n") + &text("n")), "x"), "apps.a.inputs.n.variable"),
            (app_with(id, &text(""), "x"), "apps.a.inputs[0].variable"),
            (
                app_with(id, &input("type = \"text-input\"\nvariable = \"n\"\nmax_length = 0"), "x"),
                "apps.a.inputs.n.max_length",
            ),
            (app_with("id = \"a/1\"", "", "x"), "apps.a/1.id"),
            (app_with("id = \"a.b\"", "", "x"), "apps.a.b.id"),
            (app_with(id, "", "{% include \"x\" %}"), "apps.a.nodes.t.template"),
            (app_with(id, "", "a{%- import \"m\" as m %}"), "apps.a.nodes.t.template"),
            (app_with(id, "", "{%from \"m\" import f %}"), "apps.a.nodes.t.template"),
            (app_with(id, "", "{% extends \"base\" %}"), "apps.a.nodes.t.template"),
        ];
        let wrong: Vec<String> = cases
            .iter()
            .filter_map(|(app, key)| match load(app) {
                Err(e) if e.key == *key => None,
                other => Some(format!("{key}: {:?}", other.map(|apps| apps.len()))),
            })
            .collect();
        assert!(wrong.is_empty(), "not refused as expected:\n{}", wrong.join("\n"));
        // What is fine: a default among the options, the words inside text or a raw block.
        let fine =
            input("type = \"select\"\nvariable = \"tone\"\noptions = [\"x\"]\ndefault = \"x\"");
        let template =
            "include {{ 1 }} {% raw %}{% include \"x\" %}{% endraw %}{# {% extends %} #}";
        load(&app_with("id = \"a-1_B\"", &(fine + &text("n")), template)).expect("loads");
    }

    /// Checks after reading name the app, the node and the field as the key.
    #[test]
    fn a_bad_definition_names_app_node_and_field() {
        let gate = "type = \"if-else\"\nconditions = [{ variable_selector = [\"start\", \"x\"], comparison_operator = \"likes\" }]";
        let e = load(&app(gate)).expect_err("unknown operator");
        assert_eq!(e.key, "apps.a.nodes.mid.conditions", "{e:?}");
        assert!(e.problem.contains("likes"), "{e:?}");
        let e = load(&app("type = \"template-transform\"\ntemplate = \"{{ x \""))
            .expect_err("template");
        assert_eq!(e.key, "apps.a.nodes.mid.template", "{e:?}");
        let e =
            load(&app("type = \"http-request\"\nmethod = \"FETCH\"\nurl = \"http://x.example\""))
                .expect_err("method");
        assert_eq!(e.key, "apps.a.nodes.mid.method", "{e:?}");
        let e = load(&app("type = \"start\"")).expect_err("two starts");
        assert_eq!(e.key, "apps.a", "{e:?}");
    }
}
