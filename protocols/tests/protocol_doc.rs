//! Every example in `docs/protocol.md` decodes: the reference and the code cannot drift apart.
//!
//! Code blocks tagged ```` ```json <topic-kind> ```` hold one JSON payload; ```` ```hex
//! <topic-kind> ```` hold one binary payload as hex bytes. A binary example must be the exact
//! binary encoding of a JSON example of the same topic kind shown on the page.

use firegrid_protocols::codec::{self, Encoding};
use firegrid_protocols::topic::DeviceTopic;

struct Example {
    line: usize,
    format: String,
    kind: DeviceTopic,
    body: String,
}

fn examples() -> Vec<Example> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");
    let text = std::fs::read_to_string(path).expect("docs/protocol.md is in the repository");
    let mut out = Vec::new();
    let mut current: Option<Example> = None;
    for (i, line) in text.lines().enumerate() {
        if let Some(ex) = current.as_mut() {
            if line.trim_start().starts_with("```") {
                out.push(current.take().expect("inside a block"));
            } else {
                ex.body.push_str(line);
                ex.body.push('\n');
            }
        } else if let Some(info) = line.strip_prefix("```") {
            let mut words = info.split_whitespace();
            let (Some(format @ ("json" | "hex")), Some(kind)) = (words.next(), words.next()) else {
                continue;
            };
            let kind = DeviceTopic::ALL
                .into_iter()
                .find(|k| k.as_str() == kind)
                .unwrap_or_else(|| panic!("line {}: unknown topic kind {kind:?}", i + 1));
            current = Some(Example {
                line: i + 1,
                format: format.into(),
                kind,
                body: String::new(),
            });
        }
    }
    assert!(current.is_none(), "unterminated code block");
    out
}

fn hex(body: &str) -> Vec<u8> {
    body.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap_or_else(|e| panic!("{b:?}: {e}")))
        .collect()
}

#[test]
fn every_example_decodes() {
    let examples = examples();
    let json: Vec<_> = examples.iter().filter(|e| e.format == "json").collect();
    let binary: Vec<_> = examples.iter().filter(|e| e.format == "hex").collect();
    assert!(
        json.len() >= 12,
        "the page shows every message kind: {}",
        json.len()
    );
    assert!(binary.len() >= 2);
    for kind in DeviceTopic::ALL {
        assert!(
            json.iter().any(|e| e.kind == kind),
            "no JSON example of {kind:?}"
        );
    }

    let mut decoded_json = Vec::new();
    for ex in &json {
        let msg = codec::decode(ex.kind, ex.body.as_bytes())
            .unwrap_or_else(|e| panic!("docs/protocol.md line {}: {e}", ex.line));
        decoded_json.push(msg);
    }
    for ex in &binary {
        let bytes = hex(&ex.body);
        assert_eq!(
            codec::detect(&bytes),
            Ok(Encoding::Binary),
            "line {}",
            ex.line
        );
        let msg = codec::decode(ex.kind, &bytes)
            .unwrap_or_else(|e| panic!("docs/protocol.md line {}: {e}", ex.line));
        assert!(
            decoded_json.contains(&msg),
            "line {}: the binary example is not the encoding of a JSON example on the page: {msg:?}",
            ex.line
        );
        let mut buf = [0u8; codec::MAX_PAYLOAD];
        let n = codec::encode(&msg, Encoding::Binary, &mut buf).expect("fits");
        assert_eq!(
            &buf[..n],
            &bytes[..],
            "line {}: not the canonical encoding",
            ex.line
        );
    }
}

/// Prints the binary encoding of every JSON example: `cargo test -p firegrid-protocols --test
/// protocol_doc -- --ignored --nocapture` when the page's examples change.
#[test]
#[ignore = "a helper for editing docs/protocol.md, not a check"]
fn print_binary_of_examples() {
    for ex in examples().iter().filter(|e| e.format == "json") {
        let msg = codec::decode(ex.kind, ex.body.as_bytes()).expect("decodes");
        let mut buf = [0u8; codec::MAX_PAYLOAD];
        let n = codec::encode(&msg, Encoding::Binary, &mut buf).expect("fits");
        println!(
            "line {} ({} bytes JSON, {n} binary):",
            ex.line,
            ex.body.trim().len()
        );
        for chunk in buf[..n].chunks(16) {
            let row: Vec<_> = chunk.iter().map(|b| format!("{b:02x}")).collect();
            println!("{}", row.join(" "));
        }
    }
}
