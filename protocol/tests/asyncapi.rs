//! `docs/asyncapi.json`, the AsyncAPI 3 description of the contract, against the protocol crate:
//! a channel for every [`Channel`] at its address, the QoS, retain flag and direction of
//! [`Channel::qos`], [`Channel::retained`] and [`Channel::from_agent`], messages naming the
//! schema tags and referencing the schema files that exist, the last will of every server, and
//! examples that validate and decode.

use std::path::{Path, PathBuf};

use boon::{Compiler, Schemas};
use roomready_protocol::json_schema::{self, MessageSchema};
use roomready_protocol::topics::CONTRACT_VERSION;
use roomready_protocol::{
    Channel, Command, CommandResponse, DeviceId, Message, Presence, Status, StatusReason,
    TopicPrefix,
};
use serde_json::Value;

mod support;
use support::decode;

fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("protocol/ is inside the workspace")
        .join("docs")
}

fn document() -> Value {
    let path = docs_dir().join("asyncapi.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Follows `{"$ref": "#/…"}` inside the document, also through a chain of them; any other value
/// is returned as it is.
fn resolve<'a>(doc: &'a Value, mut value: &'a Value) -> &'a Value {
    while let Some(reference) = value.get("$ref").and_then(Value::as_str) {
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{reference} is not a reference inside the document"));
        value = doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{reference} points at nothing"));
    }
    value
}

fn message_schema(name: &str) -> MessageSchema {
    json_schema::message_schemas()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no message {name}"))
}

/// The address of a channel, as `Topics` builds it with placeholders for the prefix and device.
fn address(channel: Channel) -> String {
    format!(
        "{{prefix}}/{CONTRACT_VERSION}/{{device}}/{}",
        channel.suffix()
    )
}

#[test]
fn it_is_an_asyncapi_3_document_of_contract_v1() {
    let doc = document();
    assert_eq!(doc["asyncapi"], "3.0.0");
    assert_eq!(
        doc["info"]["version"],
        CONTRACT_VERSION.trim_start_matches('v')
    );
    assert_eq!(doc["defaultContentType"], "application/json");
    let prefix = &doc["components"]["parameters"]["prefix"];
    assert_eq!(prefix["default"], TopicPrefix::DEFAULT);
    let device = doc["components"]["parameters"]["device"]["description"]
        .as_str()
        .expect("the device parameter is described");
    assert!(
        device.contains(&format!("1..={}", DeviceId::MAX_LEN)),
        "the device parameter states the length limit: {device}"
    );
}

/// Every channel of the contract, with its message, and one operation with its delivery.
#[test]
fn every_channel_has_its_address_message_and_delivery() {
    let doc = document();
    let channels = doc["channels"].as_object().expect("channels");
    let operations = doc["operations"].as_object().expect("operations");
    assert_eq!(channels.len(), Channel::ALL.len(), "one channel per topic");
    assert_eq!(
        operations.len(),
        Channel::ALL.len(),
        "one operation per topic"
    );
    for channel in Channel::ALL {
        let address = address(channel);
        let found: Vec<_> = channels
            .iter()
            .filter(|(_, c)| c["address"] == address.as_str())
            .collect();
        assert_eq!(found.len(), 1, "{channel:?}: one channel at {address}");
        let (key, object) = found[0];
        for parameter in ["prefix", "device"] {
            let value = resolve(&doc, &object["parameters"][parameter]);
            assert!(
                value["description"].is_string(),
                "{key}: parameter {parameter}"
            );
        }

        // Its message: the tag this crate writes, and the schema file of that message.
        let expected = message_schema(channel.message());
        let messages = object["messages"].as_object().expect("channel messages");
        assert_eq!(messages.len(), 1, "{key}: one message");
        let (message_key, message) = messages.iter().next().expect("one message");
        let message = resolve(&doc, message);
        assert_eq!(
            message["name"],
            expected.tag.as_str(),
            "{key}: message name"
        );
        assert_eq!(
            message["payload"]["schema"]["$ref"],
            format!("./schemas/{}", expected.file_name),
            "{key}: payload schema"
        );
        assert_eq!(message["contentType"], "application/json");

        // Its operation: direction, QoS and retain flag from the protocol crate.
        let channel_ref = format!("#/channels/{key}");
        let ops: Vec<_> = operations
            .iter()
            .filter(|(_, op)| op["channel"]["$ref"] == channel_ref.as_str())
            .collect();
        assert_eq!(ops.len(), 1, "{key}: one operation");
        let (op_key, op) = ops[0];
        let action = if channel.from_agent() {
            "send"
        } else {
            "receive"
        };
        assert_eq!(op["action"], action, "{op_key}: the agent's side");
        let mqtt = &op["bindings"]["mqtt"];
        assert_eq!(mqtt["qos"], channel.qos(), "{op_key}: QoS");
        assert_eq!(mqtt["retain"], channel.retained(), "{op_key}: retain");
        assert_eq!(mqtt["bindingVersion"], "0.2.0");
        assert_eq!(
            op["messages"],
            serde_json::json!([{ "$ref": format!("{channel_ref}/messages/{message_key}") }]),
            "{op_key}: messages"
        );
    }
}

/// Commands are answered on `cmd/res` (and, under MQTT 5, on the response topic too).
#[test]
fn commands_are_answered_on_cmd_res() {
    let doc = document();
    let operations = doc["operations"].as_object().expect("operations");
    let (_, receive) = operations
        .iter()
        .find(|(_, op)| op["action"] == "receive")
        .expect("the agent receives commands");
    let reply_channel = resolve(&doc, &receive["reply"]["channel"]);
    assert_eq!(reply_channel["address"], address(Channel::CmdRes));
    let reply_message = resolve(&doc, &receive["reply"]["messages"][0]);
    assert_eq!(
        reply_message["name"],
        message_schema(CommandResponse::NAME).tag.as_str()
    );
    let command = &doc["components"]["messages"]["command"];
    assert_eq!(command["name"], message_schema(Command::NAME).tag.as_str());
    let mqtt = &command["bindings"]["mqtt"];
    assert!(mqtt["responseTopic"].is_object(), "MQTT 5 response topic");
    assert!(
        mqtt["correlationData"].is_object(),
        "MQTT 5 correlation data"
    );
    for message in [command, reply_message] {
        assert_eq!(message["correlationId"]["location"], "$message.payload#/id");
    }
}

/// Every server carries the agent's last will: the retained offline status, QoS 1.
#[test]
fn every_server_has_the_agents_last_will() {
    let doc = document();
    let servers = doc["servers"].as_object().expect("servers");
    assert!(!servers.is_empty());
    for (key, server) in servers {
        let protocol = server["protocol"].as_str().expect("protocol");
        assert!(
            ["mqtt", "secure-mqtt"].contains(&protocol),
            "{key}: {protocol}"
        );
        let will = &server["bindings"]["mqtt"]["lastWill"];
        assert_eq!(will["topic"], address(Channel::Status), "{key}: will topic");
        assert_eq!(will["qos"], Channel::Status.qos(), "{key}: will QoS");
        assert_eq!(
            will["retain"],
            Channel::Status.retained(),
            "{key}: will retain"
        );
        let payload = will["message"].as_str().expect("the will's payload");
        let status = Status::decode(payload.as_bytes())
            .unwrap_or_else(|e| panic!("{key}: the will is not a status: {e}"));
        assert_eq!(status.status, Presence::Offline, "{key}");
        assert_eq!(status.reason, Some(StatusReason::ConnectionLost), "{key}");
        assert_eq!(
            server["bindings"]["mqtt"]["clientId"], "roomready-{device}",
            "{key}: client id"
        );
    }
}

/// Every `$ref` resolves: inside the document, or to a file next to it; schema files are the
/// published message schemas, whose `$id` and `title` follow the message tags.
#[test]
fn every_reference_resolves() {
    fn walk(value: &Value, at: &str, refs: &mut Vec<(String, String)>) {
        match value {
            Value::Object(object) => {
                if let Some(Value::String(reference)) = object.get("$ref") {
                    refs.push((at.to_owned(), reference.clone()));
                }
                for (key, inner) in object {
                    walk(inner, &format!("{at}/{key}"), refs);
                }
            }
            Value::Array(items) => {
                for (i, inner) in items.iter().enumerate() {
                    walk(inner, &format!("{at}/{i}"), refs);
                }
            }
            _ => {}
        }
    }
    let doc = document();
    let mut refs = Vec::new();
    walk(&doc, "", &mut refs);
    let mut files = Vec::new();
    for (at, reference) in refs {
        if let Some(pointer) = reference.strip_prefix('#') {
            assert!(
                doc.pointer(pointer).is_some(),
                "{at}: {reference} points at nothing"
            );
            continue;
        }
        let path = docs_dir().join(&reference);
        assert!(path.is_file(), "{at}: {reference} is not a file in docs/");
        files.push(reference);
    }
    files.sort();
    files.dedup();
    let mut expected: Vec<String> = json_schema::message_schemas()
        .iter()
        .map(|s| format!("./schemas/{}", s.file_name))
        .collect();
    expected.sort();
    assert_eq!(
        files, expected,
        "the document references every message schema"
    );
    for schema in json_schema::message_schemas() {
        let path = docs_dir().join("schemas").join(&schema.file_name);
        let file: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("schema file")).expect("JSON");
        assert_eq!(
            file["$id"],
            json_schema::schema_id(schema.name, schema.major)
        );
        assert_eq!(file["title"], schema.tag.as_str());
    }
}

/// The examples of every message validate against its schema file and decode.
#[test]
fn every_example_validates_and_decodes() {
    let doc = document();
    let mut schemas = Schemas::new();
    let mut compiler = Compiler::new();
    compiler.enable_format_assertions();
    let mut count = 0;
    for (key, message) in doc["components"]["messages"]
        .as_object()
        .expect("component messages")
    {
        let reference = message["payload"]["schema"]["$ref"]
            .as_str()
            .expect("payload schema reference");
        let path = docs_dir().join(reference);
        let index = compiler
            .compile(&path.to_string_lossy(), &mut schemas)
            .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        let name = json_schema::message_schemas()
            .into_iter()
            .find(|s| s.tag == message["name"])
            .map(|s| s.name)
            .unwrap_or_else(|| panic!("{key}: {} is no message tag", message["name"]));
        let examples = message["examples"].as_array().expect("examples");
        assert!(!examples.is_empty(), "{key}: at least one example");
        for example in examples {
            let payload = &example["payload"];
            if let Err(e) = schemas.validate(payload, index) {
                panic!("{key} example {}: {e}", example["name"]);
            }
            let bytes = serde_json::to_vec(payload).expect("JSON");
            decode(name, &bytes)
                .unwrap_or_else(|e| panic!("{key} example {}: {e}", example["name"]));
            count += 1;
        }
    }
    assert!(count >= 5, "{count} examples");
}
