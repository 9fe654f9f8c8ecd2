//! `cargo xtask public-api [--check]`: the public surface of the crates partners build on
//! (`oytel-types`, `oytel-client` with its `mock` feature), one line per item, written to
//! `crates/<crate>/public-api.txt`. With `--check` it fails when the code's surface differs
//! from the committed file, so that what partners call never changes by accident: a change
//! is a reviewed change of that file (and of the version).
//!
//! The surface is read from rustdoc's JSON output. That output is not stable yet; the stable
//! toolchain gives it with `RUSTC_BOOTSTRAP=1`, set for this one rustdoc run. Its format
//! version is recorded in each file: a toolchain with another format asks for the files to
//! be regenerated (and the difference reviewed) instead of reporting a false change.
//!
//! | item | line |
//! |---|---|
//! | module, struct, enum, trait, union, constant, static, type alias | its kind and path, with its generics; `#[non_exhaustive]` noted |
//! | field, variant | under its type: `pub field: Type`, `Variant(Type)`, `Variant { field: Type }` |
//! | function, method | its signature: `async`/`const`, generics, arguments, result |
//! | trait impl | `impl Trait for Type`, auto traits (`Send`, `Unpin`, …) included; blanket impls left out |
//! | re-export of another crate | `pub use crate_path as name` |

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::{ensure_file_contents_for, workspace_root};

/// The crates whose surface is recorded, and the features documented.
const CRATES: [(&str, &str); 2] = [("oytel-types", ""), ("oytel-client", "mock")];

pub fn run(check: bool) -> Result<()> {
    let root = workspace_root();
    for (krate, features) in CRATES {
        let json = rustdoc_json(&root, krate, features)?;
        let listing = render(&json)?;
        let path = root.join("crates").join(krate).join("public-api.txt");
        ensure_file_contents_for(&path, &listing, check, "cargo xtask public-api")?;
    }
    Ok(())
}

fn rustdoc_json(root: &Path, krate: &str, features: &str) -> Result<Value> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["rustdoc", "-q", "--lib", "-p", krate]);
    if !features.is_empty() {
        command.args(["--features", features]);
    }
    command.args(["--", "-Z", "unstable-options", "--output-format", "json"]);
    let status = command.status().context("running cargo rustdoc")?;
    if !status.success() {
        bail!("cargo rustdoc -p {krate} failed");
    }
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(|_| root.join("target"), Into::into);
    let file = target
        .join("doc")
        .join(format!("{}.json", krate.replace('-', "_")));
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    Ok(serde_json::from_str(&text)?)
}

/// The listing of a crate's rustdoc JSON.
fn render(doc: &Value) -> Result<String> {
    let index = doc["index"].as_object().context("no index")?;
    let root = doc["root"].to_string();
    let name = index[&root]["name"].as_str().unwrap_or_default().to_owned();
    let mut lines = BTreeSet::new();
    let walker = Walker { doc };
    walker.module(&root, &name, &mut lines, 0);
    let mut out = format!(
        "# The public API of {name} (rustdoc JSON format {}), written by `cargo xtask public-api`.\n",
        doc["format_version"]
    );
    for line in lines {
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

struct Walker<'a> {
    doc: &'a Value,
}

impl Walker<'_> {
    fn item(&self, id: &str) -> Option<&Value> {
        self.doc["index"].get(id)
    }

    fn module(&self, id: &str, path: &str, lines: &mut BTreeSet<String>, depth: usize) {
        let Some(module) = self.item(id) else { return };
        if depth > 8 {
            return;
        }
        for child in module["inner"]["module"]["items"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let child_id = child.to_string();
            let Some(item) = self.item(&child_id) else {
                continue;
            };
            if item["visibility"] != "public" {
                continue;
            }
            if let Some(re_export) = item["inner"].get("use") {
                self.re_export(re_export, path, lines, depth);
                continue;
            }
            let name = item["name"].as_str().unwrap_or_default();
            self.named(item, &format!("{path}::{name}"), lines, depth);
        }
    }

    fn re_export(&self, re_export: &Value, path: &str, lines: &mut BTreeSet<String>, depth: usize) {
        let name = re_export["name"].as_str().unwrap_or_default();
        let target = re_export["id"].to_string();
        match self.item(&target) {
            Some(item) if re_export["is_glob"] == true => {
                if item["inner"].get("module").is_some() {
                    self.module(&target, path, lines, depth + 1);
                }
            }
            Some(item) => self.named(item, &format!("{path}::{name}"), lines, depth + 1),
            None => {
                let source = re_export["source"].as_str().unwrap_or_default();
                let glob = if re_export["is_glob"] == true {
                    "::*"
                } else {
                    ""
                };
                lines.insert(format!("pub use {path}::{name} = {source}{glob}"));
            }
        }
    }

    fn named(&self, item: &Value, path: &str, lines: &mut BTreeSet<String>, depth: usize) {
        let inner = &item["inner"];
        let exhaustive = if item["attrs"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "non_exhaustive"))
        {
            "#[non_exhaustive] "
        } else {
            ""
        };
        let Some((kind, data)) = inner.as_object().and_then(|o| o.iter().next()) else {
            return;
        };
        let generics = self.generics(&data["generics"]);
        match kind.as_str() {
            "module" => {
                lines.insert(format!("pub mod {path}"));
                self.module(&item["id"].to_string(), path, lines, depth + 1);
            }
            "struct" => {
                lines.insert(format!("{exhaustive}pub struct {path}{generics}"));
                let fields = match &data["kind"] {
                    Value::Object(k) if k.contains_key("plain") => k["plain"]["fields"].clone(),
                    Value::Object(k) if k.contains_key("tuple") => k["tuple"].clone(),
                    _ => Value::Null,
                };
                self.fields(&fields, path, lines);
                self.impls(&data["impls"], path, lines);
            }
            "enum" => {
                lines.insert(format!("{exhaustive}pub enum {path}{generics}"));
                for variant in data["variants"].as_array().into_iter().flatten() {
                    if let Some(v) = self.item(&variant.to_string()) {
                        lines.insert(format!(
                            "{exhaustive_v}{path}::{}",
                            self.variant(v),
                            exhaustive_v = if v["attrs"]
                                .as_array()
                                .is_some_and(|a| a.iter().any(|x| x == "non_exhaustive"))
                            {
                                "#[non_exhaustive] "
                            } else {
                                ""
                            }
                        ));
                    }
                }
                self.impls(&data["impls"], path, lines);
            }
            "union" => {
                lines.insert(format!("pub union {path}{generics}"));
                self.impls(&data["impls"], path, lines);
            }
            "trait" => {
                let auto = if data["is_auto"] == true { "auto " } else { "" };
                lines.insert(format!("pub {auto}trait {path}{generics}"));
                for member in data["items"].as_array().into_iter().flatten() {
                    if let Some(m) = self.item(&member.to_string()) {
                        self.member(m, path, lines);
                    }
                }
            }
            "function" => {
                lines.insert(self.function(item, path));
            }
            "constant" => {
                lines.insert(format!("pub const {path}: {}", self.ty(&data["type"])));
            }
            "static" => {
                lines.insert(format!("pub static {path}: {}", self.ty(&data["type"])));
            }
            "type_alias" => {
                lines.insert(format!(
                    "pub type {path}{generics} = {}",
                    self.ty(&data["type"])
                ));
            }
            "macro" | "proc_macro" => {
                lines.insert(format!("macro {path}"));
            }
            other => {
                lines.insert(format!("{other} {path}"));
            }
        }
    }

    fn fields(&self, fields: &Value, path: &str, lines: &mut BTreeSet<String>) {
        for (n, field) in fields.as_array().into_iter().flatten().enumerate() {
            let Some(f) = self.item(&field.to_string()) else {
                continue;
            };
            if f["visibility"] != "public" {
                continue;
            }
            let name = f["name"]
                .as_str()
                .map_or_else(|| n.to_string(), str::to_owned);
            lines.insert(format!(
                "pub {path}.{name}: {}",
                self.ty(&f["inner"]["struct_field"])
            ));
        }
    }

    fn variant(&self, v: &Value) -> String {
        let name = v["name"].as_str().unwrap_or_default();
        let kind = &v["inner"]["variant"]["kind"];
        let field_types = |ids: &Value, named: bool| -> Vec<String> {
            ids.as_array()
                .into_iter()
                .flatten()
                .filter_map(|id| self.item(&id.to_string()))
                .map(|f| {
                    let ty = self.ty(&f["inner"]["struct_field"]);
                    if named {
                        format!("{}: {ty}", f["name"].as_str().unwrap_or_default())
                    } else {
                        ty
                    }
                })
                .collect()
        };
        match kind {
            Value::Object(k) if k.contains_key("tuple") => {
                format!("{name}({})", field_types(&k["tuple"], false).join(", "))
            }
            Value::Object(k) if k.contains_key("struct") => {
                format!(
                    "{name} {{ {} }}",
                    field_types(&k["struct"]["fields"], true).join(", ")
                )
            }
            _ => name.to_owned(),
        }
    }

    fn impls(&self, impls: &Value, path: &str, lines: &mut BTreeSet<String>) {
        for id in impls.as_array().into_iter().flatten() {
            let Some(item) = self.item(&id.to_string()) else {
                continue;
            };
            let data = &item["inner"]["impl"];
            if !data["blanket_impl"].is_null() {
                continue;
            }
            let generics = self.generics(&data["generics"]);
            match data["trait"].as_object() {
                Some(t) => {
                    let negative = if data["is_negative"] == true { "!" } else { "" };
                    lines.insert(format!(
                        "impl{generics} {negative}{} for {}",
                        self.path(&Value::Object(t.clone())),
                        self.ty(&data["for"])
                    ));
                }
                None => {
                    for member in data["items"].as_array().into_iter().flatten() {
                        if let Some(m) = self.item(&member.to_string()) {
                            if m["visibility"] == "public" {
                                self.member(m, path, lines);
                            }
                        }
                    }
                }
            }
        }
    }

    /// A method or associated item of `owner`.
    fn member(&self, m: &Value, owner: &str, lines: &mut BTreeSet<String>) {
        let name = m["name"].as_str().unwrap_or_default();
        let path = format!("{owner}::{name}");
        let inner = &m["inner"];
        if inner.get("function").is_some() {
            lines.insert(self.function(m, &path));
        } else if let Some(c) = inner.get("assoc_const") {
            lines.insert(format!("pub const {path}: {}", self.ty(&c["type"])));
        } else if let Some(t) = inner.get("assoc_type") {
            lines.insert(format!("type {path}{}", self.generics(&t["generics"])));
        } else if let Some(c) = inner.get("constant") {
            lines.insert(format!("pub const {path}: {}", self.ty(&c["type"])));
        }
    }

    fn function(&self, item: &Value, path: &str) -> String {
        let f = &item["inner"]["function"];
        let header = &f["header"];
        let mut prefix = String::from("pub ");
        for (flag, word) in [
            ("is_const", "const "),
            ("is_async", "async "),
            ("is_unsafe", "unsafe "),
        ] {
            if header[flag] == true {
                prefix.push_str(word);
            }
        }
        let inputs: Vec<String> = f["sig"]["inputs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|pair| {
                let name = pair[0].as_str().unwrap_or("_");
                let ty = self.ty(&pair[1]);
                if name == "self" {
                    match ty.as_str() {
                        "Self" => "self".to_owned(),
                        "&Self" => "&self".to_owned(),
                        "&mut Self" => "&mut self".to_owned(),
                        _ => format!("self: {ty}"),
                    }
                } else {
                    format!("{name}: {ty}")
                }
            })
            .collect();
        let output = match &f["sig"]["output"] {
            Value::Null => String::new(),
            ty => format!(" -> {}", self.ty(ty)),
        };
        format!(
            "{prefix}fn {path}{}({}){output}{}",
            self.generics(&f["generics"]),
            inputs.join(", "),
            self.where_clause(&f["generics"])
        )
    }

    fn generics(&self, generics: &Value) -> String {
        let params: Vec<String> = generics["params"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| {
                // `impl Trait` arguments appear as synthetic type parameters.
                p["kind"]["type"]["is_synthetic"] != true
            })
            .map(|p| {
                let name = p["name"].as_str().unwrap_or_default();
                match &p["kind"] {
                    Value::Object(k) if k.contains_key("type") => {
                        let bounds = self.bounds(&k["type"]["bounds"]);
                        if bounds.is_empty() {
                            name.to_owned()
                        } else {
                            format!("{name}: {bounds}")
                        }
                    }
                    Value::Object(k) if k.contains_key("const") => {
                        format!("const {name}: {}", self.ty(&k["const"]["type"]))
                    }
                    _ => name.to_owned(),
                }
            })
            .collect();
        if params.is_empty() {
            String::new()
        } else {
            format!("<{}>", params.join(", "))
        }
    }

    fn where_clause(&self, generics: &Value) -> String {
        let predicates: Vec<String> = generics["where_predicates"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let bound = p.get("bound_predicate")?;
                Some(format!(
                    "{}: {}",
                    self.ty(&bound["type"]),
                    self.bounds(&bound["bounds"])
                ))
            })
            .collect();
        if predicates.is_empty() {
            String::new()
        } else {
            format!(" where {}", predicates.join(", "))
        }
    }

    fn bounds(&self, bounds: &Value) -> String {
        bounds
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| match b {
                Value::Object(o) if o.contains_key("trait_bound") => {
                    let modifier = if o["trait_bound"]["modifier"] == "maybe" {
                        "?"
                    } else {
                        ""
                    };
                    format!("{modifier}{}", self.path(&o["trait_bound"]["trait"]))
                }
                Value::Object(o) if o.contains_key("outlives") => {
                    o["outlives"].as_str().unwrap_or_default().to_owned()
                }
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" + ")
    }

    /// A path with its generic arguments: `Result<T, Error>`, `Fn(&str) -> bool`.
    fn path(&self, p: &Value) -> String {
        let name = p["path"].as_str().unwrap_or_default();
        format!("{name}{}", self.args(&p["args"]))
    }

    fn args(&self, args: &Value) -> String {
        if let Some(angle) = args.get("angle_bracketed") {
            let mut parts: Vec<String> = angle["args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| match a {
                    Value::Object(o) if o.contains_key("type") => self.ty(&o["type"]),
                    Value::Object(o) if o.contains_key("lifetime") => {
                        o["lifetime"].as_str().unwrap_or_default().to_owned()
                    }
                    Value::Object(o) if o.contains_key("const") => {
                        o["const"]["expr"].as_str().unwrap_or("_").to_owned()
                    }
                    other => other.to_string(),
                })
                .collect();
            for c in angle["constraints"].as_array().into_iter().flatten() {
                let name = c["name"].as_str().unwrap_or_default();
                match &c["binding"] {
                    Value::Object(b) if b.contains_key("equality") => {
                        parts.push(format!("{name} = {}", self.ty(&b["equality"]["type"])))
                    }
                    Value::Object(b) if b.contains_key("constraint") => {
                        parts.push(format!("{name}: {}", self.bounds(&b["constraint"])))
                    }
                    _ => parts.push(name.to_owned()),
                }
            }
            if parts.is_empty() {
                String::new()
            } else {
                format!("<{}>", parts.join(", "))
            }
        } else if let Some(paren) = args.get("parenthesized") {
            let inputs: Vec<String> = paren["inputs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| self.ty(t))
                .collect();
            let output = match &paren["output"] {
                Value::Null => String::new(),
                ty => format!(" -> {}", self.ty(ty)),
            };
            format!("({}){output}", inputs.join(", "))
        } else {
            String::new()
        }
    }

    fn ty(&self, ty: &Value) -> String {
        let Some((kind, data)) = ty.as_object().and_then(|o| o.iter().next()) else {
            return ty.to_string();
        };
        match kind.as_str() {
            "resolved_path" => self.path(data),
            "generic" | "primitive" => data.as_str().unwrap_or_default().to_owned(),
            "borrowed_ref" => {
                let lifetime = data["lifetime"]
                    .as_str()
                    .map_or_else(String::new, |l| format!("{l} "));
                let mutable = if data["is_mutable"] == true {
                    "mut "
                } else {
                    ""
                };
                format!("&{lifetime}{mutable}{}", self.ty(&data["type"]))
            }
            "tuple" => {
                let parts: Vec<String> = data
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| self.ty(t))
                    .collect();
                format!("({})", parts.join(", "))
            }
            "slice" => format!("[{}]", self.ty(data)),
            "array" => format!(
                "[{}; {}]",
                self.ty(&data["type"]),
                data["len"].as_str().unwrap_or("_")
            ),
            "impl_trait" => format!("impl {}", self.bounds(data)),
            "dyn_trait" => {
                let traits: Vec<String> = data["traits"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| self.path(&t["trait"]))
                    .collect();
                let lifetime = data["lifetime"]
                    .as_str()
                    .map_or_else(String::new, |l| format!(" + {l}"));
                format!("dyn {}{lifetime}", traits.join(" + "))
            }
            "qualified_path" => format!(
                "<{} as {}>::{}",
                self.ty(&data["self_type"]),
                data["trait"]
                    .as_object()
                    .map_or_else(|| "_".to_owned(), |t| self.path(&Value::Object(t.clone()))),
                data["name"].as_str().unwrap_or_default()
            ),
            "raw_pointer" => {
                let mutable = if data["is_mutable"] == true {
                    "mut"
                } else {
                    "const"
                };
                format!("*{mutable} {}", self.ty(&data["type"]))
            }
            "function_pointer" => {
                let inputs: Vec<String> = data["sig"]["inputs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|pair| self.ty(&pair[1]))
                    .collect();
                let output = match &data["sig"]["output"] {
                    Value::Null => String::new(),
                    t => format!(" -> {}", self.ty(t)),
                };
                format!("fn({}){output}", inputs.join(", "))
            }
            "infer" => "_".to_owned(),
            _ => ty.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_crate_is_listed_item_by_item_with_signatures() {
        let doc = json!({
            "format_version": 57,
            "root": 0,
            "index": {
                "0": {"id": 0, "name": "demo", "visibility": "public", "attrs": [],
                      "inner": {"module": {"items": [1, 3, 4]}}},
                "1": {"id": 1, "name": "Order", "visibility": "public", "attrs": ["non_exhaustive"],
                      "inner": {"struct": {"kind": {"plain": {"fields": [2]}}, "generics": {"params": []}, "impls": []}}},
                "2": {"id": 2, "name": "plan_id", "visibility": "public", "attrs": [],
                      "inner": {"struct_field": {"resolved_path": {"path": "Option", "args": {"angle_bracketed": {"args": [{"type": {"primitive": "str"}}], "constraints": []}}}}}},
                "3": {"id": 3, "name": "send", "visibility": "public", "attrs": [],
                      "inner": {"function": {"sig": {"inputs": [["key", {"borrowed_ref": {"lifetime": null, "is_mutable": false, "type": {"primitive": "str"}}}]], "output": {"primitive": "bool"}},
                                             "generics": {"params": [], "where_predicates": []}, "header": {"is_async": true}}}},
                "4": {"id": 4, "name": "hidden", "visibility": "crate", "attrs": [],
                      "inner": {"function": {"sig": {"inputs": [], "output": null}, "generics": {"params": []}, "header": {}}}}
            }
        });
        let listing = render(&doc).unwrap();
        let lines: Vec<&str> = listing.lines().skip(1).collect();
        assert_eq!(
            lines,
            [
                "#[non_exhaustive] pub struct demo::Order",
                "pub async fn demo::send(key: &str) -> bool",
                "pub demo::Order.plan_id: Option<str>",
            ]
        );
    }
}
