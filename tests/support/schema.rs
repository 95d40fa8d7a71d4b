//! The JSON Schemas of the NATS contracts (copies in `tests/contracts/`), as validators.

use serde_json::Value;

use super::root;

/// Validate `instance` against `tests/contracts/{name}`; panics with every error.
pub fn assert_valid(name: &str, instance: &Value) {
    let path = root().join("tests/contracts").join(name);
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{} exists", path.display())),
    )
    .expect("schema is JSON");
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{name}: {instance} does not validate: {errors:#?}"
    );
}
