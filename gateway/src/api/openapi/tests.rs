//! The document against the route table.

use super::*;

fn json() -> serde_json::Value {
    serde_json::to_value(document()).expect("the document serializes")
}

#[test]
fn every_route_of_the_table_is_in_the_document_with_its_answers_and_errors() {
    let doc = json();
    assert_eq!(doc["openapi"], "3.1.0");
    for route in routes() {
        let (method, path) = (
            route.rule.method.as_str().to_ascii_lowercase(),
            route.rule.path,
        );
        let op = &doc["paths"][path][&method];
        assert!(op.is_object(), "{method} {path} is not in the document");
        let responses = op["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{method} {path} has no 2xx answer"
        );
        for status in ["401", "403", "500"] {
            assert_eq!(
                responses[status]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/Error",
                "{method} {path} answers {status} with the error body"
            );
        }
        if path.contains('{') {
            assert!(
                responses.contains_key("404"),
                "{method} {path} can answer 404"
            );
            assert!(
                responses.contains_key("400"),
                "{method} {path} can answer 400"
            );
        }
        if op.get("requestBody").is_some() {
            assert!(
                responses.contains_key("422"),
                "{method} {path} can answer 422"
            );
        }
        assert_eq!(
            op["security"][0]["bearer"],
            serde_json::json!([]),
            "{method} {path}"
        );
        assert!(
            op["description"]
                .as_str()
                .unwrap_or("")
                .starts_with("Roles: "),
            "{method} {path} names its roles"
        );
    }
    let operations: usize = doc["paths"]
        .as_object()
        .map(|p| {
            p.values()
                .map(|i| i.as_object().map_or(0, |m| m.len()))
                .sum()
        })
        .unwrap_or(0);
    assert_eq!(operations, routes().len(), "nothing but the table's routes");
}

#[test]
fn every_schema_referred_to_is_in_the_document() {
    let doc = json();
    let mut names = Vec::new();
    refs(&doc, &mut names);
    assert!(!names.is_empty());
    for name in names {
        assert!(
            doc["components"]["schemas"].get(&name).is_some(),
            "#/components/schemas/{name} is referred to and missing"
        );
    }
}

#[test]
fn the_document_describes_the_bearer_token() {
    let doc = json();
    let scheme = &doc["components"]["securitySchemes"][BEARER];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    assert_eq!(
        doc["components"]["schemas"][ERROR]["required"],
        serde_json::json!(["error"])
    );
}
