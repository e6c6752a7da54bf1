//! Plan templates (pure): `extends:` names one or more partial plans — a team's defaults, a
//! reusable guardrail set — that a plan builds on, so the same guardrails are not copied into
//! every plan. The CLI resolves them from files (paths relative to the file that names them)
//! before linting, drilling or applying; the server stores only resolved plans.
//!
//! How a plan (or a template) is laid over what it extends, in order:
//! - mappings merge key by key (`owners`, `release`, `scorecard`…), the plan's value winning;
//! - `guardrails`, `checks` and `blackouts` are lists of named items: the plan's items are added
//!   after the templates', and one with the same `name` replaces the template's in its place;
//! - every other value (the `waves`, `promotion_path`, a number) is replaced whole;
//! - a key set to `null` (`~`) in the plan removes what a template gave.
//!
//! Templates may extend others (at most [`MAX_DEPTH`] deep); a cycle is an error that names it.

use serde_json::{Map, Value};

/// How deep templates may extend templates.
pub const MAX_DEPTH: usize = 8;

/// Lists whose items are named and merged by name.
pub const NAMED_LISTS: [&str; 3] = ["guardrails", "checks", "blackouts"];

/// A template as loaded: an id that is the same however it is named (a canonical path), for
/// cycle detection and for resolving the templates it extends, and its document.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Its canonical id.
    pub id: String,
    /// Its document (a YAML mapping).
    pub doc: Value,
}

/// Whether `doc` extends anything.
pub fn extends(doc: &Value) -> bool {
    doc.get("extends").is_some()
}

/// `doc` (whose id is `origin`) with everything it extends laid under it; `load(name, from)`
/// reads the template `name` as named by the document whose id is `from`.
pub fn resolve<F>(doc: Value, origin: &str, load: &mut F) -> Result<Value, String>
where
    F: FnMut(&str, &str) -> Result<Loaded, String>,
{
    resolve_at(doc, origin, load, &mut vec![origin.to_owned()])
}

fn resolve_at<F>(
    mut doc: Value,
    origin: &str,
    load: &mut F,
    chain: &mut Vec<String>,
) -> Result<Value, String>
where
    F: FnMut(&str, &str) -> Result<Loaded, String>,
{
    let Value::Object(map) = &mut doc else {
        return Err(format!("{origin}: a plan or template must be a mapping"));
    };
    let names: Vec<String> = match map.remove("extends") {
        None | Some(Value::Null) => return Ok(doc),
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(list)) => list
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(format!("{origin}: extends lists template paths, not {other}")),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(format!(
                "{origin}: extends is a template path or a list of them, not {other}"
            ));
        }
    };
    if chain.len() > MAX_DEPTH {
        return Err(format!(
            "templates extend templates more than {MAX_DEPTH} deep: {}",
            chain.join(" → ")
        ));
    }
    let mut base = Value::Object(Map::new());
    for name in names {
        let loaded = load(&name, origin)?;
        if chain.contains(&loaded.id) {
            chain.push(loaded.id);
            return Err(format!("templates extend each other in a cycle: {}", chain.join(" → ")));
        }
        chain.push(loaded.id.clone());
        let resolved = resolve_at(loaded.doc, &loaded.id, load, chain)?;
        chain.pop();
        base = lay(base, resolved);
    }
    Ok(lay(base, doc))
}

/// `over` laid over `base` by the rules in the module's documentation.
pub fn lay(base: Value, over: Value) -> Value {
    match (base, over) {
        (Value::Object(mut base), Value::Object(over)) => {
            let mut out = Map::new();
            for (k, v) in over {
                if v.is_null() {
                    base.remove(&k);
                    continue;
                }
                let merged = match base.remove(&k) {
                    Some(b) if NAMED_LISTS.contains(&k.as_str()) => lay_named(b, v),
                    Some(b @ Value::Object(_)) if v.is_object() => lay(b, v),
                    _ => v,
                };
                out.insert(k, merged);
            }
            // What only the templates give follows what the plan says.
            out.extend(base);
            Value::Object(out)
        }
        (_, over) => over,
    }
}

fn lay_named(base: Value, over: Value) -> Value {
    let (mut base, over) = match (base, over) {
        (Value::Array(base), Value::Array(over)) => (base, over),
        (_, over) => return over,
    };
    for item in over {
        let name = item.get("name").cloned();
        match base.iter_mut().find(|b| name.is_some() && b.get("name") == name.as_ref()) {
            Some(slot) => *slot = item,
            None => base.push(item),
        }
    }
    Value::Array(base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    fn loader(
        files: HashMap<&'static str, Value>,
    ) -> impl FnMut(&str, &str) -> Result<Loaded, String> {
        move |name: &str, _from: &str| {
            files
                .get(name)
                .map(|doc| Loaded { id: name.to_owned(), doc: doc.clone() })
                .ok_or_else(|| format!("{name}: no such template"))
        }
    }

    #[test]
    fn plans_inherit_guardrails_by_name_and_override_values() {
        let files = HashMap::from([
            (
                "base.yaml",
                json!({"owners": {"approvers": ["cab"]}, "settle": "7d",
                "guardrails": [{"name": "errors", "tolerance": 0.01}, {"name": "latency", "tolerance": 0.1}],
                "waves": [{"exposure": "50%"}]}),
            ),
            (
                "slo.yaml",
                json!({"extends": "base.yaml", "guardrails": [{"name": "p95", "bound": 250}]}),
            ),
        ]);
        let plan = json!({"name": "p", "extends": ["slo.yaml"], "owners": {"requester": "alice"},
            "guardrails": [{"name": "errors", "tolerance": 0.005}], "waves": [{"exposure": "5%"}, {"exposure": "100%"}],
            "settle": null});
        let out = resolve(plan, "plan.yaml", &mut loader(files)).unwrap();
        assert_eq!(out["owners"], json!({"requester": "alice", "approvers": ["cab"]}));
        let names: Vec<_> =
            out["guardrails"].as_array().unwrap().iter().map(|g| g["name"].clone()).collect();
        assert_eq!(names, [json!("errors"), json!("latency"), json!("p95")]);
        assert_eq!(
            out["guardrails"][0]["tolerance"], 0.005,
            "the plan's errors replaced the template's"
        );
        assert_eq!(out["waves"].as_array().unwrap().len(), 2, "waves are replaced whole");
        assert!(out.get("settle").is_none(), "null removes");
        assert!(out.get("extends").is_none());
        let keys: Vec<_> = out.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys[0], "name", "the plan's keys come first");
    }

    #[test]
    fn cycles_depth_and_bad_shapes_are_refused() {
        let files = HashMap::from([
            ("a.yaml", json!({"extends": "b.yaml"})),
            ("b.yaml", json!({"extends": "a.yaml"})),
        ]);
        let e = resolve(json!({"extends": "a.yaml"}), "plan.yaml", &mut loader(files)).unwrap_err();
        assert_eq!(
            e,
            "templates extend each other in a cycle: plan.yaml → a.yaml → b.yaml → a.yaml"
        );
        let e =
            resolve(json!({"extends": 3}), "plan.yaml", &mut loader(HashMap::new())).unwrap_err();
        assert!(e.contains("not 3"), "{e}");
        let e = resolve(json!({"extends": "x.yaml"}), "plan.yaml", &mut loader(HashMap::new()))
            .unwrap_err();
        assert_eq!(e, "x.yaml: no such template");
        let deep: HashMap<&'static str, Value> = (0..12)
            .map(|i| {
                (
                    Box::leak(format!("t{i}").into_boxed_str()) as &str,
                    json!({"extends": format!("t{}", i + 1)}),
                )
            })
            .collect();
        let e = resolve(json!({"extends": "t0"}), "plan.yaml", &mut loader(deep)).unwrap_err();
        assert!(e.contains("more than 8 deep"), "{e}");
    }
}
