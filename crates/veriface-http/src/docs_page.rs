//! The readable API reference at `/docs`: the OpenAPI document rendered to
//! one self-contained HTML page on the server (no script, no CDN, no web
//! fonts), so it works offline and behind the API key like any other page.

use std::fmt::Write;

use serde_json::Value;

/// Escapes text for HTML element content and attribute values (shared by
/// every server-rendered page).
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Inline code spans (`x`) in descriptions, on escaped text.
fn prose(s: &str) -> String {
    let mut out = String::new();
    for (i, piece) in esc(s).split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{piece}</code>");
        } else {
            out.push_str(piece);
        }
    }
    out
}

/// A short type description of a schema: a `$ref` name, `array of X`, or
/// the JSON type with its format.
fn type_of(schema: &Value) -> String {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("<a href=\"#schema-{0}\">{0}</a>", esc(name));
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(items) = schema.get(key).and_then(Value::as_array) {
            let parts: Vec<String> = items.iter().map(type_of).collect();
            let sep = if key == "allOf" { " &amp; " } else { " | " };
            return parts.join(sep);
        }
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ => "any".to_string(),
    };
    if ty.starts_with("array") {
        if let Some(items) = schema.get("items") {
            return format!("array of {}", type_of(items));
        }
    }
    match schema.get("format").and_then(Value::as_str) {
        Some(f) => format!("{} ({})", esc(&ty), esc(f)),
        None => esc(&ty),
    }
}

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}\
h1{margin-bottom:0}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}\
.op{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;margin:1em 0}\
.m{display:inline-block;min-width:4.5em;font-weight:bold;text-transform:uppercase}\
.get{color:#1a7f37}.post{color:#0550ae}.delete{color:#cf222e}.put,.patch{color:#9a6700}\
code{background:#f3f3f3;padding:0 .25em;border-radius:3px}table{border-collapse:collapse;margin:.4em 0}\
td,th{border:1px solid #ddd;padding:.2em .6em;text-align:left;vertical-align:top}\
nav a{margin-right:1em}";

/// Renders the whole page.
pub fn render(doc: &Value) -> String {
    let info = &doc["info"];
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} API</title>\
         <style>{STYLE}</style></head><body><h1>{} API <small>{}</small></h1><p>{}</p>\
         <p>Machine-readable: <a href=\"/openapi.json\">/openapi.json</a> (OpenAPI {}).</p>",
        esc(info["title"].as_str().unwrap_or("veriface")),
        esc(info["title"].as_str().unwrap_or("veriface")),
        esc(info["version"].as_str().unwrap_or("")),
        prose(info["description"].as_str().unwrap_or("")),
        esc(doc["openapi"].as_str().unwrap_or("3")),
    );

    let tags: Vec<(String, String)> = doc["tags"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .map(|t| {
                    (
                        t["name"].as_str().unwrap_or_default().to_string(),
                        t["description"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    h.push_str("<nav>");
    for (name, _) in &tags {
        let _ = write!(h, "<a href=\"#tag-{0}\">{0}</a>", esc(name));
    }
    h.push_str("<a href=\"#schemas\">schemas</a></nav>");

    let empty = serde_json::Map::new();
    let paths = doc["paths"].as_object().unwrap_or(&empty);
    for (tag, description) in &tags {
        let _ = write!(
            h,
            "<h2 id=\"tag-{0}\">{0}</h2><p>{1}</p>",
            esc(tag),
            prose(description)
        );
        for (path, item) in paths {
            for method in ["get", "post", "put", "patch", "delete"] {
                let Some(op) = item.get(method) else { continue };
                let in_tag = op["tags"]
                    .as_array()
                    .is_some_and(|ts| ts.iter().any(|t| t.as_str() == Some(tag)));
                if in_tag {
                    render_operation(&mut h, method, path, op);
                }
            }
        }
    }

    h.push_str("<h2 id=\"schemas\">Schemas</h2>");
    if let Some(schemas) = doc["components"]["schemas"].as_object() {
        for (name, schema) in schemas {
            let _ = write!(
                h,
                "<h3 id=\"schema-{0}\">{0}</h3><p>{1}</p>",
                esc(name),
                prose(schema["description"].as_str().unwrap_or(""))
            );
            render_properties(&mut h, schema);
        }
    }
    h.push_str("</body></html>");
    h
}

fn render_operation(h: &mut String, method: &str, path: &str, op: &Value) {
    let _ = write!(
        h,
        "<div class=\"op\"><span class=\"m {method}\">{method}</span> <code>{}</code>",
        esc(path)
    );
    if let Some(s) = op["summary"].as_str() {
        let _ = write!(h, " &mdash; {}", prose(s));
    }
    if let Some(d) = op["description"].as_str() {
        let _ = write!(h, "<p>{}</p>", prose(d));
    }
    if let Some(params) = op["parameters"].as_array() {
        h.push_str(
            "<table><tr><th>parameter</th><th>in</th><th>type</th><th>description</th></tr>",
        );
        for p in params {
            let _ = write!(
                h,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(p["name"].as_str().unwrap_or("")),
                esc(p["in"].as_str().unwrap_or("")),
                type_of(&p["schema"]),
                prose(p["description"].as_str().unwrap_or("")),
            );
        }
        h.push_str("</table>");
    }
    if let Some(content) = op["requestBody"]["content"].as_object() {
        h.push_str("<p>Request body:</p><table><tr><th>content type</th><th>schema</th></tr>");
        for (ct, media) in content {
            let _ = write!(
                h,
                "<tr><td><code>{}</code></td><td>{}</td></tr>",
                esc(ct),
                type_of(&media["schema"])
            );
        }
        h.push_str("</table>");
    }
    if let Some(responses) = op["responses"].as_object() {
        h.push_str(
            "<p>Responses:</p><table><tr><th>status</th><th>description</th><th>body</th></tr>",
        );
        for (status, r) in responses {
            let body = r["content"]
                .as_object()
                .map(|c| {
                    c.iter()
                        .map(|(ct, m)| {
                            format!("<code>{}</code> {}", esc(ct), type_of(&m["schema"]))
                        })
                        .collect::<Vec<_>>()
                        .join("<br>")
                })
                .unwrap_or_default();
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(status),
                prose(r["description"].as_str().unwrap_or("")),
                body
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</div>");
}

fn render_properties(h: &mut String, schema: &Value) {
    if let Some(parts) = schema["allOf"].as_array() {
        for part in parts {
            if part.get("$ref").is_some() {
                let _ = write!(h, "<p>Includes every field of {}.</p>", type_of(part));
            } else {
                render_properties(h, part);
            }
        }
        return;
    }
    if let Some(variants) = schema["oneOf"].as_array() {
        let names: Vec<String> = variants.iter().map(type_of).collect();
        let _ = write!(h, "<p>One of: {}.</p>", names.join(", "));
        return;
    }
    let Some(props) = schema["properties"].as_object() else {
        let _ = write!(h, "<p>Type: {}.</p>", type_of(schema));
        return;
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    h.push_str("<table><tr><th>field</th><th>type</th><th>required</th><th>description</th></tr>");
    for (name, p) in props {
        let _ = write!(
            h,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(name),
            type_of(p),
            if required.contains(&name.as_str()) {
                "yes"
            } else {
                ""
            },
            prose(p["description"].as_str().unwrap_or("")),
        );
    }
    h.push_str("</table>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_backticks_become_code() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(prose("use `x<y` now"), "use <code>x&lt;y</code> now");
    }

    #[test]
    fn a_minimal_document_renders_its_operations_and_schemas() {
        let doc = serde_json::json!({
            "openapi": "3.1.0",
            "info": {"title": "t", "version": "1", "description": "d"},
            "tags": [{"name": "v1", "description": "mine"}],
            "paths": {"/v1/x": {"post": {"tags": ["v1"], "summary": "do <x>",
                "responses": {"200": {"description": "ok",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/X"}}}}}}}},
            "components": {"schemas": {"X": {"type": "object", "required": ["a"],
                "properties": {"a": {"type": "integer", "format": "int64"}}}}}
        });
        let html = render(&doc);
        assert!(html.contains("<code>/v1/x</code>"));
        assert!(html.contains("do &lt;x&gt;"));
        assert!(html.contains("id=\"schema-X\""));
        assert!(html.contains("integer (int64)"));
        assert!(!html.contains("<script"));
    }
}
