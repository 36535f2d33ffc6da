//! Reading the shipped files of deploy/: the Prometheus rule files and the Grafana
//! dashboards, and turning Grafana queries into plain PromQL.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

/// The deploy/ directory of this repository.
pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("deploy/contract has a parent")
        .to_path_buf()
}

/// Files in `dir` whose names end with one of `suffixes`, sorted.
pub fn files(dir: &Path, suffixes: &[&str]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            suffixes.iter().any(|s| name.ends_with(s))
        })
        .collect();
    out.sort();
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    Alert,
    Record,
}

/// One alerting or recording rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub file: PathBuf,
    pub group: String,
    pub kind: RuleKind,
    pub name: String,
    pub expr: String,
    pub for_: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// One rule group, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub file: PathBuf,
    pub name: String,
    pub rules: Vec<Rule>,
}

fn string_map(v: Option<&Yaml>) -> BTreeMap<String, String> {
    v.and_then(Yaml::as_mapping)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let k = k.as_str().unwrap_or_default().to_string();
                    let v = match v {
                        Yaml::String(s) => s.clone(),
                        other => serde_yaml::to_string(other)
                            .unwrap_or_default()
                            .trim()
                            .to_string(),
                    };
                    (k, v)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Reads a Prometheus (or Loki ruler) rule file.
pub fn load_rules(path: &Path) -> Result<Vec<Group>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc: Yaml = serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let groups = doc
        .get("groups")
        .and_then(Yaml::as_sequence)
        .ok_or_else(|| format!("{}: no groups", path.display()))?;
    let mut out = Vec::new();
    for g in groups {
        let name = g
            .get("name")
            .and_then(Yaml::as_str)
            .ok_or_else(|| format!("{}: a group has no name", path.display()))?
            .to_string();
        let mut rules = Vec::new();
        for r in g
            .get("rules")
            .and_then(Yaml::as_sequence)
            .into_iter()
            .flatten()
        {
            let (kind, rule_name) = match (r.get("alert"), r.get("record")) {
                (Some(a), None) => (RuleKind::Alert, a),
                (None, Some(rec)) => (RuleKind::Record, rec),
                _ => {
                    return Err(format!(
                        "{}: {name}: a rule is neither alert nor record",
                        path.display()
                    ));
                }
            };
            rules.push(Rule {
                file: path.to_path_buf(),
                group: name.clone(),
                kind,
                name: rule_name.as_str().unwrap_or_default().to_string(),
                expr: r
                    .get("expr")
                    .and_then(Yaml::as_str)
                    .ok_or_else(|| format!("{}: {name}: a rule has no expr", path.display()))?
                    .trim()
                    .to_string(),
                for_: r.get("for").and_then(Yaml::as_str).map(str::to_string),
                labels: string_map(r.get("labels")),
                annotations: string_map(r.get("annotations")),
            });
        }
        out.push(Group {
            file: path.to_path_buf(),
            name,
            rules,
        });
    }
    Ok(out)
}

/// Every group of every rule file under deploy/prometheus/rules/ (the classic rules, which
/// read the classic histogram series).
pub fn prometheus_groups() -> Vec<Group> {
    files(&deploy_dir().join("prometheus/rules"), &[".yml", ".yaml"])
        .iter()
        .flat_map(|p| load_rules(p).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// The classic latency rules, deploy/prometheus/rules/tars-latency-alerts.rules.yml, which
/// the native variant replaces.
pub fn classic_latency_file() -> PathBuf {
    deploy_dir().join("prometheus/rules/tars-latency-alerts.rules.yml")
}

/// Every group of every rule file under deploy/prometheus/native/: the latency rules on
/// native histograms, loaded instead of [`classic_latency_file`].
pub fn native_groups() -> Vec<Group> {
    files(&deploy_dir().join("prometheus/native"), &[".yml", ".yaml"])
        .iter()
        .flat_map(|p| load_rules(p).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// The rule groups a Prometheus on native histograms loads: [`prometheus_groups`] with
/// the classic latency file replaced by [`native_groups`].
pub fn prometheus_groups_native() -> Vec<Group> {
    let classic = classic_latency_file();
    prometheus_groups()
        .into_iter()
        .filter(|g| g.file != classic)
        .chain(native_groups())
        .collect()
}

/// A Grafana dashboard file.
#[derive(Debug, Clone, PartialEq)]
pub struct Dashboard {
    pub path: PathBuf,
    pub json: Json,
}

/// One query of one panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub panel: String,
    pub panel_type: String,
    pub ref_id: String,
    /// The query as Grafana stores it, with its variables.
    pub expr: String,
    pub exemplar: bool,
}

/// A `query` variable of the dashboard's templating.
#[derive(Debug, Clone, PartialEq)]
pub struct Variable {
    pub name: String,
    pub kind: String,
    pub query: String,
}

impl Dashboard {
    pub fn load(path: &Path) -> Result<Dashboard, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let json = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Dashboard {
            path: path.to_path_buf(),
            json,
        })
    }

    pub fn title(&self) -> &str {
        self.json["title"].as_str().unwrap_or("")
    }

    /// Every panel, including panels nested in rows.
    pub fn panels(&self) -> Vec<&Json> {
        let mut out = Vec::new();
        for p in self.json["panels"].as_array().into_iter().flatten() {
            out.push(p);
            out.extend(p["panels"].as_array().into_iter().flatten());
        }
        out
    }

    pub fn targets(&self) -> Vec<Target> {
        let mut out = Vec::new();
        for p in self.panels() {
            for t in p["targets"].as_array().into_iter().flatten() {
                out.push(Target {
                    panel: p["title"].as_str().unwrap_or("").to_string(),
                    panel_type: p["type"].as_str().unwrap_or("").to_string(),
                    ref_id: t["refId"].as_str().unwrap_or("").to_string(),
                    expr: t["expr"].as_str().unwrap_or("").to_string(),
                    exemplar: t["exemplar"].as_bool().unwrap_or(false),
                });
            }
        }
        out
    }

    pub fn variables(&self) -> Vec<Variable> {
        self.json["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| Variable {
                name: v["name"].as_str().unwrap_or("").to_string(),
                kind: v["type"].as_str().unwrap_or("").to_string(),
                query: match &v["query"] {
                    Json::String(s) => s.clone(),
                    Json::Object(o) => o
                        .get("query")
                        .and_then(Json::as_str)
                        .unwrap_or("")
                        .to_string(),
                    _ => String::new(),
                },
            })
            .collect()
    }
}

/// Every dashboard under deploy/grafana/dashboards/.
pub fn dashboards() -> Vec<Dashboard> {
    files(&deploy_dir().join("grafana/dashboards"), &[".json"])
        .iter()
        .map(|p| Dashboard::load(p).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// Replaces Grafana's template variables by values PromQL parses: interval variables
/// (`$__rate_interval`, `${__interval}`, ...) by `5m`, any other (`$namespace`,
/// `${service:regex}`) by a plain word, which inside a label matcher's string is a value
/// like any other.
pub fn grafana_to_promql(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (braced, body) = match after.strip_prefix('{') {
            Some(b) => (true, b),
            None => (false, after),
        };
        let name_len = body
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(body.len());
        if name_len == 0 {
            out.push('$');
            rest = after;
            continue;
        }
        let name = &body[..name_len];
        let mut consumed = name_len;
        if braced {
            match body[name_len..].find('}') {
                Some(close) => consumed += close + 1,
                None => consumed = body.len(),
            }
        }
        out.push_str(if name.starts_with("__") {
            "5m"
        } else {
            "grafana_var"
        });
        rest = &body[consumed..];
    }
    out.push_str(rest);
    out
}

/// Splits a Grafana `label_values(selector, label)` query.
pub fn label_values(query: &str) -> Option<(String, String)> {
    let inner = query
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    let comma = inner.rfind(',')?;
    Some((
        inner[..comma].trim().to_string(),
        inner[comma + 1..].trim().to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grafana_variables_become_parseable_promql() {
        assert_eq!(
            grafana_to_promql(
                r#"sum by (le) (rate(x_bucket{namespace=~"$namespace", service=~"${service:regex}"}[$__rate_interval]))"#
            ),
            r#"sum by (le) (rate(x_bucket{namespace=~"grafana_var", service=~"grafana_var"}[5m]))"#
        );
        assert_eq!(grafana_to_promql("up[${__interval}] $"), "up[5m] $");
    }

    #[test]
    fn label_values_queries_split_into_selector_and_label() {
        assert_eq!(
            label_values(
                r#"label_values(tars_http_requests_total{namespace=~"$namespace"}, service)"#
            ),
            Some((
                r#"tars_http_requests_total{namespace=~"$namespace"}"#.to_string(),
                "service".to_string()
            ))
        );
        assert_eq!(label_values("up"), None);
    }
}
