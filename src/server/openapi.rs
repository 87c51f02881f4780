//! `/openapi.json`: an OpenAPI 3.0 description of the Judge0-compatible API (paths,
//! parameters, request bodies and the status codes each endpoint answers with).

use serde_json::{json, Value};

fn query(name: &str, kind: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description,
           "schema": {"type": kind}})
}

fn responses(codes: &[(&str, &str)]) -> Value {
    let mut m = serde_json::Map::new();
    for (code, what) in codes {
        let content = match *code {
            "204" => json!({"description": what}),
            _ => json!({"description": what, "content": {"application/json": {"schema": {}}}}),
        };
        m.insert(code.to_string(), content);
    }
    Value::Object(m)
}

fn text_responses() -> Value {
    json!({"200": {"description": "text", "content": {"text/plain": {"schema": {"type": "string"}}}},
           "401": {"description": "AUTHN token missing or wrong"}})
}

fn submission_schema() -> Value {
    let s = |t: &str| json!({"type": t, "nullable": true});
    json!({
        "type": "object",
        "required": ["language_id"],
        "properties": {
            "source_code": s("string"),
            "language_id": {"type": "integer"},
            "compiler_options": {"type": "string", "nullable": true, "maxLength": 512},
            "command_line_arguments": {"type": "string", "nullable": true, "maxLength": 512},
            "stdin": s("string"),
            "expected_output": s("string"),
            "cpu_time_limit": s("number"),
            "cpu_extra_time": s("number"),
            "wall_time_limit": s("number"),
            "memory_limit": s("number"),
            "stack_limit": s("integer"),
            "max_processes_and_or_threads": s("integer"),
            "enable_per_process_and_thread_time_limit": s("boolean"),
            "enable_per_process_and_thread_memory_limit": s("boolean"),
            "max_file_size": s("integer"),
            "redirect_stderr_to_stdout": s("boolean"),
            "enable_network": s("boolean"),
            "number_of_runs": s("integer"),
            "additional_files": s("string"),
            "callback_url": s("string"),
        }
    })
}

/// The whole document.
pub fn document() -> Value {
    let b64 = query("base64_encoded", "boolean", "fields are base64");
    let fields = query("fields", "string", "comma-separated fields, or *");
    let wait = query("wait", "boolean", "answer when the submission is finished");
    let token =
        json!({"name": "token", "in": "path", "required": true, "schema": {"type": "string"}});
    let body = json!({"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Submission"}}}});
    let batch_body = json!({"required": true, "content": {"application/json": {"schema": {
        "type": "object", "required": ["submissions"],
        "properties": {"submissions": {"type": "array", "items": {"$ref": "#/components/schemas/Submission"}}}}}}});
    let simple = |summary: &str| json!({"get": {"summary": summary, "responses": responses(&[("200", "ok"), ("401", "AUTHN token missing or wrong")])}});
    json!({
        "openapi": "3.0.3",
        "info": {"title": "judgebox serve (Judge0 CE 1.13 compatible)", "version": env!("CARGO_PKG_VERSION")},
        "paths": {
            "/submissions": {
                "post": {"summary": "Create a submission", "parameters": [b64, wait, fields],
                         "requestBody": body,
                         "responses": responses(&[("201", "created"), ("400", "bad request"), ("401", "unauthenticated"),
                                                  ("413", "body too large"), ("422", "invalid submission"), ("503", "queue full or maintenance")])},
                "get": {"summary": "List submissions (AUTHZ)", "parameters": [b64, fields,
                            query("page", "integer", "page, from 1"), query("per_page", "integer", "per page")],
                        "responses": responses(&[("200", "ok"), ("400", "bad request"), ("401", "unauthenticated"), ("403", "unauthorized")])}
            },
            "/submissions/batch": {
                "post": {"summary": "Create submissions", "parameters": [b64], "requestBody": batch_body,
                         "responses": responses(&[("201", "created"), ("400", "bad request"), ("401", "unauthenticated"),
                                                  ("413", "body too large"), ("422", "no valid submission"), ("503", "queue full")])},
                "get": {"summary": "Get submissions", "parameters": [b64, fields,
                            {"name": "tokens", "in": "query", "required": true, "schema": {"type": "string"}}],
                        "responses": responses(&[("200", "ok"), ("400", "bad request"), ("401", "unauthenticated")])}
            },
            "/submissions/{token}": {
                "get": {"summary": "Get a submission", "parameters": [token, b64, fields],
                        "responses": responses(&[("200", "ok"), ("400", "bad request"), ("401", "unauthenticated"), ("404", "no such token")])},
                "delete": {"summary": "Delete a finished submission (AUTHZ)", "parameters": [token, fields],
                           "responses": responses(&[("200", "deleted"), ("400", "not allowed"), ("401", "unauthenticated"),
                                                    ("403", "unauthorized"), ("404", "no such token"), ("503", "maintenance")])}
            },
            "/languages": simple("Available languages"),
            "/languages/all": simple("All languages"),
            "/languages/{id}": {"get": {"summary": "One language",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
                "responses": responses(&[("200", "ok"), ("401", "unauthenticated"), ("404", "no such language")])}},
            "/statuses": simple("Status ids"),
            "/about": simple("Version and links"),
            "/version": {"get": {"summary": "Judge0 API version", "responses": text_responses()}},
            "/isolate": {"get": {"summary": "Sandbox description", "responses": text_responses()}},
            "/license": {"get": {"summary": "License", "responses": text_responses()}},
            "/system_info": simple("CPU and memory"),
            "/config_info": simple("Effective configuration"),
            "/statistics": simple("Submission counts"),
            "/workers": simple("Queue and workers"),
            "/authenticate": {"post": {"summary": "Check the AUTHN token", "responses": {
                "200": {"description": "ok"}, "401": {"description": "unauthenticated"}}}},
            "/authorize": {"post": {"summary": "Check the AUTHZ token", "responses": {
                "200": {"description": "ok"}, "401": {"description": "unauthenticated"}, "403": {"description": "unauthorized"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": text_responses()}},
        },
        "components": {"schemas": {"Submission": submission_schema()}}
    })
}
